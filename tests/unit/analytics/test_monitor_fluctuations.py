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
from tests.unit.analytics.jets import jet_panel

H = 3_600_000
TRAIN = 600


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
    panel = jet_panel(lognormal_sd=True, current=True)
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
    panel = jet_panel(seed=1, lognormal_sd=True, current=True)
    # Every speed change shakes every field (as in training), and on d3 much harder
    # than usual: a bucket that holds a speed change says nothing about fluctuation.
    change = np.flatnonzero(panel.values["pump_pct:sd"][3] > 5.0)
    assert change.size > 10
    panel.values["flow_m3h:sd"][3, change[change > TRAIN]] *= 3.0
    assert _alarms(panel) == []
