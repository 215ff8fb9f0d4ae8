"""Files that hold secrets (broker logins, service passwords): owner-only, replaced whole.

Example
-------
>>> import tempfile
>>> path = Path(tempfile.mkdtemp()) / "secret.toml"
>>> write_private(path, "password = 'x'")
>>> oct(path.stat().st_mode & 0o777)
'0o600'
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["write_private"]


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by its owner only (mode 0600), atomically.

    The text goes to a sibling temporary file first and then replaces ``path``, so a
    reader (the broker reloading its password file) never sees half a file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)  # an older file keeps its mode through O_CREAT
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)
    os.replace(partial, path)
