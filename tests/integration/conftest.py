"""Fixtures that start real Mosquitto and InfluxDB servers (see millwatch.servers)."""

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from millwatch.servers import InfluxDB, Mosquitto

from .apirig import ApiRig, build_rig

_HERE = Path(__file__).parent

Query = Callable[[str, str], list[dict[str, Any]]]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # This hook sees every collected test, not only the ones below this directory.
    for item in items:
        if item.path.is_relative_to(_HERE):
            item.add_marker(pytest.mark.integration)


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    """A fresh broker per test: queued sessions must not leak between tests."""
    with Mosquitto(tmp_path / "mosquitto") as server:
        yield server


@pytest.fixture(scope="session")
def influxdb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxDB]:
    """One server per session because influxd starts slowly; use a database per test."""
    with InfluxDB(tmp_path_factory.mktemp("influxdb")) as server:
        yield server


@pytest.fixture
def influx_query(influxdb: InfluxDB) -> Iterator[Query]:
    """Return ``query(db, q)``: run InfluxQL and get rows as dicts.

    Rows of all series are combined; each row also carries its series' tags. Times are
    integer nanoseconds since the epoch, as written in line protocol.
    """
    with httpx.Client(base_url=influxdb.url, timeout=10, trust_env=False) as client:

        def query(db: str, q: str) -> list[dict[str, Any]]:
            response = client.get("/query", params={"db": db, "q": q, "epoch": "ns"})
            if response.is_error:
                raise AssertionError(f"InfluxDB {response.status_code} for {q!r}: {response.text}")
            rows: list[dict[str, Any]] = []
            for result in response.json()["results"]:
                if "error" in result:
                    raise AssertionError(f"InfluxQL error for {q!r}: {result['error']}")
                for series in result.get("series", []):
                    tags = series.get("tags", {})
                    for values in series["values"]:
                        rows.append({**dict(zip(series["columns"], values, strict=True)), **tags})
            return rows

        yield query


@pytest.fixture(scope="session")
def api_rig(influxdb: InfluxDB) -> Iterator[ApiRig]:
    """Three simulated knitting mills with analytics run over them, behind the API."""
    rig = build_rig(influxdb.url)
    yield rig
    rig.store.close()
