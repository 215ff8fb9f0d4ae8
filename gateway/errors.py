"""Exceptions the gateway raises, in one tree.

::

    GatewayError                 base of the gateway core's runtime errors
    ├── PublishError             the MQTT client refused a message for good
    ├── OutboxFullError          reject_newest refused a flush; ``rejected`` says how many
    ├── OutboxStorageError       SQLite could not write (disk full, I/O error); retry later
    └── ConfigError (ValueError) invalid settings or input table; fatal at start-up

Input plugins raise ``ConfigError`` from ``init()`` too (:mod:`gateway.inputs.base`
re-exports it), so one ``except`` catches settings and plugin errors alike.
"""

from __future__ import annotations

__all__ = ["ConfigError", "GatewayError", "OutboxFullError", "OutboxStorageError", "PublishError"]


class GatewayError(Exception):
    """Base class of the gateway core's runtime errors."""


class ConfigError(GatewayError, ValueError):
    """Invalid settings or input configuration, found before any I/O."""


class PublishError(GatewayError):
    """The MQTT client refused a message in a way a retry cannot fix."""


class OutboxFullError(GatewayError):
    """The outbox is full and its policy is ``reject_newest``: new messages were refused.

    The sequence numbers of the refused messages were still consumed and persisted, so
    they show up end to end as gaps instead of being reused for other data.
    """

    def __init__(self, rejected: int, depth: int, max_messages: int) -> None:
        super().__init__(
            f"outbox full ({depth}/{max_messages} messages): rejected {rejected} new messages"
        )
        self.rejected = rejected
        self.depth = depth
        self.max_messages = max_messages


class OutboxStorageError(GatewayError):
    """The outbox database could not be written (disk full, I/O error).

    Nothing of the failed call was stored: the transaction was rolled back, so the
    caller may retry the very same call later.
    """
