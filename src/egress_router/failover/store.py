"""Lease stores: where the failover lease record lives (a local file, or a Kubernetes Lease).

Owns: reading the record and writing it as a compare-and-swap on its version, for both
backends behind one small ``LeaseStore`` interface, so the loop and its tests do not care
which one is used.
Must not: decide when to read or write (``model.machine`` does) or touch the network
namespace.

The file backend keeps ``{"holder", "version", "transitions"}`` as JSON in one file, replaced
by rename (readers never see half a record); writers serialise on ``flock`` of a sidecar
``.lock`` file, taken without blocking and retried briefly, so a frozen writer cannot hold the
others forever. The Lease backend uses the object's ``resourceVersion`` (a replace with a stale
one is refused with 409 Conflict by the API server).
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
from egress_router.kube.client import Kube, KubeError

LOCK_RETRY_S = 0.05  # how long a writer waits for the lock before reporting a lost race
MAX_RECORD_BYTES = 4096  # a record is ~100 bytes; anything bigger is not ours


class LeaseStore(Protocol):
    def read(self) -> LeaseRecord | None: ...

    def write(self, expected: str, holder: str) -> bool:
        """Set the holder if the version is still ``expected`` ("" = no record yet)."""
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

    def write(self, expected: str, holder: str) -> bool:
        with self._locked() as locked:
            if not locked:
                return False
            current = self.read()
            if (current.version if current is not None else "") != expected:
                return False
            version = int(expected) + 1 if expected.isdigit() else 1
            record = {"holder": holder, "version": str(version)}
            tmp = f"{self.path}.{os.getpid()}.tmp"
            with open(tmp, "w", encoding="utf-8") as handle:
                handle.write(json.dumps(record))
            os.replace(tmp, self.path)
            return True

    def release(self, holder: str) -> bool:
        """Mark the lease released if ``holder`` still holds it (the guard, after withdrawing)."""
        current = self.read()
        if current is None or current.holder != holder:
            return False
        return self.write(current.version, "")


class KubeLeaseStore:
    """The lease as a coordination.k8s.io/v1 Lease (its holderIdentity is the active)."""

    def __init__(self, kube: Kube, namespace: str, name: str, duration_s: float) -> None:
        self.kube = kube
        self.namespace = namespace
        self.name = name
        self.duration_s = duration_s

    def read(self) -> LeaseRecord | None:
        try:
            lease = self.kube.read_lease(self.namespace, self.name)
        except KubeError as exc:
            raise DataplaneError(str(exc)) from exc
        if lease is None:
            return None
        return LeaseRecord(holder=lease.holder, version=lease.version)

    def write(self, expected: str, holder: str) -> bool:
        try:
            return self.kube.write_lease(
                self.namespace, self.name, holder, expected, self.duration_s
            )
        except KubeError as exc:
            raise DataplaneError(str(exc)) from exc
