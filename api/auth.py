"""API keys and roles: who is asking, and which factory's data that credential may see.

A key looks like ``mwk_<id>_<secret>``. Only the SHA-256 of the secret is stored: the
secret is 256 random bits, so a fast hash is as safe as a slow one and keeps every
request cheap. The same key works as ``Authorization: Bearer <key>`` or ``X-API-Key``.
The tenant (a factory engineer's factory) comes from the stored key, never from the
request, so no path or parameter can widen what a credential sees.

Example
-------
>>> from api.db import Database
>>> database = Database("sqlite://")
>>> database.create_all()
>>> with database.session() as session:
...     session.add(Factory(id="f01", cluster="c1", name="Mill 1"))
...     _, token = issue_key(session, Role.FACTORY_ENGINEER, "f01", label="demo")
...     session.commit()
...     authenticate(session, token).factory_id
'f01'
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

import sqlalchemy as sa
from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from api.models import ApiKey, Factory
from api.problems import ProblemError

__all__ = [
    "Principal",
    "Role",
    "authenticate",
    "current_principal",
    "issue_key",
    "require",
    "revoke_key",
]

KEY_PREFIX = "mwk"


class Role(StrEnum):
    """What a credential may do."""

    FACTORY_ENGINEER = "factory_engineer"
    CLUSTER_OPERATOR = "cluster_operator"
    ADMIN = "admin"


@dataclass(frozen=True)
class Principal:
    """The authenticated caller: its key, role and (engineers only) factory."""

    key_id: str
    role: Role
    factory_id: str | None


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def issue_key(
    session: Session,
    role: Role,
    factory_id: str | None = None,
    *,
    label: str = "",
    expires_at: datetime | None = None,
) -> tuple[ApiKey, str]:
    """Store a new key and return it with its token, which is shown only this once."""
    if (role is Role.FACTORY_ENGINEER) != (factory_id is not None):
        raise ValueError("a factory_engineer key needs a factory; other roles have none")
    if factory_id is not None and session.get(Factory, factory_id) is None:
        raise ValueError(f"unknown factory {factory_id!r}")
    key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
    key = ApiKey(
        id=key_id,
        secret_sha256=_digest(secret),
        role=role.value,
        factory_id=factory_id,
        label=label,
        created_at=datetime.now(UTC),
        expires_at=expires_at,
    )
    session.add(key)
    return key, f"{KEY_PREFIX}_{key_id}_{secret}"


def revoke_key(session: Session, key_id: str) -> ApiKey | None:
    """Mark a key revoked (it stays listed); ``None`` if there is no such key."""
    key = session.get(ApiKey, key_id)
    if key is not None and key.revoked_at is None:
        key.revoked_at = datetime.now(UTC)
    return key


def authenticate(session: Session, token: str, now: datetime | None = None) -> Principal | None:
    """The principal of a valid, unrevoked, unexpired ``token``; else ``None``."""
    prefix, _, rest = token.partition("_")
    key_id, _, secret = rest.partition("_")
    if prefix != KEY_PREFIX or not key_id or not secret:
        return None
    key = session.execute(sa.select(ApiKey).where(ApiKey.id == key_id)).scalar_one_or_none()
    if key is None or not hmac.compare_digest(key.secret_sha256, _digest(secret)):
        return None
    now = now or datetime.now(UTC)
    if key.revoked_at is not None or (key.expires_at and _aware(key.expires_at) <= now):
        return None
    return Principal(key.id, Role(key.role), key.factory_id)


def _aware(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


_bearer = HTTPBearer(auto_error=False, description="An API key as a bearer token")
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key")
_UNAUTHORIZED = ProblemError(
    401,
    "Unauthorized",
    "a valid API key is required (Authorization: Bearer <key> or X-API-Key)",
    headers={"WWW-Authenticate": "Bearer"},
)


def _too_many(retry_after_s: int, what: str) -> ProblemError:
    return ProblemError(
        429,
        "Too many requests",
        f"too many {what}; retry in {retry_after_s} s",
        headers={"Retry-After": str(retry_after_s)},
    )


def current_principal(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    api_key: Annotated[str | None, Depends(_api_key)],
) -> Principal:
    """FastAPI dependency: the caller, or a 401 (429 when over a limit) problem."""
    token = bearer.credentials if bearer else api_key
    ctx = request.app.state.ctx
    client = request.client.host if request.client else "unknown"
    principal = ctx.principal_of(token) if token and len(token) <= 200 else None
    if principal is None:
        if not token:
            raise _UNAUTHORIZED
        if ctx.auth_failures.blocked(client) or not ctx.auth_failures.allow(client):
            raise _too_many(ctx.auth_failures.retry_after_s(client), "invalid keys")
        raise _UNAUTHORIZED
    if not ctx.key_rate.allow(principal.key_id):
        raise _too_many(ctx.key_rate.retry_after_s(principal.key_id), "requests for this key")
    request.state.principal = principal
    return principal


def require(*roles: Role) -> Callable[[Principal], Principal]:
    """Dependency that admits only ``roles`` (403 for any other authenticated caller)."""
    allowed = ", ".join(r.value for r in roles)

    def dependency(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if principal.role not in roles:
            raise ProblemError(403, "Forbidden", f"this endpoint is for: {allowed}")
        return principal

    return dependency
