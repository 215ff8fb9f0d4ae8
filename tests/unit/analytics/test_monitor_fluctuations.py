"""Within-bucket fluctuation judged against the machine's own steady fluctuation.

A jet's flow shakes in every bucket where its pump changes speed, so over all buckets its
``flow_m3h:sd`` is heavy-tailed. Within the pump's steady buckets it is not: there a
cavitating pump's flow shaking more than it usually does is evidence, while the same
fluctuation in a bucket that holds a speed change is not.
"""

from __future__ import annotations

import numpy as np

from analytics.frame import Panel
from analytics.monitor import Monitor

H = 3_600_000
TRAIN = 600


def _jets(m: int = 6, t: int = 1200, seed: int = 0) -> Panel:
    """Jets whose pump switches between two settings; every fluctuation jumps then."""
    rng = np.random.default_rng(seed)
    setting = np.where((np.arange(t) // 50) % 2 == 0, 60.0, 85.0)
    switch = np.r_[False, setting[1:] != setting[:-1]]
    pump = np.tile(setting, (m, 1)) + rng.normal(0, 0.05, (m, t))

    def sd(quiet: float, moving: float) -> np.ndarray:
        return np.where(switch, moving, quiet) * rng.lognormal(0.0, 0.1, (m, t))

    values = {
        "pump_pct": pump,
        "pump_pct:sd": sd(0.3, 12.0),
        "nozzle_bar": 1.6e-4 * pump**2 + rng.normal(0, 0.003, (m, t)),
        "nozzle_bar:sd": sd(0.02, 0.5),
        "flow_m3h": 2.5 * pump + rng.normal(0, 0.3, (m, t)),
        "flow_m3h:sd": sd(1.5, 40.0),
        "current_a": 0.5 * pump + rng.normal(0, 0.1, (m, t)),
        "current_a:sd": sd(0.4, 9.0),
        "state_code": np.ones((m, t)),
    }
    ts = np.arange(t, dtype=np.int64) * H // 60
    return Panel([f"d{i}" for i in range(m)], ts, 60_000, values)


def _head(panel: Panel, n: int) -> Panel:
    return Panel(
        panel.machines, panel.ts_ms[:n], 60_000, {k: v[:, :n] for k, v in panel.values.items()}
    )


def _alarms(panel: Panel, **params: bool) -> list[tuple[str, str, int]]:
    mon = Monitor(**params).fit({"jet": _head(panel, TRAIN)})
    assert mon.models_["jet"].drive.field == "pump_pct"
    return [
        (a.machine, a.signal, a.start_ms // 60_000) for a in mon.alarms(mon.score({"jet": panel}))
    ]


def test_fluctuation_rising_while_the_drive_holds_is_flagged():
    panel = _jets()
    # d2 cavitates from bucket 1010 to 1030 (the pump holds 60 %): flow and current shake
    # 5x and 4x their steady fluctuation; the bucket means do not move.
    panel.values["flow_m3h:sd"][2, 1010:1030] *= 5.0
    panel.values["current_a:sd"][2, 1010:1030] *= 4.0
    found = _alarms(panel)
    mine = [a for a in found if a[0] == "d2" and 1008 <= a[2] <= 1013]
    assert mine and mine[0][1] in ("flow_m3h:sd", "current_a:sd")
    assert not [a for a in found if a not in mine]
    # Without the steady judgement the flow's fluctuation only marks transitions.
    off = _alarms(panel, steady_fluctuations=False)
    assert not [a for a in off if a[0] == "d2" and a[1].endswith(":sd")]


def test_fluctuation_high_only_where_the_drive_changes_is_not_flagged():
    panel = _jets(seed=1)
    # Every speed change shakes every field (as in training), and on d3 much harder
    # than usual: a bucket that holds a speed change says nothing about fluctuation.
    change = np.flatnonzero(panel.values["pump_pct:sd"][3] > 5.0)
    assert change.size > 10
    panel.values["flow_m3h:sd"][3, change[change > TRAIN]] *= 3.0
    assert _alarms(panel) == []
