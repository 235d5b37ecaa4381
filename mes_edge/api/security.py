"""Request-level security (issue 12), one pure ASGI middleware in front of every route.

- CSRF: a state-changing request authenticated by the tablet cookie must come from one of our
  own origins (Origin, else Referer) and repeat the `mes_csrf` cookie in `X-CSRF-Token` (double
  submit: another site can make the browser send our cookies, but cannot read them). Bearer
  clients are not affected: a browser never adds an Authorization header to a cross-site request.
- The JSON endpoints refuse the content types a cross-site form can send without a CORS
  preflight (form-encoded, multipart, text/plain): 415.
- Optional token for /metrics and the API docs (security.protect_metrics / protect_docs).
- With TLS: HSTS. Always: no framing, no MIME sniffing, same-origin referrers.
- Audit: every state-changing request made with a token is recorded (kind `write`, or
  `override` for supervisors and admins) before its answer leaves.
"""

from __future__ import annotations

import hmac
import logging
from typing import Any
from urllib.parse import urlsplit

from fastapi import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mes_edge.api.deps import COOKIE, CSRF_COOKIE, CSRF_HEADER, get_principal
from mes_edge.config import Settings
from mes_edge.store.audit import AuditKind, AuditRecord, append
from mes_edge.store.tokens import Principal, Role

log = logging.getLogger(__name__)

UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: What an HTML form (or a no-preflight fetch) can send cross-site.
FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data", "text/plain"})
DOCS_PATHS = frozenset({"/docs", "/redoc", "/openapi.json"})
HSTS = b"max-age=31536000"
_ALWAYS = [(b"x-frame-options", b"DENY"), (b"x-content-type-options", b"nosniff"),
           (b"referrer-policy", b"same-origin")]


def origin_of(url: str) -> str | None:
    """scheme://host[:port] of a URL, lower-case; None when it has none."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}".lower()


def _refusal(status_code: int, code: str, message: str,
             headers: dict[str, str] | None = None) -> Response:
    return JSONResponse({"detail": {"code": code, "message": message}}, status_code,
                        headers=headers)


class SecurityMiddleware:
    """CSRF and content-type checks, protected docs/metrics, security headers, write audit."""

    def __init__(self, app: ASGIApp, *, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.origins = settings.api.origins()
        self.own_host_allowed = not settings.api.public_urls
        self.headers = [*_ALWAYS]
        if settings.api.tls.enabled:
            self.headers.append((b"strict-transport-security", HSTS))

    def allowed_origin(self, request: Request) -> bool:
        """Whether the request says it comes from one of our pages."""
        origin = request.headers.get("origin")
        if origin is None:
            referer = request.headers.get("referer")
            origin = origin_of(referer) if referer else None
        if not origin or origin == "null":
            return False
        origin = origin.lower()
        if origin in self.origins:
            return True
        # Without configured public URLs, the host the browser addressed is ours (a page of
        # another origin cannot send our Host with its own Origin).
        host = request.headers.get("host")
        return self.own_host_allowed and host is not None and (
            origin == f"{request.url.scheme}://{host}".lower())

    async def check(self, request: Request) -> Response | None:
        """A refusal, or None to go ahead."""
        path = request.url.path
        if request.method in UNSAFE:
            ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if path.startswith("/api/") and ctype in FORM_TYPES:
                return _refusal(415, "unsupported_media_type",
                                "this endpoint takes application/json (or application/xml "
                                "where documented), never form data")
            bearer = request.headers.get("authorization", "").lower().startswith("bearer ")
            if path.startswith("/api/") and not bearer and COOKIE in request.cookies:
                if not self.allowed_origin(request):
                    return _refusal(403, "csrf_origin",
                                    "a write with the tablet cookie must come from this "
                                    "service's own pages (api.public_urls)")
                sent = request.headers.get(CSRF_HEADER, "")
                kept = request.cookies.get(CSRF_COOKIE, "")
                if not kept or not hmac.compare_digest(sent.encode(), kept.encode()):
                    return _refusal(403, "csrf_token",
                                    "missing or wrong X-CSRF-Token: reload the page")
            elif path in ("/login", "/logout") and (
                    request.headers.get("origin") or request.headers.get("referer")) and (
                    not self.allowed_origin(request)):
                return _refusal(403, "csrf_origin", "sign-in forms are posted from this site")
        security = self.settings.security
        if (security.protect_metrics and path == "/metrics") or (
                security.protect_docs and path in DOCS_PATHS):
            try:
                await get_principal(request)
            except HTTPException as err:
                return _refusal(err.status_code, "token_required", str(err.detail),
                                {"WWW-Authenticate": "Bearer"})
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope.setdefault("state", {})
        request = Request(scope)
        refusal = await self.check(request)
        if refusal is not None:
            await refusal(scope, receive, self._with_headers(send, None))
            return
        await self.app(scope, receive, self._with_headers(
            send, request if request.method in UNSAFE else None))

    def _with_headers(self, send: Send, audited: Request | None) -> Send:
        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *self.headers]
                if audited is not None:
                    await self._audit(audited, int(message["status"]))
            await send(message)

        return wrapped

    async def _audit(self, request: Request, status_code: int) -> None:
        principal: Principal | None = request.scope["state"].get("principal")
        if principal is None:
            return  # no token: refused before anything happened (401)
        kind = (AuditKind.OVERRIDE if principal.role in (Role.SUPERVISOR, Role.ADMIN)
                else AuditKind.WRITE)
        detail: dict[str, Any] = {"method": request.method, "path": request.url.path,
                                  "status": status_code, "role": principal.role.value,
                                  "via": "bearer" if request.headers.get("authorization")
                                  else "cookie"}
        work_center = request.path_params.get("work_center") if "path_params" in (
            request.scope) else None
        try:
            await append(request.app.state.service.store, AuditRecord(
                kind, principal.name, token_id=principal.token_id,
                work_center=work_center, detail=detail))
        except Exception:  # the write itself is done; its audit line must not turn it into a 500
            log.exception("could not record the audit line of %s %s", request.method,
                          request.url.path)

