"""Bodies of the asset registry's routes: what a client sends and what it gets back.

Per table, ``…Create`` is a POST body, ``…Update`` a PATCH body (only the fields it sets
change) and ``…Public`` a response. Bodies refuse unknown fields; ids follow the data
contract, a machine's class is one of the contract's machine types.

Example
-------
>>> MachineUpdate(vendor=None).model_dump(exclude_unset=True)
{'vendor': None}
>>> FactoryCreate(id="f01", name="Dhaka").timezone
'UTC'
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from api.routes.registry_common import ID_REGEX
from millwatch.contract import MACHINE_TYPES
from millwatch.site import parse_zone

__all__ = [
    "ArticleCreate",
    "ArticlePublic",
    "ArticleUpdate",
    "FactoryCreate",
    "FactoryPublic",
    "FactoryUpdate",
    "HallCreate",
    "HallPublic",
    "HallUpdate",
    "LineCreate",
    "LinePublic",
    "LineUpdate",
    "MachineCreate",
    "MachinePublic",
    "MachineUpdate",
]


def _zone(value: str) -> str:
    parse_zone(value)
    return value


def _machine_type(value: str) -> str:
    if value not in MACHINE_TYPES:
        raise ValueError(f"machine_type must be one of {', '.join(MACHINE_TYPES)}")
    return value


Id = Annotated[str, Field(pattern=ID_REGEX, examples=["weave1"])]
Name = Annotated[str, Field(max_length=200, examples=["Weaving hall 1"])]
Zone = Annotated[
    str, AfterValidator(_zone), Field(max_length=64, examples=["Asia/Dhaka"], description="IANA")
]
Shifts = Literal["3x8", "2x12"]
ShiftStart = Annotated[str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$", examples=["06:00"])]
MachineType = Annotated[
    str,
    AfterValidator(_machine_type),
    Field(examples=["loom_airjet"], json_schema_extra={"enum": list(MACHINE_TYPES)}),
]
Params = Annotated[
    dict[Annotated[str, Field(max_length=64)], float | int | str | bool],
    Field(
        max_length=64,
        description="Static parameters: width_cm, gauge, capacity_kg, feeders, zones…",
        examples=[{"width_cm": 190, "nominal_rpm": 850}],
    ),
]
Text = Annotated[str, Field(max_length=100, examples=["Toyota"])]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FactoryFields(_Body):
    """A factory's name and shift calendar (cut in its local time)."""

    name: Name
    timezone: Zone = "UTC"
    shifts: Shifts = "3x8"
    shift_start: ShiftStart = "06:00"


class FactoryCreate(FactoryFields):
    """A new factory of this cluster."""

    id: Id = Field(examples=["f01"])

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "f01",
                    "name": "Dhaka air-jet weaving",
                    "timezone": "Asia/Dhaka",
                    "shifts": "3x8",
                    "shift_start": "06:00",
                }
            ]
        }
    )


class FactoryUpdate(_Body):
    """Changed fields of a factory (others stay)."""

    name: Name | None = None
    timezone: Zone | None = None
    shifts: Shifts | None = None
    shift_start: ShiftStart | None = None


class FactoryPublic(FactoryFields):
    """A registered factory."""

    id: Id = Field(examples=["f01"])
    cluster: Id = Field(examples=["c1"])


class HallCreate(_Body):
    """A new hall (area) of a factory."""

    id: Id
    name: Name = ""


class HallUpdate(_Body):
    """Changed fields of a hall."""

    name: Name | None = None


class HallPublic(HallCreate):
    """A registered hall."""

    factory_id: Id = Field(examples=["f01"])


class LineCreate(_Body):
    """A new production line inside a hall."""

    id: Id = Field(examples=["line-a"])
    hall_id: Id
    name: Name = ""


class LineUpdate(_Body):
    """Changed fields of a line (its hall only while no machine is on it)."""

    hall_id: Id | None = None
    name: Name | None = None


class LinePublic(LineCreate):
    """A registered line."""

    factory_id: Id = Field(examples=["f01"])


class ArticleCreate(_Body):
    """A new article (fabric style, recipe family, finish)."""

    id: Id = Field(examples=["pc-7712"])
    name: Name = Field("", examples=["PC-7712 poly-cotton shirting"])
    family: str | None = Field(None, max_length=64, examples=["shirting"])
    params: Params = Field(default_factory=dict, examples=[{"picks_per_cm": 28, "gsm": 120}])


class ArticleUpdate(_Body):
    """Changed fields of an article (``params`` is replaced whole)."""

    name: Name | None = None
    family: str | None = Field(None, max_length=64)
    params: Params | None = None


class ArticlePublic(ArticleCreate):
    """A registered article."""

    factory_id: Id = Field(examples=["f01"])


class MachineFields(_Body):
    """Where a machine stands and what it is."""

    hall_id: Id
    machine_type: MachineType
    line_id: Id | None = Field(None, examples=["line-a"])
    vendor: Text | None = None
    model: Text | None = Field(None, examples=["JAT810"])
    article_id: Id | None = Field(None, examples=["pc-7712"])
    params: Params = Field(default_factory=dict)


class MachineCreate(MachineFields):
    """A new machine; its hall, and its line and article when given, must exist."""

    id: Id = Field(examples=["l0001"])

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "l0001",
                    "hall_id": "weave1",
                    "machine_type": "loom_airjet",
                    "vendor": "Toyota",
                    "model": "JAT810",
                    "params": {"width_cm": 190, "nominal_rpm": 850},
                }
            ]
        }
    )


class MachineUpdate(_Body):
    """Changed fields of a machine; ``null`` clears line, vendor, model or article."""

    hall_id: Id | None = None
    machine_type: MachineType | None = None
    line_id: Id | None = None
    vendor: Text | None = None
    model: Text | None = None
    article_id: Id | None = None
    params: Params | None = None


class MachinePublic(MachineCreate):
    """A registered machine."""

    factory_id: Id = Field(examples=["f01"])
