"""Cluster scenarios as config: factories, sizes, halls, shift calendars and fault plans.

A scenario is one TOML file (``simulators/scenarios/*.toml``; ``default`` is small
enough for 2 cores in real time, ``large`` is for benchmarks). It names the cluster and
the seed, and lists factories by archetype (spec §5) and a fault plan (spec §3). Every
key is checked here, with an error that names it, so a typo fails at start-up instead
of silently simulating the wrong mill.

Schema (``[]`` = optional, defaults in brackets)::

    name, cluster, seed, [step_s = 1]          step_s is the simulation tick in seconds
    [[factories]]
    id, archetype, timezone                    archetype: one of ARCHETYPES
    [shifts = "3x8"], [shift_start = "06:00"]  "3x8" (A/B/C) or "2x12" (A/B)
    [weekly_off]                               a weekday: that production day is not planned
    [maintenance = [{weekday, start, hours}]]  weekly windows in local time (PLANNED_MAINT)
    [scale] or [machines = {loom_airjet = 96}] scale the archetype, or override some counts
    [articles = [{name, machine_type, share,   styles/articles; defaults in DEFAULT_ARTICLES
                  speed_mul, stop_mul,
                  picks_per_cm, warp_weft_ratio}]]
    [[faults]]
    type                                       one of FAULT_TYPES
    [machine_types = "all"], [factories]       "all" = every type the fault can hit
    per_machine_week or count                  rate per target unit and week, or exact count
    [severity = [0.3, 1.0]], [duration_h]      [min, max] ranges the fault engine draws from
    [scope]                                    "hall" for correlated faults (their default)

Halls follow the machine type: looms fill ``weave1, weave2…`` (48 per hall), knitting
``knit1…`` (60), dyeing jets ``wet1…`` (30), stenters ``finish1…`` (6); machines of a
type spread evenly over as few halls as hold them. Each weaving and knitting hall has one
``hall_env`` climate sensor ``env-<hall>`` (spec §1.1, §1.2). Machine ids are the type
prefix (``l`` air-jet, ``r`` rapier, ``k`` knitting, ``d`` dyeing, ``s`` stenter) and a
4-digit number from 0001, unique within the factory.

Example
-------
>>> s = load_scenario("default")
>>> s.cluster, [f.id for f in s.factories], s.machine_count()
('c1', ['f01', 'f02', 'f03'], 86)
>>> [(g.hall, g.machine_type, len(g.machine_ids)) for g in s.layout("f03")]
[('wet1', 'dye_jet', 10), ('finish1', 'stenter', 2)]
"""

from __future__ import annotations

import math
import tomllib
from collections import Counter
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from millwatch.contract import MachineAddress, check_id
from millwatch.site import FactorySite, parse_hhmm
from simulators.calendar import WEEKDAYS, MaintenanceWindow, ShiftCalendar, parse_weekday
from simulators.signatures import KINDS

__all__ = [
    "ARCHETYPES",
    "CORRELATED_FAULTS",
    "DEFAULT_ARTICLES",
    "FAULT_TYPES",
    "HALL_RULES",
    "ArticleConfig",
    "FactoryConfig",
    "FaultConfig",
    "HallGroup",
    "MaintenanceConfig",
    "Scenario",
    "ScenarioError",
    "available_scenarios",
    "load_scenario",
    "parse_scenario",
]

ProductionType = Literal["loom_airjet", "loom_rapier", "knit_circular", "dye_jet", "stenter"]
Archetype = Literal["weaving_airjet", "weaving_rapier", "knitting", "dyehouse", "composite"]
LOOMS: Final = frozenset({"loom_airjet", "loom_rapier"})
_PROCESS: Final = ("loom_airjet", "loom_rapier", "knit_circular", "dye_jet", "stenter")

#: Default machine counts per archetype, inside the spec §5 ranges.
ARCHETYPES: Final[dict[str, dict[str, int]]] = {
    "weaving_airjet": {"loom_airjet": 96},
    "weaving_rapier": {"loom_rapier": 48},
    "knitting": {"knit_circular": 48},
    "dyehouse": {"dye_jet": 12, "stenter": 2},
    "composite": {"knit_circular": 60, "dye_jet": 30, "stenter": 3},
}


@dataclass(frozen=True)
class HallRule:
    """How a machine type is housed: hall name stem, id prefix, machines per hall, climate."""

    stem: str
    prefix: str
    per_hall: int
    climate_sensor: bool


HALL_RULES: Final[dict[str, HallRule]] = {
    "loom_airjet": HallRule("weave", "l", 48, climate_sensor=True),
    "loom_rapier": HallRule("weave", "r", 48, climate_sensor=True),
    "knit_circular": HallRule("knit", "k", 60, climate_sensor=True),
    "dye_jet": HallRule("wet", "d", 30, climate_sensor=False),
    "stenter": HallRule("finish", "s", 6, climate_sensor=False),
}
MAX_PER_TYPE: Final = 9999  # four-digit machine numbers

#: Every spec §3 fault type and the machine types it can hit (the fault catalogue's).
FAULT_TYPES: Final[dict[str, tuple[str, ...]]] = {
    name: kind.machine_types for name, kind in KINDS.items()
}
#: Faults that strike every machine of a hall at once (scope "hall").
CORRELATED_FAULTS: Final = frozenset(name for name, kind in KINDS.items() if kind.scope == "hall")


class ScenarioError(ValueError):
    """A scenario that cannot be loaded; the message names the source and each bad key."""


@dataclass(frozen=True)
class HallGroup:
    """The machines of one type in one hall of a factory."""

    hall: str
    machine_type: str
    machine_ids: list[str]

    def addresses(self, cluster: str, factory: str) -> list[MachineAddress]:
        """Contract addresses of the group's machines.

        >>> HallGroup("weave1", "loom_airjet", ["l0001"]).addresses("c1", "f01")[0].machine
        'l0001'
        """
        return [MachineAddress(cluster, factory, self.hall, m) for m in self.machine_ids]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MaintenanceConfig(_Strict):
    """A weekly planned-maintenance window in the factory's local time."""

    weekday: str
    start: str
    hours: float = Field(gt=0, le=168)

    @field_validator("weekday")
    @classmethod
    def _weekday(cls, value: str) -> str:
        return WEEKDAYS[parse_weekday(value)]

    @field_validator("start")
    @classmethod
    def _start(cls, value: str) -> str:
        parse_hhmm(value)
        return value

    def window(self) -> MaintenanceWindow:
        """The calendar's view of this window."""
        return MaintenanceWindow(self.weekday, self.start, self.hours)


class ArticleConfig(_Strict):
    """A style (loom), article (knitting), recipe family (dyeing) or finish (stenter).

    ``share`` weights how many of the type's machines run it; ``speed_mul`` scales the
    nominal speed (rpm, m/min; the programme pace for dyeing) and ``stop_mul`` the stop
    and alarm rates. For looms, ``picks_per_cm`` turns picks into metres and
    ``warp_weft_ratio`` splits the warp + weft stop rate (spec default 3:6 = 0.5; one
    Bangladeshi cotton mill logged 58:34 ≈ 1.7). ``machine_type`` may be left out when
    the factory has one production type.
    """

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")
    machine_type: ProductionType | None = None
    share: float = Field(1.0, gt=0)
    speed_mul: float = Field(1.0, gt=0, le=2)
    stop_mul: float = Field(1.0, gt=0, le=10)
    picks_per_cm: float | None = Field(None, gt=0, le=200)
    warp_weft_ratio: float | None = Field(None, gt=0, le=20)


# name, share, speed_mul, stop_mul, picks_per_cm, warp_weft_ratio (E, inside spec §1-§2).
_ARTICLE_TABLE: Final = {
    "loom_airjet": [
        ("PC-7712", 0.5, 1.0, 1.0, 28, 0.5),  # poly-cotton shirting; weft stops 2x warp
        ("CO-4020", 0.3, 1.0, 1.1, 36, 0.6),  # cotton poplin
        ("DN-3118", 0.2, 0.85, 1.3, 20, 1.7),  # denim 3/1; warp-heavy stop mix [HAQ19]
    ],
    "loom_rapier": [
        ("TW-2210", 0.5, 1.0, 1.0, 26, 0.8),  # twill
        ("DB-1450", 0.3, 0.95, 1.1, 32, 0.7),  # dobby shirting
        ("JQ-0870", 0.2, 0.75, 1.5, 40, 1.0),  # jacquard upholstery
    ],
    "knit_circular": [
        ("SJ-160", 0.5, 1.0, 1.0, None, None),  # single jersey 160 g/m2
        ("SJL-190", 0.2, 0.9, 1.4, None, None),  # jersey with lycra: LYCRA stops
        ("RIB-220", 0.2, 0.85, 1.2, None, None),
        ("INT-240", 0.1, 0.8, 1.1, None, None),  # interlock
    ],
    "dye_jet": [
        ("PES-HT", 0.4, 1.0, 1.0, None, None),  # HT polyester, 4-6 h
        ("REACTIVE-LIGHT", 0.35, 1.0, 1.0, None, None),
        ("REACTIVE-DARK", 0.25, 0.85, 1.2, None, None),  # 6-10 h, most baths
    ],
    "stenter": [
        ("DRY-KNIT", 0.6, 1.0, 1.0, None, None),
        ("HEATSET-PES", 0.4, 0.8, 1.0, None, None),
    ],
}
_ARTICLE_KEYS: Final = ("name", "share", "speed_mul", "stop_mul", "picks_per_cm", "warp_weft_ratio")
#: Articles a factory runs when its config names none for a machine type.
DEFAULT_ARTICLES: Final[dict[str, tuple[ArticleConfig, ...]]] = {
    machine_type: tuple(
        ArticleConfig.model_validate(
            {"machine_type": machine_type, **dict(zip(_ARTICLE_KEYS, row, strict=True))}
        )
        for row in rows
    )
    for machine_type, rows in _ARTICLE_TABLE.items()
}

_Count = Annotated[int, Field(ge=0, le=MAX_PER_TYPE)]


class FactoryConfig(FactorySite):
    """One factory: archetype, size, local calendar and articles."""

    archetype: Archetype
    weekly_off: str | None = None
    maintenance: list[MaintenanceConfig] = Field(default_factory=list)
    scale: float | None = Field(None, gt=0, le=100)
    machines: dict[ProductionType, _Count] | None = None
    articles: list[ArticleConfig] | None = None

    @field_validator("weekly_off")
    @classmethod
    def _weekly_off(cls, value: str | None) -> str | None:
        return None if value is None else WEEKDAYS[parse_weekday(value)]

    @model_validator(mode="after")
    def _consistent(self) -> FactoryConfig:
        if self.scale is not None and self.machines is not None:
            raise ValueError("give either scale or machines, not both")
        counts = self.counts()
        if not any(counts.values()):
            raise ValueError(f"factory {self.id!r} has no machines")
        for article in self.articles or ():
            self._check_article(article, counts)
        return self

    def _check_article(self, article: ArticleConfig, counts: dict[str, int]) -> None:
        machine_type = article.machine_type or self.primary_type()
        if not counts.get(machine_type):
            raise ValueError(f"article {article.name!r}: factory has no {machine_type} machines")
        if machine_type not in LOOMS and (article.picks_per_cm or article.warp_weft_ratio):
            raise ValueError(
                f"article {article.name!r}: picks_per_cm and warp_weft_ratio are for looms only"
            )

    def counts(self) -> dict[str, int]:
        """Production machines per type: the archetype's sizes, scaled or overridden.

        Scaling rounds half up and keeps at least one machine of each archetype type;
        ``machines`` replaces the counts it lists (0 removes a type) and keeps the rest.
        Types without machines are left out.
        """
        base = ARCHETYPES[self.archetype]
        if self.scale is not None:
            return {t: max(1, math.floor(n * self.scale + 0.5)) for t, n in base.items()}
        return {t: n for t, n in {**base, **(self.machines or {})}.items() if n}

    def primary_type(self) -> str:
        """The production type articles without ``machine_type`` belong to."""
        counts = self.counts()
        return next(t for t in _PROCESS if counts.get(t))

    def calendar(self) -> ShiftCalendar:
        """A fresh shift calendar for this factory (it caches, so keep one per factory)."""
        windows = [m.window() for m in self.maintenance]
        return ShiftCalendar(self.timezone, self.shifts, self.shift_start, self.weekly_off, windows)

    def layout(self) -> list[HallGroup]:
        """Machines by hall and type; see the module docstring for the naming rules."""
        groups: list[HallGroup] = []
        halls: Counter[str] = Counter()
        counts = self.counts()
        for machine_type in _PROCESS:
            rule, n = HALL_RULES[machine_type], counts.get(machine_type, 0)
            n_halls = math.ceil(n / rule.per_hall)
            first = 1
            for k in range(n_halls):
                size = n // n_halls + (k < n % n_halls)
                halls[rule.stem] += 1
                hall = f"{rule.stem}{halls[rule.stem]}"
                ids = [f"{rule.prefix}{i:04d}" for i in range(first, first + size)]
                groups.append(HallGroup(hall, machine_type, ids))
                if rule.climate_sensor:
                    groups.append(HallGroup(hall, "hall_env", [f"env-{hall}"]))
                first += size
        return groups


class FaultConfig(_Strict):
    """One entry of the fault plan.

    The target unit is a machine, or a hall for ``scope = "hall"`` (correlated faults,
    which strike every machine of the hall at once). ``per_machine_week`` is the
    expected number of onsets per target unit and week of simulated time; ``count`` is
    the exact number of onsets per run over all targets (a backfill knows its length).
    ``severity`` (0-1) and ``duration_h`` are ``[min, max]`` ranges the fault engine
    draws from; ``duration_h`` overrides the lead time from onset to failure (or to the
    end, for faults without a functional stop), else the spec §3 lead times apply.
    ``machine_types = "all"`` (the default) means every type in ``FAULT_TYPES[type]``.
    """

    type: str
    machine_types: tuple[Literal[ProductionType, "hall_env"], ...] = ()
    factories: tuple[str, ...] | None = None
    per_machine_week: float | None = Field(None, ge=0)
    count: int | None = Field(None, ge=0)
    severity: tuple[float, float] = (0.3, 1.0)
    duration_h: tuple[float, float] | None = None
    scope: Literal["machine", "hall"] = "machine"

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: Any) -> Any:
        # Fill the defaults that depend on the fault type, before the fields are checked.
        if not isinstance(data, dict) or data.get("type") not in FAULT_TYPES:
            return data
        kind = data["type"]
        data = dict(data)
        if data.get("machine_types", "all") == "all":
            data["machine_types"] = FAULT_TYPES[kind]
        data.setdefault("scope", "hall" if kind in CORRELATED_FAULTS else "machine")
        return data

    @field_validator("type")
    @classmethod
    def _type(cls, value: str) -> str:
        if value not in FAULT_TYPES:
            raise ValueError(f"fault type {value!r} must be one of {', '.join(FAULT_TYPES)}")
        return value

    @field_validator("severity")
    @classmethod
    def _severity(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not 0 <= value[0] <= value[1] <= 1:
            raise ValueError("severity must be [min, max] with 0 <= min <= max <= 1")
        return value

    @field_validator("duration_h")
    @classmethod
    def _duration(cls, value: tuple[float, float] | None) -> tuple[float, float] | None:
        if value is not None and not 0 < value[0] <= value[1]:
            raise ValueError("duration_h must be [min, max] with 0 < min <= max")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> FaultConfig:
        if (self.per_machine_week is None) == (self.count is None):
            raise ValueError(f"fault {self.type!r}: give exactly one of per_machine_week, count")
        wrong = [t for t in self.machine_types if t not in FAULT_TYPES[self.type]]
        if wrong:
            hits = ", ".join(FAULT_TYPES[self.type])
            raise ValueError(f"fault {self.type!r} cannot hit {wrong} (it hits: {hits})")
        if (self.scope == "hall") != (self.type in CORRELATED_FAULTS):
            raise ValueError(
                f"fault {self.type!r}: scope 'hall' is for the correlated faults "
                f"{sorted(CORRELATED_FAULTS)} only, and they need it"
            )
        return self


class Scenario(_Strict):
    """A simulated cluster: its factories and the faults to inject into them."""

    name: str = Field(min_length=1, max_length=64)
    cluster: str
    seed: int = Field(ge=0)
    step_s: float = Field(1.0, gt=0, le=60)
    factories: list[FactoryConfig] = Field(min_length=1)
    faults: list[FaultConfig] = Field(default_factory=list)

    @field_validator("cluster")
    @classmethod
    def _cluster(cls, value: str) -> str:
        return check_id(value, "cluster")

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        ids = [f.id for f in self.factories]
        if dupes := sorted(i for i, n in Counter(ids).items() if n > 1):
            raise ValueError(f"factory ids must be unique; repeated: {dupes}")
        for number, fault in enumerate(self.faults):
            unknown = sorted(set(fault.factories or ()) - set(ids))
            if unknown:
                raise ValueError(f"faults[{number}] ({fault.type}): unknown factories {unknown}")
            if not any(self.fault_targets(fault).values()):
                raise ValueError(
                    f"faults[{number}] ({fault.type}) hits no machine of its factories"
                )
        return self

    def factory(self, factory_id: str) -> FactoryConfig:
        """The factory with id ``factory_id`` (``KeyError`` naming the known ids)."""
        for factory in self.factories:
            if factory.id == factory_id:
                return factory
        raise KeyError(f"no factory {factory_id!r} in scenario {self.name!r}")

    def layout(self, factory_id: str) -> list[HallGroup]:
        """Halls and machine ids of one factory, hall_env sensors included."""
        return self.factory(factory_id).layout()

    def machine_count(self, factory_id: str | None = None) -> int:
        """Machines (hall_env sensors included) of one factory, or of the whole cluster.

        >>> load_scenario("default").machine_count("f01")
        49
        """
        factories = self.factories if factory_id is None else [self.factory(factory_id)]
        return sum(len(g.machine_ids) for f in factories for g in f.layout())

    def calendar(self, factory_id: str) -> ShiftCalendar:
        """A fresh shift calendar of one factory; keep it, it caches its current shift."""
        return self.factory(factory_id).calendar()

    def articles(self, factory_id: str, machine_type: str) -> list[ArticleConfig]:
        """Articles a factory runs on a machine type: its own, else ``DEFAULT_ARTICLES``.

        Each returned article has its ``machine_type`` filled in.

        >>> [a.name for a in load_scenario("default").articles("f02", "knit_circular")]
        ['SJ-160', 'SJL-190', 'RIB-220', 'INT-240']
        """
        factory = self.factory(factory_id)
        primary = factory.primary_type()
        own = [
            a.model_copy(update={"machine_type": a.machine_type or primary})
            for a in factory.articles or ()
        ]
        chosen = [a for a in own if a.machine_type == machine_type]
        return chosen or list(DEFAULT_ARTICLES.get(machine_type, ()))

    def fault_targets(self, fault: FaultConfig) -> dict[str, list[HallGroup]]:
        """Hall groups a fault may strike, by factory id (a group per hall: the hall unit).

        Correlated faults strike a whole group at once; the others one machine of it.
        """
        chosen = fault.factories or tuple(f.id for f in self.factories)
        return {
            factory_id: [
                g for g in self.layout(factory_id) if g.machine_type in fault.machine_types
            ]
            for factory_id in chosen
        }

    def expected_faults_per_week(self) -> dict[str, float]:
        """Expected onsets per simulated week by fault type, from the rate entries.

        ``count`` entries are per run, not per week, so they are left out.
        """
        expected: Counter[str] = Counter()
        for fault in self.faults:
            if fault.per_machine_week is None:
                continue
            groups = [g for gs in self.fault_targets(fault).values() for g in gs]
            units = (
                len(groups) if fault.scope == "hall" else sum(len(g.machine_ids) for g in groups)
            )
            expected[fault.type] += fault.per_machine_week * units
        return dict(expected)


def available_scenarios() -> list[str]:
    """Names of the scenarios packaged with millwatch.

    >>> available_scenarios()
    ['default', 'large']
    """
    folder = files("simulators.scenarios")
    return sorted(
        p.name.removesuffix(".toml") for p in folder.iterdir() if p.name.endswith(".toml")
    )


def load_scenario(name_or_path: str | Path) -> Scenario:
    """Load a packaged scenario by bare name (``"default"``) or any TOML file by path.

    Raises
    ------
    ScenarioError
        If the file is missing, is not TOML, or holds unknown keys or bad values.
    """
    text_name = str(name_or_path)
    if isinstance(name_or_path, Path) or "/" in text_name or text_name.endswith(".toml"):
        path = Path(name_or_path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ScenarioError(f"{path}: {exc}") from exc
        return parse_scenario(text, str(path))
    resource = files("simulators.scenarios") / f"{text_name}.toml"
    if not resource.is_file():
        known = ", ".join(available_scenarios())
        raise ScenarioError(f"no packaged scenario {text_name!r}; packaged: {known}")
    return parse_scenario(resource.read_text(encoding="utf-8"), f"{text_name}.toml")


def parse_scenario(text: str, source: str = "<string>") -> Scenario:
    r"""Validate scenario TOML text; ``source`` names it in errors.

    >>> parse_scenario('name = "x"\ncluster = "c1"\nseed = 1\ncolour = 3\n'
    ...                '[[factories]]\nid = "f1"\narchetype = "knitting"\ntimezone = "UTC"')
    Traceback (most recent call last):
    ...
    simulators.scenario.ScenarioError: <string>: colour: Extra inputs are not permitted
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{source}: not valid TOML: {exc}") from exc
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        problems = [_describe(error, data) for error in exc.errors()]
        sep = " " if len(problems) == 1 else "\n  "
        raise ScenarioError(f"{source}:{sep}{sep.join(problems)}") from None


def _describe(error: Any, data: dict[str, Any]) -> str:
    """``factories[1](f02).machines.hall_env (key): <message> (got ...)`` for one error."""
    path, node = "", data
    for part in error["loc"]:
        if isinstance(part, int):
            path += f"[{part}]"
            node = node[part] if isinstance(node, list) and part < len(node) else None
            if isinstance(node, dict) and isinstance(node.get("id"), str):
                path += f"({node['id']})"
        elif part == "[key]":
            path += " (key)"
        else:
            path += f".{part}" if path else str(part)
            node = node.get(part) if isinstance(node, dict) else None
    message = str(error["msg"]).removeprefix("Value error, ")
    given = error.get("input")
    scalar = isinstance(given, str | int | float) and error["type"] != "extra_forbidden"
    if scalar and repr(given) not in message:
        message += f" (got {given!r})"
    return f"{path}: {message}" if path else message
