"""The shop-floor status page, rendered by headless Chromium against the real API.

The API runs under uvicorn on a loopback port over the filled InfluxDB; Chromium loads
the page with an engineer's key in the URL fragment, runs its script, and the rendered
DOM and a screenshot are checked.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from api.app import create_app
from api.settings import ApiSettings
from millwatch.influxql import InfluxQL
from millwatch.servers import free_port

from .apirig import ApiRig


@pytest.fixture(scope="module")
def served(api_rig: ApiRig) -> Iterator[str]:
    """The API over the rig under uvicorn; yields its base URL."""
    influx = InfluxQL(api_rig.influx_url)
    # The history ends when the rig is built: machines stay "online" for the session.
    options = ApiSettings(
        registry_url="sqlite://", influx_url=api_rig.influx_url, offline_after_s=86_400
    )
    app = create_app(options, database=api_rig.database, influx=influx)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{url}/health", timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.1)
    yield url
    server.should_exit = True
    thread.join(timeout=10)
    influx.close()


def _chromium(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("chromium")
    assert binary, "chromium is missing: run scripts/setup (apt-get install chromium)"
    command = [
        binary,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--virtual-time-budget=15000",
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)


def test_status_page_shows_every_machine_its_state_and_open_alarms(
    api_rig: ApiRig, served: str, tmp_path: Path
) -> None:
    page = f"{served}/status#key={api_rig.tokens['ap1']}"
    dom = _chromium("--dump-dom", page).stdout
    assert 'data-loaded="true"' in dom, dom[-2000:]
    tiles = re.findall(r'<div class="tile (\w+)" data-machine="([a-z0-9-]+)">', dom)
    assert sorted(m for _, m in tiles) == sorted(api_rig.machines["ap1"])
    states = {m: s for s, m in tiles}
    assert set(states.values()) <= {
        "RUN",
        "STOP_PROCESS",
        "BREAKDOWN",
        "SETUP",
        "WAIT",
        "IDLE_READY",
        "PLANNED_MAINT",
        "OFF_NOPLAN",
        "OFFLINE",
        "ONLINE",
    }
    assert states["env-knit1"] == "ONLINE"  # a climate sensor has no state, but it reports
    assert "RUN" in states.values()
    assert re.search(r'data-machine="k0003">.*?class="alarm">1 alarm<', dom), "open alarm"
    assert re.search(r'class="eff">shift [AB]: \d+\.\d %<', dom), "shift efficiency"
    assert "ap2" not in dom and "k9999" not in dom

    shot = tmp_path / "status.png"
    _chromium(f"--screenshot={shot}", "--window-size=1280,860", page)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000


def test_status_page_without_a_key_asks_for_one(served: str) -> None:
    dom = _chromium("--dump-dom", f"{served}/status").stdout
    assert '<form id="login">' in dom and "data-machine" not in dom
