"""The simulator input: a simulated factory read as if it were real machines."""

__all__: list[str] = []
