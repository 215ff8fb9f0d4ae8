"""Fault catalogue: what each §3 fault does to a machine's process as it progresses.

A process fault degrades over its lead time; its *progress* ``p`` runs from 0 at onset
to 1 at failure (or at the end, for faults without a functional stop). A signature maps
``p``, the fault's severity ``s`` (0-1, placing it inside the spec's ranges) and the
machine type to effects on the keys a machine group honours (``simulators.model``):
``("mul", key)`` multiplies, ``("add", key)`` offsets, ``("rate", stop_class)``
multiplies a stop rate. Signatures are plain numpy expressions, so ``p`` may be an array:
the injector evaluates all live faults of one type in one call, and the catalogue finds,
once per fault, when the signature first becomes detectable.

``BASELINE`` holds each observable key's nominal value and baseline noise sd (E). A
fault is *detectable* once any of its effects moves a signal by 3 sd. The sds are per
sample for analog fields; for stop rates the Poisson sd of one hour's count (the square
root of the hourly rate); for noise knobs (``*_sd``, ``*_noise``) the scatter of a
60-sample estimate of the noise level; for ``heating_gradient`` and
``dosing_efficiency`` their batch-to-batch scatter; ``exhaust_air`` is judged by the
exhaust humidity it moves (humidity above the hall air goes as 1 / air). Knobs that act
only in certain programme steps (dosing, heating) mark the earliest moment the
signature *can* show; analytics see it at the next such step. The same sds size the
instrument faults (``simulators.instruments``).

Example
-------
>>> kind = KINDS["bearing_wear"]
>>> effects = kind.effects(1.0, 0.5, {}, "loom_airjet")
>>> float(effects["mul", "vib_rms_mm_s"])  # x4 baseline at failure: the loom alarm level
4.0
>>> round(kind.detectable_at(0.5, {}, ("loom_airjet",)), 2)  # vibration x1.22 = 3 sd
0.3
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np

__all__ = ["BASELINE", "DETECT_SIGMA", "KINDS", "FaultKind", "baseline_key", "lerp", "z_score"]

Curve = float | np.ndarray
Op = Literal["mul", "add", "rate"]
Effects = dict[tuple[Op, str], Curve]
#: Per-fault parameters: ``sign`` (+-1, direction of a drift), ``zone`` (a stenter zone).
Params = Mapping[str, Curve]
Signature = Callable[[Curve, Curve, Params, str], Effects]
Scope = Literal["machine", "hall"]

LOOMS = ("loom_airjet", "loom_rapier")
#: Detection threshold in baseline sds (domain spec §3: "passes 3 sd of baseline").
DETECT_SIGMA = 3.0


def _rate(per_hour: float) -> tuple[float, float]:
    return per_hour, math.sqrt(per_hour)


#: (nominal, baseline sd) per observable key, E. Zone temperatures share ``zone_temp_c``.
BASELINE: dict[str, tuple[float, float]] = {
    # looms
    "vib_rms_mm_s": (2.0, 0.15),
    "vib_peak_mm_s": (6.0, 0.5),
    "bearing_temp_c": (50.0, 0.5),
    "motor_current_a": (8.0, 0.1),
    "motor_power_kw": (4.0, 0.06),
    "warp_tension_kn": (3.0, 0.03),  # servo holds setpoint ±3 %: sd 1 %
    "air_flow_nm3h": (55.0, 1.0),
    "air_supply_bar": (6.2, 0.05),
    "weft_arrival_deg": (240.0, 1.5),  # 1-s mean of ~13 picks with sd 2-6°
    "weft_arrival_sd": (1.0, 0.1),  # relative: a 60-pick sd estimate scatters ~9 %
    # knitting
    "drive_power_kw": (3.6, 0.07),
    "cam_temp_c": (40.0, 0.3),
    "yarn_tension_cn": (4.0, 0.2),
    # dyeing
    "heating_gradient": (1.0, 0.06),  # relative gradient, batch to batch
    "overshoot_c": (0.0, 0.5),
    "flow_noise": (0.0, 0.005),  # relative fluctuation sd, baseline ~1 %
    "current_noise": (0.0, 0.005),
    "pump_current_a": (40.0, 0.4),
    "flow_m3h": (210.0, 2.0),
    "nozzle_bar": (1.2, 0.02),
    "reel_speed_m_min": (310.0, 3.0),
    "cycle_time_s": (62.0, 0.5),
    "dosing_efficiency": (1.0, 0.05),
    # stenter
    "zone_temp_c": (180.0, 1.0),
    "burner_pct": (60.0, 1.5),
    "residual_moisture_pct": (6.0, 0.3),
    "exhaust_humidity_kg_kg": (0.12, 0.005),
    "gas_nm3h": (95.0, 2.0),
    "width_noise": (1.0, 0.1),  # relative, like weft_arrival_sd
    "width_act_cm": (170.0, 0.4),
    # exhaust air (a multiplier): seen as the humidity above the hall air's, ~1 / air
    "exhaust_air": (0.108, 0.005),
    # hall climate
    "rh_pct": (80.0, 1.0),
    "temp_c": (29.0, 0.4),
    # stop classes: stops per hour while running, sd of one hour's count
    "rate:warp": _rate(1.4),
    "rate:weft": _rate(2.9),
    "rate:other": _rate(0.5),
    "rate:yarn": _rate(2.5),
    "rate:needle": _rate(0.08),
    "rate:lint": _rate(0.17),  # a blow-down about once per shift
    "rate:process": _rate(0.4),  # stenter: fabric off pins and tears
}


def baseline_key(op: str, key: str) -> str:
    """Key of :data:`BASELINE` describing an effect on ``key``.

    >>> baseline_key("add", "zone3_temp_c"), baseline_key("rate", "weft")
    ('zone_temp_c', 'rate:weft')
    """
    if op == "rate":
        return f"rate:{key}"
    if key.startswith("zone") and key.endswith("_temp_c"):
        return "zone_temp_c"
    return key


#: Knobs whose signal goes as 1 / knob (same evaporation through more or less air).
INVERSE = frozenset({"exhaust_air"})


def z_score(op: str, key: str, value: Curve) -> np.ndarray:
    """Size of an effect in baseline sds (0 for keys without a baseline)."""
    nominal, sd = BASELINE.get(baseline_key(op, key), (0.0, math.inf))
    if key in INVERSE:
        value = 1.0 / np.asarray(value)
    deviation = np.abs(value) if op == "add" else np.abs(nominal * (np.asarray(value) - 1.0))
    return np.asarray(deviation / sd, dtype=np.float64)


def lerp(lo: float, hi: float, s: Curve) -> Curve:
    """Place severity ``s`` (0-1, one per fault) inside a spec range."""
    return lo + (hi - lo) * s


def _ramp(p: Curve, until: float) -> Curve:
    """0 → 1 over the first ``until`` of the lead time, then flat."""
    return np.clip(np.asarray(p) / until, 0.0, 1.0)


def _late(p: Curve, start: float) -> Curve:
    """0 until ``start``, then 0 → 1 at failure: symptoms of the final days."""
    return np.clip((np.asarray(p) - start) / (1.0 - start), 0.0, 1.0)


def _plateau(p: Curve, edge: float) -> Curve:
    """Trapezoid: ramps up over ``edge``, holds, recovers over the last ``edge``."""
    p = np.asarray(p)
    return np.clip(np.minimum(p, 1.0 - p) / edge, 0.0, 1.0)


def _exp_growth(p: Curve, k: float = 3.0) -> Curve:
    """Exponential 0 → 1: slow at first, steep before failure."""
    return np.expm1(k * np.asarray(p)) / math.expm1(k)


def _bearing_wear(p: Curve, s: Curve, prm: Params, mt: str) -> Effects:
    vib = 1.0 + 3.0 * _exp_growth(p)  # x2 warn at p = 0.68, x4 alarm at failure
    final = _late(p, 0.7)
    current = 1.0 + lerp(0.03, 0.08, s) * final
    if mt in LOOMS:
        return {
            ("mul", "vib_rms_mm_s"): vib,
            ("mul", "vib_peak_mm_s"): vib,
            ("add", "bearing_temp_c"): lerp(5.0, 20.0, s) * final,
            ("mul", "motor_current_a"): current,
            ("mul", "motor_power_kw"): current,
        }
    if mt == "knit_circular":
        return {("mul", "vib_rms_mm_s"): vib, ("mul", "drive_power_kw"): current}
    if mt == "dye_jet":  # pump bearing: no vibration field, current shows it
        return {
            ("mul", "pump_current_a"): current,
            ("add", "current_noise"): lerp(0.01, 0.04, s) * _exp_growth(p),
        }
    if mt == "stenter":  # exhaust-fan bearing drags: the fan moves less air (E)
        return {("mul", "exhaust_air"): 1.0 - lerp(0.15, 0.35, s) * _exp_growth(p)}
    return {}


def _warp_tension_drift(p: Curve, s: Curve, prm: Params, mt: str) -> Effects:
    r = _ramp(p, 0.5)
    return {
        ("mul", "warp_tension_kn"): 1.0 + prm.get("sign", 1.0) * lerp(0.05, 0.15, s) * r,
        ("rate", "warp"): 1.0 + (lerp(1.5, 3.0, s) - 1.0) * r,
    }


def _air_leak(p: Curve, s: Curve, prm: Params, mt: str) -> Effects:
    return {
        ("mul", "air_flow_nm3h"): 1.0 + lerp(0.10, 0.25, s) * np.asarray(p),
        ("add", "air_supply_bar"): -lerp(0.2, 0.5, s) * np.asarray(p),
        ("rate", "weft"): 1.0 + lerp(0.3, 1.0, s) * np.asarray(p),
    }


def _compressor_low(p: Curve, s: Curve, prm: Params, mt: str) -> Effects:
    sag = _plateau(p, 0.15)
    return {
        ("add", "air_supply_bar"): -lerp(0.8, 2.0, s) * sag,
        ("rate", "weft"): 1.0 + lerp(4.0, 12.0, s) * sag,
    }


def _weft_package(p: Curve, s: Curve, prm: Params, mt: str) -> Effects:
    shift = _ramp(p, 0.3)
    return {
        ("add", "weft_arrival_deg"): prm.get("sign", 1.0) * lerp(4.0, 12.0, s) * shift,
        ("mul", "weft_arrival_sd"): 1.0 + lerp(1.0, 3.0, s) * shift,
        ("rate", "weft"): 1.0 + lerp(2.0, 6.0, s) * _late(p, 0.3),
    }


def _hall_humidity(p: Curve, s: Curve, prm: Params, mt: str) -> Effects:
    dry = _plateau(p, 0.2)
    if mt == "hall_env":
        return {("add", "rh_pct"): -lerp(12.0, 25.0, s) * dry}
    return {("rate", "warp"): 1.0 + lerp(1.0, 3.0, s) * dry}


def _needle_burst(p: Curve, s: Curve, prm: Params, mt: str) -> Effects:
    # The worn needle's detector stops bunch up over the last quarter of the lead time:
    # x100-200 a baseline of 1-3 per day; with 3-10 min per stop the machine then
    # stops 4-8 times an hour (spec §3: >= 3 in 2 h).
    burst = np.clip((np.asarray(p) - 0.7) / 0.05, 0.0, 1.0)
    return {
        ("mul", "vib_rms_mm_s"): 1.0 + lerp(0.3, 0.8, s) * np.asarray(p),
        ("rate", "needle"): 1.0 + lerp(100.0, 200.0, s) * burst,
        ("mul", "yarn_tension_cn"): 1.0 - 0.05 * burst,
    }


def _lubrication(p: Curve, s: Curve, prm: Params, mt: str) -> Effects:
    return {
        ("add", "cam_temp_c"): lerp(3.0, 10.0, s) * np.asarray(p),
        ("mul", "drive_power_kw"): 1.0 + lerp(0.03, 0.08, s) * np.asarray(p),
        ("rate", "needle"): 1.0 + 2.0 * s * np.asarray(p),
    }


def _yarn_tension(p: Curve, s: Curve, prm: Params, mt: str) -> Effects:
    return {
        ("mul", "yarn_tension_cn"): 1.0 + lerp(0.2, 0.6, s) * np.asarray(p),
        ("rate", "yarn"): 1.0 + lerp(1.0, 4.0, s) * np.asarray(p) ** 2,
    }


def _lint(p: Curve, s: Curve, prm: Params, mt: str) -> Effects:
    return {
        ("rate", "lint"): 1.0 + lerp(8.0, 16.0, s) * np.asarray(p),
        ("rate", "yarn"): 1.0 + lerp(1.0, 2.0, s) * np.asarray(p),
    }


def _heating(p: Curve, s: Curve, prm: Params, mt: str) -> Effects:
    worse = 0.25 + 0.75 * np.asarray(p)  # batch after batch
    return {
        ("mul", "heating_gradient"): 1.0 - (1.0 - lerp(0.8, 0.5, s)) * worse,
        ("add", "overshoot_c"): lerp(1.5, 5.0, s) * worse,
    }


def _cavitation(p: Curve, s: Curve, prm: Params, mt: str) -> Effects:
    rough = _ramp(p, 0.3)
    developed = _late(p, 0.6)
    noise = lerp(0.03, 0.10, s) * rough
    drop = lerp(0.08, 0.20, s) * developed
    return {
        ("add", "flow_noise"): noise,
        ("add", "current_noise"): noise,
        ("mul", "pump_current_a"): 1.0 - drop,
        ("mul", "flow_m3h"): 1.0 - 0.5 * drop,
    }


def _rope_tangle(p: Curve, s: Curve, prm: Params, mt: str) -> Effects:
    # The jet group derives cycle_time_s from the reel speed, so the slower reel alone
    # lengthens the cycle (x1.25-2); scaling it too would count the tangle twice.
    p = np.asarray(p)
    return {
        ("mul", "nozzle_bar"): 1.0 + lerp(0.3, 1.0, s) * p,
        ("mul", "reel_speed_m_min"): 1.0 - lerp(0.2, 0.5, s) * p,
    }


def _dosing(p: Curve, s: Curve, prm: Params, mt: str) -> Effects:
    # Acts from onset, but only shows while the programme doses (soda, salt).
    on = np.ones_like(np.asarray(p, dtype=np.float64))
    return {("mul", "dosing_efficiency"): 1.0 - (1.0 - lerp(0.6, 0.3, s)) * on}


def _burner(p: Curve, s: Curve, prm: Params, mt: str) -> Effects:
    # The stenter dries by its mean zone temperature, so the residual moisture rise
    # follows from the cold zone; the neighbours' burners work harder to make up.
    r = _ramp(p, 0.2)
    return {
        ("add", f"zone{int(prm.get('zone', 3))}_temp_c"): -lerp(10.0, 40.0, s) * r,
        ("mul", "burner_pct"): 1.0 + lerp(0.05, 0.20, s) * r,
    }


def _exhaust_fan(p: Curve, s: Curve, prm: Params, mt: str) -> Effects:
    # A weak fan moves less air: humidity climbs past 0.2 kg/kg and the fabric leaves
    # wetter (the stenter's drying follows the exhaust humidity).
    return {("mul", "exhaust_air"): 1.0 - lerp(0.55, 0.75, s) * _ramp(p, 0.1)}


def _exhaust_overdraw(p: Curve, s: Curve, prm: Params, mt: str) -> Effects:
    # x2.2-2.6 the air for the same evaporation: humidity near 0.05, gas heats the air.
    return {("mul", "exhaust_air"): 1.0 + lerp(1.2, 1.6, s) * _ramp(p, 0.1)}


def _chain_clip(p: Curve, s: Curve, prm: Params, mt: str) -> Effects:
    # Worn clips let the edges slip: width wanders and runs narrow, fabric leaves the pins.
    p = np.asarray(p)
    return {
        ("mul", "width_noise"): 1.0 + lerp(2.0, 5.0, s) * p,
        ("add", "width_act_cm"): -lerp(0.3, 1.5, s) * p,
        ("rate", "process"): 1.0 + lerp(0.5, 2.0, s) * p,
    }


@dataclass(frozen=True)
class FaultKind:
    """One ``fault_type``: where it strikes, how long it takes and what it does.

    ``lead_h`` is the time from onset to failure (or to the end, when ``down_h`` is
    None: no functional stop); ``down_h`` how long a failure holds the machine in
    ``BREAKDOWN``. ``companions`` are machine types a hall-scope fault also reaches
    (the hall's climate sensor). Instrument faults have no ``signature``.
    """

    name: str
    machine_types: tuple[str, ...]
    scope: Scope
    lead_h: tuple[float, float]
    signature: Signature | None = None
    down_h: tuple[float, float] | None = None
    companions: tuple[str, ...] = ()

    @property
    def instrument(self) -> bool:
        """True for faults of the instrument, not of the process."""
        return self.signature is None

    def effects(self, p: Curve, s: Curve, params: Params, mt: str) -> Effects:
        """Effects at progress ``p`` on a machine of type ``mt``.

        ``p``, ``s`` and the params may be arrays, one entry per fault of this type
        (all with the same ``zone``): one call then serves every such fault at once.
        """
        return self.signature(p, s, params, mt) if self.signature else {}

    def detectable_at(
        self, s: float, params: Params, machine_types: tuple[str, ...]
    ) -> float | None:
        """First progress at which an effect reaches 3 baseline sds; None: never."""
        if self.signature is None:
            return 0.0
        p = np.linspace(0.0, 1.0, 2001)
        z = np.zeros_like(p)
        for mt in machine_types:
            for (op, key), value in self.signature(p, s, params, mt).items():
                z = np.maximum(z, np.broadcast_to(z_score(op, key, value), p.shape))
        hit = np.flatnonzero(z >= DETECT_SIGMA)
        return float(p[hit[0]]) if hit.size else None


_ALL = ("loom_airjet", "loom_rapier", "knit_circular", "dye_jet", "stenter", "hall_env")
_KNIT, _DYE, _STENTER = ("knit_circular",), ("dye_jet",), ("stenter",)
_WEEK = 168.0

#: Every fault type of §3, lead times in hours (E unless the spec tags them).
KINDS: dict[str, FaultKind] = {
    k.name: k
    for k in (
        FaultKind(
            "bearing_wear",
            (*LOOMS, "knit_circular", "dye_jet", "stenter"),
            "machine",
            (1 * _WEEK, 6 * _WEEK),
            _bearing_wear,
            (4.0, 24.0),
        ),
        FaultKind("warp_tension_drift", LOOMS, "machine", (4.0, 72.0), _warp_tension_drift),
        FaultKind(
            "air_leak_nozzle_wear", ("loom_airjet",), "machine", (1 * _WEEK, 4 * _WEEK), _air_leak
        ),
        FaultKind("compressor_low_pressure", ("loom_airjet",), "hall", (0.1, 0.5), _compressor_low),
        FaultKind("weft_package_defect", ("loom_airjet",), "machine", (1.0, 6.0), _weft_package),
        FaultKind(
            "hall_humidity_low", LOOMS, "hall", (2.0, 8.0), _hall_humidity, None, ("hall_env",)
        ),
        FaultKind("needle_wear_burst", _KNIT, "machine", (24.0, 96.0), _needle_burst, (0.25, 1.0)),
        FaultKind("lubrication_shortfall", _KNIT, "machine", (2.0, 12.0), _lubrication),
        FaultKind("yarn_tension_drift", _KNIT, "machine", (2.0, 12.0), _yarn_tension),
        FaultKind("lint_buildup", _KNIT, "machine", (6.0, 10.0), _lint),
        FaultKind("heating_fault", _DYE, "machine", (12.0, 72.0), _heating),
        FaultKind("pump_cavitation", _DYE, "machine", (0.15, 1.0), _cavitation),
        FaultKind("rope_tangle", _DYE, "machine", (0.05, 0.25), _rope_tangle, (0.1, 0.33)),
        FaultKind("dosing_fault", _DYE, "machine", (6.0, 10.0), _dosing),
        FaultKind("burner_fault", _STENTER, "machine", (0.25, 1.5), _burner),
        FaultKind("exhaust_fan_fault", _STENTER, "machine", (4.0, 48.0), _exhaust_fan),
        FaultKind("exhaust_overdraw", _STENTER, "machine", (8.0, 72.0), _exhaust_overdraw),
        FaultKind("chain_clip_wear", _STENTER, "machine", (1 * _WEEK, 4 * _WEEK), _chain_clip),
        FaultKind("sensor_stuck", _ALL, "machine", (0.5, 24.0)),
        FaultKind("sensor_drift", _ALL, "machine", (24.0, 2 * _WEEK)),
        FaultKind("sensor_spike", _ALL, "machine", (1.0, 24.0)),
        FaultKind("sensor_dropout", _ALL, "machine", (0.05, 6.0)),
        FaultKind("counter_reset", _ALL[:-1], "machine", (0.0, 0.0)),  # hall_env: no counters
    )
}
