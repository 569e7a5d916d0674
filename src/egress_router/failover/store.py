"""Lease stores: the ``LeaseStore`` interface and the file backend.

Owns: reading the record and writing it as a compare-and-swap on its version behind one small
``LeaseStore`` interface (the Kubernetes Lease backend is ``kube_store``, kept apart so the
guard process never imports the Kubernetes client), so the loop and its tests do not care
which one is used.
Must not: decide when to read or write (``model.machine`` does) or touch the network
namespace.

The file backend keeps ``{"holder", "version", "token"}`` as JSON in one file, replaced
by rename (readers never see half a record); writers serialise on ``flock`` of a sidecar
``.lock`` file, taken without blocking and retried briefly, so a frozen writer cannot hold the
others forever.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator
from typing import Protocol

from egress_router.errors import DataplaneError
from egress_router.failover.model.machine import LeaseRecord

LOCK_RETRY_S = 0.05  # how long a writer waits for the lock before reporting a lost race
MAX_RECORD_BYTES = 4096  # a record is ~100 bytes; anything bigger is not ours


RELEASE_TRIES = 4  # a release loses a race only to a write of the same (dead) incarnation


class LeaseStore(Protocol):
    def read(self) -> LeaseRecord | None: ...

    def write(self, expected: str, holder: str, token: str = "") -> str | None:
        """Set the holder (and its incarnation ``token``) if the version is still ``expected``
        ("" = no record yet); the new version, or ``None`` when another write came first."""
        ...

    def release(self, token: str) -> bool:
        """Mark the lease released if its holder is still the incarnation ``token`` (whatever
        its version: a renewal in flight when the instance died may have moved it)."""
        ...


def release_by_token(store: LeaseStore, token: str) -> bool:
    """Read, and write the release at the version read while the record is still ours; a
    write that raced in (a renewal of the same incarnation landing late) means read again."""
    for _ in range(RELEASE_TRIES):
        record = store.read()
        if record is None or record.holder == "" or record.token != token:
            return False
        if store.write(record.version, "", "") is not None:
            return True
    return False


class FileStore:
    """The lease as a file (all instances on one machine, e.g. the lab's namespaces)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def read(self) -> LeaseRecord | None:
        try:
            with open(self.path, encoding="utf-8") as handle:
                data = json.loads(handle.read(MAX_RECORD_BYTES))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise DataplaneError(f"cannot read the lease file {self.path}: {exc}") from exc
        return LeaseRecord(
            holder=str(data.get("holder", "")),
            version=str(data.get("version")),
            token=str(data.get("token", "")),
        )

    @contextlib.contextmanager
    def _locked(self) -> Iterator[bool]:
        fd = os.open(self.path + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            deadline = time.monotonic() + LOCK_RETRY_S
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        yield False
                        return
                    time.sleep(0.002)
            yield True
        finally:
            os.close(fd)  # releases the lock

    def write(self, expected: str, holder: str, token: str = "") -> str | None:
        with self._locked() as locked:
            if not locked:
                return None
            current = self.read()
            if (current.version if current is not None else "") != expected:
                return None
            version = int(expected) + 1 if expected.isdigit() else 1
            record = {"holder": holder, "version": str(version), "token": token}
            tmp = f"{self.path}.{os.getpid()}.tmp"
            with open(tmp, "w", encoding="utf-8") as handle:
                handle.write(json.dumps(record))
            os.replace(tmp, self.path)
            return str(version)

    def release(self, token: str) -> bool:
        """Released if still held by the incarnation ``token``: the guard, after withdrawing,
        never releases the record of another run (e.g. a restarted instance of the same name)."""
        return release_by_token(self, token)
