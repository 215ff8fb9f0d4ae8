"""Simulated textile factories for gateways, tests and demos (see README, Simulators)."""

from simulators.faults import FaultInjector, FaultSpec
from simulators.fleet import Fleet
from simulators.scenario import Scenario, load_scenario

__all__ = ["FaultInjector", "FaultSpec", "Fleet", "Scenario", "load_scenario"]
