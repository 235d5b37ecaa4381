"""Administration (issue 12): API tokens and operators (admin), and the audit trail (admin and
supervisors). Every change here is itself an audit line (kind `admin`)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request, status
from pydantic import BaseModel, Field

from mes_edge.api.deps import AdminDep, SupervisorDep, forget_tokens
from mes_edge.store.audit import AuditKind, AuditRecord, append, query
from mes_edge.store.tokens import (
    Principal,
    Role,
    create_token,
    list_operators,
    list_tokens,
    revoke_token,
    set_operator_active,
    token_id_of,
    upsert_operator,
)

router = APIRouter(prefix="/api/v1", tags=["administration"])

Badge = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]


class TokenOut(BaseModel):
    """A token as listed (never its secret)."""

    token_id: str
    name: str
    role: Role
    work_centers: list[str]
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None
    state: Literal["active", "expired", "revoked"]


class TokenIn(BaseModel):
    """A new token: role, label, work centers (operator tokens), lifetime."""

    role: Role
    name: str = Field(min_length=1, max_length=200)
    work_centers: list[str] = Field(default_factory=list, max_length=100)
    expires_in_s: int | None = Field(None, ge=60, le=10 * 365 * 24 * 3600,
                                     description="lifetime in seconds (none: no expiry)")


class TokenCreated(BaseModel):
    """The new token: `token` is shown this once, only its hash is kept."""

    token_id: str
    token: str


class OperatorRecordOut(BaseModel):
    """An operator (never the PIN hash)."""

    badge: str
    name: str
    work_centers: list[str]
    active: bool
    has_pin: bool


class OperatorIn(BaseModel):
    """Create or change an operator (a new PIN replaces the old one; none removes it)."""

    name: str = Field(min_length=1, max_length=200)
    pin: str | None = Field(None, min_length=4, max_length=32, pattern=r"^[0-9]+$")
    work_centers: list[str] = Field(default_factory=list, max_length=100)


class AuditOut(BaseModel):
    """One line of the audit trail."""

    id: int
    ts: datetime
    kind: str
    actor: str
    token_id: str | None
    work_center: str | None
    detail: dict[str, Any]


async def _note(request: Request, caller: Principal, **detail: Any) -> None:
    await append(request.app.state.service.store, AuditRecord(
        AuditKind.ADMIN, caller.name, token_id=caller.token_id, detail=detail))


def _known_work_centers(request: Request, work_centers: list[str]) -> None:
    known = request.app.state.service.rules.work_centers
    unknown = [w for w in work_centers if w not in known]
    if unknown:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            {"code": "unknown_work_center",
                             "message": f"unknown work center(s): {', '.join(unknown)}"})


# -- tokens ---------------------------------------------------------------------------------

@router.get("/admin/tokens", response_model=list[TokenOut])
async def list_api_tokens(request: Request, caller: AdminDep) -> list[TokenOut]:
    """Every token with its role, lifetime, last use and state."""
    return [TokenOut.model_validate(t) for t in await list_tokens(request.app.state.service.store)]


@router.post("/admin/tokens", response_model=TokenCreated, status_code=201)
async def create_api_token(body: TokenIn, request: Request, caller: AdminDep) -> TokenCreated:
    """Create a token (an operator token needs its work centers)."""
    _known_work_centers(request, body.work_centers)
    expires = None if body.expires_in_s is None else timedelta(seconds=body.expires_in_s)
    try:
        secret = await create_token(request.app.state.service.store, body.role, body.name,
                                    body.work_centers, expires)
    except ValueError as err:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            {"code": "invalid", "message": str(err)}) from err
    token_id = token_id_of(secret) or ""
    await _note(request, caller, action="token_created", token=token_id, role=body.role.value,
                name=body.name, work_centers=body.work_centers, expires_in_s=body.expires_in_s)
    return TokenCreated(token_id=token_id, token=secret)


@router.post("/admin/tokens/{token_id}/revoke", response_model=TokenOut)
async def revoke_api_token(token_id: str, request: Request, caller: AdminDep) -> TokenOut:
    """Revoke a token: refused from the next request on."""
    store = request.app.state.service.store
    if not await revoke_token(store, token_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no token {token_id}")
    forget_tokens(request)
    await _note(request, caller, action="token_revoked", token=token_id)
    return next(TokenOut.model_validate(t) for t in await list_tokens(store)
                if t["token_id"] == token_id)


# -- operators -------------------------------------------------------------------------------

@router.get("/admin/operators", response_model=list[OperatorRecordOut])
async def list_station_operators(request: Request, caller: AdminDep) -> list[OperatorRecordOut]:
    """Every operator, active or disabled."""
    rows = await list_operators(request.app.state.service.store)
    return [OperatorRecordOut.model_validate(r) for r in rows]


@router.put("/admin/operators/{badge}", response_model=OperatorRecordOut)
async def put_operator(badge: Badge, body: OperatorIn, request: Request,
                       caller: AdminDep) -> OperatorRecordOut:
    """Create or change an operator (active afterwards)."""
    _known_work_centers(request, body.work_centers)
    service = request.app.state.service
    await upsert_operator(service.store, badge, body.name, body.pin, body.work_centers)
    await service.refresh_operators()
    await _note(request, caller, action="operator_saved", badge=badge,
                work_centers=body.work_centers, pin_set=body.pin is not None)
    return await _operator(request, badge)


@router.post("/admin/operators/{badge}/disable", response_model=OperatorRecordOut)
async def disable_operator(badge: str, request: Request, caller: AdminDep) -> OperatorRecordOut:
    """Disable an operator: signed out everywhere, no more sign-in (badge, PIN or scan)."""
    service = request.app.state.service
    if not await set_operator_active(service.store, badge, False):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no operator {badge}")
    stations = [wc for wc, who in service.operators.current.items() if who == badge]
    await service.refresh_operators()
    for wc in stations:
        service.operators.logout(wc)
        request.app.state.live.station_changed(wc)
    await _note(request, caller, action="operator_disabled", badge=badge)
    return await _operator(request, badge)


async def _operator(request: Request, badge: str) -> OperatorRecordOut:
    rows = await list_operators(request.app.state.service.store)
    return next(OperatorRecordOut.model_validate(r) for r in rows if r["badge"] == badge)


# -- audit trail -----------------------------------------------------------------------------

@router.get("/audit", response_model=list[AuditOut])
async def get_audit(
    request: Request, caller: SupervisorDep,
    kind: Annotated[AuditKind | None, Query()] = None,
    actor: Annotated[str | None, Query(max_length=200)] = None,
    since: Annotated[datetime | None, Query(alias="from")] = None,
    until: Annotated[datetime | None, Query(alias="to")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before: Annotated[int | None, Query(ge=1, le=2**63 - 1,
                                        description="page on: the oldest id seen")] = None,
) -> list[AuditOut]:
    """The audit trail, newest first: logins, failed logins, writes by token, supervisor
    overrides, administration. `from`/`to` are ISO 8601 times with a zone."""
    for value, name in ((since, "from"), (until, "to")):
        if value is not None and value.tzinfo is None:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                                [{"loc": ["query", name], "msg": "a time needs its zone"}])
    rows = await query(request.app.state.service.store, kind=kind.value if kind else None,
                       actor=actor, since=since, until=until, before=before, limit=limit)
    return [AuditOut.model_validate(r) for r in rows]
