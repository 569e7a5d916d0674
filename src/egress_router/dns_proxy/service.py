"""The DNS proxy service: resolve every name, keep following it, keep forwarding in step.

Owns: one task per destination name that looks it up when ``common.dns_schedule`` says so, the
map "local port -> current addresses", pushing that map to the forwarder whenever an answer
changes (serialised, so updates apply in order), and the process's start/stop sequence.
Must not: parse configuration, plan rules or move bytes (``model`` / ``forwarders`` do).

Start-up never waits for a name that does not resolve: every name gets one first lookup (in
parallel, bounded by the resolver's timeout), then forwarding starts with what is known; the
ports of unresolved names refuse connections until their name resolves.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from egress_router.common.dns_schedule import (
    NameState,
    Outcome,
    RefreshPolicy,
    on_answer,
    on_failure,
)
from egress_router.dns_proxy.forwarders import Forwarder
from egress_router.dns_proxy.model.destinations import Settings
from egress_router.dns_proxy.relay import Logger
from egress_router.errors import EgressRouterError, ResolveError
from egress_router.runtime import unexpected
from egress_router.runtime.resolver import Answer

if TYPE_CHECKING:
    from egress_router.runtime.metrics import DnsProxyMetrics

Lookup = Callable[[str], Awaitable[Answer]]
Addresses = tuple[ipaddress.IPv4Address, ...]
Name = NameState[ipaddress.IPv4Address]


class DnsProxyService:
    """Follows ``settings``' names through ``lookup`` and drives ``forwarder``."""

    def __init__(
        self,
        settings: Settings,
        forwarder: Forwarder,
        lookup: Lookup,
        log: Logger,
        policy: RefreshPolicy | None = None,
        metrics: DnsProxyMetrics | None = None,
    ) -> None:
        self.settings = settings
        self.forwarder = forwarder
        self.lookup = lookup
        self.log = log
        self.policy = policy or RefreshPolicy(settings.ttl_min_s, settings.ttl_max_s)
        self.states = {name: Name(name) for name in settings.names}
        self._apply_lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._started = False
        self._dirty = False  # the last forwarding update failed: retry on the next lookup
        self.metrics = metrics
        self._ports: dict[str, list[int]] = {}  # name -> the local ports it serves
        self._index_ports()

    def _index_ports(self) -> None:
        self._ports = {}
        for d in self.settings.destinations:
            if d.address is None:
                self._ports.setdefault(d.host, []).append(d.local_port)

    def current(self) -> dict[int, Addresses]:
        """Local port -> the addresses new connections may go to now."""
        out: dict[int, Addresses] = {}
        for d in self.settings.destinations:
            if d.address is not None:
                out[d.local_port] = (d.address,)
            else:
                out[d.local_port] = self.states[d.host].addresses
        return out

    async def _resolve_once(self, name: str) -> bool:
        """Look ``name`` up once, record the outcome; True when its addresses changed."""
        loop = asyncio.get_running_loop()
        state = self.states[name]
        try:
            answer = await self.lookup(name)
        except ResolveError as exc:
            outcome: Outcome[ipaddress.IPv4Address] = on_failure(
                state, exc.reason, loop.time(), self.policy
            )
            result = "error"
        else:
            outcome = on_answer(state, answer.ipv4, answer.ttl, loop.time(), self.policy)
            result = "ok" if answer.addresses else "nxdomain"
        if self.metrics is not None:
            self.metrics.lookup(self._ports.get(name, ()), result, time.time())
        self.states[name] = outcome.state
        if outcome.message:
            self.log(outcome.message)
        return outcome.changed

    async def _push(self) -> None:
        async with self._apply_lock:
            current = self.current()
            try:
                await self.forwarder.update(current)
            except BaseException:
                if self.metrics is not None:
                    self.metrics.update(False)
                raise
            self._updated(current)

    def _updated(self, current: dict[int, Addresses]) -> None:
        if self.metrics is not None:
            self.metrics.update(True)
            self.metrics.current({port: len(addrs) for port, addrs in current.items()})

    async def _follow(self, name: str) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(max(0.0, self.states[name].next_lookup - loop.time()))
            try:
                changed = await self._resolve_once(name)
                if changed or self._dirty:
                    self._dirty = True  # until an apply succeeds, every lookup retries it
                    await self._push()
                    self._dirty = False
            except (EgressRouterError, OSError) as exc:  # nftables or a bind refused: retried
                self.log(f"cannot update forwarding for {name}: {exc}")
                await asyncio.sleep(self.policy.retry_base_s)
            except Exception as exc:  # a bug: reported once; this name and the others go on
                unexpected.report("dns-proxy", f"following {name}", exc)
                await asyncio.sleep(self.policy.retry_base_s)

    async def start(self) -> None:
        """First lookups (in parallel), forwarding on, then follow every name."""
        names = list(self.states)
        if names:
            await asyncio.gather(*(self._resolve_once(n) for n in names))
        current = self.current()
        await self.forwarder.start(current)
        self._started = True
        self._updated(current)
        if self.metrics is not None:  # ports of fixed addresses: good since start
            fixed = [d.local_port for d in self.settings.destinations if d.address is not None]
            self.metrics.fixed(fixed, time.time())
        for d in self.settings.destinations:
            addrs = self.current()[d.local_port]
            shown = ", ".join(str(a) for a in addrs) or "no address yet: refusing"
            self.log(f"port {d.local_port} -> {d.host}:{d.remote_port} ({shown})")
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._follow(n), name=n) for n in names]

    async def reconfigure(self, settings: Settings) -> None:
        """Apply new destinations (a reload): names that stay keep their state and their
        follower; new names get one first lookup; then the forwarder switches in one step.
        If the forwarder refuses, nothing changes (the old destinations stay in force)."""
        async with self._apply_lock:
            added = [n for n in settings.names if n not in self.states]
            fresh = {name: Name(name) for name in added}
            saved = self.settings, self.states
            self.settings, self.states = settings, {**self.states, **fresh}
            try:
                if added:
                    await asyncio.gather(*(self._resolve_once(n) for n in added))
                self.states = {n: self.states[n] for n in settings.names}
                current = self.current()
                await self.forwarder.reconfigure(settings, current)
            except BaseException:
                self.settings, self.states = saved
                raise
            self._index_ports()
            self._updated(current)
        loop = asyncio.get_running_loop()
        kept = []
        for task in self._tasks:
            if task.get_name() in self.states:
                kept.append(task)
            else:
                task.cancel()
        self._tasks = kept + [loop.create_task(self._follow(n), name=n) for n in added]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self._started:
            await self.forwarder.stop()
            self._started = False
