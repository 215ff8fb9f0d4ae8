"""The registry's SQL database: a SQLite file by default, PostgreSQL by URL in production.

Sessions are short: one per request, committed by the route that writes.

Example
-------
>>> database = Database("sqlite://")
>>> database.create_all()
>>> with database.session() as session:
...     session.execute(sa.text("SELECT 1")).scalar()
1
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.pool import StaticPool

__all__ = ["Base", "Database"]


class Base(DeclarativeBase):
    """Declarative base of every registry table."""


class Database:
    """An engine and its session factory for one registry URL."""

    def __init__(self, url: str) -> None:
        options: dict[str, object] = {}
        if url.startswith("sqlite"):
            options["connect_args"] = {"check_same_thread": False}
            if url in ("sqlite://", "sqlite:///:memory:"):
                options["poolclass"] = StaticPool  # one shared in-memory database
        self.engine = sa.create_engine(url, **options)
        if url.startswith("sqlite"):
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def create_all(self) -> None:
        """Create missing tables (the registry's schema is additive)."""
        from api import models  # noqa: F401, PLC0415 - registers the tables on Base

        Base.metadata.create_all(self.engine)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that rolls back unless the caller committed."""
        with self._sessions() as session:
            yield session

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


def _sqlite_pragmas(connection: object, _record: object) -> None:
    """WAL lets API processes read while one writes; foreign keys are off by default."""
    cursor = connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()
