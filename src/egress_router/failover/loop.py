"""The failover loop of one ``egress-router setup`` instance (legacy redirect mode).

Owns: running the role state machine against the real world — lease reads and writes through
the store, heartbeats, taking the address (``redirect.apply.configure``: address, routes,
rules, gratuitous ARP at once), withdrawing it (``redirect.apply.withdraw``), keeping the guard
process armed and the kernel's switch (``model.fence``) open until the current deadline, the
status line on stdout and the role metric; reloads (SIGHUP, or a changed destination file):
the variables parsed again, the new ruleset checked by the kernel, then applied at once if
active (``apply.configure``, one transaction) or kept for the next takeover if standby; a bad
one refused with one line and counted, the old one kept.
Must not: decide anything itself (``model.machine``); parse variables (``model.settings``).

One thread: each step waits on the heartbeat socket for at most ``TICK_S``, so heartbeats and
deadlines are handled within that; a lease call is bounded by the store's own timeout, and a
call that returns after the deadline is caught by the deadline check that starts every step.
"""

from __future__ import annotations

import datetime
import secrets
import select
import sys
import threading
import time
from collections.abc import Callable

from egress_router.errors import EgressRouterError
from egress_router.failover.guard import GuardHandle
from egress_router.failover.heartbeat import Heartbeats
from egress_router.failover.model import fence, machine
from egress_router.failover.model.machine import Action, Role, State
from egress_router.failover.model.settings import Backend, FailoverSettings
from egress_router.failover.store import FileStore, LeaseStore
from egress_router.kernel import nftables
from egress_router.redirect import apply
from egress_router.redirect.model.env import RouterEnv
from egress_router.runtime.health import Health
from egress_router.runtime.health import State as HealthState
from egress_router.runtime.metrics import FailoverMetrics
from egress_router.runtime.reload import POLL_INTERVAL_S, FileWatch, ReloadCounts, Signature, digest

TICK_S = 0.02  # the longest a step waits for a heartbeat before checking deadlines
SECOND_ARP_DELAY_S = 2.0  # the request form of the gratuitous ARP follows (as the reference)

Log = Callable[[str], None]
Reparse = Callable[[], RouterEnv]  # reads the variables (and the file) again and parses them


def _say(line: str) -> None:
    print(f"egress-router: {line}", file=sys.stderr, flush=True)


def _status(state: State) -> None:
    since = datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds")
    print(machine.status_line(state, since), flush=True)


class _Fixed(EgressRouterError):
    """A reload that would change what a running failover instance cannot change."""


def open_store(settings: FailoverSettings) -> LeaseStore:
    if settings.backend is Backend.FILE:
        return FileStore(settings.lease_file)
    from egress_router.failover.kube_store import KubeLeaseStore
    from egress_router.kube.client import Kube

    return KubeLeaseStore(
        Kube(), settings.lease_namespace, settings.lease_name, settings.timing.lease_duration
    )


class Instance:
    def __init__(
        self,
        env: RouterEnv,
        settings: FailoverSettings,
        store: LeaseStore,
        log: Log,
        metrics: FailoverMetrics | None = None,
        health: Health | None = None,
        reparse: Reparse | None = None,
    ) -> None:
        self.env = env
        self.reparse = reparse
        self.counts = ReloadCounts()
        self.health = health  # /readyz: ready while active, "standby" otherwise
        if health is not None:
            health.counts = self.counts
        self.settings = settings
        self.timing = settings.timing
        self.store = store
        self.log = log
        self.metrics = metrics
        self.state = State(identity=settings.identity)
        self.heartbeats = Heartbeats(settings.heartbeat_port, settings.peers, settings.identity)
        release = (
            ["file", settings.lease_file]
            if settings.backend is Backend.FILE
            else [
                "lease",
                settings.lease_namespace,
                settings.lease_name,
                str(settings.timing.lease_duration),
            ]
        )
        self.token = secrets.token_hex(8)  # this run's incarnation, written with the holder
        self.address = env.source.interface.ip
        self.guard = GuardHandle(env.interfaces.macvlan, env.source.interface, self.token, release)
        self.next_heartbeat = 0.0
        self.version = ""  # the lease version of our last successful write
        self.second_arp_at: float | None = None

    def _open_until(self, deadline: float) -> bool:
        """Keep the kernel's switch open until ``deadline``; False when it has passed."""
        text = fence.open_until(self.address, deadline - time.monotonic())
        if text is None:
            return False
        nftables.run_text(text)
        return True

    def _in_time(self) -> bool:
        return time.monotonic() < self.state.valid_until

    def _changed(self) -> None:
        _status(self.state)
        if self.health is not None:
            active = self.state.role is Role.ACTIVE
            self.health.set_state(HealthState.READY if active else HealthState.STANDBY)
        if self.metrics is not None:
            self.metrics.role(self.state.role is Role.ACTIVE, self.state.transitions)

    def _withdraw(self, why: str) -> None:
        try:
            try:
                nftables.run_text(fence.silence())  # silent on the wire first
            finally:
                apply.withdraw(self.env.interfaces.macvlan, self.env.source.interface, self.log)
        finally:
            self.guard.disarm()
            self.state = machine.withdrawn(self.state, why)
            self.second_arp_at = None
            self._changed()

    def start(self) -> None:
        """Begin as standby: whatever an earlier run of this instance left is withdrawn."""
        apply.check_ruleset(self.env)
        nftables.run_text(fence.tables(self.address))  # closed: nothing may speak for it yet
        apply.withdraw(self.env.interfaces.macvlan, self.env.source.interface, self.log)
        self._changed()

    def step(self) -> None:
        now = time.monotonic()
        for _identity, role in self.heartbeats.drain():
            if role == Role.ACTIVE.value:
                self.state = machine.heard(self.state, now)
        if now >= self.next_heartbeat:
            self.heartbeats.send(self.state.role.value)
            self.next_heartbeat = now + self.timing.heartbeat_interval
        action = machine.decide(self.state, now, self.timing)
        if action is Action.WITHDRAW:
            self._withdraw("renew deadline passed")
        elif action is Action.RENEW:
            self._renew(now)
        elif self.state.role is Role.STANDBY:
            self._standby(now)
        if self.second_arp_at is not None and now >= self.second_arp_at:
            self.second_arp_at = None
            apply.announce_request(self.env, self.log)

    def _renew(self, sent: float) -> None:
        try:
            # a compare-and-swap on our own last version: any other write in between loses it
            won = self.store.write(self.version, self.state.identity, self.token)
        except EgressRouterError as exc:
            self.log(f"lease renewal failed: {exc}")
            self.state = machine.renew_failed(self.state, sent)
            return
        if won is None:
            self._withdraw("lease taken by another instance")
            return
        self.version = won
        if machine.renewal_too_late(self.state, time.monotonic()):
            self._withdraw("renew deadline passed")
            return
        self.state = machine.renewed(self.state, sent, self.timing)
        self.guard.arm(self.state.valid_until)
        if not self._open_until(self.state.valid_until):
            self._withdraw("renew deadline passed")

    def _standby(self, now: float) -> None:
        if not self.guard.alive():
            self.log("the fencing guard died: starting a new one")
            self.guard.restart()
        if not machine.read_due(self.state, now, self.timing):
            return
        try:
            record = self.store.read()
        except EgressRouterError as exc:
            self.log(f"lease read failed: {exc}")
            return
        # Stamped when the answer is in, not when the read was sent: a renewal sent after the
        # read went out may be what it returns, and the expiry clock must not start before it.
        seen = time.monotonic()
        self.state = machine.observe(self.state, record, seen)
        if machine.decide(self.state, seen, self.timing) is not Action.ACQUIRE:
            return
        why = machine.takeover_reason(self.state, seen)
        sent = time.monotonic()
        try:
            won = self.store.write(self.state.seen_version or "", self.state.identity, self.token)
        except EgressRouterError as exc:
            self.log(f"lease write failed: {exc}")
            return
        if won is None:
            self.state = machine.acquire_failed(self.state, time.monotonic())
            return
        self.version = won
        self.state = machine.acquired(self.state, sent, self.timing, why)
        if time.monotonic() >= self.state.valid_until:
            self._withdraw("lease won too late")
            return
        self.guard.arm(self.state.valid_until)
        if not self._open_until(self.state.valid_until):
            self._withdraw("lease won too late")
            return
        apply.configure(self.env, self.log, checked=True, announce_if=self._in_time)
        self.heartbeats.send(Role.ACTIVE.value)
        self.log(f"took over in {time.monotonic() - sent:.3f}s after the lease write")
        self.second_arp_at = time.monotonic() + SECOND_ARP_DELAY_S
        self._changed()
        # Renew at once: the deadline of the taking write had to cover the whole takeover
        # (address, routes, rules, ARP), which a loaded machine can stretch near to it.
        if self._in_time():
            self._renew(time.monotonic())

    def reload(self, *, forced: bool) -> bool:
        """Parse the configuration again and apply it (active) or keep it (standby); True when
        it took. The address and interfaces cannot change under a running guard and switch."""
        if self.reparse is None:
            return False
        try:
            new = self.reparse()
            if not forced and digest(repr(new)) == digest(repr(self.env)):
                return False
            if (new.source, new.interfaces) != (self.env.source, self.env.interfaces):
                raise _Fixed("EGRESS_SOURCE and the interfaces need a restart in failover mode")
            if self.state.role is Role.ACTIVE and time.monotonic() < self.state.valid_until:
                apply.configure(new, self.log, announce_if=self._in_time)  # one transaction
            else:
                apply.check_ruleset(new)  # applied at the next takeover
        except EgressRouterError as exc:
            self.counts.record(exc.one_line())
            _say(f"reload refused, keeping the previous configuration: {exc.one_line()}")
            return False
        self.env = new
        self.counts.record(None)
        lines = len(new.destination.rules) if new.destination is not None else 0
        _say(f"reloaded ({self.state.role.value}): {lines} destination rule(s)")
        return True

    def run(
        self,
        stop: threading.Event,
        hup: threading.Event | None = None,
        watched: str | None = None,
        baseline: Signature = None,
    ) -> int:
        self.start()
        watch = FileWatch(watched, baseline) if watched else None
        next_poll = time.monotonic() + POLL_INTERVAL_S
        try:
            while not stop.is_set():
                try:
                    self.step()
                except EgressRouterError as exc:
                    print(f"egress-router: failover: {exc}", file=sys.stderr, flush=True)
                    if self.state.role is Role.ACTIVE:
                        self._withdraw(f"error: {exc}")
                if hup is not None and hup.is_set():
                    hup.clear()
                    self.log("SIGHUP: reloading")
                    self.reload(forced=True)
                elif watch is not None and time.monotonic() >= next_poll:
                    next_poll = time.monotonic() + POLL_INTERVAL_S
                    if watch.changed():
                        self.log(f"{watched} changed: reloading")
                        self.reload(forced=False)
                select.select([self.heartbeats], [], [], TICK_S)
        finally:
            self.shutdown()
        return 0

    def shutdown(self) -> None:
        """Clean stop (SIGTERM): withdraw, then release the lease so a standby takes at once."""
        if self.state.role is Role.ACTIVE:
            self._withdraw("stopping")
            try:
                self.store.release(self.token)
            except EgressRouterError as exc:
                self.log(f"lease release failed: {exc}")
        self.guard.close()
        self.heartbeats.close()
        try:
            nftables.run_text(fence.remove())
        except EgressRouterError as exc:
            self.log(f"fence tables not removed: {exc}")
