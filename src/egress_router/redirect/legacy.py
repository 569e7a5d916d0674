"""The long-running legacy redirect: stay up, re-apply on SIGHUP or a changed destination file.

Owns: the wait for SIGTERM/SIGINT, the second gratuitous ARP, and reloads: on SIGHUP, or when
the file named by EGRESS_DESTINATION_FILE changes (polled every ``POLL_INTERVAL_S``; a mounted
ConfigMap's ``..data`` swap is seen), the variables are read and parsed again and applied
through ``apply.configure``, which checks the new ruleset with the kernel before changing
anything and swaps the table in one nftables transaction. Established connections continue
(their NAT lives in conntrack, not in the table). A bad new configuration is refused with one
line on stderr and counted; the previous one stays in force.
Must not: parse variables (``redirect.model.env``) or touch the kernel itself (``apply``).
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable

from egress_router.errors import EgressRouterError
from egress_router.redirect import apply
from egress_router.redirect.model.env import RouterEnv
from egress_router.runtime.reload import (
    POLL_INTERVAL_S,
    FileWatch,
    ReloadCounts,
    Signature,
    digest,
)

SECOND_ARP_DELAY_S = 2.0  # as the reference: the request form follows the reply after 2 s

Log = Callable[[str], None]
Reparse = Callable[[], RouterEnv]  # reads the variables (and the file) again and parses them


def _say(line: str) -> None:
    print(f"egress-router: {line}", file=sys.stderr, flush=True)


class LegacyRouter:
    """A configured legacy router: ``reload()`` re-applies, keeping the old state on failure."""

    def __init__(self, env: RouterEnv, reparse: Reparse, log: Log) -> None:
        self.env = env
        self.reparse = reparse
        self.log = log
        self.counts = ReloadCounts()
        self._applied = self._text(env)

    @staticmethod
    def _text(env: RouterEnv) -> str:
        return digest(repr(env))

    def reload(self, *, forced: bool) -> bool:
        """Parse and apply the configuration again; True when it was applied.

        ``forced`` (SIGHUP): re-apply even if nothing changed (idempotent: a plan against what
        is live). Otherwise an unchanged configuration is left alone."""
        try:
            new = self.reparse()
            if not forced and self._text(new) == self._applied:
                return False
            apply.configure(new, self.log)
        except EgressRouterError as exc:
            self.counts.record(exc.one_line())
            _say(f"reload refused, keeping the previous configuration: {exc.one_line()}")
            return False
        self.env = new
        self._applied = self._text(new)
        self.counts.record(None)
        lines = len(new.destination.rules) if new.destination is not None else 0
        _say(f"reloaded: {lines} destination rule(s)")
        return True


def run(
    router: LegacyRouter,
    stop: threading.Event,
    hup: threading.Event,
    watched: str | None,
    baseline: Signature = None,
    interval: float = POLL_INTERVAL_S,
) -> int:
    """Block until ``stop``; reload on ``hup`` or a change of ``watched`` (since ``baseline``,
    its signature before the first read); exit 0."""
    watch = FileWatch(watched, baseline) if watched else None
    arp_at: float | None = time.monotonic() + SECOND_ARP_DELAY_S
    while not stop.wait(interval if arp_at is None else max(0.0, arp_at - time.monotonic())):
        if arp_at is not None and time.monotonic() >= arp_at:
            arp_at = None
            apply.announce_request(router.env, router.log)
        if hup.is_set():
            hup.clear()
            router.log("SIGHUP: reloading")
            router.reload(forced=True)
        elif watch is not None and watch.changed():
            router.log(f"{watched} changed: reloading")
            router.reload(forced=False)
    router.log("stopping on signal")
    return 0
