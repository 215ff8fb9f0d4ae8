"""Signals of one machine type and the drive they follow (a jet's pump speed).

A follower's baseline only holds at one setting of what drives it: a jet's nozzle
pressure at 60 % pump speed is normal, at 95 % it is not. :func:`fit_drive` finds, from
training signals and without labels, the level signal most others follow and fits each
follower's per-machine law (a line, or a quadratic where three or more settings pin it,
:func:`fit_curve`); :func:`with_drive` adds each follower's residual from it
(``nozzle_bar:vs:pump_speed_pct``), which the monitor judges instead of the follower.

Example
-------
>>> import numpy as np
>>> x = np.array([[1.0, 2.0, 3.0, 4.0]])
>>> coef = fit_curve(x, 1.0 + x**2)
>>> drive_curve(coef, np.array([[5.0]])).round(6).tolist()
[[26.0]]
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "EXTRAPOLATE_CORR",
    "Drive",
    "Signals",
    "drive_curve",
    "fit_curve",
    "fit_drive",
    "masked",
    "with_drive",
]


@dataclass
class Signals:
    """One machine type's monitored signals: ``values[..., k]`` is signal ``names[k]``.

    ``values`` has shape (M, T, d), NaN where a signal is not scored (missing, or the
    machine not running); ``fields[k]`` is the panel field signal ``k`` derives from.
    """

    names: list[str]
    fields: list[str]
    values: np.ndarray
    running: np.ndarray


@dataclass
class Drive:
    """A field other signals follow (a jet's pump speed) and its followers' lines.

    ``coef[f]``, per machine, fitted on training data: ``(a, b)`` for the line
    ``f = a + b * drive``, or ``(a, b, c, x0)`` for the curve of :func:`fit_curve`.
    """

    field: str
    coef: dict[str, tuple[np.ndarray, ...]]
    span: tuple[np.ndarray, np.ndarray] | None = None
    corr: dict[str, float] = field(default_factory=dict)


def _centered(x: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return x - np.nanmean(x, axis=1, keepdims=True)


def _corr(x: np.ndarray, y: np.ndarray) -> float:
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 30:
        return 0.0
    a, b = x[ok], y[ok]
    den = float(np.sqrt(np.sum(a * a) * np.sum(b * b)))
    return float(np.sum(a * b)) / den if den > 0 else 0.0


#: Variance of ``u**2`` unexplained by ``u``, relative to ``var(u)**2``, below which the
#: drive's training values cannot pin a curve (two settings and their noise): the fit
#: falls back to a line. Three evenly spread settings give 0.5.
CURVE_MIN_SPREAD = 0.05


def _sums(ok: np.ndarray, *cols: np.ndarray) -> list[np.ndarray]:
    return [np.where(ok, c, 0.0).sum(axis=1) for c in cols]


def fit_curve(x: np.ndarray, y: np.ndarray, curve: bool = True) -> tuple[np.ndarray, ...]:
    """Per machine (row), least squares ``y = a + b u + c u**2`` with ``u = x - x0``.

    A follower's law is rarely a line: a nozzle's pressure grows with the square of
    its pump's speed, so a line leaves a residual that changes with the recipe's speed
    and dwarfs the noise at any one speed. ``x0`` is the machine's mean drive (it keeps
    the fit well conditioned); a machine whose drive took fewer than three settings in
    training (``CURVE_MIN_SPREAD``) gets ``c = 0``. Returns ``(a, b, c, x0)``, each (M,);
    with ``curve`` False the line ``(a, b)`` of ``y = a + b x`` (a loosely tied follower,
    whose residual a recipe moves more than the law's shape).

    >>> x = np.array([[1.0, 2.0, 3.0, 4.0]])
    >>> [float(v[0]) for v in fit_curve(x, 1.0 + x**2)]
    [7.25, 5.0, 1.0, 2.5]
    """
    ok = np.isfinite(x) & np.isfinite(y)
    n = np.maximum(ok.sum(axis=1), 1)
    x0, ym = _sums(ok, x, y)
    x0, ym = x0 / n, ym / n
    u = np.where(ok, x - x0[:, None], 0.0)
    u2m = _sums(ok, u * u)[0] / n
    v, dy = np.where(ok, u * u - u2m[:, None], 0.0), np.where(ok, y - ym[:, None], 0.0)
    suu, suv, svv, suy, svy = _sums(ok, u * u, u * v, v * v, u * dy, v * dy)
    if not curve:
        b = np.where(suu > 0, suy / np.where(suu > 0, suu, 1.0), 0.0)
        return ym - b * x0, b
    det = suu * svv - suv * suv
    with np.errstate(invalid="ignore", divide="ignore"):
        curvy = (det / suu) / n  # variance of u**2 that u does not explain
        good = (suu > 0) & (curvy > CURVE_MIN_SPREAD * (suu / n) ** 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        b = np.where(good, (svv * suy - suv * svy) / det, np.where(suu > 0, suy / suu, 0.0))
        c = np.where(good, (suu * svy - suv * suy) / det, 0.0)
    return ym - c * u2m, b, c, x0


def drive_curve(coef: tuple[np.ndarray, ...], x: np.ndarray) -> np.ndarray:
    """A follower's expected value (M, T) at drive ``x``: ``(a, b)`` a line, else a curve."""
    if len(coef) == 2:
        a, b = coef
        return a[:, None] + b[:, None] * x
    a, b, c, x0 = coef
    u = x - x0[:, None]
    return a[:, None] + b[:, None] * u + c[:, None] * u * u


def fit_drive(sig: Signals, min_corr: float = 0.7, min_followers: int = 2) -> Drive | None:
    """Find the drive of a machine type from training signals, if it has one.

    The drive is the level signal with the most followers (pooled correlation of the
    per-machine-centred series at least ``min_corr``); it needs ``min_followers``.
    Conditioning on it makes a follower's baseline hold at every drive setting: a
    jet's nozzle pressure at 60 % pump speed is normal, at 95 % it is not.
    """
    levels = [k for k, n in enumerate(sig.names) if n == sig.fields[k]]
    cent = {k: _centered(sig.values[..., k]) for k in levels}
    best, followers = None, []
    for c in levels:
        near = [f for f in levels if f != c and abs(_corr(cent[c], cent[f])) >= min_corr]
        if len(near) > len(followers):
            best, followers = c, near
    if best is None or len(followers) < min_followers:
        return None
    x = sig.values[..., best]
    corr = {sig.names[f]: abs(_corr(cent[best], cent[f])) for f in followers}
    coef = {
        sig.names[f]: fit_curve(x, sig.values[..., f], corr[sig.names[f]] >= EXTRAPOLATE_CORR)
        for f in followers
    }
    return Drive(sig.names[best], coef, _drive_span(x), corr)


#: A drive line is trusted this far (share of the training range) beyond the range.
SPAN_MARGIN = 0.1
#: A follower this tightly tied to its drive (pooled correlation) is trusted beyond the
#: span too: its line is physics (a nozzle's pressure and its pump), not a recipe habit.
EXTRAPOLATE_CORR = 0.95
#: Quantiles of the training drive values that bound its span.
SPAN_Q = 0.005


def _drive_span(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per machine, the drive values a follower's line was fitted over (``SPAN_Q``).

    Outside it (a recipe never run in training) the line extrapolates: residuals there
    are not evidence of a fault.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        lo, hi = np.nanquantile(x, [SPAN_Q, 1 - SPAN_Q], axis=1)
    pad = SPAN_MARGIN * (hi - lo)
    return lo - pad, hi + pad


def masked(sig: Signals, keep: np.ndarray) -> Signals:
    """``sig`` with every signal blank where ``keep`` (M, T) is False."""
    return Signals(
        sig.names, sig.fields, np.where(keep[..., None], sig.values, np.nan), sig.running
    )


def with_drive(sig: Signals, drive: Drive | None) -> Signals:
    """``sig`` plus each follower's residual from its drive line (``f:vs:<drive>``)."""
    if drive is None or drive.field not in sig.names:
        return sig
    x_all = sig.values[..., sig.names.index(drive.field)]
    x_seen = x_all
    if drive.span is not None:
        lo, hi = drive.span
        known = np.isfinite(lo)[:, None]  # a machine never seen running: no span
        with np.errstate(invalid="ignore"):
            inside = (x_all >= lo[:, None]) & (x_all <= hi[:, None])
        x_seen = np.where(inside | ~known, x_all, np.nan)
    names, fields, extra = list(sig.names), list(sig.fields), []
    for f, coef in drive.coef.items():
        if f in sig.names:
            tight = drive.corr.get(f, 1.0) >= EXTRAPOLATE_CORR
            if tight and len(coef) == 4:  # a curve pinned by 3+ settings extrapolates
                x = np.where((coef[2] != 0)[:, None], x_all, x_seen)
            else:
                x = x_all if tight else x_seen
            y = sig.values[..., sig.names.index(f)]
            names.append(f"{f}:vs:{drive.field}")
            fields.append(f)
            extra.append(y - drive_curve(coef, x))
    if not extra:
        return sig
    values = np.concatenate([sig.values, np.stack(extra, axis=2)], axis=2)
    return Signals(names, fields, values, sig.running)
