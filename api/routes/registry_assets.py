"""Admin CRUD of the asset hierarchy: factories, halls, lines, articles and machines.

A missing object in the path answers 404, a body naming something that does not exist
422, and a duplicate id or deleting something still in use 409. Ids follow the data
contract (``[a-z0-9-]{1,32}``), so a registered machine's id is the one in its topics.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from api.models import ApiKey, Article, Factory, GatewayCredential, Hall, Line, Machine
from api.params import Page, PageParams, page_params
from api.routes.registry_common import (
    ID_REGEX,
    AdminDep,
    FactoryPath,
    SessionDep,
    conflict,
    get_factory,
    invalid,
    not_found,
    paged,
    problems,
)
from api.settings import ApiSettings
from millwatch.contract import MACHINE_TYPES
from millwatch.site import parse_zone

__all__ = [
    "ArticleCreate",
    "ArticlePublic",
    "FactoryCreate",
    "FactoryPublic",
    "HallCreate",
    "HallPublic",
    "LineCreate",
    "LinePublic",
    "MachineCreate",
    "MachinePublic",
    "create_machine",
    "router",
]

router = APIRouter()
PageDep = Annotated[PageParams, Depends(page_params)]


def _zone(value: str) -> str:
    parse_zone(value)
    return value


def _machine_type(value: str) -> str:
    if value not in MACHINE_TYPES:
        raise ValueError(f"machine_type must be one of {', '.join(MACHINE_TYPES)}")
    return value


Id = Annotated[str, Field(pattern=ID_REGEX, examples=["weave1"])]
Name = Annotated[str, Field(max_length=200, examples=["Weaving hall 1"])]
Zone = Annotated[
    str, AfterValidator(_zone), Field(max_length=64, examples=["Asia/Dhaka"], description="IANA")
]
Shifts = Literal["3x8", "2x12"]
ShiftStart = Annotated[str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$", examples=["06:00"])]
MachineType = Annotated[
    str,
    AfterValidator(_machine_type),
    Field(examples=["loom_airjet"], json_schema_extra={"enum": list(MACHINE_TYPES)}),
]
Params = Annotated[
    dict[Annotated[str, Field(max_length=64)], float | int | str | bool],
    Field(
        max_length=64,
        description="Static parameters: width_cm, gauge, capacity_kg, feeders, zones…",
        examples=[{"width_cm": 190, "nominal_rpm": 850}],
    ),
]
Text = Annotated[str, Field(max_length=100, examples=["Toyota"])]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FactoryFields(_Body):
    """A factory's name and shift calendar (cut in its local time)."""

    name: Name
    timezone: Zone = "UTC"
    shifts: Shifts = "3x8"
    shift_start: ShiftStart = "06:00"


class FactoryCreate(FactoryFields):
    """A new factory of this cluster."""

    id: Id = Field(examples=["f01"])

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "f01",
                    "name": "Dhaka air-jet weaving",
                    "timezone": "Asia/Dhaka",
                    "shifts": "3x8",
                    "shift_start": "06:00",
                }
            ]
        }
    )


class FactoryUpdate(_Body):
    """Changed fields of a factory (others stay)."""

    name: Name | None = None
    timezone: Zone | None = None
    shifts: Shifts | None = None
    shift_start: ShiftStart | None = None


class FactoryPublic(FactoryFields):
    """A registered factory."""

    id: Id = Field(examples=["f01"])
    cluster: Id = Field(examples=["c1"])


class HallCreate(_Body):
    """A new hall (area) of a factory."""

    id: Id
    name: Name = ""


class HallUpdate(_Body):
    """Changed fields of a hall."""

    name: Name | None = None


class HallPublic(HallCreate):
    """A registered hall."""

    factory_id: Id = Field(examples=["f01"])


class LineCreate(_Body):
    """A new production line inside a hall."""

    id: Id = Field(examples=["line-a"])
    hall_id: Id
    name: Name = ""


class LineUpdate(_Body):
    """Changed fields of a line (its hall only while no machine is on it)."""

    hall_id: Id | None = None
    name: Name | None = None


class LinePublic(LineCreate):
    """A registered line."""

    factory_id: Id = Field(examples=["f01"])


class ArticleCreate(_Body):
    """A new article (fabric style, recipe family, finish)."""

    id: Id = Field(examples=["pc-7712"])
    name: Name = Field("", examples=["PC-7712 poly-cotton shirting"])
    family: str | None = Field(None, max_length=64, examples=["shirting"])
    params: Params = Field(default_factory=dict, examples=[{"picks_per_cm": 28, "gsm": 120}])


class ArticleUpdate(_Body):
    """Changed fields of an article (``params`` is replaced whole)."""

    name: Name | None = None
    family: str | None = Field(None, max_length=64)
    params: Params | None = None


class ArticlePublic(ArticleCreate):
    """A registered article."""

    factory_id: Id = Field(examples=["f01"])


class MachineFields(_Body):
    """Where a machine stands and what it is."""

    hall_id: Id
    machine_type: MachineType
    line_id: Id | None = Field(None, examples=["line-a"])
    vendor: Text | None = None
    model: Text | None = Field(None, examples=["JAT810"])
    article_id: Id | None = Field(None, examples=["pc-7712"])
    params: Params = Field(default_factory=dict)


class MachineCreate(MachineFields):
    """A new machine; its hall, and its line and article when given, must exist."""

    id: Id = Field(examples=["l0001"])

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "l0001",
                    "hall_id": "weave1",
                    "machine_type": "loom_airjet",
                    "vendor": "Toyota",
                    "model": "JAT810",
                    "params": {"width_cm": 190, "nominal_rpm": 850},
                }
            ]
        }
    )


class MachineUpdate(_Body):
    """Changed fields of a machine; ``null`` clears line, vendor, model or article."""

    hall_id: Id | None = None
    machine_type: MachineType | None = None
    line_id: Id | None = None
    vendor: Text | None = None
    model: Text | None = None
    article_id: Id | None = None
    params: Params | None = None


class MachinePublic(MachineCreate):
    """A registered machine."""

    factory_id: Id = Field(examples=["f01"])


def _public(model: type[BaseModel], row: Any) -> Any:
    return model.model_validate(
        {name: getattr(row, name) for name in model.model_fields}, strict=False
    )


def _apply(row: Any, update: BaseModel, nullable: frozenset[str] = frozenset()) -> None:
    """Copy the fields a PATCH body set onto ``row``; ``null`` only where allowed."""
    changes = update.model_dump(exclude_unset=True)
    if cleared := sorted(k for k, v in changes.items() if v is None and k not in nullable):
        raise invalid(f"{', '.join(cleared)} cannot be null")
    for name, value in changes.items():
        setattr(row, name, value)


def _commit(session: Session, what: str) -> None:
    try:
        session.commit()
    except sa.exc.IntegrityError as exc:
        session.rollback()
        raise conflict(f"{what} clashes with the registry (changed meanwhile?)") from exc


def _in_factory(session: Session, table: Any, factory_id: str, object_id: str, what: str) -> Any:
    get_factory(session, factory_id)
    row = session.get(table, (factory_id, object_id))
    if row is None:
        raise not_found(what, object_id, factory_id)
    return row


def _taken(session: Session, table: Any, factory_id: str, object_id: str, what: str) -> None:
    if session.get(table, (factory_id, object_id)) is not None:
        raise conflict(f"{what} {object_id!r} already exists in factory {factory_id!r}")


def _count(session: Session, table: Any, *where: Any) -> int:
    return int(session.scalar(sa.select(sa.func.count()).select_from(table).where(*where)) or 0)


def _settings(request: Request) -> ApiSettings:
    return request.app.state.ctx.settings


# -- factories ------------------------------------------------------------------------


@router.get(
    "/factories",
    response_model=Page[FactoryPublic],
    responses=problems(422),
    summary="List factories",
)
def list_factories(_: AdminDep, session: SessionDep, page: PageDep, request: Request) -> Any:
    """Every registered factory, by id."""
    rows = session.scalars(sa.select(Factory).order_by(Factory.id)).all()
    return paged([_public(FactoryPublic, r) for r in rows], page, request)


@router.post(
    "/factories",
    status_code=201,
    response_model=FactoryPublic,
    responses=problems(409, 422),
    summary="Register a factory",
)
def create_factory(
    _: AdminDep, session: SessionDep, body: FactoryCreate, request: Request
) -> FactoryPublic:
    """Register a factory in this API's cluster."""
    if session.get(Factory, body.id) is not None:
        raise conflict(f"factory {body.id!r} already exists")
    row = Factory(cluster=_settings(request).cluster, **body.model_dump())
    session.add(row)
    _commit(session, f"factory {body.id!r}")
    return _public(FactoryPublic, row)


@router.get(
    "/factories/{factory_id}",
    response_model=FactoryPublic,
    responses=problems(404, 422),
    summary="One factory",
)
def get_factory_route(_: AdminDep, session: SessionDep, factory_id: FactoryPath) -> FactoryPublic:
    """A factory by id."""
    return _public(FactoryPublic, get_factory(session, factory_id))


@router.patch(
    "/factories/{factory_id}",
    response_model=FactoryPublic,
    responses=problems(404, 422),
    summary="Change a factory",
)
def update_factory(
    _: AdminDep, session: SessionDep, factory_id: FactoryPath, body: FactoryUpdate
) -> FactoryPublic:
    """Change a factory's name or shift calendar (the KPIs of later shifts follow)."""
    row = get_factory(session, factory_id)
    _apply(row, body)
    _commit(session, f"factory {factory_id!r}")
    return _public(FactoryPublic, row)


@router.delete(
    "/factories/{factory_id}",
    status_code=204,
    response_class=Response,
    responses=problems(404, 409, 422),
    summary="Delete an empty factory",
)
def delete_factory(_: AdminDep, session: SessionDep, factory_id: FactoryPath) -> Response:
    """Delete a factory without halls, articles, active API keys or gateway credentials."""
    row = get_factory(session, factory_id)
    in_use = {
        "halls": _count(session, Hall, Hall.factory_id == factory_id),
        "articles": _count(session, Article, Article.factory_id == factory_id),
        "active API keys": _count(
            session, ApiKey, ApiKey.factory_id == factory_id, ApiKey.revoked_at.is_(None)
        ),
        "active gateways": _count(
            session,
            GatewayCredential,
            GatewayCredential.factory_id == factory_id,
            GatewayCredential.revoked_at.is_(None),
        ),
    }
    if used := [f"{n} {what}" for what, n in in_use.items() if n]:
        raise conflict(f"factory {factory_id!r} still has {', '.join(used)}")
    session.delete(row)
    _commit(session, f"factory {factory_id!r}")
    return Response(status_code=204)


# -- halls ----------------------------------------------------------------------------

HallPath = Annotated[str, Path(pattern=ID_REGEX, examples=["weave1"])]


@router.get(
    "/factories/{factory_id}/halls",
    response_model=Page[HallPublic],
    responses=problems(404, 422),
    summary="List a factory's halls",
)
def list_halls(
    _: AdminDep, session: SessionDep, factory_id: FactoryPath, page: PageDep, request: Request
) -> Any:
    """Halls of one factory, by id."""
    get_factory(session, factory_id)
    rows = session.scalars(
        sa.select(Hall).where(Hall.factory_id == factory_id).order_by(Hall.id)
    ).all()
    return paged([_public(HallPublic, r) for r in rows], page, request)


@router.post(
    "/factories/{factory_id}/halls",
    status_code=201,
    response_model=HallPublic,
    responses=problems(404, 409, 422),
    summary="Add a hall",
)
def create_hall(
    _: AdminDep, session: SessionDep, factory_id: FactoryPath, body: HallCreate
) -> HallPublic:
    """Add a hall to a factory."""
    get_factory(session, factory_id)
    _taken(session, Hall, factory_id, body.id, "hall")
    row = Hall(factory_id=factory_id, **body.model_dump())
    session.add(row)
    _commit(session, f"hall {body.id!r}")
    return _public(HallPublic, row)


@router.get(
    "/factories/{factory_id}/halls/{hall_id}",
    response_model=HallPublic,
    responses=problems(404, 422),
    summary="One hall",
)
def get_hall(
    _: AdminDep, session: SessionDep, factory_id: FactoryPath, hall_id: HallPath
) -> HallPublic:
    """A hall by id."""
    return _public(HallPublic, _in_factory(session, Hall, factory_id, hall_id, "hall"))


@router.patch(
    "/factories/{factory_id}/halls/{hall_id}",
    response_model=HallPublic,
    responses=problems(404, 422),
    summary="Rename a hall",
)
def update_hall(
    _: AdminDep, session: SessionDep, factory_id: FactoryPath, hall_id: HallPath, body: HallUpdate
) -> HallPublic:
    """Change a hall's name."""
    row = _in_factory(session, Hall, factory_id, hall_id, "hall")
    _apply(row, body)
    _commit(session, f"hall {hall_id!r}")
    return _public(HallPublic, row)


@router.delete(
    "/factories/{factory_id}/halls/{hall_id}",
    status_code=204,
    response_class=Response,
    responses=problems(404, 409, 422),
    summary="Delete an empty hall",
)
def delete_hall(
    _: AdminDep, session: SessionDep, factory_id: FactoryPath, hall_id: HallPath
) -> Response:
    """Delete a hall that holds no lines and no machines."""
    row = _in_factory(session, Hall, factory_id, hall_id, "hall")
    where = (Machine.factory_id == factory_id, Machine.hall_id == hall_id)
    machines = _count(session, Machine, *where)
    lines = _count(session, Line, Line.factory_id == factory_id, Line.hall_id == hall_id)
    if machines or lines:
        raise conflict(f"hall {hall_id!r} still has {machines} machines and {lines} lines")
    session.delete(row)
    _commit(session, f"hall {hall_id!r}")
    return Response(status_code=204)


# -- lines ----------------------------------------------------------------------------

LinePath = Annotated[str, Path(pattern=ID_REGEX, examples=["line-a"])]


def _check_hall(session: Session, factory_id: str, hall_id: str) -> None:
    if session.get(Hall, (factory_id, hall_id)) is None:
        raise invalid(f"no hall {hall_id!r} in factory {factory_id!r}")


@router.get(
    "/factories/{factory_id}/lines",
    response_model=Page[LinePublic],
    responses=problems(404, 422),
    summary="List a factory's lines",
)
def list_lines(
    _: AdminDep,
    session: SessionDep,
    factory_id: FactoryPath,
    page: PageDep,
    request: Request,
    hall_id: Annotated[str | None, Query(pattern=ID_REGEX, description="Only this hall")] = None,
) -> Any:
    """Lines of one factory, by id."""
    get_factory(session, factory_id)
    query = sa.select(Line).where(Line.factory_id == factory_id).order_by(Line.id)
    if hall_id is not None:
        query = query.where(Line.hall_id == hall_id)
    rows = session.scalars(query).all()
    return paged([_public(LinePublic, r) for r in rows], page, request)


@router.post(
    "/factories/{factory_id}/lines",
    status_code=201,
    response_model=LinePublic,
    responses=problems(404, 409, 422),
    summary="Add a line",
)
def create_line(
    _: AdminDep, session: SessionDep, factory_id: FactoryPath, body: LineCreate
) -> LinePublic:
    """Add a line to one of the factory's halls."""
    get_factory(session, factory_id)
    _taken(session, Line, factory_id, body.id, "line")
    _check_hall(session, factory_id, body.hall_id)
    row = Line(factory_id=factory_id, **body.model_dump())
    session.add(row)
    _commit(session, f"line {body.id!r}")
    return _public(LinePublic, row)


@router.get(
    "/factories/{factory_id}/lines/{line_id}",
    response_model=LinePublic,
    responses=problems(404, 422),
    summary="One line",
)
def get_line(
    _: AdminDep, session: SessionDep, factory_id: FactoryPath, line_id: LinePath
) -> LinePublic:
    """A line by id."""
    return _public(LinePublic, _in_factory(session, Line, factory_id, line_id, "line"))


@router.patch(
    "/factories/{factory_id}/lines/{line_id}",
    response_model=LinePublic,
    responses=problems(404, 409, 422),
    summary="Change a line",
)
def update_line(
    _: AdminDep, session: SessionDep, factory_id: FactoryPath, line_id: LinePath, body: LineUpdate
) -> LinePublic:
    """Rename a line, or move it to another hall while no machine is on it."""
    row = _in_factory(session, Line, factory_id, line_id, "line")
    if body.hall_id is not None and body.hall_id != row.hall_id:
        _check_hall(session, factory_id, body.hall_id)
        if n := _count(
            session, Machine, Machine.factory_id == factory_id, Machine.line_id == line_id
        ):
            raise conflict(f"line {line_id!r} has {n} machines; move them first")
    _apply(row, body)
    _commit(session, f"line {line_id!r}")
    return _public(LinePublic, row)


@router.delete(
    "/factories/{factory_id}/lines/{line_id}",
    status_code=204,
    response_class=Response,
    responses=problems(404, 409, 422),
    summary="Delete an empty line",
)
def delete_line(
    _: AdminDep, session: SessionDep, factory_id: FactoryPath, line_id: LinePath
) -> Response:
    """Delete a line no machine is on."""
    row = _in_factory(session, Line, factory_id, line_id, "line")
    if n := _count(session, Machine, Machine.factory_id == factory_id, Machine.line_id == line_id):
        raise conflict(f"line {line_id!r} still has {n} machines")
    session.delete(row)
    _commit(session, f"line {line_id!r}")
    return Response(status_code=204)


# -- articles -------------------------------------------------------------------------

ArticlePath = Annotated[str, Path(pattern=ID_REGEX, examples=["pc-7712"])]


@router.get(
    "/factories/{factory_id}/articles",
    response_model=Page[ArticlePublic],
    responses=problems(404, 422),
    summary="List a factory's articles",
)
def list_articles(
    _: AdminDep, session: SessionDep, factory_id: FactoryPath, page: PageDep, request: Request
) -> Any:
    """Articles (styles, recipe families, finishes) of one factory, by id."""
    get_factory(session, factory_id)
    query = sa.select(Article).where(Article.factory_id == factory_id).order_by(Article.id)
    rows = session.scalars(query).all()
    return paged([_public(ArticlePublic, r) for r in rows], page, request)


@router.post(
    "/factories/{factory_id}/articles",
    status_code=201,
    response_model=ArticlePublic,
    responses=problems(404, 409, 422),
    summary="Add an article",
)
def create_article(
    _: AdminDep, session: SessionDep, factory_id: FactoryPath, body: ArticleCreate
) -> ArticlePublic:
    """Add an article to a factory."""
    get_factory(session, factory_id)
    _taken(session, Article, factory_id, body.id, "article")
    row = Article(factory_id=factory_id, **body.model_dump())
    session.add(row)
    _commit(session, f"article {body.id!r}")
    return _public(ArticlePublic, row)


@router.get(
    "/factories/{factory_id}/articles/{article_id}",
    response_model=ArticlePublic,
    responses=problems(404, 422),
    summary="One article",
)
def get_article(
    _: AdminDep, session: SessionDep, factory_id: FactoryPath, article_id: ArticlePath
) -> ArticlePublic:
    """An article by id."""
    row = _in_factory(session, Article, factory_id, article_id, "article")
    return _public(ArticlePublic, row)


@router.patch(
    "/factories/{factory_id}/articles/{article_id}",
    response_model=ArticlePublic,
    responses=problems(404, 422),
    summary="Change an article",
)
def update_article(
    _: AdminDep,
    session: SessionDep,
    factory_id: FactoryPath,
    article_id: ArticlePath,
    body: ArticleUpdate,
) -> ArticlePublic:
    """Change an article's name, family or parameters."""
    row = _in_factory(session, Article, factory_id, article_id, "article")
    _apply(row, body, nullable=frozenset({"family"}))
    _commit(session, f"article {article_id!r}")
    return _public(ArticlePublic, row)


@router.delete(
    "/factories/{factory_id}/articles/{article_id}",
    status_code=204,
    response_class=Response,
    responses=problems(404, 409, 422),
    summary="Delete an unused article",
)
def delete_article(
    _: AdminDep, session: SessionDep, factory_id: FactoryPath, article_id: ArticlePath
) -> Response:
    """Delete an article no machine runs."""
    row = _in_factory(session, Article, factory_id, article_id, "article")
    where = (Machine.factory_id == factory_id, Machine.article_id == article_id)
    if n := _count(session, Machine, *where):
        raise conflict(f"article {article_id!r} is on {n} machines")
    session.delete(row)
    _commit(session, f"article {article_id!r}")
    return Response(status_code=204)


# -- machines -------------------------------------------------------------------------

MachinePath = Annotated[str, Path(pattern=ID_REGEX, examples=["l0001"])]


def _check_machine(session: Session, factory_id: str, row: Machine) -> None:
    """422 unless the machine's hall, line (in that hall) and article exist."""
    with session.no_autoflush:  # a changed row must not reach the database unchecked
        _check_hall(session, factory_id, row.hall_id)
        line = None if row.line_id is None else session.get(Line, (factory_id, row.line_id))
        article = (
            None if row.article_id is None else session.get(Article, (factory_id, row.article_id))
        )
    if row.line_id is not None and line is None:
        raise invalid(f"no line {row.line_id!r} in factory {factory_id!r}")
    if line is not None and line.hall_id != row.hall_id:
        raise invalid(f"line {row.line_id!r} is in hall {line.hall_id!r}, not {row.hall_id!r}")
    if row.article_id is not None and article is None:
        raise invalid(f"no article {row.article_id!r} in factory {factory_id!r}")


def create_machine(session: Session, factory_id: str, body: MachineCreate) -> Machine:
    """Check and add a machine (404 factory, 409 taken, 422 references); not committed."""
    get_factory(session, factory_id)
    _taken(session, Machine, factory_id, body.id, "machine")
    row = Machine(factory_id=factory_id, **body.model_dump())
    _check_machine(session, factory_id, row)
    session.add(row)
    return row


@router.get(
    "/factories/{factory_id}/machines",
    response_model=Page[MachinePublic],
    responses=problems(404, 422),
    summary="List a factory's machines",
)
def list_machines(
    _: AdminDep,
    session: SessionDep,
    factory_id: FactoryPath,
    page: PageDep,
    request: Request,
    hall_id: Annotated[str | None, Query(pattern=ID_REGEX, description="Only this hall")] = None,
    line_id: Annotated[str | None, Query(pattern=ID_REGEX, description="Only this line")] = None,
    machine_type: Annotated[
        str | None, Query(max_length=32, description="Only this machine class")
    ] = None,
) -> Any:
    """Registered machines of one factory, by id."""
    get_factory(session, factory_id)
    query = sa.select(Machine).where(Machine.factory_id == factory_id).order_by(Machine.id)
    for column, value in (
        (Machine.hall_id, hall_id),
        (Machine.line_id, line_id),
        (Machine.machine_type, machine_type),
    ):
        if value is not None:
            query = query.where(column == value)
    rows = session.scalars(query).all()
    return paged([_public(MachinePublic, r) for r in rows], page, request)


@router.post(
    "/factories/{factory_id}/machines",
    status_code=201,
    response_model=MachinePublic,
    responses=problems(404, 409, 422),
    summary="Register a machine",
)
def create_machine_route(
    _: AdminDep, session: SessionDep, factory_id: FactoryPath, body: MachineCreate
) -> MachinePublic:
    """Register a machine in one of the factory's halls."""
    row = create_machine(session, factory_id, body)
    _commit(session, f"machine {body.id!r}")
    return _public(MachinePublic, row)


@router.get(
    "/factories/{factory_id}/machines/{machine_id}",
    response_model=MachinePublic,
    responses=problems(404, 422),
    summary="One machine",
)
def get_machine(
    _: AdminDep, session: SessionDep, factory_id: FactoryPath, machine_id: MachinePath
) -> MachinePublic:
    """A machine by id."""
    row = _in_factory(session, Machine, factory_id, machine_id, "machine")
    return _public(MachinePublic, row)


@router.patch(
    "/factories/{factory_id}/machines/{machine_id}",
    response_model=MachinePublic,
    responses=problems(404, 422),
    summary="Change a machine",
)
def update_machine(
    _: AdminDep,
    session: SessionDep,
    factory_id: FactoryPath,
    machine_id: MachinePath,
    body: MachineUpdate,
) -> MachinePublic:
    """Move, reclassify or describe a machine (``params`` is replaced whole)."""
    row = _in_factory(session, Machine, factory_id, machine_id, "machine")
    _apply(row, body, nullable=frozenset({"line_id", "vendor", "model", "article_id"}))
    _check_machine(session, factory_id, row)
    _commit(session, f"machine {machine_id!r}")
    return _public(MachinePublic, row)


@router.delete(
    "/factories/{factory_id}/machines/{machine_id}",
    status_code=204,
    response_class=Response,
    responses=problems(404, 422),
    summary="Unregister a machine",
)
def delete_machine(
    _: AdminDep, session: SessionDep, factory_id: FactoryPath, machine_id: MachinePath
) -> Response:
    """Remove a machine from the registry (its telemetry stays in InfluxDB)."""
    session.delete(_in_factory(session, Machine, factory_id, machine_id, "machine"))
    _commit(session, f"machine {machine_id!r}")
    return Response(status_code=204)
