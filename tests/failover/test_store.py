"""The file lease store: compare-and-swap on the version, release only of our own version."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from egress_router.failover.store import FileStore


def test_compare_and_swap(tmp_path: Path) -> None:
    a, b = FileStore(str(tmp_path / "lease.json")), FileStore(str(tmp_path / "lease.json"))
    assert a.read() is None
    first = a.write("", "a")
    assert first == "1"
    assert b.write("", "b") is None  # exists now
    assert b.write("0", "b") is None
    again = a.write(first, "a")
    assert again == "2"
    assert b.write(first, "b") is None  # stale
    record = b.read()
    assert record is not None and (record.holder, record.version) == ("a", "2")


def test_release_only_of_the_version_written(tmp_path: Path) -> None:
    store = FileStore(str(tmp_path / "lease.json"))
    mine = store.write("", "r1")
    assert mine is not None
    newer = store.write(mine, "r1")  # e.g. a restarted r1 renewed since
    assert newer is not None
    assert not store.release(mine)  # an old guard does not release the newer record
    assert store.release(newer)
    record = store.read()
    assert record is not None and record.holder == ""


def test_a_held_lock_is_a_lost_race_not_a_hang(tmp_path: Path) -> None:
    store = FileStore(str(tmp_path / "lease.json"))
    fd = os.open(str(tmp_path / "lease.json.lock"), os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # a writer frozen inside its critical section
        assert store.write("", "a") is None
    finally:
        os.close(fd)
    assert store.write("", "a") == "1"
