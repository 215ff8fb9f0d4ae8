from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.errors import GatewayError, OutboxFullError
from gateway.outbox import Outbox

ROOT = Path(__file__).resolve().parents[3]


def rows(*names: str) -> list[tuple[str, bytes]]:
    return [(f"t/{n}", n.encode()) for n in names]


def test_rows_and_seqs_survive_reopen(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite"
    with Outbox(path) as box:
        box.append(rows("a", "b"), {"m1": 2})
        box.append(rows("c"), {"m1": 3, "m2": 1})
        assert box.depth() == 3
    with Outbox(path) as box:
        assert box.depth() == 3
        assert box.next_seqs() == {"m1": 3, "m2": 1}
        got = box.read(0, 10)
        assert [(r.topic, r.payload, r.qos, r.retain) for r in got] == [
            ("t/a", b"a", 1, False),
            ("t/b", b"b", 1, False),
            ("t/c", b"c", 1, False),
        ]
        assert [r.id for r in box.read(got[0].id, 1)] == [got[1].id]
        assert box.delete([got[0].id, got[2].id, 999]) == 2
        assert box.depth() == 1
    with Outbox(path) as box:
        assert [r.payload for r in box.read(0, 10)] == [b"b"]
        assert box.depth() == 1


def test_ids_keep_growing_after_the_outbox_empties(tmp_path: Path) -> None:
    # AUTOINCREMENT: a replay cursor never meets a reused id.
    path = tmp_path / "o.sqlite"
    with Outbox(path) as box:
        box.append(rows("a", "b"), {})
        last = box.read(0, 10)[-1].id
        box.delete(r.id for r in box.read(0, 10))
    with Outbox(path) as box:
        box.append(rows("c"), {})
        assert box.read(0, 10)[0].id > last


def test_sequence_counters_never_go_back(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.sqlite") as box:
        box.append([], {"m1": 10})
        box.append([], {"m1": 4})
        assert box.next_seqs() == {"m1": 10}


def test_drop_oldest_deletes_the_oldest_and_counts(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with Outbox(tmp_path / "o.sqlite", max_messages=5, full_policy="drop_oldest") as box:
        assert box.append(rows("1", "2", "3"), {}) == 0
        with caplog.at_level(logging.ERROR, logger="gateway.outbox"):
            dropped = box.append(rows("4", "5", "6", "7"), {"m": 7})
        assert dropped == 2
        assert box.dropped_total == 2
        assert box.depth() == 5
        assert [r.payload for r in box.read(0, 10)] == [b"3", b"4", b"5", b"6", b"7"]
        assert box.next_seqs() == {"m": 7}
        assert "event=outbox_dropped_oldest dropped=2" in caplog.text


def test_drop_oldest_with_a_batch_larger_than_the_outbox(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.sqlite", max_messages=2) as box:
        assert box.append(rows("1", "2", "3"), {}) == 1
        assert [r.payload for r in box.read(0, 10)] == [b"2", b"3"]


def test_reject_newest_refuses_and_keeps_the_seqs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with Outbox(tmp_path / "o.sqlite", max_messages=5, full_policy="reject_newest") as box:
        box.append(rows("1", "2", "3", "4"), {"m": 4})
        with (
            caplog.at_level(logging.ERROR, logger="gateway.outbox"),
            pytest.raises(OutboxFullError) as info,
        ):
            box.append(rows("5", "6"), {"m": 6})
        assert info.value.rejected == 2
        assert box.rejected_total == 2
        assert box.depth() == 4
        assert [r.payload for r in box.read(0, 10)] == [b"1", b"2", b"3", b"4"]
        # The refused messages' seqs are consumed: gaps, never reuse.
        assert box.next_seqs() == {"m": 6}
        assert "event=outbox_rejected rejected=2" in caplog.text
        box.append(rows("5"), {"m": 7})  # exactly full is fine
        assert box.depth() == 5


def test_a_second_outbox_on_the_same_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite"
    with Outbox(path), pytest.raises(GatewayError, match="in use"):
        Outbox(path)
    Outbox(path).close()  # released on close


_KILLED_WRITER = """
import os, signal, sys
from gateway.outbox import Outbox
box = Outbox(sys.argv[1])
for i in range(50):
    box.append([("t/x", str(i).encode())], {"m": i + 1})
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_appends_survive_sigkill(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite"
    proc = subprocess.run(
        [sys.executable, "-c", _KILLED_WRITER, str(path)], cwd=ROOT, check=False, timeout=60
    )
    assert proc.returncode == -signal.SIGKILL
    assert os.path.exists(str(path) + "-wal")  # not checkpointed: recovery from the WAL
    with Outbox(path) as box:  # the kernel released the dead process's lock
        assert [r.payload for r in box.read(0, 100)] == [str(i).encode() for i in range(50)]
        assert box.next_seqs() == {"m": 50}
