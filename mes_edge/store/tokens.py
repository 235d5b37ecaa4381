"""API tokens and operators: created, looked up by hash, revoked."""

from __future__ import annotations

import enum
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

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

    def may_act_on(self, work_center: str) -> bool:
        """Operators only at their own stations; supervisors and admins everywhere."""
        if self.role in (Role.SUPERVISOR, Role.ADMIN):
            return True
        return self.role == Role.OPERATOR and work_center in self.work_centers


def _hash(secret: str) -> str:
    # Tokens carry 256 bits of randomness, so a fast hash is enough (no dictionary to guess);
    # only the hash is stored, so a copy of the database does not hand out tokens.
    return hashlib.sha256(secret.encode()).hexdigest()


async def create_token(store: Store, role: Role, name: str,
                       work_centers: list[str] | None = None) -> str:
    """Create a token and return it; it is shown once and only its hash is kept."""
    if role == Role.OPERATOR and not work_centers:
        raise ValueError("an operator token needs at least one work center")
    token_id = secrets.token_hex(4)
    secret = f"mes_{token_id}_{secrets.token_urlsafe(32)}"
    async with store.transaction() as conn:
        await conn.execute(api_tokens.insert().values(
            token_id=token_id, name=name, role=role.value, work_centers=sorted(work_centers or []),
            secret_hash=_hash(secret), created_at=datetime.now(UTC), revoked_at=None))
    return secret


async def authenticate(store: Store, secret: str) -> Principal | None:
    """The principal of a token, or None (unknown or revoked)."""
    if not secret or len(secret) > 200:
        return None
    async with store.engine.connect() as conn:
        row = (await conn.execute(select(api_tokens).where(
            api_tokens.c.secret_hash == _hash(secret)))).first()
    if row is None or row.revoked_at is not None:
        return None
    return Principal(row.token_id, row.name, Role(row.role), frozenset(row.work_centers))


async def revoke_token(store: Store, token_id: str) -> bool:
    """Revoke a token by id; True if it existed."""
    async with store.transaction() as conn:
        result = await conn.execute(update(api_tokens).where(api_tokens.c.token_id == token_id)
                                    .values(revoked_at=datetime.now(UTC)))
    return bool(result.rowcount)


def hash_pin(pin: str) -> str:
    """scrypt hash of an operator PIN (PINs are short: a slow, salted hash)."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(pin.encode(), salt=salt, n=2**14, r=8, p=1)
    return f"scrypt${salt.hex()}${digest.hex()}"


def check_pin(pin: str, stored: str) -> bool:
    """Whether `pin` matches a hash from hash_pin."""
    try:
        _, salt_hex, digest_hex = stored.split("$")
    except ValueError:
        return False
    digest = hashlib.scrypt(pin.encode(), salt=bytes.fromhex(salt_hex), n=2**14, r=8, p=1)
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


async def list_tokens(store: Store) -> list[dict[str, object]]:
    """Every token's id, name, role, work centers and state (never a secret)."""
    async with store.engine.connect() as conn:
        rows = await conn.execute(select(api_tokens).order_by(api_tokens.c.created_at))
        return [{"token_id": r.token_id, "name": r.name, "role": r.role,
                 "work_centers": list(r.work_centers), "created_at": r.created_at,
                 "revoked": r.revoked_at is not None} for r in rows]
