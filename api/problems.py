"""Errors as ``application/problem+json`` (RFC 9457), the same shape from every path.

Handlers turn FastAPI's own errors (unknown route, validation) and :class:`ProblemError`
into problem documents. A server error says only that it happened and its request id:
the exception stays in the log, where no other tenant can read it.

Example
-------
>>> problem = ProblemError(404, "Not found", "no machine 'l9' in your factory")
>>> problem.body()["status"], problem.body()["type"]
(404, 'about:blank')
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from millwatch.influxql import QueryError

__all__ = ["PROBLEM_RESPONSES", "Problem", "ProblemError", "install_problem_handlers"]

log = logging.getLogger("millwatch.api")
PROBLEM_TYPE = "application/problem+json"


class Problem(BaseModel):
    """An RFC 9457 problem document."""

    type: str = Field("about:blank", examples=["about:blank"])
    title: str = Field(examples=["Not found"])
    status: int = Field(examples=[404])
    detail: str | None = Field(None, examples=["no machine 'l0999' in your factory"])
    instance: str | None = Field(None, examples=["/v1/machines/l0999"])
    errors: list[dict[str, Any]] | None = Field(
        None, description="Per-parameter problems of a request that failed validation."
    )


#: The ``responses`` entry every route shares, so the schema documents the problems.
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem, "content": {PROBLEM_TYPE: {}}, "description": text}
    for code, text in (
        (400, "Bad request (e.g. inverted or too large time range)"),
        (401, "Missing, unknown, revoked or expired credential"),
        (403, "The credential's role may not use this endpoint"),
        (404, "Not found (also: belongs to another tenant)"),
        (409, "Conflicts with the registry's current state (duplicate id, still in use)"),
        (413, "Request body too large"),
        (422, "Invalid parameters"),
        (429, "Too many requests for this key, or too many invalid keys (see Retry-After)"),
        (503, "InfluxDB or the registry is unavailable"),
    )
}


class ProblemError(Exception):
    """An error the client can act on, answered as a problem document."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail or title)
        self.status, self.title, self.detail, self.headers = status, title, detail, headers

    def body(self, instance: str | None = None) -> dict[str, Any]:
        """The problem document."""
        return Problem(
            title=self.title, status=self.status, detail=self.detail, instance=instance
        ).model_dump(exclude_none=True)


def problem_response(problem: ProblemError, request: Request) -> JSONResponse:
    """``problem`` as a response with the problem media type."""
    return JSONResponse(
        problem.body(request.url.path),
        status_code=problem.status,
        media_type=PROBLEM_TYPE,
        headers=problem.headers,
    )


def install_problem_handlers(app: FastAPI) -> None:
    """Answer every error of ``app`` as a problem document."""

    @app.exception_handler(ProblemError)
    async def _api_problem(request: Request, exc: ProblemError) -> JSONResponse:
        return problem_response(exc, request)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        title = {404: "Not found", 405: "Method not allowed"}.get(exc.status_code, "HTTP error")
        detail = None if exc.detail in (None, title, "Not Found") else str(exc.detail)
        return problem_response(ProblemError(exc.status_code, title, detail, exc.headers), request)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"location": ".".join(str(p) for p in e.get("loc", ())), "message": e.get("msg", "")}
            for e in exc.errors()
        ]
        problem = ProblemError(
            422, "Invalid parameters", "; ".join(f"{e['location']}: {e['message']}" for e in errors)
        )
        body = problem.body(request.url.path) | {"errors": errors}
        return JSONResponse(body, status_code=422, media_type=PROBLEM_TYPE)

    @app.exception_handler(QueryError)
    async def _influx(request: Request, exc: QueryError) -> JSONResponse:
        log.warning("event=influx_error path=%s error=%s", request.url.path, exc)
        problem = ProblemError(503, "InfluxDB unavailable", "a query to InfluxDB failed; retry")
        return problem_response(problem, request)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        request_id = uuid.uuid4().hex[:12]
        log.error(
            "event=server_error request_id=%s path=%s", request_id, request.url.path, exc_info=exc
        )
        problem = ProblemError(500, "Internal server error", f"request id {request_id}")
        return problem_response(problem, request)
