import os

import pytest


@pytest.fixture(autouse=True)
def _clean_millwatch_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hide the developer's MILLWATCH_* settings so every test starts from defaults."""
    for name in list(os.environ):
        if name.startswith("MILLWATCH_"):
            monkeypatch.delenv(name)
