"""Generated dashboards and provisioning files equal the committed ones, and are sound."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from dashboards.__main__ import main
from dashboards.build import PACKAGE_DIR, render_dashboards, render_files
from dashboards.common import CLUSTER_UID, INTERNAL_UID

REGENERATE = "out of date: run `millwatch dashboards build` and commit the result"
BOARDS = render_dashboards()


@pytest.mark.parametrize("relative", sorted(render_files()))
def test_generated_equals_committed(relative: str) -> None:
    committed = PACKAGE_DIR / relative
    assert committed.exists(), REGENERATE
    assert committed.read_text(encoding="utf-8") == render_files()[relative], REGENERATE


def test_no_stale_committed_json() -> None:
    committed = {p.name for p in (PACKAGE_DIR / "json").glob("*.json")}
    assert committed == {f"{uid}.json" for uid in BOARDS}


def test_build_writes_the_same_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["build", "--out", str(tmp_path), "--influx-url", "http://influx:8086"]) == 0
    written = {str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file()}
    assert written == set(render_files())
    assert len(capsys.readouterr().out.splitlines()) == len(written)
    sources = yaml.safe_load((tmp_path / "provisioning/datasources/millwatch.yaml").read_text())
    assert {d["jsonData"]["dbName"] for d in sources["datasources"]} == {
        "f_f01",
        "f_f02",
        "f_f03",
        "millwatch_internal",
        "cluster_kpi",
    }
    assert {d["url"] for d in sources["datasources"]} == {"http://influx:8086"}


def test_provider_points_at_a_folder() -> None:
    provider = yaml.safe_load(render_files()["provisioning/dashboards/millwatch.yaml"])
    (only,) = provider["providers"]
    assert only["type"] == "file" and only["options"]["path"] and only["folder"]


def _targets(board: dict[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    return [(p, t) for p in board["panels"] for t in p.get("targets", [])]


@pytest.mark.parametrize("uid", sorted(BOARDS))
def test_dashboard_is_sound(uid: str) -> None:
    board = BOARDS[uid]
    assert len(uid) <= 40 and board["uid"] == uid
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids)) and 0 not in ids
    variables = {v["name"] for v in board["templating"]["list"]}
    for panel, target in _targets(board):
        assert target["rawQuery"] is True and "$timeFilter" in target["query"], panel["title"]
        assert panel["datasource"]["uid"] in {"${factory}", INTERNAL_UID, CLUSTER_UID}
        if panel["datasource"]["uid"] == "${factory}":
            assert "factory" in variables
        used = set(re.findall(r"\$(\w+)", target["query"])) - {"timeFilter", "__interval"}
        assert used <= variables, (panel["title"], used - variables)
    refs = [[t["refId"] for t in p.get("targets", [])] for p in board["panels"]]
    assert all(len(r) == len(set(r)) for r in refs)


def test_thresholds_carry_spec_values() -> None:
    loom = BOARDS["mw-machine-loom"]
    vibration = next(p for p in loom["panels"] if p["title"].startswith("Vibration"))
    steps = vibration["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert [s["value"] for s in steps] == [None, 2.8, 4.5]  # ISO 10816 zone limits
    assert vibration["fieldConfig"]["defaults"]["unit"] == "velocitymms"


def test_json_is_sorted_and_stable() -> None:
    text = render_files()["json/mw-factory-overview.json"]
    doc = json.loads(text)
    assert json.dumps(doc, sort_keys=True, indent=2, ensure_ascii=False) + "\n" == text
