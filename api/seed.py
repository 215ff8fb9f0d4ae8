"""Fill the registry from a simulator scenario, and issue demo keys for ``millwatch up``.

:func:`seed_from_scenario` registers what the simulated gateways will publish: each
factory with its calendar, its halls, machines (hall climate sensors included) and the
articles it runs. It only adds what is missing, so a second call changes nothing and an
admin's later edits survive a restart. Articles get contract ids from their names
(``PES-HT`` -> ``pes-ht``); which machine runs which article changes while the
simulation runs, so machines are registered without one.

Example
-------
>>> from api.db import Database
>>> database = Database("sqlite://")
>>> database.create_all()
>>> with database.session() as session:
...     seed_from_scenario(session, "default", "c1")
...     session.scalar(sa.select(sa.func.count()).select_from(Machine))
86
>>> with database.session() as session:
...     sorted(demo_keys(session))
['admin', 'cluster_operator', 'factory_engineer']
>>> with database.session() as session:
...     logins = gateway_logins(session, ["f01"])
>>> list(logins), len(logins["f01.gw1"]) > 20
(['f01.gw1'], True)
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session

from api.auth import Role, issue_key
from api.models import Article, Factory, GatewayCredential, Hall, Machine
from api.mosquitto import gateway_username, generate_password, hash_password
from simulators.scenario import FactoryConfig, Scenario, load_scenario

__all__ = ["article_id", "demo_keys", "gateway_logins", "seed_from_scenario"]

_HALL_NAMES = {"weave": "Weaving", "knit": "Knitting", "wet": "Wet processing"}
_HALL_NAMES["finish"] = "Finishing"


def article_id(name: str) -> str:
    """A contract id for an article name.

    >>> article_id("REACTIVE-DARK"), article_id("DN.3118_b")
    ('reactive-dark', 'dn-3118-b')
    """
    return re.sub(r"[^a-z0-9-]", "-", name.lower())[:32]


def _hall_name(hall: str) -> str:
    stem = hall.rstrip("0123456789")
    return f"{_HALL_NAMES.get(stem, stem.title())} {hall[len(stem) :]}".strip()


def _articles(scenario: Scenario, factory: FactoryConfig) -> list[Article]:
    types = sorted({g.machine_type for g in factory.layout()} - {"hall_env"})
    return [
        Article(
            factory_id=factory.id,
            id=article_id(a.name),
            name=a.name,
            family=machine_type,
            params=a.model_dump(exclude={"name", "machine_type"}, exclude_none=True),
        )
        for machine_type in types
        for a in scenario.articles(factory.id, machine_type)
    ]


def _factory_rows(scenario: Scenario, factory: FactoryConfig, cluster: str) -> list[object]:
    name = f"{factory.id} ({factory.archetype.replace('_', ' ')})"
    rows: list[object] = [
        Factory(
            id=factory.id,
            cluster=cluster,
            name=name,
            timezone=factory.timezone,
            shifts=factory.shifts,
            shift_start=factory.shift_start,
        )
    ]
    groups = factory.layout()
    for hall in dict.fromkeys(g.hall for g in groups):
        rows.append(Hall(factory_id=factory.id, id=hall, name=_hall_name(hall)))
    for group in groups:
        rows += [
            Machine(
                factory_id=factory.id, id=m, hall_id=group.hall, machine_type=group.machine_type
            )
            for m in group.machine_ids
        ]
    return rows + _articles(scenario, factory)


def _key(row: object) -> tuple[object, ...]:
    identity = sa.inspect(type(row)).primary_key_from_instance(row)  # type: ignore[union-attr]
    return (type(row), *identity)


def seed_from_scenario(session: Session, scenario_name_or_path: str | Path, cluster: str) -> None:
    """Register a scenario's factories, halls, machines and articles; commit.

    Rows already present are left as they are (idempotent).
    """
    scenario = load_scenario(scenario_name_or_path)
    for factory in scenario.factories:
        rows = {_key(row): row for row in _factory_rows(scenario, factory, cluster)}
        for key, row in rows.items():
            if session.get(type(row), key[1:]) is None:
                session.add(row)
        session.flush()  # halls before the machines of the next factory reference them
    session.commit()


def demo_keys(session: Session) -> dict[str, str]:
    """Issue one new key per role (the engineer's for the first factory); commit.

    Returns tokens by role name; they exist only in this result. Each call issues new
    keys. Without any factory there is no engineer key.
    """
    first = session.scalar(sa.select(Factory.id).order_by(Factory.id).limit(1))
    tokens: dict[str, str] = {}
    for role in Role:
        factory_id = first if role is Role.FACTORY_ENGINEER else None
        if role is Role.FACTORY_ENGINEER and factory_id is None:
            continue
        _, tokens[role.value] = issue_key(session, role, factory_id, label=f"demo {role.value}")
    session.commit()
    return tokens


def gateway_logins(
    session: Session, factories: Iterable[str], gateway: str = "gw1"
) -> dict[str, str]:
    """Give ``gateway`` of each factory a fresh broker password; commit.

    A missing login is issued and an active one rotated, as the registry's gateway
    routes do. A revoked login stays revoked and is left out of the result. Returns
    passwords by broker user name (``f01.gw1``); they exist only in this result.
    """
    passwords: dict[str, str] = {}
    for factory in factories:
        user = gateway_username(factory, gateway)
        row = session.get(GatewayCredential, user)
        if row is not None and row.revoked_at is not None:
            continue
        password = generate_password()
        line = hash_password(user, password)
        if row is None:
            row = GatewayCredential(id=user, factory_id=factory, passwd_line=line)
            session.add(row)
        row.passwd_line, row.created_at = line, datetime.now(UTC)
        passwords[user] = password
    session.commit()
    return passwords
