"""A machine whose training span was unusually quiet borrows its class's spread."""

from __future__ import annotations

import numpy as np

from analytics.frame import Panel
from analytics.monitor import Monitor

TRAIN = 600


def _head(panel: Panel, n: int) -> Panel:
    return Panel(
        panel.machines, panel.ts_ms[:n], 60_000, {k: v[:, :n] for k, v in panel.values.items()}
    )


def _quiet_first(m: int) -> Panel:
    """``m`` machines with 1-sd noise; machine 0 held one recipe (0.01 sd) in training."""
    rng = np.random.default_rng(7)
    t = 900
    temp = 60.0 + rng.normal(0.0, 1.0, (m, t))
    temp[0, :TRAIN] = 60.0 + rng.normal(0.0, 0.01, TRAIN)
    ts = np.arange(t, dtype=np.int64) * 60_000
    return Panel([f"d{i}" for i in range(m)], ts, 60_000, {"temp_c": temp})


def _alarmed(panel: Panel, **params: float) -> set[str]:
    mon = Monitor(**params).fit({"jet": _head(panel, TRAIN)})
    return {a.machine for a in mon.alarms(mon.score({"jet": panel}))}


def test_a_machine_quiet_only_in_training_borrows_its_peers_spread():
    panel = _quiet_first(6)
    assert "d0" in _alarmed(panel, peer_scale_floor=0.0)  # its ordinary spread reads as ~100 sds
    assert _alarmed(panel) == set()
    mon = Monitor().fit({"jet": _head(panel, TRAIN)})
    scale = mon.models_["jet"].level[0].detector_.scale_[:, 0]
    assert scale[0] >= 0.75 * np.median(scale[1:]) * 0.9
    assert np.allclose(
        scale[1:],
        Monitor(peer_scale_floor=0.0)
        .fit({"jet": _head(panel, TRAIN)})
        .models_["jet"]
        .level[0]
        .detector_.scale_[1:, 0],
    )  # the others keep their own


def test_a_class_of_two_machines_has_no_peer_floor():
    panel = _quiet_first(2)
    # The median of two machines is no class norm: d0 keeps its own (quiet) spread.
    assert "d0" in _alarmed(panel)
    assert "d0" not in _alarmed(panel, min_peer_machines=2)


def test_a_real_fault_still_alarms_under_the_floor():
    panel = _quiet_first(6)
    panel.values["temp_c"][3, 700:760] += 15.0  # 15 sds of the class
    assert _alarmed(panel) == {"d3"}
