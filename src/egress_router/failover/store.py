"""Lease stores: the ``LeaseStore`` interface and the file backend.

Owns: reading the record and writing it as a compare-and-swap on its version behind one small
``LeaseStore`` interface (the Kubernetes Lease backend is ``kube_store``, kept apart so the
guard process never imports the Kubernetes client), so the loop and its tests do not care
which one is used.
Must not: decide when to read or write (``model.machine`` does) or touch the network
namespace.

The file backend is lock-free, so a writer frozen mid-write (SIGSTOP, a frozen pod) can never
block the others (a ``flock`` held by a frozen process is never released, and a standby would
wait for it forever). Version N of the record is the file ``<path>.<N>``, created whole by
``link`` of a finished temporary file, which fails if it exists: of two writers at version N,
exactly one creates ``<path>.<N+1>`` — the compare-and-swap. The current record is the highest
N (found by probing upwards from the last one known, or a directory scan when that one was
cleaned up). A winner at N removes version N - ``KEEP`` only, so the removed versions are
always a prefix; a writer that was frozen long enough for its version N+1 to have been removed
recreates it, then finds its own N gone too and reports the race lost (unlinking what it made;
it was never the highest, so no reader took it). ``<path>`` itself holds a copy of the latest
record as JSON for people (``holder``, ``version``, ``token``), never read back.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from typing import Protocol

from egress_router.errors import DataplaneError
from egress_router.failover.model.machine import LeaseRecord

KEEP = 8  # versions kept below the newest (each a ~100-byte file)
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
    """The lease as numbered files (all instances on one machine, e.g. the lab's namespaces)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.directory = os.path.dirname(path) or "/"
        self.prefix = os.path.basename(path) + "."
        self.known = 0  # the highest version seen so far

    def _file(self, version: int) -> str:
        return f"{self.path}.{version}"

    def _scan(self) -> int:
        try:
            names = os.listdir(self.directory)
        except OSError as exc:
            raise DataplaneError(f"cannot list {self.directory}: {exc}") from exc
        versions = [
            int(n[len(self.prefix) :])
            for n in names
            if n.startswith(self.prefix)
            and n[len(self.prefix) :].isdigit()
            and n[len(self.prefix) :].isascii()
        ]
        return max(versions, default=0)

    def _latest(self) -> int:
        version = self.known
        if version and not os.path.exists(self._file(version)):
            version = self._scan()  # cleaned up since: find the newest again
        elif not version:
            version = self._scan()
        while os.path.exists(self._file(version + 1)):
            version += 1
        self.known = version
        return version

    def read(self) -> LeaseRecord | None:
        for _ in range(3):  # a version removed between finding and opening it: look again
            version = self._latest()
            if version == 0:
                return None
            try:
                with open(self._file(version), encoding="utf-8") as handle:
                    data = json.loads(handle.read(MAX_RECORD_BYTES))
            except FileNotFoundError:
                self.known = 0
                continue
            except (OSError, ValueError) as exc:
                raise DataplaneError(f"cannot read the lease file {self.path}: {exc}") from exc
            return LeaseRecord(
                holder=str(data.get("holder", "")),
                version=str(version),
                token=str(data.get("token", "")),
            )
        raise DataplaneError(f"the lease file {self.path} keeps changing")

    def write(self, expected: str, holder: str, token: str = "") -> str | None:
        if expected and not (expected.isascii() and expected.isdigit()):
            return None
        current = int(expected or "0")
        version = current + 1
        record = json.dumps({"holder": holder, "version": str(version), "token": token})
        tmp = f"{self.path}.{os.getpid()}.{time.monotonic_ns()}.tmp"
        try:
            with open(tmp, "w", encoding="utf-8") as handle:
                handle.write(record)
            try:
                os.link(tmp, self._file(version))  # the compare-and-swap
            except FileExistsError:
                return None
            stale = not os.path.exists(self._file(current)) if current else self._scan() != 1
            if stale:  # recreated a removed version: it was never ours to take
                os.unlink(self._file(version))
                return None
            os.replace(tmp, self.path)  # the copy for people
        except OSError as exc:
            raise DataplaneError(f"cannot write the lease file {self.path}: {exc}") from exc
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        self.known = version
        with contextlib.suppress(OSError):
            os.unlink(self._file(version - KEEP))
        return str(version)

    def release(self, token: str) -> bool:
        """Released if still held by the incarnation ``token``: the guard, after withdrawing,
        never releases the record of another run (e.g. a restarted instance of the same name)."""
        return release_by_token(self, token)
