"""The outbox on a real full filesystem (a small tmpfs; needs root, as CI has).

Unit tests make SQLite's "disk is full" with a page limit, which fails when a new page is
needed; a real disk fails later, at COMMIT, when the WAL cannot grow. These tests fill a
tmpfs with a file beside the outbox.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.errors import OutboxStorageError
from gateway.holding import FlushWriter, HeldFlush
from gateway.metrics import GatewayMetrics
from gateway.outbox import Outbox


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """An 8 MiB tmpfs, unmounted afterwards."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, f"cannot mount a tmpfs (root needed): {done.stderr.strip()}"
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path, leave: int = 0) -> Path:
    """Fill ``disk`` with a file until ``leave`` bytes are free (0: until ENOSPC)."""
    filler = disk / "filler"
    with filler.open("ab") as out, contextlib.suppress(OSError):
        while shutil.disk_usage(disk).free > leave:
            out.write(b"\0" * min(65_536, max(4096, shutil.disk_usage(disk).free - leave)))
            out.flush()
    return filler


def stored_rows(path: Path) -> int:
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        return int(db.execute("SELECT count(*) FROM messages").fetchone()[0])


def test_a_delete_refused_at_commit_keeps_the_depth_true(small_disk: Path) -> None:
    with Outbox(small_disk / "o.sqlite", min_free_bytes=0) as box:
        box.append([("t/a", os.urandom(2000)) for _ in range(600)], {"m": 600})
        box._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # any write must grow the WAL
        filler = fill(small_disk)
        ids = [row.id for row in box.read(0, 600)]
        with pytest.raises(OutboxStorageError, match="full"):
            box.delete(ids)
        assert box.depth() == stored_rows(box.path) == 600
        filler.unlink()
        assert box.delete(ids) == 600
        assert box.depth() == stored_rows(box.path) == 0


def test_a_stop_while_holding_burns_the_seqs_and_leaves_the_next_process_room(
    small_disk: Path,
) -> None:
    path = small_disk / "o.sqlite"
    box = Outbox(path, min_free_bytes=2 << 20)
    writer = FlushWriter(box, GatewayMetrics(), max_bytes=64 << 20)
    fill(small_disk, leave=3 << 20)  # 1 MiB for the outbox above its reserve
    seq = 0
    for _ in range(400):  # 8 MB of flushes: most are held
        seq += 4
        writer.write(HeldFlush([("t/a", os.urandom(2000)) for _ in range(4)], {"m": seq}))
    assert writer.held.messages > 0
    outcomes = writer.close()
    box.close()
    lost = sum(len(f.rows) for f, o in outcomes if o == "given_up")
    assert lost > 0
    assert shutil.disk_usage(small_disk).free >= (1 << 20) - (64 << 10)  # half the reserve
    with Outbox(path, min_free_bytes=2 << 20) as next_process:
        assert next_process.next_seqs() == {"m": seq}  # continues after the lost seqs
        assert next_process.depth() == seq - lost
        while next_process.depth():  # it can drain: its deletes have room
            next_process.delete(row.id for row in next_process.read(0, 500))
