"""Query parameters every listing shares: ISO 8601 time ranges and pagination.

Times must carry a zone (``2026-01-05T06:00:00+06:00`` or ``…Z``): a naive time is
ambiguous across the cluster's time zones, so it is refused rather than guessed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Generic, TypeVar

from fastapi import Depends, Query, Request
from pydantic import AwareDatetime, BaseModel, Field

from api.context import AppContext, context
from api.problems import ProblemError

__all__ = ["Page", "PageParams", "TimeRange", "page_of", "page_params", "time_range"]

T = TypeVar("T")
DEFAULT_SPAN = timedelta(hours=24)
#: Times InfluxDB can hold are int64 nanoseconds: up to 2262; telemetry starts after 1970.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2262, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class TimeRange:
    """A half-open UTC range ``[start, end)``."""

    start: datetime
    end: datetime

    @property
    def start_ms(self) -> int:
        """Start in epoch milliseconds."""
        return int(self.start.timestamp() * 1000)

    @property
    def end_ms(self) -> int:
        """End in epoch milliseconds."""
        return int(self.end.timestamp() * 1000)


def time_range(
    ctx: Annotated[AppContext, Depends(context)],
    start: Annotated[
        AwareDatetime | None,
        Query(
            description="Range start, ISO 8601 with zone; default: end - 24 h",
            examples=["2026-01-05T06:00:00+06:00"],
        ),
    ] = None,
    end: Annotated[
        AwareDatetime | None,
        Query(
            description="Range end (exclusive), ISO 8601 with zone; default: now",
            examples=["2026-01-06T06:00:00+06:00"],
        ),
    ] = None,
) -> TimeRange:
    """FastAPI dependency: the requested range, checked for order and size (400 if not)."""
    try:
        end_utc = (end or datetime.now(UTC)).astimezone(UTC)
        start_utc = (start or end_utc - DEFAULT_SPAN).astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00+05:00 is before year 1 in UTC
        start_utc = end_utc = EARLIEST - timedelta(days=1)
    if not (start_utc >= EARLIEST and end_utc <= LATEST):
        raise ProblemError(400, "Bad time range", "times must lie between 1970 and 2262")
    if start_utc >= end_utc:
        raise ProblemError(400, "Bad time range", "start must be before end")
    limit = timedelta(days=ctx.settings.max_range_days)
    if end_utc - start_utc > limit:
        raise ProblemError(
            400, "Bad time range", f"a range may span at most {ctx.settings.max_range_days:g} days"
        )
    return TimeRange(start_utc, end_utc)


@dataclass(frozen=True)
class PageParams:
    """Offset pagination."""

    limit: int
    offset: int


def page_params(
    limit: Annotated[int, Query(ge=1, le=1000, description="Items per page")] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000, description="Items to skip")] = 0,
) -> PageParams:
    """FastAPI dependency: the requested page."""
    return PageParams(limit, offset)


class Page(BaseModel, Generic[T]):
    """One page of a listing; ``next`` is the URL of the following page, if any."""

    items: list[T]
    total: int = Field(description="Items in the whole listing")
    limit: int
    offset: int
    next: str | None = Field(None, description="URL of the next page")


def page_of(items: list[T], page: PageParams, request: Request, total: int) -> Page[T]:
    """Wrap one page of ``items`` (already cut) out of ``total``; link the next page."""
    following = page.offset + page.limit
    next_url = None
    if following < total:
        next_url = str(request.url.include_query_params(offset=following, limit=page.limit))
    return Page[T](items=items, total=total, limit=page.limit, offset=page.offset, next=next_url)
