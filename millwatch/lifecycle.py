"""The start/stop shape every long-running millwatch part shares."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Self

__all__ = ["Lifecycle"]


class Lifecycle(ABC):
    """Something with ``start()`` and ``stop()``; ``with`` starts it and always stops it."""

    @abstractmethod
    def start(self) -> None:
        """Start (non-blocking)."""

    @abstractmethod
    def stop(self) -> None:
        """Stop and release what ``start`` took."""

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
