"""The fencing guard: a small separate process that withdraws the address for its instance.

Owns: enforcing the renew deadline when the instance itself cannot — it was killed (SIGKILL,
OOM) or frozen (SIGSTOP, a stalled node process) while the kernel of its namespace still holds
the reserved address and would keep answering ARP for it. The instance writes
``arm <monotonic deadline> <lease version>`` after every successful lease write and
``disarm`` after a withdrawal; the guard withdraws (``redirect.apply.withdraw``) when the
deadline passes unextended, or at once when its stdin reaches end of file (the instance is
gone), and then marks the lease released (only if it is still at the version of the
instance's last write) so a standby need not wait for it to expire.
Must not: take the address or write the lease for itself; it only ever removes.

Both processes read CLOCK_MONOTONIC of the same machine, so a deadline is comparable. The guard
drains every pending ``arm`` before comparing, so an extension written before the deadline is
never missed; the instance never writes an extension after its own deadline (``model``).
"""

from __future__ import annotations

import ipaddress
import os
import select
import subprocess
import sys
import time

from egress_router.errors import EgressRouterError
from egress_router.failover.kube_store import KubeLeaseStore
from egress_router.failover.store import FileStore, LeaseStore
from egress_router.kernel.netlink import Netlink
from egress_router.kube.client import Kube
from egress_router.redirect.apply import remove_rules, withdraw_address

MAX_LINE = 128  # "arm 123456.789012 <version>\n"


class GuardHandle:
    """The instance's side: start the guard and keep it informed."""

    def __init__(self, macvlan: str, address: ipaddress.IPv4Interface, release: list[str]) -> None:
        """``release``: ``["file", PATH]`` or ``["lease", NAMESPACE, NAME, DURATION]``."""
        argv = [sys.executable, "-m", "egress_router.failover.guard", macvlan, str(address)]
        argv += release
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, close_fds=True)
        assert self.proc.stdin is not None
        self.pipe = self.proc.stdin

    def arm(self, deadline: float, version: str) -> None:
        self.pipe.write(f"arm {deadline:.6f} {version}\n".encode())
        self.pipe.flush()

    def disarm(self) -> None:
        self.pipe.write(b"disarm\n")
        self.pipe.flush()

    def close(self) -> None:
        """Clean stop: the guard exits without withdrawing (disarm first)."""
        try:
            self.disarm()
            self.pipe.close()
        except OSError:
            pass
        self.proc.wait(timeout=5.0)


def _withdraw(nl: Netlink, macvlan: str, address: ipaddress.IPv4Interface, why: str) -> None:
    start = time.monotonic()
    try:
        was = withdraw_address(nl, macvlan, address)
        gone = time.monotonic() - start
        remove_rules()
        took = time.monotonic() - start
        print(
            f"failover guard: {why}: withdrew {address} in {gone:.3f}s, rules in {took:.3f}s"
            f" (present: {was})",
            flush=True,
        )
    except EgressRouterError as exc:
        print(f"failover guard: {why}: withdraw failed: {exc}", flush=True)


def _store(args: list[str]) -> LeaseStore:
    if args[0] == "file":
        return FileStore(args[1])
    return KubeLeaseStore(Kube(), args[1], args[2], float(args[3]))


def _release(store: LeaseStore, version: str) -> None:
    """Mark the lease released if it is still at ``version`` (the instance's last write)."""
    try:
        done = store.write(version, "") is not None
        print(f"failover guard: lease released: {done}", flush=True)
    except EgressRouterError as exc:
        print(f"failover guard: lease release failed: {exc}", flush=True)


def main(argv: list[str]) -> int:
    macvlan, address = argv[0], ipaddress.IPv4Interface(argv[1])
    store = _store(argv[2:])
    nl = Netlink()  # opened now, so a withdrawal does not wait for a socket
    fd = sys.stdin.fileno()
    deadline: float | None = None
    version = ""
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
                    _, at, version_bytes = line.split(b" ")
                    deadline, version = float(at), version_bytes.decode()
                elif line == b"disarm":
                    deadline = None
        if eof:
            if deadline is not None:
                _withdraw(nl, macvlan, address, "instance gone")
                _release(store, version)
            return 0
        if deadline is not None and time.monotonic() >= deadline:
            _withdraw(nl, macvlan, address, "renew deadline passed")
            deadline = None


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
