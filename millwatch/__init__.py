"""Code shared by every millwatch service: the data contract, settings, server processes."""

__all__: list[str] = []
