"""A fleet of jet dyeing machines for monitor tests: the pump is the drive, flows follow it."""

from __future__ import annotations

import numpy as np

from analytics.frame import Panel

H = 3_600_000


def jet_panel(
    m: int = 6, t: int = 1200, seed: int = 0, *, lognormal_sd: bool = False, current: bool = False
) -> Panel:
    """Jets whose pump switches between two settings every 50 buckets; every fluctuation jumps then.

    ``lognormal_sd`` scatters the bucket sds multiplicatively (as measured ones do) instead of
    additively; ``current`` adds a motor current that follows the pump, else a reel speed
    that does not.
    """
    rng = np.random.default_rng(seed)
    setting = np.where((np.arange(t) // 50) % 2 == 0, 60.0, 85.0)
    switch = np.r_[False, setting[1:] != setting[:-1]]
    pump = np.tile(setting, (m, 1)) + rng.normal(0, 0.05, (m, t))

    def sd(quiet: float, moving: float) -> np.ndarray:
        if lognormal_sd:
            return np.where(switch, moving, quiet) * rng.lognormal(0.0, 0.1, (m, t))
        return np.where(switch, moving, quiet) + rng.normal(0, quiet / 20, (m, t))

    values = {
        "pump_pct": pump,
        "pump_pct:sd": sd(0.3, 12.0),
        "nozzle_bar": 1.6e-4 * pump**2 + rng.normal(0, 0.003, (m, t)),
        "nozzle_bar:sd": sd(0.02, 0.5),
        "flow_m3h": 2.5 * pump + rng.normal(0, 0.3, (m, t)),
        "flow_m3h:sd": sd(1.5, 40.0),
    }
    if current:
        values["current_a"] = 0.5 * pump + rng.normal(0, 0.1, (m, t))
        values["current_a:sd"] = sd(0.4, 9.0)
    else:
        values["reel_m_min"] = 300.0 + rng.normal(0, 0.3, (m, t))
        values["reel_m_min:sd"] = sd(1.5, 80.0)
    values["state_code"] = np.ones((m, t))
    ts = np.arange(t, dtype=np.int64) * H // 60
    return Panel([f"d{i}" for i in range(m)], ts, 60_000, values)
