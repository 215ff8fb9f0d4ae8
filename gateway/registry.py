"""Input plugins register themselves here by name; the core never names a plugin."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gateway.inputs.base import Input

#: Builds an input from (cluster id, factory id, its config table).
InputFactory = Callable[[str, str, dict[str, Any]], Input]
_INPUTS: dict[str, InputFactory] = {}


def add(name: str, factory: InputFactory) -> None:
    """Register an input plugin factory."""
    if name in _INPUTS:
        raise ValueError(f"input plugin {name!r} registered twice")
    _INPUTS[name] = factory


def get(name: str) -> InputFactory:
    """Look up an input plugin; import ``gateway.inputs.all`` first to load them all."""
    try:
        return _INPUTS[name]
    except KeyError:
        raise KeyError(f"unknown input plugin {name!r}; known: {sorted(_INPUTS)}") from None
