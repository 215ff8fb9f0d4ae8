"""A cluster behind the API: real InfluxDB filled by the simulator, analytics run over it.

Three knitting mills (the default scenario's f02 under the ids ap1, ap2, ap3, each with
its own seed) get two hours of history ending now, as ingest stores it; one analytics
pass computes downsampled tables, shift KPIs, anomaly scores and the cluster roll-ups.
Two alarms are stored in ap1 with the analytics service's own point format, so alarm
endpoints have fixed objects to work on. The registry is filled from the fleets.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from fastapi.testclient import TestClient

from analytics.points import alarm_line
from analytics.service import AnalyticsService
from analytics.settings import AnalyticsSettings
from analytics.store import AnalyticsStore
from api.app import create_app
from api.auth import Role, issue_key
from api.db import Database
from api.models import Factory, Hall, Machine
from api.settings import ApiSettings
from millwatch.contract import factory_database, now_ms
from millwatch.site import FactorySite
from simulators.fleet import Fleet
from simulators.scenario import load_scenario

from .simfill import fill

FACTORIES = ("ap1", "ap2", "ap3")
SOURCE = "f02"
HOURS = 2
ONLY_AP2 = "k9999"


@dataclass
class ApiRig:
    """The filled cluster, the app over it and one key per role (and per factory)."""

    store: AnalyticsStore
    database: Database
    influx_url: str
    start_ms: int
    end_ms: int
    machines: dict[str, list[str]]
    fleets: dict[str, Fleet]
    tokens: dict[str, str] = field(default_factory=dict)
    alarm_ids: list[str] = field(default_factory=list)
    other_alarm_ids: list[str] = field(default_factory=list)

    @contextmanager
    def client(self, **settings: object) -> Iterator[TestClient]:
        """A TestClient of an app over the rig (settings override the defaults)."""
        # The history ends when the rig is built: machines stay "online" for the session.
        options = {
            "registry_url": "sqlite://",
            "influx_url": self.influx_url,
            "offline_after_s": 86_400,
            **settings,
        }
        app = create_app(ApiSettings(**options), database=self.database)
        with TestClient(app) as client:
            yield client

    def fresh_registry(self) -> tuple[Database, dict[str, str]]:
        """A registry of the same assets with its own keys, for tests that change it."""
        database = Database("sqlite://")
        database.create_all()
        _register(database, self.fleets)
        with database.session() as session:
            tokens = {f: issue_key(session, Role.FACTORY_ENGINEER, f)[1] for f in FACTORIES}
            tokens["cluster_operator"] = issue_key(session, Role.CLUSTER_OPERATOR)[1]
            tokens["admin"] = issue_key(session, Role.ADMIN)[1]
            session.commit()
        return database, tokens

    def headers(self, who: str) -> dict[str, str]:
        """Authorization header of ``who``: a factory id (its engineer) or a role name."""
        return {"Authorization": f"Bearer {self.tokens[who]}"}


def _register(database: Database, fleets: dict[str, Fleet]) -> None:
    scenario = load_scenario("default")
    site = next(f for f in scenario.factories if f.id == SOURCE)
    with database.session() as session:
        for factory, fleet in fleets.items():
            session.add(
                Factory(
                    id=factory,
                    cluster="c1",
                    name=f"Knitting mill {factory}",
                    timezone=site.timezone,
                    shifts=site.shifts,
                    shift_start=site.shift_start,
                )
            )
            halls = {m.hall for m in fleet.machines}
            session.add_all(Hall(factory_id=factory, id=h, name=h) for h in sorted(halls))
            for group in fleet.groups:
                session.add_all(
                    Machine(
                        factory_id=factory,
                        id=m.machine,
                        hall_id=m.hall,
                        machine_type=group.machine_type,
                        vendor="Mayer & Cie",
                        params={"gauge": 28},
                    )
                    for m in group.machines
                )
        # A machine only ap2 has: other tenants must not learn that it exists.
        session.add(
            Machine(factory_id="ap2", id=ONLY_AP2, hall_id="knit1", machine_type="knit_circular")
        )
        session.commit()


def _alarms(store: AnalyticsStore, start_ms: int, factory: str) -> list[str]:
    """One open machine alarm and one closed hall alarm in ``factory``; their API ids."""
    machine = SimpleNamespace(
        machine="k0003",
        machine_type="knit_circular",
        kind="process",
        signal="speed_rpm",
        peak_score=0.97,
        z=6.5,
        baseline=30.0,
        detector="robust_z",
        end_ms=None,
        start_ms=start_ms + 3_600_000,
    )
    hall = SimpleNamespace(
        machine=None,
        machines=("k0001", "k0002", "k0004"),
        machine_type="knit_circular",
        kind="hall",
        signal="temp_c",
        peak_score=0.9,
        z=4.0,
        baseline=27.0,
        detector="hall",
        end_ms=start_ms + 4_200_000,
        start_ms=start_ms + 3_000_000,
    )
    halls = {"k0003": "knit1", "k0001": "knit1"}
    tags = {"cluster": "c1", "factory": factory}
    store.write(factory_database(factory), [alarm_line(a, halls, tags) for a in (machine, hall)])
    return [
        f"{machine.start_ms}.knit_circular.k0003.process",
        f"{hall.start_ms}.knit_circular.knit1.hall",
    ]


def build_rig(influx_url: str) -> ApiRig:
    """Fill InfluxDB, run analytics once, register the fleets, issue keys."""
    store = AnalyticsStore(influx_url)
    end_ms = now_ms() // 60_000 * 60_000
    start_ms = end_ms - HOURS * 3_600_000
    fleets = {}
    for seed, factory in enumerate(FACTORIES, start=1):
        fill(store, SOURCE, start_ms, HOURS * 3600, seed=seed, address_factory=factory)
        fleets[factory] = Fleet(load_scenario("default"), SOURCE, address_factory=factory)
    scenario_site = next(f for f in load_scenario("default").factories if f.id == SOURCE)
    sites = [
        FactorySite(
            id=f,
            timezone=scenario_site.timezone,
            shifts=scenario_site.shifts,
            shift_start=scenario_site.shift_start,
        )
        for f in FACTORIES
    ]
    settings = AnalyticsSettings(
        influx_url=influx_url, train_h=1, min_train_h=1, kpi_horizon_h=HOURS + 1, settle_s=0
    )
    AnalyticsService(settings, sites, store=store, clock=lambda: end_ms).run_pass()
    database = Database("sqlite://")
    database.create_all()
    _register(database, fleets)
    rig = ApiRig(
        store=store,
        database=database,
        influx_url=influx_url,
        start_ms=start_ms,
        end_ms=end_ms,
        machines={f: [m.machine for m in fleet.machines] for f, fleet in fleets.items()},
        fleets=fleets,
    )
    with database.session() as session:
        for factory in FACTORIES:
            rig.tokens[factory] = issue_key(session, Role.FACTORY_ENGINEER, factory)[1]
        rig.tokens["cluster_operator"] = issue_key(session, Role.CLUSTER_OPERATOR)[1]
        rig.tokens["admin"] = issue_key(session, Role.ADMIN)[1]
        revoked, rig.tokens["revoked"] = issue_key(session, Role.FACTORY_ENGINEER, "ap1")
        revoked.revoked_at = datetime.now(UTC)
        rig.tokens["expired"] = issue_key(
            session, Role.FACTORY_ENGINEER, "ap1", expires_at=datetime.now(UTC) - timedelta(1)
        )[1]
        session.commit()
    rig.alarm_ids = _alarms(store, start_ms, "ap1")
    # ap2's alarms start a minute later: an id of ap1's must not find them, and vice versa.
    rig.other_alarm_ids = _alarms(store, start_ms + 60_000, "ap2")
    return rig
