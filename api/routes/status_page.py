"""The read-only shop-floor status page, for sites without Grafana.

The page itself holds no data and needs no key: its script asks the API with the
engineer's key (typed in, or handed over in the URL fragment ``#key=…``, which browsers
never send to a server), so it sees exactly what that key may see.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

router = APIRouter()


@cache
def _page() -> str:
    return resources.files("api").joinpath("static/status.html").read_text(encoding="utf-8")


@router.get("/status", response_class=HTMLResponse, include_in_schema=False)
def status_page() -> HTMLResponse:
    """Machine tiles coloured by state, stop reasons, shift efficiency, open alarms."""
    return HTMLResponse(
        _page(),
        headers={
            "Cache-Control": "no-store",
            "Content-Security-Policy": "default-src 'self'; script-src 'unsafe-inline'; "
            "style-src 'unsafe-inline'; connect-src 'self'",
            "Referrer-Policy": "no-referrer",
        },
    )
