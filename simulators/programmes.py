"""Jet-dyeing programmes as data: the recipe tables a dyeing machine runs.

A :class:`Recipe` is a tuple of :class:`Step` rows plus the shade-addition block that
runs when the sample after dyeing is off shade. :func:`compile_recipes` flattens every
recipe into one :class:`StepTable` of numpy arrays, so a dyeing group finds each
machine's current step parameters with one fancy index per tick instead of a loop.
Ranges (°C, °C/min, minutes, pH, mS/cm) are drawn once per batch when a step starts.
Values follow the domain spec §1.3 ([TP-ht] for HT polyester; reactive cotton is E).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "BATHS",
    "CLEAN",
    "DEFAULT_RECIPES",
    "STEP_CODES",
    "Recipe",
    "Step",
    "StepTable",
    "bath_filled",
    "bath_level",
    "compile_recipes",
]

#: Step codes a dyeing controller reports (domain spec §2).
STEP_CODES = (
    "FILL",
    "HEAT",
    "HOLD",
    "DOSE",
    "COOL",
    "SAMPLE",
    "ADD",
    "DRAIN",
    "RINSE",
    "UNLOAD",
    "CLEAN",
)
#: What a step does with the bath: keep it, fill a fresh one over the step, rinse (fill
#: in the first 30 %, drain in the last 20 %), drain it, or run with the machine empty.
BATHS = ("keep", "fill", "rinse", "drain", "empty")
KEEP, FILL, RINSE, DRAIN, EMPTY = range(len(BATHS))
RINSE_FILL, RINSE_DRAIN = 0.3, 0.2

Span = tuple[float, float]


@dataclass(frozen=True)
class Step:
    """One programme step; spans are ``(low, high)`` ranges drawn per batch.

    ``target`` is the temperature the controller drives to (``None``: keep the current
    setpoint). ``grad`` makes the setpoint ramp at that many °C/min; without it a
    ``COOL`` ramps over ``minutes`` and other steps jump. ``HEAT`` and ``COOL`` end when
    the liquor reaches the target, every other step after ``minutes``. ``control=False``
    switches the temperature controller off (filling, draining). Dosing moves pH toward
    ``ph`` and adds ``cond`` mS/cm over the first 85 % of the step.
    """

    code: str
    minutes: Span = (0.0, 0.0)
    target: Span | None = None
    grad: Span | None = None
    ph: Span | None = None
    cond: Span = (0.0, 0.0)
    bath: str = "keep"
    water_c: float = 35.0
    pump_pct: float = 85.0
    control: bool = True

    def __post_init__(self) -> None:
        if self.code not in STEP_CODES or self.bath not in BATHS:
            raise ValueError(f"unknown step code or bath in {self!r}")


@dataclass(frozen=True)
class Recipe:
    """A dyeing programme: main steps (one ``SAMPLE``) and a shade-addition block.

    ``weight`` is the recipe's share of batches, ``add_bias`` raises its chance of a
    shade addition (dark shades), ``retention_l_kg`` is the liquor the fabric holds
    after a drain, which sets how much each rinse dilutes; ``clean_p`` is the chance
    that the machine is washed out (``CLEAN``) after the batch.
    """

    recipe_id: str
    steps: tuple[Step, ...]
    add_block: tuple[Step, ...]
    weight: float = 1.0
    add_bias: float = 0.0
    retention_l_kg: float = 2.5
    fabric_cp: float = 1.3
    clean_p: float = 0.05

    def __post_init__(self) -> None:
        samples = [s.code for s in self.steps].count("SAMPLE")
        if samples != 1 or not self.add_block or self.add_block[-1].code != "SAMPLE":
            raise ValueError(f"{self.recipe_id}: one SAMPLE step; add block must end in SAMPLE")


def _fill(water_c: float = 40.0, minutes: Span = (6, 10)) -> Step:
    return Step("FILL", minutes, bath="fill", water_c=water_c, pump_pct=60.0, control=False)


def _drain(minutes: Span = (6, 10)) -> Step:
    return Step("DRAIN", minutes, bath="drain", pump_pct=60.0, control=False)


def _rinse(water_c: float = 40.0, minutes: Span = (10, 15)) -> Step:
    return Step("RINSE", minutes, bath="rinse", water_c=water_c, pump_pct=75.0, control=False)


def _at(c: float) -> Span:
    return (c, c)


_UNLOAD = Step("UNLOAD", (15, 25), bath="empty", pump_pct=0.0, control=False)
#: Between batches after dark shades: a hot caustic wash of the empty machine.
CLEAN = Step("CLEAN", (30, 50), bath="rinse", water_c=60.0, pump_pct=90.0, control=False)

_PES_HT = (
    _fill(45.0),
    Step("DOSE", (8, 12), _at(45), ph=(4.5, 5.0), cond=(0.8, 1.5)),  # acid, dispersant
    Step("DOSE", (8, 12), _at(45), cond=(0.3, 0.8)),  # disperse dye
    Step("HEAT", target=(70, 80), grad=(2.0, 3.0)),
    Step("HEAT", target=(130, 135), grad=(1.0, 1.5), pump_pct=95.0),
    Step("HOLD", (30, 60), pump_pct=95.0),
    Step("COOL", (15, 30), target=(70, 80)),
    Step("SAMPLE", (5, 10), pump_pct=70.0),
    _drain(),
    _rinse(50.0),
    _fill(60.0, (5, 8)),  # reduction clear bath
    Step("DOSE", (8, 12), _at(60), ph=(11.0, 11.8), cond=(6.0, 10.0)),
    Step("HEAT", target=(78, 82), grad=(2.5, 3.5)),
    Step("HOLD", (15, 20)),
    _drain(),
    _rinse(50.0),
    _fill(40.0, (5, 8)),  # neutralise
    Step("DOSE", (8, 12), _at(40), ph=(5.5, 6.5), cond=(0.3, 0.8)),
    _drain(),
    _UNLOAD,
)
_PES_ADD = (
    Step("ADD", (8, 12), cond=(0.2, 0.5)),
    Step("HEAT", target=(130, 135), grad=(1.0, 1.5), pump_pct=95.0),
    Step("HOLD", (15, 25), pump_pct=95.0),
    Step("COOL", (15, 20), target=(70, 80)),
    Step("SAMPLE", (5, 10), pump_pct=70.0),
)


def _soaping() -> tuple[Step, ...]:
    return (
        _fill(60.0, (5, 8)),
        Step("DOSE", (6, 10), _at(60), cond=(0.5, 1.0)),  # soaping agent
        Step("HEAT", target=(90, 95), grad=(2.0, 3.0)),
        Step("HOLD", (10, 15)),
        _drain(),
        _rinse(50.0),
    )


def _reactive(salt: Span, rinses: int, soapings: int) -> tuple[Step, ...]:
    return (
        _fill(40.0),
        Step("DOSE", (8, 12), _at(50), ph=(10.8, 11.5), cond=(6.0, 10.0)),  # scour/bleach
        Step("HEAT", target=(95, 98), grad=(2.0, 3.0)),
        Step("HOLD", (30, 45)),
        Step("COOL", (8, 12), target=(75, 80)),
        _drain(),
        _rinse(50.0),
        _fill(40.0),  # dye bath
        Step("HEAT", target=(60, 60), grad=(2.0, 3.0)),
        Step("DOSE", (15, 25), ph=(6.5, 7.5), cond=salt),  # salt: conductivity rises
        Step("DOSE", (15, 25), cond=(1.0, 3.0)),  # reactive dye
        Step("HOLD", (10, 20)),  # migration
        Step("DOSE", (20, 30), ph=(10.5, 11.0), cond=(8.0, 14.0)),  # progressive soda
        Step("HOLD", (45, 60)),  # fixation
        Step("SAMPLE", (5, 10), pump_pct=70.0),
        _drain(),
        *(_rinse(40.0) for _ in range(rinses)),
        _fill(40.0, (5, 8)),  # acid neutralise
        Step("DOSE", (8, 12), _at(50), ph=(5.0, 6.0), cond=(0.3, 0.8)),
        _drain(),
        *(s for _ in range(soapings) for s in _soaping()),
        _fill(40.0, (5, 8)),
        Step("DOSE", (15, 20), _at(40), ph=(5.5, 6.5), cond=(0.2, 0.5)),  # softener
        _drain(),
        _UNLOAD,
    )


_REACTIVE_ADD = (
    Step("ADD", (15, 20), ph=(10.5, 11.0), cond=(1.0, 3.0)),  # dye and alkali top-up
    Step("HOLD", (20, 30)),
    Step("SAMPLE", (5, 10), pump_pct=70.0),
)

#: A dyehouse's mix: HT polyester and reactive cotton in light, medium and dark shades.
DEFAULT_RECIPES: tuple[Recipe, ...] = (
    Recipe("PES-HT-NAVY", _PES_HT, _PES_ADD, weight=0.35, retention_l_kg=2.0, fabric_cp=1.2),
    Recipe("CO-REACT-LIGHT", _reactive((40, 55), 2, 2), _REACTIVE_ADD, weight=0.2),
    Recipe("CO-REACT-MED", _reactive((50, 65), 2, 2), _REACTIVE_ADD, weight=0.25, add_bias=0.03),
    Recipe(
        "CO-REACT-BLACK",
        _reactive((65, 80), 3, 2),
        _REACTIVE_ADD,
        weight=0.2,
        add_bias=0.08,
        clean_p=0.4,
    ),
)


@dataclass(frozen=True)
class StepTable:
    """Every recipe's steps flattened into arrays of shape (rows,).

    Row 0 is ``IDLE`` (no step: loading, waiting, off), the last row is ``CLEAN``.
    ``entry_c`` is the liquor temperature a step starts at in a nominal run (for
    machines that start mid-programme).
    ``next_row`` is the row after a step (-1: programme done); a ``SAMPLE`` row goes to
    ``add_row`` instead when the shade is off. Spans are split into ``*_lo``/``*_hi``;
    NaN marks "not set" (no target, no ramp, no pH dosing).

    Examples
    --------
    >>> table = compile_recipes(DEFAULT_RECIPES[:1])
    >>> first = int(table.first_row[0])
    >>> [table.codes[i] for i in table.code_idx[first:first + 4]]
    ['FILL', 'DOSE', 'DOSE', 'HEAT']
    >>> table.codes[table.code_idx[table.clean_row]]
    'CLEAN'
    """

    recipes: tuple[Recipe, ...]
    codes: tuple[str, ...]
    code_idx: np.ndarray
    recipe_idx: np.ndarray
    minutes_lo: np.ndarray
    minutes_hi: np.ndarray
    target_lo: np.ndarray
    target_hi: np.ndarray
    grad_lo: np.ndarray
    grad_hi: np.ndarray
    ph_lo: np.ndarray
    ph_hi: np.ndarray
    cond_lo: np.ndarray
    cond_hi: np.ndarray
    bath: np.ndarray
    water_c: np.ndarray
    pump_pct: np.ndarray
    control: np.ndarray
    until_temp: np.ndarray
    is_sample: np.ndarray
    next_row: np.ndarray
    add_row: np.ndarray
    first_row: np.ndarray
    main_rows: np.ndarray
    clean_row: int
    entry_c: np.ndarray

    @property
    def code_names(self) -> np.ndarray:
        """Step code per row as an object array (``None`` for ``IDLE``)."""
        names = [None if i < 0 else self.codes[i] for i in self.code_idx]
        return np.array(names, dtype=object)


_IDLE = Step("FILL", bath="empty", pump_pct=0.0, control=False)  # row 0; code hidden


def compile_recipes(recipes: Sequence[Recipe]) -> StepTable:
    """Flatten recipes into one :class:`StepTable` (row 0 idle, last row ``CLEAN``)."""
    rows: list[tuple[Step, int]] = [(_IDLE, -1)]
    next_row, add_row, first, main = [-1], [-1], [], []
    for r, recipe in enumerate(recipes):
        start = len(rows)
        first.append(start)
        n_main, n_add = len(recipe.steps), len(recipe.add_block)
        add_start = start + n_main
        sample = start + [s.code for s in recipe.steps].index("SAMPLE")
        for k, step in enumerate(recipe.steps):
            rows.append((step, r))
            main.append(start + k)
            next_row.append(start + k + 1 if k + 1 < n_main else -1)
            add_row.append(add_start if step.code == "SAMPLE" else -1)
        for k, step in enumerate(recipe.add_block):
            rows.append((step, r))
            last = k + 1 == n_add
            next_row.append(sample + 1 if last else add_start + k + 1)
            add_row.append(add_start if last else -1)
    clean_row = len(rows)
    rows.append((CLEAN, -1))
    next_row.append(-1)
    add_row.append(-1)

    def col(get: Callable[[Step], object], dtype: type = float) -> np.ndarray:
        return np.array([get(s) for s, _ in rows], dtype=dtype)

    nan = float("nan")
    code_idx = col(lambda s: STEP_CODES.index(s.code), int)
    code_idx[0] = -1
    return StepTable(
        recipes=tuple(recipes),
        codes=STEP_CODES,
        code_idx=code_idx,
        recipe_idx=np.array([r for _, r in rows]),
        minutes_lo=col(lambda s: s.minutes[0]),
        minutes_hi=col(lambda s: s.minutes[1]),
        target_lo=col(lambda s: s.target[0] if s.target else nan),
        target_hi=col(lambda s: s.target[1] if s.target else nan),
        grad_lo=col(lambda s: s.grad[0] if s.grad else nan),
        grad_hi=col(lambda s: s.grad[1] if s.grad else nan),
        ph_lo=col(lambda s: s.ph[0] if s.ph else nan),
        ph_hi=col(lambda s: s.ph[1] if s.ph else nan),
        cond_lo=col(lambda s: s.cond[0]),
        cond_hi=col(lambda s: s.cond[1]),
        bath=col(lambda s: BATHS.index(s.bath), int),
        water_c=col(lambda s: s.water_c),
        pump_pct=col(lambda s: s.pump_pct),
        control=col(lambda s: s.control, bool),
        until_temp=col(lambda s: s.code in ("HEAT", "COOL"), bool),
        is_sample=col(lambda s: s.code == "SAMPLE", bool),
        next_row=np.array(next_row),
        add_row=np.array(add_row),
        first_row=np.array(first),
        main_rows=np.array(main),
        clean_row=clean_row,
        entry_c=_nominal_entry_c(rows),
    )


def _nominal_entry_c(rows: list[tuple[Step, int]]) -> np.ndarray:
    """Walk the steps: fresh water sets the bath temperature, targets move it."""
    entry, temp = [], 30.0
    for step, _ in rows:
        entry.append(temp)
        if step.bath in ("fill", "rinse"):
            temp = step.water_c
        elif step.target is not None:
            temp = sum(step.target) / 2
    return np.array(entry)


def bath_level(bath: np.ndarray, frac: np.ndarray) -> np.ndarray:
    """Liquor level as a share of the bath volume, by bath action and step progress.

    >>> bath_level(np.array([FILL, RINSE, DRAIN]), np.array([0.5, 0.5, 0.25])).tolist()
    [0.5, 1.0, 0.75]
    """
    rinse = np.minimum(np.minimum(frac / RINSE_FILL, 1.0), (1 - frac) / RINSE_DRAIN)
    return np.choose(bath, [np.ones_like(frac), frac, rinse, 1 - frac, np.zeros_like(frac)])


def bath_filled(bath: np.ndarray, frac: np.ndarray) -> np.ndarray:
    """Share of a fresh bath the fill valve has let in by ``frac`` of the step."""
    rinse = np.minimum(frac / RINSE_FILL, 1.0)
    return np.where(bath == FILL, frac, np.where(bath == RINSE, rinse, 0.0))
