"""Server-rendered pages: tablet login (token -> HttpOnly cookie), station page, board page.

The pages are thin: they render the shell and the UI strings of one language; the data comes
from the JSON API and the SSE streams, with the same cookie.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlencode

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from mes_edge.api.deps import COOKIE, CSRF_COOKIE, get_principal
from mes_edge.api.i18n import LANGUAGES, STRINGS, pick_language
from mes_edge.store.audit import AuditKind, AuditRecord, append
from mes_edge.store.tokens import Principal, Role, authenticate, token_id_of

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")

LANG_COOKIE = "mes_lang"
_YEAR = 365 * 24 * 3600
_MAX_FORM_BYTES = 4096


def script_json(value: object) -> str:
    """JSON that is safe inside a <script> element (no closing tag can sneak in)."""
    return json.dumps(value, ensure_ascii=False).replace("</", "<\\/")


def _lang(request: Request) -> str:
    return pick_language(request.query_params.get("lang"), request.cookies.get(LANG_COOKIE),
                         request.headers.get("accept-language"))


def _render(request: Request, name: str, context: dict[str, Any],
            status_code: int = 200) -> HTMLResponse:
    lang = _lang(request)
    strings = STRINGS[lang]
    response = templates.TemplateResponse(request, name, {
        "lang": lang, "t": strings, "languages": LANGUAGES,
        # Switching language keeps the rest of the query (e.g. where the login leads next).
        "lang_urls": {code: "?" + urlencode({**request.query_params, "lang": code})
                      for code in LANGUAGES},
        "strings_json": script_json(strings), **context},
        status_code=status_code)
    if request.query_params.get("lang") in LANGUAGES:
        # Remember a choice made on the page for the next visit.
        response.set_cookie(LANG_COOKIE, lang, max_age=_YEAR, samesite="strict")
    if COOKIE in request.cookies and CSRF_COOKIE not in request.cookies:
        # A tablet signed in before CSRF tokens existed gets its token with the page.
        set_csrf_cookie(request, response)
    return response


def set_csrf_cookie(request: Request, response: Response) -> None:
    """The double-submit CSRF token: readable by the page's script (not HttpOnly), which sends
    it back as X-CSRF-Token on every write (api/security.py)."""
    response.set_cookie(CSRF_COOKIE, secrets.token_urlsafe(32), max_age=_YEAR,
                        httponly=False, samesite="strict",
                        secure=request.url.scheme == "https", path="/")


async def _caller(request: Request) -> Principal | None:
    try:
        return await get_principal(request)
    except HTTPException:
        return None


def _home_of(principal: Principal) -> str | None:
    if principal.role == Role.OPERATOR and principal.work_centers:
        return f"/station/{quote(sorted(principal.work_centers)[0])}"
    if principal.role in (Role.SUPERVISOR, Role.ADMIN):
        return "/board"
    return None


def _safe_next(target: str | None) -> str | None:
    # Only paths of this site: an open redirect would turn the login into a phishing aid.
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return None


def _to_login(request: Request) -> RedirectResponse:
    return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)


@router.get("/")
async def index(request: Request) -> Response:
    """Where this tablet belongs: its station, the board, or the login page."""
    principal = await _caller(request)
    home = _home_of(principal) if principal else None
    return RedirectResponse(home or "/login", status_code=303)


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request) -> HTMLResponse:
    """The page where a station token is pasted once."""
    return _render(request, "login.html", {"next": request.query_params.get("next", ""),
                                           "error": None})


@router.post("/login")
async def login(request: Request) -> Response:
    """Check the pasted token and keep it as an HttpOnly cookie (scripts never see it)."""
    raw = await request.body()
    form = parse_qs(raw[:_MAX_FORM_BYTES].decode("utf-8", "replace"))
    token = (form.get("token") or [""])[0].strip()
    target = _safe_next((form.get("next") or [""])[0])
    principal = await authenticate(request.app.state.service.store, token) if token else None
    strings = STRINGS[_lang(request)]
    if principal is None:
        if token:
            await append(request.app.state.service.store, AuditRecord(
                AuditKind.LOGIN_FAILED, f"token:{token_id_of(token) or '?'}",
                detail={"via": "tablet_page", "reason": "invalid_token"}))
        return _render(request, "login.html", {"next": target or "",
                                               "error": strings["invalid_token"]}, 401)
    home = _home_of(principal)
    if home is None:
        return _render(request, "login.html", {"next": target or "",
                                               "error": strings["erp_no_ui"]}, 403)
    response = RedirectResponse(target or home, status_code=303)
    response.set_cookie(COOKIE, token, max_age=_YEAR, httponly=True, samesite="strict",
                        secure=request.url.scheme == "https", path="/")
    set_csrf_cookie(request, response)
    await append(request.app.state.service.store, AuditRecord(
        AuditKind.LOGIN, principal.name, token_id=principal.token_id,
        detail={"via": "tablet_page", "role": principal.role.value}))
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    """Forget this tablet's token."""
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")
    return response


@router.get("/station/{work_center}", response_class=HTMLResponse)
async def station_page(work_center: str, request: Request) -> Response:
    """The station tablet page of one work center."""
    principal = await _caller(request)
    if principal is None:
        return _to_login(request)
    service = request.app.state.service
    if work_center not in service.rules.work_centers:
        return _render(request, "message.html", {"message": f"unknown work center "
                                                 f"{work_center}"}, 404)
    if principal.role == Role.ERP or not principal.may_act_on(work_center):
        return _render(request, "message.html",
                       {"message": STRINGS[_lang(request)]["forbidden"]}, 403)
    config = next(w for w in service.settings.work_centers if w.id == work_center)
    return _render(request, "station.html", {
        "work_center": work_center, "name": config.name or work_center,
        "config_json": script_json({"workCenter": work_center,
                                    "counting": config.counting.value})})


@router.get("/board", response_class=HTMLResponse)
async def board_page(request: Request) -> Response:
    """The supervisor board page."""
    principal = await _caller(request)
    if principal is None:
        return _to_login(request)
    if principal.role not in (Role.SUPERVISOR, Role.ADMIN):
        return _render(request, "message.html",
                       {"message": STRINGS[_lang(request)]["forbidden"]}, 403)
    return _render(request, "board.html", {"site": request.app.state.service.settings.site})
