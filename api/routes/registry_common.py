"""What the registry's admin routers share: admin gate, session, ids, pages, 404/409/422.

Example
-------
>>> problem = not_found("machine", "l0001", "f01")
>>> problem.status, problem.detail
(404, "no machine 'l0001' in factory 'f01'")
>>> from api.models import Hall
>>> from api.routes.registry_schemas import HallPublic
>>> as_public(HallPublic, Hall(factory_id="f01", id="weave1", name="")).model_dump()
{'id': 'weave1', 'name': '', 'factory_id': 'f01'}
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Final, TypeVar

import sqlalchemy as sa
from fastapi import Depends, Path, Request
from pydantic import BaseModel
from sqlalchemy.orm import Session

from api.auth import Principal, Role, require
from api.context import AppContext, context
from api.models import Factory
from api.params import Page, PageParams, page_of, page_params
from api.problems import PROBLEM_RESPONSES, ProblemError

__all__ = [
    "ID_REGEX",
    "AdminDep",
    "FactoryPath",
    "PageDep",
    "SessionDep",
    "as_public",
    "commit",
    "conflict",
    "get_factory",
    "invalid",
    "not_found",
    "paged",
    "problems",
    "rows_by_id",
    "utc",
]

#: The data contract's id pattern (millwatch.contract.ID_PATTERN), anchored.
ID_REGEX: Final = r"^[a-z0-9-]{1,32}$"

AdminDep = Annotated[Principal, Depends(require(Role.ADMIN))]


def db_session(ctx: Annotated[AppContext, Depends(context)]) -> Iterator[Session]:
    """FastAPI dependency: one registry session per request (routes commit)."""
    with ctx.database.session() as session:
        yield session


SessionDep = Annotated[Session, Depends(db_session)]
FactoryPath = Annotated[str, Path(pattern=ID_REGEX, examples=["f01"])]
PageDep = Annotated[PageParams, Depends(page_params)]


def problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` entry of a route answering ``codes`` (401/403 always)."""
    return {k: PROBLEM_RESPONSES[k] for k in sorted({401, 403, *codes})}


def not_found(what: str, object_id: str, factory_id: str | None = None) -> ProblemError:
    """404 for a missing ``what`` (in ``factory_id``)."""
    where = f" in factory {factory_id!r}" if factory_id else ""
    return ProblemError(404, "Not found", f"no {what} {object_id!r}{where}")


def conflict(detail: str) -> ProblemError:
    """409: the request clashes with what the registry holds."""
    return ProblemError(409, "Conflict", detail)


def invalid(detail: str) -> ProblemError:
    """422 for a body that is well-formed but names what does not exist."""
    return ProblemError(422, "Invalid parameters", detail)


def commit(session: Session, detail: str) -> None:
    """Commit; a constraint broken meanwhile (a concurrent write) is a 409 with ``detail``."""
    try:
        session.commit()
    except sa.exc.IntegrityError as exc:
        session.rollback()
        raise conflict(detail) from exc


def get_factory(session: Session, factory_id: str) -> Factory:
    """The factory, or a 404 problem."""
    factory = session.get(Factory, factory_id)
    if factory is None:
        raise not_found("factory", factory_id)
    return factory


def rows_by_id(session: Session, table: Any, **equal: Any) -> Sequence[Any]:
    """Rows of ``table`` by id whose columns equal the values; ``None`` filters nothing."""
    query = sa.select(table).order_by(table.id)
    for column, value in equal.items():
        if value is not None:
            query = query.where(getattr(table, column) == value)
    return session.scalars(query).all()


def utc(moment: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes; every stored time is UTC."""
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


def as_public(model: type[M], row: Any) -> M:
    """``model`` filled from the attributes of ``row`` that bear its field names."""
    return model.model_validate({name: getattr(row, name) for name in model.model_fields})


def paged(items: list[T], params: PageParams, request: Request) -> Page[T]:
    """The requested page of the whole listing ``items``."""
    cut = items[params.offset : params.offset + params.limit]
    return page_of(cut, params, request, len(items))
