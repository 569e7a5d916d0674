"""The file lease store: compare-and-swap on the version, release only of our own incarnation."""

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


def test_release_by_incarnation_token(tmp_path: Path) -> None:
    store = FileStore(str(tmp_path / "lease.json"))
    mine = store.write("", "r1", "run-1")
    assert mine is not None
    renewed = store.write(mine, "r1", "run-1")  # a renewal the guard never heard of
    assert renewed is not None
    assert store.release("run-1")  # released whatever the version
    record = store.read()
    assert record is not None and (record.holder, record.token) == ("", "")
    assert not store.release("run-1")  # already released: nothing to do


def test_an_old_run_never_releases_a_new_one(tmp_path: Path) -> None:
    store = FileStore(str(tmp_path / "lease.json"))
    first = store.write("", "r1", "run-1")
    assert first is not None
    again = store.write(first, "r1", "run-2")  # r1 restarted and took the lease again
    assert again is not None
    assert not store.release("run-1")  # the old run's guard, late
    record = store.read()
    assert record is not None and (record.holder, record.token) == ("r1", "run-2")


def test_a_held_lock_is_a_lost_race_not_a_hang(tmp_path: Path) -> None:
    store = FileStore(str(tmp_path / "lease.json"))
    fd = os.open(str(tmp_path / "lease.json.lock"), os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # a writer frozen inside its critical section
        assert store.write("", "a") is None
    finally:
        os.close(fd)
    assert store.write("", "a") == "1"
