"""Seeding the registry from a simulator scenario, and the demo keys."""

import sqlalchemy as sa

from api.auth import authenticate
from api.db import Database
from api.models import ApiKey, Article, Factory, Hall, Machine
from api.seed import demo_keys, seed_from_scenario
from simulators.scenario import load_scenario

TABLES = (Factory, Hall, Machine, Article)


def _snapshot(database: Database) -> dict[str, list[tuple[object, ...]]]:
    with database.session() as session:
        return {
            table.__tablename__: sorted(
                tuple(row) for row in session.execute(sa.select(table.__table__)).all()
            )
            for table in TABLES
        }


def test_seed_is_complete_and_idempotent() -> None:
    scenario = load_scenario("default")
    database = Database("sqlite://")
    database.create_all()
    with database.session() as session:
        seed_from_scenario(session, "default", "c1")
    first = _snapshot(database)
    assert len(first["machine"]) == scenario.machine_count()
    with database.session() as session:
        for factory in scenario.factories:
            row = session.get(Factory, factory.id)
            assert row is not None
            assert (row.cluster, row.timezone, row.shifts, row.shift_start) == (
                "c1",
                factory.timezone,
                factory.shifts,
                factory.shift_start,
            )
            for group in factory.layout():
                assert session.get(Hall, (factory.id, group.hall)) is not None
                for machine_id in group.machine_ids:
                    machine = session.get(Machine, (factory.id, machine_id))
                    assert machine is not None
                    assert (machine.hall_id, machine.machine_type) == (
                        group.hall,
                        group.machine_type,
                    )
        f03 = session.scalars(sa.select(Article.id).where(Article.factory_id == "f03")).all()
        assert sorted(f03) == ["dry-knit", "heatset-pes", "pes-ht", "reactive-dark"]
        # An admin's edit survives a second seeding.
        session.get(Factory, "f01").name = "Renamed"  # type: ignore[union-attr]
        session.commit()
    with database.session() as session:
        seed_from_scenario(session, "default", "c1")
        assert session.get(Factory, "f01").name == "Renamed"  # type: ignore[union-attr]
    second = _snapshot(database)
    assert second["machine"] == first["machine"]
    assert second["hall"] == first["hall"]
    assert second["article"] == first["article"]


def test_demo_keys_one_per_role() -> None:
    database = Database("sqlite://")
    database.create_all()
    with database.session() as session:
        assert sorted(demo_keys(session)) == ["admin", "cluster_operator"]
        seed_from_scenario(session, "default", "c1")
        tokens = demo_keys(session)
        principals = {role: authenticate(session, token) for role, token in tokens.items()}
        assert session.scalar(sa.select(sa.func.count()).select_from(ApiKey)) == 5
    assert {role: p.role.value for role, p in principals.items() if p} == {
        "admin": "admin",
        "cluster_operator": "cluster_operator",
        "factory_engineer": "factory_engineer",
    }
    assert principals["factory_engineer"].factory_id == "f01"  # type: ignore[union-attr]
