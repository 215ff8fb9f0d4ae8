"""Durable on-disk FIFO of messages not yet acknowledged by the broker.

The agent appends every message here *before* anything is published, and a row is
deleted only after the broker's PUBACK. A broker outage, a restart or a SIGKILL of the
gateway therefore loses nothing: the next process replays the rows in id order. The
per-machine sequence counters live in the same database and are written in the same
transaction as the messages that consume them, so ``seq`` never repeats.

Durability: SQLite in WAL mode with ``synchronous=FULL``. ``NORMAL`` would survive a
process crash too, but after a power cut it may roll back the last transactions,
and those messages may already have been published and acknowledged; the rolled-back
sequence counters would then be handed out again for different data. One fsync per
transaction is cheap because the agent writes a whole flush (every machine's batch)
in one transaction.

Disk space: in WAL mode a write goes to the WAL first and a checkpoint copies it into
the database, which then grows; a checkpoint that cannot grow the database leaves the
WAL unable to rewind, and then even the deletes that would free space fail. So the WAL
is checkpointed small and often (every 128 pages, cut back to 1 MiB), and
:meth:`Outbox.append` refuses new rows while the filesystem has less than
``min_free_bytes`` free: that reserve keeps deletes and checkpoints working, so a
draining outbox frees space even on a full disk. A refused or failed write (disk
full, I/O error) rolls back whole and raises :class:`OutboxStorageError`; the caller
retries the same call later (:mod:`gateway.holding`).

Only one process may use an outbox at a time (an exclusive ``flock`` on
``<path>.lock``, released by the kernel even after SIGKILL): two gateways sharing a
file would publish everything twice and reuse sequence numbers.
"""

from __future__ import annotations

import fcntl
import logging
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

from gateway.errors import GatewayError, OutboxFullError, OutboxStorageError

log = logging.getLogger(__name__)

FullPolicy = Literal["drop_oldest", "reject_newest"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    qos INT NOT NULL DEFAULT 1,
    retain INT NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS sequences (
    machine TEXT PRIMARY KEY,
    next_seq INTEGER NOT NULL
);
"""
# A sequence counter only moves forward, whatever a caller passes.
_UPSERT_SEQ = (
    "INSERT INTO sequences (machine, next_seq) VALUES (?, ?) "
    "ON CONFLICT(machine) DO UPDATE SET next_seq = max(next_seq, excluded.next_seq)"
)
_DROP_LOG_EVERY_S = 10.0
#: Checkpoint every this many WAL pages (SQLite's default is 1000, 4 MiB) ...
_WAL_CHECKPOINT_PAGES = 128
#: ... and cut the WAL back to this size after it, instead of keeping its peak.
_WAL_LIMIT_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """One stored message; ``id`` grows with append order."""

    id: int
    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = False


class Outbox:
    """Bounded durable FIFO: the agent appends, the publisher reads and deletes.

    One SQLite connection guarded by a lock serves both threads.

    Parameters
    ----------
    path
        SQLite file; created with its tables when missing.
    max_messages
        Capacity; past it ``full_policy`` decides what gives.
    full_policy
        ``drop_oldest`` deletes the oldest rows to make room (counted in
        ``dropped_total``, logged at error level); ``reject_newest`` refuses the new
        rows and raises :class:`OutboxFullError` (counted in ``rejected_total``).
    min_free_bytes
        Free space the filesystem must keep for :meth:`append` to write; below it
        appends raise :class:`OutboxStorageError` (deletes still run).
    """

    def __init__(
        self,
        path: str | Path,
        max_messages: int = 200_000,
        full_policy: FullPolicy = "drop_oldest",
        min_free_bytes: int = 4 << 20,
    ) -> None:
        if max_messages < 1:
            raise ValueError("max_messages must be >= 1")
        self.path = Path(path)
        self.max_messages = max_messages
        self.full_policy: FullPolicy = full_policy
        self.min_free_bytes = min_free_bytes
        self.dropped_total = 0
        self.rejected_total = 0
        self._lock = threading.Lock()
        self._dropped_unlogged = 0
        self._last_drop_log = float("-inf")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock_file = _lock_exclusively(self.path.with_name(self.path.name + ".lock"))
        try:
            self._conn = _connect(self.path)
            self._depth = int(self._conn.execute("SELECT count(*) FROM messages").fetchone()[0])
        except BaseException:
            self._lock_file.close()
            raise

    def append(
        self, rows: list[tuple[str, bytes]], seq_updates: dict[str, int], reserve: float = 1.0
    ) -> int:
        """Store ``(topic, payload)`` rows (QoS 1) and the next sequence numbers, atomically.

        ``reserve`` is the share of ``min_free_bytes`` that must stay free: less than 1
        for a last attempt before the process stops (data on disk beats data lost with
        the process), never 0 for rows, or the next process could not even delete.

        Returns
        -------
        int
            How many of the oldest rows ``drop_oldest`` deleted to make room (0 if none).

        Raises
        ------
        OutboxFullError
            Under ``reject_newest`` when the rows do not fit; the sequence updates are
            committed anyway, so the refused sequence numbers are never reused.
        OutboxStorageError
            Nothing was stored (disk full or below the reserve, I/O error); the same
            call may be retried.
        """
        with self._lock:
            self._check_reserve(rows, int(reserve * self.min_free_bytes))
            excess = self._depth + len(rows) - self.max_messages
            refuse = excess > 0 and self.full_policy == "reject_newest"
            dropped = 0
            with self._storage("append"), _transaction(self._conn):
                self._conn.executemany(_UPSERT_SEQ, seq_updates.items())
                if not refuse:
                    self._conn.executemany(
                        "INSERT INTO messages (topic, payload) VALUES (?, ?)", rows
                    )
                    dropped = self._drop_oldest(excess) if excess > 0 else 0
            if refuse:
                self.rejected_total += len(rows)
                log.error(
                    "event=outbox_rejected rejected=%d depth=%d max=%d rejected_total=%d",
                    len(rows),
                    self._depth,
                    self.max_messages,
                    self.rejected_total,
                )
                raise OutboxFullError(len(rows), self._depth, self.max_messages)
            self._depth += len(rows) - dropped
            if dropped:
                self._log_dropped(dropped)
            return dropped

    def next_seqs(self) -> dict[str, int]:
        """Next sequence number per machine key, as last persisted by :meth:`append`."""
        with self._lock:
            return dict(self._conn.execute("SELECT machine, next_seq FROM sequences"))

    def read(self, after_id: int, limit: int) -> list[OutboxRow]:
        """Up to ``limit`` rows with ``id > after_id``, oldest first."""
        with self._lock:
            cursor = self._conn.execute(
                "SELECT id, topic, payload, qos, retain FROM messages WHERE id > ? "
                "ORDER BY id LIMIT ?",
                (after_id, limit),
            )
            return [OutboxRow(i, t, p, q, bool(r)) for i, t, p, q, r in cursor]

    def delete(self, ids: Iterable[int]) -> int:
        """Delete acknowledged rows; ids already gone (dropped) are ignored. Returns the count.

        Raises :class:`OutboxStorageError` when the deletion could not be written (a
        delete needs WAL space too); nothing was deleted and the call may be retried.
        """
        params = [(i,) for i in ids]
        if not params:
            return 0
        with self._lock:
            with self._storage("delete"), _transaction(self._conn):
                deleted = self._conn.executemany(
                    "DELETE FROM messages WHERE id = ?", params
                ).rowcount
            self._depth -= deleted  # only once committed: a full disk fails at COMMIT
            return deleted

    def depth(self) -> int:
        """Number of stored rows (kept in memory, no query)."""
        return self._depth

    def close(self) -> None:
        """Close the database and release the lock; idempotent."""
        with self._lock:
            if self._lock_file.closed:
                return
            self._conn.close()
            self._lock_file.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _check_reserve(self, rows: list[tuple[str, bytes]], reserve: int) -> None:
        """Refuse rows that would eat into ``reserve``; free pages inside the file count.

        Deleted rows leave free pages that new rows reuse without growing the file, so
        a draining outbox on a full disk takes new rows again as it empties.
        """
        need = reserve + _size(rows)
        free = shutil.disk_usage(self.path.parent).free
        if free >= need:
            return
        pages = self._conn.execute("PRAGMA freelist_count").fetchone()[0]
        free += pages * self._conn.execute("PRAGMA page_size").fetchone()[0]
        if free < need:
            raise OutboxStorageError(
                f"outbox {self.path}: disk nearly full ({free} bytes free with the "
                f"file's free pages, {reserve} kept in reserve)"
            )

    @contextmanager
    def _storage(self, operation: str) -> Iterator[None]:
        """Turn SQLite write failures into :class:`OutboxStorageError`, after freeing WAL space."""
        try:
            yield
        except sqlite3.Error as exc:
            freed = self._truncate_wal()
            raise OutboxStorageError(
                f"outbox {self.path}: {operation} failed ({exc}); WAL truncated: {freed}"
            ) from exc

    def _truncate_wal(self) -> bool:
        """Copy the WAL into the database and cut it to zero bytes; False if that failed."""
        try:
            busy = self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
        except sqlite3.Error:
            return False
        return not busy

    def _drop_oldest(self, count: int) -> int:
        cursor = self._conn.execute(
            "DELETE FROM messages WHERE id IN (SELECT id FROM messages ORDER BY id LIMIT ?)",
            (count,),
        )
        return cursor.rowcount

    def _log_dropped(self, dropped: int) -> None:
        # Explicit and visible, but one line per interval, not one per flush.
        self.dropped_total += dropped
        self._dropped_unlogged += dropped
        now = time.monotonic()
        if now - self._last_drop_log >= _DROP_LOG_EVERY_S:
            log.error(
                "event=outbox_dropped_oldest dropped=%d dropped_total=%d max=%d",
                self._dropped_unlogged,
                self.dropped_total,
                self.max_messages,
            )
            self._dropped_unlogged = 0
            self._last_drop_log = now


def _size(rows: list[tuple[str, bytes]]) -> int:
    return sum(len(topic) + len(payload) for topic, payload in rows)


@contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
    # SQLite may already have rolled back on its own after a full disk (SQLITE_FULL), and
    # a COMMIT that fails leaves the transaction open: roll back only what is still open.
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    if mode != "wal":
        conn.close()
        raise GatewayError(f"outbox {path}: cannot switch to WAL mode (got {mode!r})")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute(f"PRAGMA wal_autocheckpoint={_WAL_CHECKPOINT_PAGES}")
    conn.execute(f"PRAGMA journal_size_limit={_WAL_LIMIT_BYTES}")
    conn.executescript(_SCHEMA)
    return conn


def _lock_exclusively(path: Path) -> IO[bytes]:
    handle = path.open("ab")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise GatewayError(f"outbox {path} is in use by another gateway") from None
    return handle
