"""One builder for the registry's admin CRUD routes: list, create, get, change, delete.

A :class:`Resource` describes a table: its bodies, its path, the filters of its listing,
the texts of its routes and the few checks that are its own. :func:`crud_router` gives
it five routes that behave alike (the item's key is ``{table}_id``, e.g. ``hall_id``):

- ``GET .../things``: a page of rows by id, filtered by query parameters (200);
- ``POST .../things``: a new row, 409 when its id is taken (201);
- ``GET .../things/{key}``: one row, 404 when missing (200);
- ``PATCH .../things/{key}``: the fields the body sets, ``null`` only where
  ``nullable`` (200);
- ``DELETE .../things/{key}``: 409 while ``in_use`` names what still uses the row (204).

A factory-scoped table (primary key ``factory_id`` + ``id``) lives under
``/factories/{factory_id}`` and answers 404 while its factory is missing. ``check``
answers 422 for a row naming what does not exist (after create or change),
``guard_update`` 409 for a change refused in the row's present state. Each route keeps
its own summary, description, operation name and documented problems (409 only where a
hook can raise it).

Example
-------
>>> from api.routes.registry_assets import LINES
>>> route = crud_router(LINES).routes[3]
>>> sorted(route.methods), route.path, route.name
(['PATCH'], '/factories/{factory_id}/lines/{line_id}', 'update_line')
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, NamedTuple

from fastapi import APIRouter, Path, Request, Response
from pydantic import BaseModel
from sqlalchemy.orm import Session

from api.params import Page
from api.routes.registry_common import (
    ID_REGEX,
    AdminDep,
    FactoryPath,
    PageDep,
    SessionDep,
    as_public,
    commit,
    conflict,
    get_factory,
    invalid,
    not_found,
    paged,
    problems,
    rows_by_id,
)

__all__ = ["Doc", "Resource", "crud_router"]

Operation = Literal["list", "create", "get", "update", "delete"]


class Doc(NamedTuple):
    """The OpenAPI text of one route; ``name`` replaces the default operation name."""

    summary: str
    description: str
    name: str | None = None


def _apply(row: Any, update: BaseModel, nullable: frozenset[str] = frozenset()) -> None:
    """Copy the fields a PATCH body set onto ``row``; ``null`` only where allowed (422)."""
    changes = update.model_dump(exclude_unset=True)
    if cleared := sorted(k for k, v in changes.items() if v is None and k not in nullable):
        raise invalid(f"{', '.join(cleared)} cannot be null")
    for name, value in changes.items():
        setattr(row, name, value)


@dataclass(frozen=True)
class Resource:
    """A registry table served by :func:`crud_router` (hooks get the session and the row)."""

    table: type[Any]  # its __tablename__ names it in messages: "no hall 'x' in factory 'f01'"
    path: str  # the collection's path segment
    example: str  # an example id
    create: type[BaseModel]
    update: type[BaseModel]
    public: type[BaseModel]
    docs: Mapping[Operation, Doc]
    scoped: bool = True  # keyed by (factory_id, id) under /factories/{factory_id}
    filters: Mapping[str, Any] = field(default_factory=dict)  # column -> Query(...)
    nullable: frozenset[str] = frozenset()  # PATCH may clear these
    # 422 unless what the new or changed row names exists:
    check: Callable[[Session, Any], None] | None = None
    # 409 for a change (the PATCH body) the row refuses in its present state:
    guard_update: Callable[[Session, Any, Any], None] | None = None
    # why the row cannot be deleted (409), or None:
    in_use: Callable[[Session, Any], str | None] | None = None
    stamp: Callable[[Request], dict[str, Any]] | None = None  # columns the server sets

    @property
    def what(self) -> str:
        """The row's kind in messages, e.g. ``hall``."""
        return str(self.table.__tablename__)

    @property
    def key(self) -> str:
        """The item's path parameter, e.g. ``hall_id``."""
        return f"{self.what}_id"

    def _pk(self, factory_id: str | None, object_id: str) -> Any:
        return (factory_id, object_id) if self.scoped else object_id

    def get(self, session: Session, factory_id: str | None, object_id: str) -> Any:
        """The row, or 404 (also while its factory is missing)."""
        if self.scoped:
            get_factory(session, factory_id)  # type: ignore[arg-type]
        row = session.get(self.table, self._pk(factory_id, object_id))
        if row is None:
            raise not_found(self.what, object_id, factory_id)
        return row

    def rows(self, session: Session, factory_id: str | None, **equal: Any) -> Sequence[Any]:
        """The rows (of the factory, 404 if missing) by id; ``None`` filters nothing."""
        if self.scoped:
            get_factory(session, factory_id)  # type: ignore[arg-type]
            equal["factory_id"] = factory_id
        return rows_by_id(session, self.table, **equal)

    def add(self, session: Session, factory_id: str | None, body: Any, **stamped: Any) -> Any:
        """Check and add a row (404 factory, 409 taken, 422 from ``check``); not committed."""
        if self.scoped:
            get_factory(session, factory_id)  # type: ignore[arg-type]
        if session.get(self.table, self._pk(factory_id, body.id)) is not None:
            where = f" in factory {factory_id!r}" if self.scoped else ""
            raise conflict(f"{self.what} {body.id!r} already exists{where}")
        scope = {"factory_id": factory_id} if self.scoped else {}
        row = self.table(**scope, **stamped, **body.model_dump())
        if self.check:
            self.check(session, row)
        session.add(row)
        return row

    def change(self, session: Session, factory_id: str | None, object_id: str, body: Any) -> Any:
        """Apply a PATCH body to the row (404, 409 from ``guard_update``, 422); not committed."""
        row = self.get(session, factory_id, object_id)
        if self.guard_update:
            self.guard_update(session, row, body)
        _apply(row, body, self.nullable)
        if self.check:
            with session.no_autoflush:  # the changed row must not reach the database unchecked
                self.check(session, row)
        return row

    def remove(self, session: Session, factory_id: str | None, object_id: str) -> None:
        """Delete the row unless ``in_use`` says what still uses it (409); not committed."""
        row = self.get(session, factory_id, object_id)
        if self.in_use and (detail := self.in_use(session, row)):
            raise conflict(detail)
        session.delete(row)

    def clash(self, object_id: str) -> str:
        """The 409 detail of a commit that a concurrent write made fail."""
        return f"{self.what} {object_id!r} clashes with the registry (changed meanwhile?)"


def _param(name: str, annotation: Any, default: Any = inspect.Parameter.empty) -> Any:
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation
    )


def _endpoint(res: Resource, run: Callable[..., Any], keyed: bool, *extra: Any) -> Any:
    """An endpoint taking the admin gate, a session, the path's ids and ``extra``.

    FastAPI reads the parameters from ``__signature__``, so the item's path parameter
    keeps its own name (``hall_id``); ``run(res, session, factory_id, object_id, …)``
    does the work.
    """
    params = [_param("_", AdminDep), _param("session", SessionDep)]
    if res.scoped:
        params.append(_param("factory_id", FactoryPath))
    if keyed:
        path = Path(pattern=ID_REGEX, examples=[res.example])
        params.append(_param(res.key, Annotated[str, path]))

    def endpoint(**values: Any) -> Any:
        del values["_"]
        object_id = values.pop(res.key) if keyed else None
        factory_id = values.pop("factory_id", None)
        return run(res, values.pop("session"), factory_id, object_id, **values)

    endpoint.__signature__ = inspect.Signature([*params, *extra])  # type: ignore[attr-defined]
    return endpoint


def _list(
    res: Resource,
    session: Session,
    factory_id: str | None,
    _: None,
    page: Any,
    request: Request,
    **eq: Any,
) -> Any:
    rows = res.rows(session, factory_id, **eq)
    return paged([as_public(res.public, row) for row in rows], page, request)


def _create(
    res: Resource, session: Session, factory_id: str | None, _: None, body: Any, request: Request
) -> Any:
    row = res.add(session, factory_id, body, **(res.stamp(request) if res.stamp else {}))
    commit(session, res.clash(body.id))
    return as_public(res.public, row)


def _get(res: Resource, session: Session, factory_id: str | None, object_id: str) -> Any:
    return as_public(res.public, res.get(session, factory_id, object_id))


def _update(
    res: Resource, session: Session, factory_id: str | None, object_id: str, body: Any
) -> Any:
    row = res.change(session, factory_id, object_id, body)
    commit(session, res.clash(object_id))
    return as_public(res.public, row)


def _delete(res: Resource, session: Session, factory_id: str | None, object_id: str) -> Response:
    res.remove(session, factory_id, object_id)
    commit(session, res.clash(object_id))
    return Response(status_code=204)


def crud_router(res: Resource) -> APIRouter:
    """The routes of ``res``: list, create, get, update and delete, in this order."""
    router = APIRouter()
    base = f"/factories/{{factory_id}}/{res.path}" if res.scoped else f"/{res.path}"
    item = f"{base}/{{{res.key}}}"
    found = (404,) if res.scoped else ()  # the factory in the path may be missing
    request = _param("request", Request)
    filters = [_param(n, Annotated[str | None, query], None) for n, query in res.filters.items()]

    def add(op: Operation, method: str, path: str, endpoint: Any, *codes: int, **kw: Any) -> None:
        doc = res.docs[op]
        name = doc.name or (f"list_{res.path}" if op == "list" else f"{op}_{res.what}")
        router.add_api_route(
            path,
            endpoint,
            methods=[method],
            responses=problems(*codes),
            summary=doc.summary,
            description=doc.description,
            name=name,
            **kw,
        )

    listing = _endpoint(res, _list, False, _param("page", PageDep), request, *filters)
    add("list", "GET", base, listing, *found, 422, response_model=Page[res.public])
    create = _endpoint(res, _create, False, _param("body", res.create), request)
    add(
        "create", "POST", base, create, *found, 409, 422, status_code=201, response_model=res.public
    )
    add("get", "GET", item, _endpoint(res, _get, True), 404, 422, response_model=res.public)
    update = _endpoint(res, _update, True, _param("body", res.update))
    guarded = (409,) if res.guard_update else ()
    add("update", "PATCH", item, update, 404, *guarded, 422, response_model=res.public)
    delete = _endpoint(res, _delete, True)
    in_use = (409,) if res.in_use else ()
    kw = {"status_code": 204, "response_class": Response, "response_model": None}
    add("delete", "DELETE", item, delete, 404, *in_use, 422, **kw)
    return router
