"""The fencing guard: a small separate process that withdraws the address for its instance.

Owns: enforcing the renew deadline when the instance itself cannot — it was killed (SIGKILL,
OOM) or frozen (SIGSTOP, a stalled node process) while the kernel of its namespace still holds
the reserved address. The instance writes ``arm <monotonic deadline>`` after every successful
lease write and ``disarm`` after a withdrawal (``quit`` on a clean stop); the guard withdraws
the address (``redirect.apply.withdraw_address``) when the deadline passes unextended, or at
once when its stdin reaches end of file (the instance is gone); after an end of file it marks
the lease released if it is still held by the instance's incarnation token (whatever version:
a renewal in flight when the instance died may have moved it), so a standby takes over at once
instead of waiting for the lease to expire, and only then removes the rules.
Must not: take the address or write the lease for itself; it only ever removes.

Both processes read CLOCK_MONOTONIC of the same machine, so a deadline is comparable. The guard
drains every pending ``arm`` before comparing, so an extension written before the deadline is
never missed; the instance never writes an extension after its own deadline (``model``). A
frozen guard too (the whole pod frozen) is covered by the kernel's switch (``model.fence``).
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from typing import IO

from egress_router.errors import DataplaneError, EgressRouterError
from egress_router.failover.kube_store import KubeLeaseStore
from egress_router.failover.store import FileStore, LeaseStore
from egress_router.kernel.netlink import Netlink
from egress_router.kube.client import Kube
from egress_router.redirect.apply import remove_rules, withdraw_address

MAX_LINE = 128  # "arm 123456.789012\n"


class GuardHandle:
    """The instance's side: start the guard and keep it informed."""

    def __init__(
        self, macvlan: str, address: ipaddress.IPv4Interface, token: str, release: list[str]
    ) -> None:
        """``token``: the instance's incarnation; ``release``: ``["file", PATH]`` or
        ``["lease", NAMESPACE, NAME, DURATION]``."""
        argv = [sys.executable, "-m", "egress_router.failover.guard", macvlan, str(address)]
        argv += [token, *release]
        self.argv = argv
        self.proc, self.pipe = self._spawn()

    def _spawn(self) -> tuple[subprocess.Popen[bytes], IO[bytes]]:
        # Its own process group: a signal to the instance's group (a terminal's SIGHUP, a
        # supervisor's SIGTERM to the group) must not take the guard down with it.
        proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE, close_fds=True, process_group=0)
        assert proc.stdin is not None
        return proc, proc.stdin

    def alive(self) -> bool:
        return self.proc.poll() is None

    def restart(self) -> None:
        """A new guard for one that died (only ever called while holding no address)."""
        with contextlib.suppress(OSError):
            self.pipe.close()
        self.proc, self.pipe = self._spawn()

    def arm(self, deadline: float) -> None:
        """Raises DataplaneError when the guard is gone: nothing would fence the address."""
        try:
            self.pipe.write(f"arm {deadline:.6f}\n".encode())
            self.pipe.flush()
        except OSError as exc:
            raise DataplaneError(f"the fencing guard is gone: {exc}") from exc

    def disarm(self) -> None:
        with contextlib.suppress(OSError):
            self.pipe.write(b"disarm\n")
            self.pipe.flush()

    def close(self) -> None:
        """Clean stop: the guard exits without withdrawing or releasing."""
        try:
            self.pipe.write(b"quit\n")
            self.pipe.close()
        except OSError:
            pass
        self.proc.wait(timeout=5.0)


def _withdraw(
    nl: Netlink,
    macvlan: str,
    address: ipaddress.IPv4Interface,
    why: str,
    release: Callable[[], None] | None = None,
) -> None:
    """The address first (what the wire sees), then the release, then the rules."""
    start = time.monotonic()
    try:
        was = withdraw_address(nl, macvlan, address)
    except EgressRouterError as exc:
        print(f"failover guard: {why}: withdraw failed: {exc}", flush=True)
        return  # never release a lease whose address may still be held
    gone = time.monotonic() - start
    if release is not None:
        release()
    try:
        remove_rules()
    except EgressRouterError as exc:
        print(f"failover guard: {why}: rules not removed: {exc}", flush=True)
    print(
        f"failover guard: {why}: withdrew {address} in {gone:.3f}s, done in "
        f"{time.monotonic() - start:.3f}s (present: {was})",
        flush=True,
    )


def _store(args: list[str]) -> LeaseStore:
    if args[0] == "file":
        return FileStore(args[1])
    return KubeLeaseStore(Kube(), args[1], args[2], float(args[3]))


def _release(store: LeaseStore, token: str) -> None:
    """Mark the lease released if the instance's incarnation still holds it."""
    start = time.monotonic()
    try:
        done = store.release(token)
        took = time.monotonic() - start
        print(f"failover guard: lease released: {done} ({took:.3f}s)", flush=True)
    except EgressRouterError as exc:
        print(f"failover guard: lease release failed: {exc}", flush=True)


def main(argv: list[str]) -> int:
    for sig in (signal.SIGHUP, signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)  # it ends when its instance does (end of file)
    macvlan, address, token = argv[0], ipaddress.IPv4Interface(argv[1]), argv[2]
    store = _store(argv[3:])
    nl = Netlink()  # opened now, so a withdrawal does not wait for a socket
    fd = sys.stdin.fileno()
    deadline: float | None = None
    pending = b""
    while True:
        timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
        ready, _, _ = select.select([fd], [], [], timeout)
        eof = False
        if ready:
            chunk = os.read(fd, 4096)
            eof = not chunk
            pending += chunk
            *lines, pending = pending.split(b"\n")
            pending = pending[-MAX_LINE:]
            for line in lines:
                if line.startswith(b"arm "):
                    deadline = float(line[4:])
                elif line == b"disarm":
                    deadline = None
                elif line == b"quit":
                    return 0
        if eof:
            # Gone: whatever it held goes, and the lease of this run is released (a run killed
            # between winning the lease and arming holds no address, but still the lease).
            _withdraw(nl, macvlan, address, "instance gone", lambda: _release(store, token))
            return 0
        if deadline is not None and time.monotonic() >= deadline:
            _withdraw(nl, macvlan, address, "renew deadline passed")
            deadline = None


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
