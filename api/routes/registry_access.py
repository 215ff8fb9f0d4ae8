"""Admin endpoints for credentials: API keys and gateway broker logins.

A secret (API key token, gateway password) is in the response that creates it and
nowhere else: the registry keeps a SHA-256 (keys) or Mosquitto's PBKDF2 line (gateways).
Revoked credentials stay listed with their revocation time.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Final, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import PlainTextResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from api import mosquitto
from api.auth import Role, issue_key, revoke_key
from api.broker_sync import sync_broker
from api.context import AppContext, context
from api.models import ApiKey, Factory, GatewayCredential
from api.params import Page
from api.problems import ProblemError
from api.routes.registry_common import (
    ID_REGEX,
    AdminDep,
    FactoryPath,
    PageDep,
    SessionDep,
    commit,
    conflict,
    get_factory,
    invalid,
    not_found,
    paged,
    problems,
    rows_by_id,
    utc,
)
from millwatch.contract import TOPIC_ROOT

__all__ = [
    "ApiKeyCreate",
    "ApiKeyIssued",
    "ApiKeyPublic",
    "GatewayCreate",
    "GatewayIssued",
    "GatewayPublic",
    "router",
]

ContextDep = Annotated[AppContext, Depends(context)]
router = APIRouter()
Status = Literal["active", "revoked", "expired"]
_USERNAME_MAX: Final = 64  # GatewayCredential.id


def _status(revoked_at: datetime | None, expires_at: datetime | None = None) -> Status:
    if revoked_at is not None:
        return "revoked"
    if expires_at is not None and utc(expires_at) <= datetime.now(UTC):  # type: ignore[operator]
        return "expired"
    return "active"


# -- API keys -------------------------------------------------------------------------


class ApiKeyCreate(BaseModel):
    """A new API key: engineers belong to one factory, other roles to none."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"role": "factory_engineer", "factory_id": "f01", "label": "f01 maintenance"},
                {"role": "cluster_operator", "label": "cluster board", "expires_at": None},
            ]
        },
    )

    role: Role
    factory_id: str | None = Field(None, pattern=ID_REGEX)
    label: str = Field("", max_length=200)
    expires_at: AwareDatetime | None = Field(None, examples=["2027-01-01T00:00:00Z"])


class ApiKeyPublic(BaseModel):
    """An API key as listed: never its token or hash."""

    id: str = Field(examples=["3f9a0c21b4d7"])
    role: Role
    factory_id: str | None = Field(examples=["f01"])
    label: str = Field(examples=["f01 maintenance"])
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    status: Status


class ApiKeyIssued(ApiKeyPublic):
    """A key just issued, with its token: shown only in this response."""

    token: str = Field(
        description="Send as `Authorization: Bearer <token>` or `X-API-Key`; not stored",
        examples=["mwk_3f9a0c21b4d7_4mQ…"],
    )


def _key_public(key: ApiKey) -> ApiKeyPublic:
    return ApiKeyPublic(
        id=key.id,
        role=Role(key.role),
        factory_id=key.factory_id,
        label=key.label,
        created_at=utc(key.created_at),  # type: ignore[arg-type]
        expires_at=utc(key.expires_at),
        revoked_at=utc(key.revoked_at),
        status=_status(key.revoked_at, key.expires_at),
    )


KeyPath = Annotated[str, Path(pattern=r"^[a-z0-9]{1,16}$", examples=["3f9a0c21b4d7"])]


def _get_key(session: Session, key_id: str) -> ApiKey:
    key = session.get(ApiKey, key_id)
    if key is None:
        raise not_found("API key", key_id)
    return key


@router.post(
    "/api-keys",
    status_code=201,
    response_model=ApiKeyIssued,
    responses=problems(422),
    summary="Issue an API key (the token is shown once)",
)
def create_api_key(_: AdminDep, session: SessionDep, body: ApiKeyCreate) -> ApiKeyIssued:
    """Issue a key; keep the token, the registry only has its hash."""
    if (body.role is Role.FACTORY_ENGINEER) != (body.factory_id is not None):
        raise invalid("factory_id is required for factory_engineer keys and refused otherwise")
    if body.factory_id is not None and session.get(Factory, body.factory_id) is None:
        raise invalid(f"no factory {body.factory_id!r}")
    if body.expires_at is not None and body.expires_at <= datetime.now(UTC):
        raise invalid("expires_at must be in the future")
    key, token = issue_key(
        session, body.role, body.factory_id, label=body.label, expires_at=body.expires_at
    )
    session.commit()
    return ApiKeyIssued(**_key_public(key).model_dump(), token=token)


@router.get(
    "/api-keys",
    response_model=Page[ApiKeyPublic],
    responses=problems(422),
    summary="List API keys",
)
def list_api_keys(
    _: AdminDep,
    session: SessionDep,
    page: PageDep,
    request: Request,
    role: Annotated[Role | None, Query(description="Only this role")] = None,
    factory_id: Annotated[str | None, Query(pattern=ID_REGEX, description="Only this factory")] = (
        None
    ),
    status: Annotated[Status | None, Query(description="Only keys in this state")] = None,
) -> Any:
    """Keys, newest first; revoked and expired ones included unless filtered."""
    query = sa.select(ApiKey).order_by(ApiKey.created_at.desc(), ApiKey.id)
    if role is not None:
        query = query.where(ApiKey.role == role.value)
    if factory_id is not None:
        query = query.where(ApiKey.factory_id == factory_id)
    keys = [_key_public(k) for k in session.scalars(query).all()]
    if status is not None:
        keys = [k for k in keys if k.status == status]
    return paged(keys, page, request)


@router.get(
    "/api-keys/{key_id}",
    response_model=ApiKeyPublic,
    responses=problems(404, 422),
    summary="One API key",
)
def get_api_key(_: AdminDep, session: SessionDep, key_id: KeyPath) -> ApiKeyPublic:
    """A key by id (without its token)."""
    return _key_public(_get_key(session, key_id))


def _revoke(session: Session, ctx: AppContext, key_id: str) -> ApiKey:
    """Revoke ``key_id`` and forget the keys this process remembers (see ``auth_cache_s``)."""
    key = _get_key(session, key_id)
    if key.role == Role.ADMIN.value and key.revoked_at is None:
        now = datetime.now(UTC)
        admins = session.scalars(
            sa.select(ApiKey).where(
                ApiKey.role == Role.ADMIN.value, ApiKey.revoked_at.is_(None), ApiKey.id != key_id
            )
        ).all()
        if not any(k.expires_at is None or utc(k.expires_at) > now for k in admins):  # type: ignore[operator]
            raise conflict("this is the last active admin key; issue another one first")
    revoke_key(session, key_id)
    session.commit()
    ctx.principal_of.cache_clear()
    return key


@router.post(
    "/api-keys/{key_id}/revoke",
    response_model=ApiKeyPublic,
    responses=problems(404, 409, 422),
    summary="Revoke an API key",
)
def revoke_api_key(
    _: AdminDep, session: SessionDep, ctx: ContextDep, key_id: KeyPath
) -> ApiKeyPublic:
    """Revoke a key at once (it stays listed); revoking twice changes nothing."""
    return _key_public(_revoke(session, ctx, key_id))


@router.delete(
    "/api-keys/{key_id}",
    status_code=204,
    response_class=Response,
    responses=problems(404, 409, 422),
    summary="Revoke an API key (same as POST .../revoke)",
)
def delete_api_key(_: AdminDep, session: SessionDep, ctx: ContextDep, key_id: KeyPath) -> Response:
    """Revoke a key; it stays listed as revoked, for the audit trail."""
    _revoke(session, ctx, key_id)
    return Response(status_code=204)


# -- gateways -------------------------------------------------------------------------


class GatewayCreate(BaseModel):
    """A gateway that needs a broker login."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"id": "gw1"}]})

    id: str = Field(pattern=ID_REGEX, description="The gateway id of its topics", examples=["gw1"])


class GatewayPublic(BaseModel):
    """A gateway's broker login as listed: never its password or hash."""

    id: str = Field(examples=["gw1"])
    factory_id: str = Field(examples=["f01"])
    username: str = Field(examples=["f01.gw1"])
    created_at: datetime
    revoked_at: datetime | None
    status: Literal["active", "revoked"]


class GatewayIssued(GatewayPublic):
    """A login just issued: the password is shown only in this response."""

    password: str = Field(description="MQTT password; not stored", examples=["q3N…"])
    publish_prefix: str = Field(
        description="Topics the gateway may publish under", examples=["mw/v1/c1/f01/#"]
    )


GatewayPath = Annotated[str, Path(pattern=ID_REGEX, examples=["gw1"])]


def _gateway_public(row: GatewayCredential) -> GatewayPublic:
    return GatewayPublic(
        id=row.id.partition(".")[2],
        factory_id=row.factory_id,
        username=row.id,
        created_at=utc(row.created_at),  # type: ignore[arg-type]
        revoked_at=utc(row.revoked_at),
        status="revoked" if row.revoked_at is not None else "active",
    )


def _gateway(
    session: SessionDep, factory_id: FactoryPath, gateway_id: GatewayPath
) -> GatewayCredential:
    """FastAPI dependency: the gateway login named by the path, or 404."""
    get_factory(session, factory_id)
    row = session.get(GatewayCredential, mosquitto.gateway_username(factory_id, gateway_id))
    if row is None:
        raise not_found("gateway", gateway_id, factory_id)
    return row


GatewayDep = Annotated[GatewayCredential, Depends(_gateway)]


def _hashed(username: str) -> tuple[str, str]:
    password = mosquitto.generate_password()
    try:
        line = mosquitto.hash_password(username, password)
    except mosquitto.MosquittoError as exc:
        raise ProblemError(503, "Password tool unavailable", "mosquitto_passwd failed") from exc
    return password, line


def _issued(row: GatewayCredential, password: str, request: Request) -> GatewayIssued:
    cluster = request.app.state.ctx.settings.cluster
    return GatewayIssued(
        **_gateway_public(row).model_dump(),
        password=password,
        publish_prefix=f"{TOPIC_ROOT}/{cluster}/{row.factory_id}/#",
    )


@router.post(
    "/factories/{factory_id}/gateways",
    status_code=201,
    response_model=GatewayIssued,
    responses=problems(404, 409, 422, 503),
    summary="Issue a gateway's broker login (the password is shown once)",
)
def create_gateway(
    _: AdminDep, session: SessionDep, factory_id: FactoryPath, body: GatewayCreate, request: Request
) -> GatewayIssued:
    """Issue a login that may publish only under this factory's topics."""
    username = mosquitto.gateway_username(factory_id, body.id)
    if len(username) > _USERNAME_MAX:
        raise invalid(f"factory id and gateway id together exceed {_USERNAME_MAX - 1} characters")
    get_factory(session, factory_id)
    if session.get(GatewayCredential, username) is not None:
        raise conflict(f"gateway {body.id!r} exists in factory {factory_id!r}; rotate it instead")
    password, line = _hashed(username)
    row = GatewayCredential(
        id=username, factory_id=factory_id, passwd_line=line, created_at=datetime.now(UTC)
    )
    session.add(row)
    commit(session, f"gateway {body.id!r} was issued meanwhile")
    _sync_broker(session, request)
    return _issued(row, password, request)


@router.get(
    "/factories/{factory_id}/gateways",
    response_model=Page[GatewayPublic],
    responses=problems(404, 422),
    summary="List a factory's gateway logins",
)
def list_gateways(
    _: AdminDep, session: SessionDep, factory_id: FactoryPath, page: PageDep, request: Request
) -> Any:
    """Gateway logins of one factory, revoked ones included."""
    get_factory(session, factory_id)
    rows = rows_by_id(session, GatewayCredential, factory_id=factory_id)
    return paged([_gateway_public(r) for r in rows], page, request)


@router.get(
    "/factories/{factory_id}/gateways/{gateway_id}",
    response_model=GatewayPublic,
    responses=problems(404, 422),
    summary="One gateway login",
)
def get_gateway(_: AdminDep, row: GatewayDep) -> GatewayPublic:
    """A gateway login by gateway id."""
    return _gateway_public(row)


@router.post(
    "/factories/{factory_id}/gateways/{gateway_id}/rotate",
    response_model=GatewayIssued,
    responses=problems(404, 422, 503),
    summary="Give a gateway a new password (reactivates a revoked login)",
)
def rotate_gateway(
    _: AdminDep, session: SessionDep, row: GatewayDep, request: Request
) -> GatewayIssued:
    """Replace the password; the old one stops working once the broker reloads its files."""
    password, row.passwd_line = _hashed(row.id)
    row.created_at, row.revoked_at = datetime.now(UTC), None
    session.commit()
    _sync_broker(session, request)
    return _issued(row, password, request)


def _revoke_gateway(
    session: Session, row: GatewayCredential, request: Request
) -> GatewayCredential:
    if row.revoked_at is None:
        row.revoked_at = datetime.now(UTC)
        session.commit()
        _sync_broker(session, request)
    return row


def _sync_broker(session: Session, request: Request) -> None:
    """Rewrite the broker's files and reload it, when the API knows where it is."""
    settings = request.app.state.ctx.settings
    if settings.broker_dir is not None:
        sync_broker(session, settings.cluster, settings.broker_dir)


@router.post(
    "/factories/{factory_id}/gateways/{gateway_id}/revoke",
    response_model=GatewayPublic,
    responses=problems(404, 422),
    summary="Revoke a gateway login",
)
def revoke_gateway(
    _: AdminDep, session: SessionDep, row: GatewayDep, request: Request
) -> GatewayPublic:
    """Drop the login from the generated passwd and ACL files (it stays listed)."""
    return _gateway_public(_revoke_gateway(session, row, request))


@router.delete(
    "/factories/{factory_id}/gateways/{gateway_id}",
    status_code=204,
    response_class=Response,
    responses=problems(404, 422),
    summary="Revoke a gateway login (same as POST .../revoke)",
)
def delete_gateway(_: AdminDep, session: SessionDep, row: GatewayDep, request: Request) -> Response:
    """Revoke a gateway login; it stays listed as revoked."""
    _revoke_gateway(session, row, request)
    return Response(status_code=204)


# -- broker files ---------------------------------------------------------------------

_TEXT = {"content": {"text/plain": {}}}


@router.get(
    "/mosquitto/passwd",
    response_class=PlainTextResponse,
    responses={200: {**_TEXT, "description": "Mosquitto password_file"}, **problems()},
    summary="Mosquitto password file of the active gateway logins",
)
def mosquitto_passwd(_: AdminDep, session: SessionDep, request: Request) -> PlainTextResponse:
    """One hashed ``user:$7$…`` line per active gateway (service users are added by hand)."""
    rows = mosquitto.active_gateways(session, request.app.state.ctx.settings.cluster)
    return PlainTextResponse(mosquitto.passwd_file(r.passwd_line for r in rows))


@router.get(
    "/mosquitto/acl",
    response_class=PlainTextResponse,
    responses={200: {**_TEXT, "description": "Mosquitto acl_file"}, **problems(422)},
    summary="Mosquitto ACL file: each gateway publishes under its own factory only",
)
def mosquitto_acl(
    _: AdminDep,
    session: SessionDep,
    request: Request,
    services: Annotated[bool, Query(description="Include the ingest service user's block")] = True,
) -> PlainTextResponse:
    """``topic write mw/v1/{cluster}/{factory}/#`` per active gateway, plus ingest."""
    cluster = request.app.state.ctx.settings.cluster
    pairs = [
        (r.factory_id, r.id.partition(".")[2]) for r in mosquitto.active_gateways(session, cluster)
    ]
    chosen = (mosquitto.INGEST_SERVICE,) if services else ()
    return PlainTextResponse(mosquitto.acl_file(cluster, pairs, chosen))
