"""``millwatch up`` end to end: real servers, ingest and simulated gateways as processes."""

import os
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt

from millwatch.servers import free_port


def _series(influx_url: str, db: str, q: str) -> list[dict]:
    """The series an InfluxQL query returns; empty while the server or database is not up."""
    try:
        response = httpx.get(f"{influx_url}/query", params={"db": db, "q": q}, timeout=2)
        return response.json()["results"][0].get("series", [])
    except (httpx.HTTPError, KeyError, ValueError):
        return []


def _count(influx_url: str, db: str, q: str) -> int:
    series = _series(influx_url, db, q)
    return int(series[0]["values"][0][1]) if series else 0


def _count_rows(influx_url: str, db: str, measurement: str) -> int:
    return _count(influx_url, db, f"SELECT count(seq) FROM {measurement}")


def _count_gateway_metrics(influx_url: str) -> int:
    """How many gateways' counters reached ``millwatch_internal``."""
    q = 'SELECT last("messages_acked_total") FROM internal_gateway GROUP BY "factory"'
    return len(_series(influx_url, "millwatch_internal", q))


SCENARIO = """
name = "tiny"
cluster = "c1"
seed = 7
[[factories]]
id = "f01"
archetype = "weaving_airjet"
timezone = "Asia/Dhaka"
machines = { loom_airjet = 5 }
[[factories]]
id = "f02"
archetype = "knitting"
timezone = "Asia/Kolkata"
shifts = "2x12"
machines = { knit_circular = 3 }
[[faults]]
type = "sensor_spike"
per_machine_week = 3000.0
"""


def test_up_runs_the_stack_shows_counters_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    """A backfill of 6 minutes of history with fault labels, then live data, then Ctrl-C."""
    scenario = tmp_path / "tiny.toml"
    scenario.write_text(SCENARIO)
    influx_port, mqtt_port, api_port = free_port(), free_port(), free_port()
    influx_url = f"http://127.0.0.1:{influx_port}"
    command = [
        sys.executable,
        "-m",
        "millwatch.cli",
        "up",
        "--state-dir",
        str(tmp_path / "state"),
        "--scenario",
        str(scenario),
        "--backfill-hours",
        "0.1",
        "--mqtt-port",
        str(mqtt_port),
        "--influx-port",
        str(influx_port),
        "--status-every",
        "2",
        "--analytics-every",
        "3",
        "--analytics-min-train-hours",
        "0.05",
        "--api-port",
        str(api_port),
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MILLWATCH_")}
    up = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 60
        rows = {("f_f01", "loom"): 0, ("f_f02", "knit"): 0}
        while time.monotonic() < deadline and min(rows.values()) < 20:
            assert up.poll() is None, up.stdout.read().decode() if up.stdout else ""
            rows = {key: _count_rows(influx_url, *key) for key in rows}
            time.sleep(1)
        assert min(rows.values()) >= 20, f"rows per factory database: {rows}"
        history = _series(influx_url, "f_f01", "SELECT count(seq) FROM loom WHERE hist = '1'")
        assert history and history[0]["values"][0][1] >= 5 * 360, "6 min of 5 looms backfilled"
        labels = _series(influx_url, "f_f01", "SELECT count(phase) FROM fault_label")
        assert labels and labels[0]["values"][0][1] > 0, "no fault labels landed"
        # Gateways publish their counters every 10 s; ingest writes them to millwatch_internal.
        while time.monotonic() < deadline + 30 and _count_gateway_metrics(influx_url) < 2:
            time.sleep(1)
        assert _count_gateway_metrics(influx_url) >= 2, "gateway self-metrics did not land"
        # Analytics: shift KPIs per loom, anomaly scores, and the cluster roll-up.
        found = {}
        while time.monotonic() < deadline + 90 and len(found) < 3:
            found = {
                name: n
                for name, n in (
                    ("kpi", _count(influx_url, "f_f01", "SELECT count(oee) FROM kpi_shift")),
                    ("score", _count(influx_url, "f_f01", "SELECT count(score) FROM anomaly")),
                    (
                        "rollup",
                        _count(influx_url, "cluster_kpi", "SELECT count(oee) FROM factory_kpi"),
                    ),
                )
                if n
            }
            time.sleep(1)
        assert set(found) == {"kpi", "score", "rollup"}, f"analytics wrote only {found}"
        assert found["kpi"] >= 5, "one shift KPI row per loom"
        _check_api(f"http://127.0.0.1:{api_port}", tmp_path / "state" / "demo-keys.toml")
        _check_broker_secured(tmp_path / "state", mqtt_port)
        time.sleep(2.5)  # one more status line
    finally:
        up.send_signal(signal.SIGINT)
        try:
            output = up.communicate(timeout=90)[0].decode()
        except subprocess.TimeoutExpired:
            up.terminate()  # SIGTERM still stops the stack's servers; SIGKILL would orphan them
            try:
                tail = up.communicate(timeout=60)[0].decode()[-4000:]
            except subprocess.TimeoutExpired:
                up.kill()
                tail = up.communicate()[0].decode()[-4000:]
            raise AssertionError(f"millwatch up still running 90 s after Ctrl-C:\n{tail}") from None
    assert up.returncode == 0, output
    assert "backfill delivered" in output, output
    exported = (tmp_path / "state" / "gateways" / "f01" / "labels-backfill.jsonl").read_text()
    assert '"fault_type":"sensor_spike"' in exported, "the backfill's labels were not exported"
    assert "ingest-0" in output and "gateway-f01" in output and "gateway-f02" in output
    assert "analytics" in output and "shift_kpis=" in output, output
    assert "lines=" in output and "published=" in output, output
    assert "rejected=0" in output, output
    assert "demo keys in" in output and "requests=" in output, output
    assert "/status#key=mwk_" in output, output
    assert _processes_mentioning(str(tmp_path)) == [], "processes left running"


def _check_api(url: str, keys_file: Path) -> None:
    """The API serves the seeded registry and live data with the demo keys."""
    keys = tomllib.loads(keys_file.read_text())
    assert oct(keys_file.stat().st_mode & 0o777) == "0o600"
    engineer = {"Authorization": f"Bearer {keys['factory_engineer']}"}
    machines = httpx.get(f"{url}/v1/machines", headers=engineer, timeout=10).json()
    assert machines["total"] == 6, machines  # 5 looms and the hall's climate sensor of f01
    assert any(m["status"]["online"] for m in machines["items"]), machines
    operator = {"Authorization": f"Bearer {keys['cluster_operator']}"}
    assert httpx.get(f"{url}/v1/benchmarks", headers=operator, timeout=10).status_code == 200
    assert httpx.get(f"{url}/v1/machines", headers=operator, timeout=10).status_code == 403


def _check_broker_secured(state: Path, mqtt_port: int) -> None:
    """Logins only; passwords in 0600 files and in no log."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    refused: list[object] = []
    client.on_connect = lambda c, u, f, rc, p: refused.append(rc)
    client.connect("127.0.0.1", mqtt_port)
    client.loop_start()
    deadline = time.monotonic() + 5
    while not refused and time.monotonic() < deadline:
        time.sleep(0.05)
    client.loop_stop()
    assert refused and refused[0].is_failure, "an anonymous client got in"
    config = state / "gateways" / "f01" / "gateway-f01.toml"
    password = tomllib.loads(config.read_text())["mqtt_password"]
    for path in (config, state / "ingest.env", state / "mosquitto" / "passwd"):
        assert oct(path.stat().st_mode & 0o777) == "0o600", path
    logs = [p.read_text(errors="replace") for p in state.rglob("*.log")]
    assert logs and not any(password in text for text in logs), "a password was logged"


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in args:
            found.append(args)
    return found
