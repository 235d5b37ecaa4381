"""Typed dependencies: the service, the caller (token -> principal), role checks."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer

from mes_edge.store.tokens import Principal, Role, authenticate

if TYPE_CHECKING:
    from mes_edge.app.service import EdgeService

COOKIE = "mes_token"
#: The double-submit CSRF cookie (readable by the pages' script) and the header that repeats it.
CSRF_COOKIE = "mes_csrf"
CSRF_HEADER = "x-csrf-token"
_CACHE_SECONDS = 5.0


def get_service(request: Request) -> EdgeService:
    """The running service this API belongs to."""
    service: EdgeService = request.app.state.service
    return service


ServiceDep = Annotated["EdgeService", Depends(get_service)]


# The two ways to present a token, declared so that /openapi.json names them (securitySchemes,
# and `security` on every operation that needs a token). auto_error=False: get_principal answers
# the 401 itself, for either one missing.
_bearer = HTTPBearer(scheme_name="bearerToken", auto_error=False,
                     description="`Authorization: Bearer <token>` (from `mes-edge token create`)")
_cookie = APIKeyCookie(name=COOKIE, scheme_name="tabletCookie", auto_error=False,
                       description="the `mes_token` cookie the station tablets get at login")


def _token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value:
        return value.strip()
    return request.cookies.get(COOKIE)


async def get_principal(request: Request) -> Principal:
    """The authenticated caller; 401 without a valid token (Bearer header or tablet cookie)."""
    secret = _token(request)
    if not secret:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "a token is needed",
                            headers={"WWW-Authenticate": "Bearer"})
    cache: dict[str, tuple[float, Principal | None]] = request.app.state.token_cache
    hit = cache.get(secret)
    now = time.monotonic()
    if hit is not None and now - hit[0] < _CACHE_SECONDS:
        principal = hit[1]
    else:
        principal = await authenticate(request.app.state.service.store, secret)
        if len(cache) > 1000:
            cache.clear()
        cache[secret] = (now, principal)
    if principal is None or principal.expired():
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "unknown, expired or revoked token",
                            headers={"WWW-Authenticate": "Bearer"})
    # For the audit of writes (api/security.py reads it after the endpoint ran).
    request.state.principal = principal
    return principal


def forget_tokens(request: Request) -> None:
    """Drop the cached token lookups, so a revocation through the API is refused at once."""
    request.app.state.token_cache.clear()


async def authenticated(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    cookie: Annotated[str | None, Depends(_cookie)],
) -> Principal:
    """get_principal as a dependency that declares both security schemes in the OpenAPI
    document (the header and the cookie are read from the request by get_principal)."""
    return await get_principal(request)


PrincipalDep = Annotated[Principal, Depends(authenticated)]


def require(*roles: Role) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency that lets only these roles (and admin) through: 403 for the others."""
    allowed = {*roles, Role.ADMIN}

    async def check(principal: PrincipalDep) -> Principal:
        if principal.role not in allowed:
            raise HTTPException(status.HTTP_403_FORBIDDEN,
                                f"role {principal.role} may not do this "
                                f"(needs {' or '.join(sorted(r.value for r in allowed))})")
        return principal

    return check


ErpDep = Annotated[Principal, Depends(require(Role.ERP))]
SupervisorDep = Annotated[Principal, Depends(require(Role.SUPERVISOR))]
ErpOrSupervisorDep = Annotated[Principal, Depends(require(Role.ERP, Role.SUPERVISOR))]
AdminDep = Annotated[Principal, Depends(require())]
AnyRoleDep = PrincipalDep


def check_work_center(principal: Principal, work_center: str) -> None:
    """403 unless the caller may act on this work center."""
    if not principal.may_act_on(work_center):
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            f"this token may not act on work center {work_center}")


OperatorOrSupervisor = Annotated[Principal, Depends(require(Role.OPERATOR, Role.SUPERVISOR))]


async def station_caller(work_center: str, principal: OperatorOrSupervisor,
                         service: ServiceDep) -> Principal:
    """Operator tokens only at their own work centers; supervisors and admins everywhere."""
    check_work_center(principal, work_center)
    if work_center not in service.rules.work_centers:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"unknown work center {work_center}")
    return principal


StationCaller = Annotated[Principal, Depends(station_caller)]
