"""Import every input plugin so that each registers itself."""

from gateway.inputs.simulator import plugin as simulator_plugin

__all__ = ["simulator_plugin"]
