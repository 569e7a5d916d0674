"""The file lease store: compare-and-swap on the version, release only of our own incarnation."""

from __future__ import annotations

import json
import os
from pathlib import Path

from egress_router.failover.store import KEEP, FileStore


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


def test_a_frozen_writer_blocks_nobody_and_a_stale_one_loses(tmp_path: Path) -> None:
    path = str(tmp_path / "lease.json")
    a, b = FileStore(path), FileStore(path)
    version = a.write("", "a", "run-a")
    assert version == "1"
    for _ in range(KEEP + 3):  # a renews while b is frozen holding version 1
        version = a.write(version, "a", "run-a")
        assert version is not None
    assert not os.path.exists(f"{path}.2")  # removed: a stale write at 1 could recreate it
    assert b.write("1", "b", "run-b") is None  # ... and is refused all the same
    assert not os.path.exists(f"{path}.2")
    record = FileStore(path).read()  # a new reader finds the newest by a scan
    assert record is not None and (record.holder, record.version) == ("a", version)
    assert b.write(version, "b", "run-b") is not None  # up to date: b takes it
    assert json.loads(Path(path).read_text())["holder"] == "b"  # the copy for people
