"""A resumed simulator continues where a backfill of the same seed left off."""

from __future__ import annotations

import numpy as np

from gateway.inputs.simulator.plugin import SimulatorInput

START = 1_767_168_000_000


def _plugin(**config: object) -> SimulatorInput:
    plugin = SimulatorInput("c1", "f01", {"machines": {"loom_airjet": 3}, "seed": 5, **config})
    plugin.init()
    return plugin


def test_resumed_gateway_reads_what_a_continuous_run_reads() -> None:
    continuous = _plugin()
    for tick in range(120):
        continuous.gather(START + tick * 1000)
    expected = continuous.gather(START + 120_000)

    resumed = _plugin(resume_from_ms=START)
    got = resumed.gather(START + 120_000)
    for want, have in zip(expected, got, strict=True):
        for field, values in want.fields.items():
            np.testing.assert_array_equal(have.fields[field], values, err_msg=field)
    picks = got[0].fields["picks_total"]
    assert (picks > 0).all()  # two minutes of weaving behind it, not a fresh start


def test_a_fresh_gateway_starts_its_counters_afresh() -> None:
    fresh = _plugin().gather(START + 120_000)[0].fields["picks_total"]
    resumed = _plugin(resume_from_ms=START).gather(START + 120_000)[0].fields["picks_total"]
    assert (resumed > fresh).all()
