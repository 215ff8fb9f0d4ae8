"""Packaged scenario files (``default.toml``, ``large.toml``), read via importlib.resources."""
