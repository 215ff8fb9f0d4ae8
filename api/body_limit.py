"""Refuse request bodies larger than the API ever needs (``413``), before reading them.

A declared ``Content-Length`` over the limit is answered at once; a chunked body is read
until it passes the limit and then refused, so no client can make the server buffer more
than the limit.
"""

from __future__ import annotations

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.problems import PROBLEM_TYPE, ProblemError

__all__ = ["BodyLimit"]


def _too_large(limit: int) -> ProblemError:
    return ProblemError(413, "Request too large", f"request bodies may hold at most {limit} bytes")


class BodyLimit:
    """ASGI middleware: at most ``max_bytes`` of request body."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer 413 for a body over the limit, else pass the request on, counted."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._refuse(scope, receive, send)
            return
        # Bodies are small: read one up to the limit, then hand it to the app in one piece.
        body, more = bytearray(), True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                await self.app(scope, _replay_then(message, receive), send)
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
        request = {"type": "http.request", "body": bytes(body), "more_body": False}
        await self.app(scope, _replay_then(request, receive), send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = _too_large(self.max_bytes).body(scope.get("path"))
        response = JSONResponse(body, status_code=413, media_type=PROBLEM_TYPE)
        await response(scope, receive, send)


def _replay_then(first: Message, receive: Receive) -> Receive:
    """A ``receive`` that answers ``first`` once, then the real ``receive``."""
    pending = [first]

    async def replay() -> Message:
        return pending.pop() if pending else await receive()

    return replay
