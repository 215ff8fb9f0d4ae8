"""Admin CRUD of the asset hierarchy: factories, halls, lines, articles and machines.

A missing object in the path answers 404, a body naming something that does not exist
422, and a duplicate id or deleting something still in use 409. Ids follow the data
contract (``[a-z0-9-]{1,32}``), so a registered machine's id is the one in its topics.
The routes come from :func:`api.routes.registry_crud.crud_router`; this module holds what
is each table's own: its texts, filters and checks.

Example
-------
>>> [resource.path for resource in (FACTORIES, HALLS, LINES, ARTICLES, MACHINES)]
['factories', 'halls', 'lines', 'articles', 'machines']
>>> sorted(MACHINES.filters)
['hall_id', 'line_id', 'machine_type']
>>> MACHINES.nullable == {"line_id", "vendor", "model", "article_id"}
True
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Query, Request
from sqlalchemy.orm import Session

from api.models import ApiKey, Article, Factory, GatewayCredential, Hall, Line, Machine
from api.routes.registry_common import ID_REGEX, conflict, invalid
from api.routes.registry_crud import Doc, Resource, crud_router
from api.routes.registry_schemas import (
    ArticleCreate,
    ArticlePublic,
    ArticleUpdate,
    FactoryCreate,
    FactoryPublic,
    FactoryUpdate,
    HallCreate,
    HallPublic,
    HallUpdate,
    LineCreate,
    LinePublic,
    LineUpdate,
    MachineCreate,
    MachinePublic,
    MachineUpdate,
)

__all__ = ["ARTICLES", "FACTORIES", "HALLS", "LINES", "MACHINES", "router"]


def _count(session: Session, table: Any, **equal: Any) -> int:
    """Rows of ``table`` whose columns equal the values (``None``: IS NULL)."""
    where = [getattr(table, column) == value for column, value in equal.items()]
    return int(session.scalar(sa.select(sa.func.count()).select_from(table).where(*where)) or 0)


def _check_hall(session: Session, factory_id: str, hall_id: str) -> None:
    if session.get(Hall, (factory_id, hall_id)) is None:
        raise invalid(f"no hall {hall_id!r} in factory {factory_id!r}")


# -- factories ------------------------------------------------------------------------


def _cluster(request: Request) -> dict[str, Any]:
    return {"cluster": request.app.state.ctx.settings.cluster}


def _factory_in_use(session: Session, row: Factory) -> str | None:
    in_use = {
        "halls": _count(session, Hall, factory_id=row.id),
        "articles": _count(session, Article, factory_id=row.id),
        "active API keys": _count(session, ApiKey, factory_id=row.id, revoked_at=None),
        "active gateways": _count(session, GatewayCredential, factory_id=row.id, revoked_at=None),
    }
    used = [f"{n} {what}" for what, n in in_use.items() if n]
    return f"factory {row.id!r} still has {', '.join(used)}" if used else None


FACTORIES = Resource(
    table=Factory,
    path="factories",
    example="f01",
    create=FactoryCreate,
    update=FactoryUpdate,
    public=FactoryPublic,
    scoped=False,
    stamp=_cluster,
    in_use=_factory_in_use,
    docs={
        "list": Doc("List factories", "Every registered factory, by id."),
        "create": Doc("Register a factory", "Register a factory in this API's cluster."),
        "get": Doc("One factory", "A factory by id.", name="get_factory_route"),
        "update": Doc(
            "Change a factory",
            "Change a factory's name or shift calendar (the KPIs of later shifts follow).",
        ),
        "delete": Doc(
            "Delete an empty factory",
            "Delete a factory without halls, articles, active API keys or gateway credentials.",
        ),
    },
)

# -- halls ----------------------------------------------------------------------------


def _hall_in_use(session: Session, row: Hall) -> str | None:
    machines = _count(session, Machine, factory_id=row.factory_id, hall_id=row.id)
    lines = _count(session, Line, factory_id=row.factory_id, hall_id=row.id)
    if machines or lines:
        return f"hall {row.id!r} still has {machines} machines and {lines} lines"
    return None


HALLS = Resource(
    table=Hall,
    path="halls",
    example="weave1",
    create=HallCreate,
    update=HallUpdate,
    public=HallPublic,
    in_use=_hall_in_use,
    docs={
        "list": Doc("List a factory's halls", "Halls of one factory, by id."),
        "create": Doc("Add a hall", "Add a hall to a factory."),
        "get": Doc("One hall", "A hall by id."),
        "update": Doc("Rename a hall", "Change a hall's name."),
        "delete": Doc("Delete an empty hall", "Delete a hall that holds no lines and no machines."),
    },
)

# -- lines ----------------------------------------------------------------------------


def _check_line(session: Session, row: Line) -> None:
    _check_hall(session, row.factory_id, row.hall_id)


def _line_move(session: Session, row: Line, body: LineUpdate) -> None:
    """A line moves to another (existing) hall only while no machine is on it."""
    if body.hall_id is not None and body.hall_id != row.hall_id:
        _check_hall(session, row.factory_id, body.hall_id)
        if n := _count(session, Machine, factory_id=row.factory_id, line_id=row.id):
            raise conflict(f"line {row.id!r} has {n} machines; move them first")


def _line_in_use(session: Session, row: Line) -> str | None:
    n = _count(session, Machine, factory_id=row.factory_id, line_id=row.id)
    return f"line {row.id!r} still has {n} machines" if n else None


LINES = Resource(
    table=Line,
    path="lines",
    example="line-a",
    create=LineCreate,
    update=LineUpdate,
    public=LinePublic,
    filters={"hall_id": Query(pattern=ID_REGEX, description="Only this hall")},
    check=_check_line,
    guard_update=_line_move,
    in_use=_line_in_use,
    docs={
        "list": Doc("List a factory's lines", "Lines of one factory, by id."),
        "create": Doc("Add a line", "Add a line to one of the factory's halls."),
        "get": Doc("One line", "A line by id."),
        "update": Doc(
            "Change a line", "Rename a line, or move it to another hall while no machine is on it."
        ),
        "delete": Doc("Delete an empty line", "Delete a line no machine is on."),
    },
)

# -- articles -------------------------------------------------------------------------


def _article_in_use(session: Session, row: Article) -> str | None:
    n = _count(session, Machine, factory_id=row.factory_id, article_id=row.id)
    return f"article {row.id!r} is on {n} machines" if n else None


ARTICLES = Resource(
    table=Article,
    path="articles",
    example="pc-7712",
    create=ArticleCreate,
    update=ArticleUpdate,
    public=ArticlePublic,
    nullable=frozenset({"family"}),
    in_use=_article_in_use,
    docs={
        "list": Doc(
            "List a factory's articles",
            "Articles (styles, recipe families, finishes) of one factory, by id.",
        ),
        "create": Doc("Add an article", "Add an article to a factory."),
        "get": Doc("One article", "An article by id."),
        "update": Doc("Change an article", "Change an article's name, family or parameters."),
        "delete": Doc("Delete an unused article", "Delete an article no machine runs."),
    },
)

# -- machines -------------------------------------------------------------------------


def _check_machine(session: Session, row: Machine) -> None:
    """422 unless the machine's hall, line (in that hall) and article exist."""
    factory_id = row.factory_id
    _check_hall(session, factory_id, row.hall_id)
    line = None if row.line_id is None else session.get(Line, (factory_id, row.line_id))
    if row.line_id is not None and line is None:
        raise invalid(f"no line {row.line_id!r} in factory {factory_id!r}")
    if line is not None and line.hall_id != row.hall_id:
        raise invalid(f"line {row.line_id!r} is in hall {line.hall_id!r}, not {row.hall_id!r}")
    if row.article_id is not None and session.get(Article, (factory_id, row.article_id)) is None:
        raise invalid(f"no article {row.article_id!r} in factory {factory_id!r}")


MACHINES = Resource(
    table=Machine,
    path="machines",
    example="l0001",
    create=MachineCreate,
    update=MachineUpdate,
    public=MachinePublic,
    filters={
        "hall_id": Query(pattern=ID_REGEX, description="Only this hall"),
        "line_id": Query(pattern=ID_REGEX, description="Only this line"),
        "machine_type": Query(max_length=32, description="Only this machine class"),
    },
    nullable=frozenset({"line_id", "vendor", "model", "article_id"}),
    check=_check_machine,
    docs={
        "list": Doc("List a factory's machines", "Registered machines of one factory, by id."),
        "create": Doc(
            "Register a machine",
            "Register a machine in one of the factory's halls.",
            name="create_machine_route",
        ),
        "get": Doc("One machine", "A machine by id."),
        "update": Doc(
            "Change a machine",
            "Move, reclassify or describe a machine (``params`` is replaced whole).",
        ),
        "delete": Doc(
            "Unregister a machine",
            "Remove a machine from the registry (its telemetry stays in InfluxDB).",
        ),
    },
)

router = APIRouter()
for _resource in (FACTORIES, HALLS, LINES, ARTICLES, MACHINES):
    router.include_router(crud_router(_resource))
