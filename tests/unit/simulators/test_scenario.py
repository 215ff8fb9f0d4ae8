from __future__ import annotations

from collections import Counter
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from millwatch.contract import check_id
from simulators.scenario import (
    FAULT_TYPES,
    HALL_RULES,
    Scenario,
    ScenarioError,
    available_scenarios,
    load_scenario,
    parse_scenario,
)

BASE = """
name = "t"
cluster = "c1"
seed = 1
[[factories]]
id = "f1"
archetype = "weaving_airjet"
timezone = "Asia/Dhaka"
"""


def with_factory(**keys: str) -> str:
    return BASE + "".join(f"{k} = {v}\n" for k, v in keys.items())


def with_fault(body: str) -> str:
    return BASE + "[[faults]]\n" + body


@pytest.fixture(scope="module", params=["default", "large"])
def packaged(request: pytest.FixtureRequest) -> Scenario:
    return load_scenario(request.param)


def test_packaged_scenarios_are_listed() -> None:
    assert available_scenarios() == ["default", "large"]


def test_layouts_are_unique_valid_and_complete(packaged: Scenario) -> None:
    for factory in packaged.factories:
        groups = packaged.layout(factory.id)
        ids = [m for g in groups for m in g.machine_ids]
        assert len(ids) == len(set(ids)), factory.id
        for group in groups:
            check_id(group.hall, "hall")
            for machine in group.machine_ids:
                check_id(machine, "machine")
            if group.machine_type == "hall_env":
                assert group.machine_ids == [f"env-{group.hall}"]
            else:
                assert len(group.machine_ids) <= HALL_RULES[group.machine_type].per_hall
        per_type = Counter()
        for g in groups:
            per_type[g.machine_type] += len(g.machine_ids)
        assert {t: n for t, n in per_type.items() if t != "hall_env"} == factory.counts()
        climate_halls = {
            g.hall
            for g in groups
            if g.machine_type != "hall_env" and HALL_RULES[g.machine_type].climate_sensor
        }
        assert {g.hall for g in groups if g.machine_type == "hall_env"} == climate_halls
        assert packaged.calendar(factory.id).timezone == factory.timezone


def test_default_is_small_and_plans_every_fault_type_weekly() -> None:
    s = load_scenario("default")
    assert len(s.factories) == 3 and 60 <= s.machine_count() <= 120
    expected = s.expected_faults_per_week()
    assert set(expected) == set(FAULT_TYPES)
    assert min(expected.values()) >= 1.5


def test_large_is_a_benchmark_cluster() -> None:
    s = load_scenario("large")
    assert len(s.factories) == 10 and s.machine_count() >= 1500
    assert {f.archetype for f in s.factories} == {
        "weaving_airjet",
        "weaving_rapier",
        "knitting",
        "dyehouse",
        "composite",
    }
    assert set(s.expected_faults_per_week()) == set(FAULT_TYPES)


def test_default_mill_calendar_has_friday_off() -> None:
    cal = load_scenario("default").calendar("f01")
    friday_noon = datetime(2026, 1, 9, 12, tzinfo=ZoneInfo("Asia/Dhaka")).timestamp() * 1000
    assert not cal.state_at(int(friday_noon)).planned


def test_machines_override_replaces_only_the_listed_types() -> None:
    s = parse_scenario(BASE.replace("weaving_airjet", "dyehouse") + "machines = {dye_jet = 7}\n")
    assert s.factory("f1").counts() == {"dye_jet": 7, "stenter": 2}
    s = parse_scenario(with_factory(machines="{loom_airjet = 100}"))
    groups = s.layout("f1")
    looms = [g for g in groups if g.machine_type == "loom_airjet"]
    assert [(g.hall, len(g.machine_ids)) for g in looms] == [
        ("weave1", 34),
        ("weave2", 33),
        ("weave3", 33),
    ]
    ids = [m for g in looms for m in g.machine_ids]
    assert ids == [f"l{i:04d}" for i in range(1, 101)]
    assert s.machine_count("f1") == 103


def test_override_can_add_a_type_and_halls_number_on() -> None:
    text = with_factory(machines="{loom_rapier = 50, knit_circular = 0}")
    text = text.replace("weaving_airjet", "composite")
    groups = parse_scenario(text).layout("f1")
    assert [(g.hall, g.machine_type, g.machine_ids[0]) for g in groups] == [
        ("weave1", "loom_rapier", "r0001"),
        ("weave1", "hall_env", "env-weave1"),
        ("weave2", "loom_rapier", "r0026"),
        ("weave2", "hall_env", "env-weave2"),
        ("wet1", "dye_jet", "d0001"),
        ("finish1", "stenter", "s0001"),
    ]


def test_scale_rounds_half_up_and_keeps_one_machine() -> None:
    dyehouse = BASE.replace("weaving_airjet", "dyehouse")
    assert parse_scenario(dyehouse + "scale = 1.25\n").factory("f1").counts() == {
        "dye_jet": 15,
        "stenter": 3,
    }
    assert parse_scenario(dyehouse + "scale = 0.01\n").factory("f1").counts() == {
        "dye_jet": 1,
        "stenter": 1,
    }


def test_articles_default_or_own_with_type_filled_in() -> None:
    s = parse_scenario(with_factory(articles='[{name = "X-1", share = 2, picks_per_cm = 30}]'))
    (own,) = s.articles("f1", "loom_airjet")
    assert (own.name, own.machine_type, own.picks_per_cm) == ("X-1", "loom_airjet", 30)
    names = [a.name for a in load_scenario("default").articles("f01", "loom_airjet")]
    assert names == ["PC-7712", "CO-4020", "DN-3118"]


def test_fault_defaults_and_targets() -> None:
    s = parse_scenario(
        with_fault('type = "compressor_low_pressure"\nper_machine_week = 1\n')
        + '[[faults]]\ntype = "sensor_spike"\ncount = 3\nfactories = ["f1"]\n'
    )
    hall_fault, spike = s.faults
    assert (hall_fault.scope, hall_fault.machine_types) == ("hall", ("loom_airjet",))
    assert [g.hall for g in s.fault_targets(hall_fault)["f1"]] == ["weave1", "weave2"]
    assert spike.scope == "machine" and "hall_env" in spike.machine_types
    assert s.expected_faults_per_week() == {"compressor_low_pressure": 2.0}


def test_load_by_path_and_unknown_name(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(BASE)
    assert load_scenario(path).name == "t"
    assert load_scenario(str(path)).name == "t"
    with pytest.raises(ScenarioError, match="packaged: default, large"):
        load_scenario("nosuch")
    with pytest.raises(ScenarioError, match=r"missing\.toml"):
        load_scenario(tmp_path / "missing.toml")
    with pytest.raises(KeyError, match="f9"):
        load_scenario(path).layout("f9")


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (BASE + "colour = 3\n", r"factories\[0\]\(f1\)\.colour: Extra inputs"),
        (BASE.replace("seed = 1", "seed = 1\nspeed = 2"), r"^<string>: speed: Extra inputs"),
        (BASE.replace('cluster = "c1"\n', ""), "cluster: Field required"),
        (BASE.replace('"c1"', '"C 1"'), r"cluster: bad_id: cluster id 'C 1'"),
        (BASE.replace('"f1"', '"F1"'), r"factories\[0\]\(F1\)\.id: bad_id"),
        (BASE.replace("weaving_airjet", "weaving"), r"\.archetype: Input should be"),
        (BASE.replace("Asia/Dhaka", "Asia/Gotham"), "timezone: time zone 'Asia/Gotham'"),
        (with_factory(shifts='"4x6"'), r"\.shifts: Input should be '3x8' or '2x12'"),
        (with_factory(shift_start='"6am"'), r"\.shift_start: time '6am' must be HH:MM"),
        (with_factory(weekly_off='"caturday"'), r"\.weekly_off: weekday 'caturday'"),
        (
            with_factory(maintenance='[{weekday = "mon", start = "06:00", hours = 0}]'),
            r"maintenance\[0\]\.hours: Input should be greater than 0",
        ),
        (
            with_factory(maintenance='[{weekday = "mon", start = "06:00", hour = 2}]'),
            r"maintenance\[0\]\.hour: Extra inputs",
        ),
        (with_factory(scale="2", machines="{loom_airjet = 4}"), "either scale or machines"),
        (with_factory(machines="{hall_env = 4}"), r"machines\.hall_env"),
        (with_factory(machines="{loom_airjet = -1}"), r"machines\.loom_airjet: Input should be"),
        (with_factory(machines="{loom_airjet = 0}"), "has no machines"),
        (BASE + BASE[BASE.index("[[factories]]") :], r"unique; repeated: \['f1'\]"),
        (
            with_factory(articles='[{name = "SJ", machine_type = "knit_circular"}]'),
            "no knit_circular machines",
        ),
        (
            BASE.replace("weaving_airjet", "knitting")
            + 'articles = [{name = "SJ", picks_per_cm = 20}]\n',
            "for looms only",
        ),
        (with_factory(articles='[{name = "bad name"}]'), r"articles\[0\]\.name: String should"),
        (with_fault('type = "gremlins"\ncount = 1\n'), r"faults\[0\]\.type: fault type 'gremlins'"),
        (
            with_fault('type = "heating_fault"\ncount = 1\nmachine_types = ["loom_airjet"]\n'),
            r"cannot hit \['loom_airjet'\] \(it hits: dye_jet\)",
        ),
        (with_fault('type = "sensor_stuck"\n'), "exactly one of per_machine_week, count"),
        (
            with_fault('type = "sensor_stuck"\ncount = 1\nper_machine_week = 1\n'),
            "exactly one of",
        ),
        (with_fault('type = "hall_humidity_low"\ncount = 1\nscope = "machine"\n'), "scope 'hall'"),
        (with_fault('type = "rope_tangle"\ncount = 1\nscope = "hall"\n'), "scope 'hall'"),
        (with_fault('type = "rope_tangle"\ncount = 1\nfactories = ["f7"]\n'), r"unknown.*'f7'"),
        (with_fault('type = "rope_tangle"\ncount = 1\n'), "hits no machine"),
        (with_fault('type = "sensor_stuck"\ncount = 1\nseverity = [0.5, 2]\n'), "severity"),
        (with_fault('type = "sensor_stuck"\ncount = 1\nduration_h = [2, 1]\n'), "duration_h"),
        (with_fault('type = "sensor_stuck"\ncount = 1\nwhen = 3\n'), r"faults\[0\]\.when"),
        ("name = ", "not valid TOML"),
    ],
)
def test_bad_scenarios_name_the_key(text: str, match: str) -> None:
    with pytest.raises(ScenarioError, match=match):
        parse_scenario(text)
