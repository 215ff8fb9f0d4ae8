"""Simulated textile machines for gateways, tests and demos."""

from simulators.fleet import FactorySpec, Fleet

__all__ = ["FactorySpec", "Fleet"]
