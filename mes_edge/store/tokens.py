"""API tokens and operators: created, looked up by hash, expired, revoked, disabled."""

from __future__ import annotations

import enum
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from mes_edge.store.repository import Store
from mes_edge.store.tables import api_tokens, operators


class Role(enum.StrEnum):
    """What a token may do (README, Reliability)."""

    OPERATOR = "operator"  # scoped to its work centers
    SUPERVISOR = "supervisor"
    ERP = "erp"
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who calls: the token's name, role and (for operators) work centers."""

    token_id: str
    name: str
    role: Role
    work_centers: frozenset[str]
    expires_at: datetime | None = None

    def expired(self, now: datetime | None = None) -> bool:
        """Whether the token's lifetime is over."""
        return self.expires_at is not None and (now or datetime.now(UTC)) >= self.expires_at

    def may_act_on(self, work_center: str) -> bool:
        """Operators only at their own stations; supervisors and admins everywhere."""
        if self.role in (Role.SUPERVISOR, Role.ADMIN):
            return True
        return self.role == Role.OPERATOR and work_center in self.work_centers


def _hash(secret: str) -> str:
    # Tokens carry 256 bits of randomness, so a fast hash is enough (no dictionary to guess);
    # only the hash is stored, so a copy of the database does not hand out tokens.
    return hashlib.sha256(secret.encode()).hexdigest()


#: last_used_at is written at most this often per token (a write per request would be a write
#: amplifier on every GET of every tablet).
_TOUCH_EVERY = timedelta(seconds=60)


async def create_token(store: Store, role: Role, name: str,
                       work_centers: list[str] | None = None,
                       expires_in: timedelta | None = None) -> str:
    """Create a token and return it; it is shown once and only its hash is kept."""
    if role == Role.OPERATOR and not work_centers:
        raise ValueError("an operator token needs at least one work center")
    if expires_in is not None and expires_in <= timedelta(0):
        raise ValueError("a token's lifetime must be positive")
    token_id = secrets.token_hex(4)
    secret = f"mes_{token_id}_{secrets.token_urlsafe(32)}"
    now = datetime.now(UTC)
    async with store.transaction() as conn:
        await conn.execute(api_tokens.insert().values(
            token_id=token_id, name=name, role=role.value, work_centers=sorted(work_centers or []),
            secret_hash=_hash(secret), created_at=now, revoked_at=None,
            expires_at=None if expires_in is None else now + expires_in))
    return secret


def token_id_of(secret: str) -> str | None:
    """The id part of a token (`mes_<id>_<random>`), for logs and the audit trail."""
    parts = secret.split("_", 2)
    return parts[1] if len(parts) == 3 and parts[0] == "mes" else None


async def authenticate(store: Store, secret: str) -> Principal | None:
    """The principal of a token, or None (unknown, revoked or expired). Records its use."""
    if not secret or len(secret) > 200:
        return None
    async with store.engine.connect() as conn:
        row = (await conn.execute(select(api_tokens).where(
            api_tokens.c.secret_hash == _hash(secret)))).first()
    if row is None or row.revoked_at is not None:
        return None
    principal = Principal(row.token_id, row.name, Role(row.role), frozenset(row.work_centers),
                          row.expires_at)
    now = datetime.now(UTC)
    if principal.expired(now):
        return None
    if row.last_used_at is None or now - row.last_used_at >= _TOUCH_EVERY:
        async with store.transaction() as conn:
            await conn.execute(update(api_tokens).where(api_tokens.c.token_id == row.token_id)
                               .values(last_used_at=now))
    return principal


async def revoke_token(store: Store, token_id: str) -> bool:
    """Revoke a token by id; True if it existed (revoking twice keeps the first time)."""
    async with store.transaction() as conn:
        result = await conn.execute(update(api_tokens).where(
            api_tokens.c.token_id == token_id, api_tokens.c.revoked_at.is_(None))
            .values(revoked_at=datetime.now(UTC)))
        if result.rowcount:
            return True
        found = (await conn.execute(select(api_tokens.c.token_id).where(
            api_tokens.c.token_id == token_id))).first()
    return found is not None


# scrypt with N=2^15, r=8 (32 MiB, ~0.1 s per check): slow enough that a copied database does
# not hand out the PINs of long, non-trivial PINs quickly. A 4-digit PIN has only 10^4 values
# whatever the hash: against online guessing the per-badge lockout (api/login.py) protects it.
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**15, 8, 1
_SCRYPT_MAXMEM = 64 * 1024 * 1024


def _scrypt(pin: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(pin.encode(), salt=salt, n=n, r=r, p=p, maxmem=_SCRYPT_MAXMEM)


def hash_pin(pin: str) -> str:
    """Salted scrypt hash of an operator PIN, with its parameters (`scrypt$n$r$p$salt$hash`)."""
    salt = secrets.token_bytes(16)
    digest = _scrypt(pin, salt, _SCRYPT_N, _SCRYPT_R, _SCRYPT_P)
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${salt.hex()}${digest.hex()}"


def check_pin(pin: str, stored: str) -> bool:
    """Whether `pin` matches a hash from hash_pin (also the older `scrypt$salt$hash`, N=2^14)."""
    parts = stored.split("$")
    try:
        if len(parts) == 3 and parts[0] == "scrypt":
            n, r, p, salt_hex, digest_hex = 2**14, 8, 1, parts[1], parts[2]
        elif len(parts) == 6 and parts[0] == "scrypt":
            n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
            salt_hex, digest_hex = parts[4], parts[5]
        else:
            return False
        digest = _scrypt(pin, bytes.fromhex(salt_hex), n, r, p)
    except ValueError:
        return False
    return hmac.compare_digest(digest.hex(), digest_hex)


async def upsert_operator(store: Store, badge: str, name: str, pin: str | None,
                          work_centers: list[str]) -> None:
    """Create or change an operator."""
    row = {"badge": badge, "name": name, "pin_hash": hash_pin(pin) if pin else None,
           "work_centers": sorted(work_centers), "active": True}
    async with store.transaction() as conn:
        existing = (await conn.execute(select(operators.c.badge).where(
            operators.c.badge == badge))).first()
        if existing:
            await conn.execute(update(operators).where(operators.c.badge == badge).values(**row))
        else:
            await conn.execute(operators.insert().values(**row))


async def find_operator(store: Store, badge: str) -> dict[str, object] | None:
    """An active operator by badge."""
    async with store.engine.connect() as conn:
        row = (await conn.execute(select(operators).where(
            operators.c.badge == badge, operators.c.active.is_(True)))).first()
    return dict(row._mapping) if row else None


async def set_operator_active(store: Store, badge: str, active: bool) -> bool:
    """Disable (or enable again) an operator; True if the badge exists."""
    async with store.transaction() as conn:
        result = await conn.execute(update(operators).where(operators.c.badge == badge)
                                    .values(active=active))
    return bool(result.rowcount)


async def list_operators(store: Store) -> list[dict[str, object]]:
    """Every operator: badge, name, work centers, active, whether a PIN is set (never the hash)."""
    async with store.engine.connect() as conn:
        rows = await conn.execute(select(operators).order_by(operators.c.badge))
        return [{"badge": r.badge, "name": r.name, "work_centers": list(r.work_centers),
                 "active": bool(r.active), "has_pin": r.pin_hash is not None} for r in rows]


def token_state(revoked_at: datetime | None, expires_at: datetime | None,
                now: datetime | None = None) -> str:
    """active, revoked or expired."""
    if revoked_at is not None:
        return "revoked"
    if expires_at is not None and (now or datetime.now(UTC)) >= expires_at:
        return "expired"
    return "active"


async def list_tokens(store: Store) -> list[dict[str, object]]:
    """Every token's id, name, role, work centers, times and state (never a secret)."""
    async with store.engine.connect() as conn:
        rows = await conn.execute(select(api_tokens).order_by(api_tokens.c.created_at))
        return [{"token_id": r.token_id, "name": r.name, "role": r.role,
                 "work_centers": list(r.work_centers), "created_at": r.created_at,
                 "expires_at": r.expires_at, "last_used_at": r.last_used_at,
                 "revoked_at": r.revoked_at, "revoked": r.revoked_at is not None,
                 "state": token_state(r.revoked_at, r.expires_at)} for r in rows]
