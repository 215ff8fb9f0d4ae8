"""Input plugins: each folder holds plugin.py, sample.toml and README.md."""

__all__: list[str] = []
