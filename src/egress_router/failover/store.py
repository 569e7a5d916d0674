"""Lease stores: the ``LeaseStore`` interface and the file backend.

Owns: reading the record and writing it as a compare-and-swap on its version behind one small
``LeaseStore`` interface (the Kubernetes Lease backend is ``kube_store``, kept apart so the
guard process never imports the Kubernetes client), so the loop and its tests do not care
which one is used.
Must not: decide when to read or write (``model.machine`` does) or touch the network
namespace.

The file backend keeps ``{"holder", "version", "transitions"}`` as JSON in one file, replaced
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


class LeaseStore(Protocol):
    def read(self) -> LeaseRecord | None: ...

    def write(self, expected: str, holder: str) -> str | None:
        """Set the holder if the version is still ``expected`` ("" = no record yet); the new
        version, or ``None`` when another write came first."""
        ...


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
        return LeaseRecord(holder=str(data.get("holder", "")), version=str(data.get("version")))

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

    def write(self, expected: str, holder: str) -> str | None:
        with self._locked() as locked:
            if not locked:
                return None
            current = self.read()
            if (current.version if current is not None else "") != expected:
                return None
            version = int(expected) + 1 if expected.isdigit() else 1
            record = {"holder": holder, "version": str(version)}
            tmp = f"{self.path}.{os.getpid()}.tmp"
            with open(tmp, "w", encoding="utf-8") as handle:
                handle.write(json.dumps(record))
            os.replace(tmp, self.path)
            return str(version)

    def release(self, version: str) -> bool:
        """Mark the lease released if it is still at ``version`` (our last write): the guard,
        after withdrawing, never releases a newer record (e.g. of a restarted instance)."""
        return self.write(version, "") is not None
