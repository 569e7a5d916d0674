"""The two forwarding paths of the DNS proxy behind one interface: kernel (nftables) and relay.

Owns: turning "local port -> current addresses" into live forwarding. ``KernelForwarder``
replaces the ``ip egress_dns_proxy`` table atomically (planned by ``dns_proxy.model.nft``) and, in
debug mode, reports each new connection from conntrack events; ``RelayForwarder`` runs one
``dns_proxy.relay.Listener`` per port, bound only to the cluster interface's addresses.
Must not: resolve names or decide when to (``dns_proxy.service`` does).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from collections.abc import Mapping
from typing import Protocol

from egress_router.common.nft import Command
from egress_router.dns_proxy.model import nft as dns_nft
from egress_router.dns_proxy.model.destinations import Destination, Settings
from egress_router.dns_proxy.relay import Listener, Logger, RelayObserver, Route
from egress_router.errors import DataplaneError
from egress_router.kernel import conntrack, nftables, sysctl
from egress_router.kernel.netlink import Netlink

Addresses = tuple[ipaddress.IPv4Address, ...]
Current = Mapping[int, Addresses]


class Forwarder(Protocol):
    async def start(self, current: Current) -> None: ...
    async def update(self, current: Current) -> None: ...
    async def reconfigure(self, settings: Settings, current: Current) -> None: ...
    async def stop(self) -> None: ...


class KernelForwarder:
    """nftables DNAT in the pod's namespace: no byte ever passes through this process."""

    def __init__(self, settings: Settings, log: Logger) -> None:
        self.settings = settings
        self.log = log
        self._watch: asyncio.Task[None] | None = None
        self._names = {d.local_port: d.host for d in settings.destinations}

    def _plan(self, current: Current) -> list[Command]:
        s = self.settings
        return dns_nft.plan_table(
            s.destinations,
            current,
            cluster_interface=s.cluster_interface,
            egress_interface=s.egress_interface,
        )

    async def start(self, current: Current) -> None:
        await asyncio.to_thread(sysctl.write, "net.ipv4.ip_forward", "1")
        if self.settings.debug:  # listening before forwarding starts: no connection unlogged
            subscribed = asyncio.Event()
            self._watch = asyncio.get_running_loop().create_task(self._log_flows(subscribed))
            waiting = asyncio.ensure_future(subscribed.wait())
            await asyncio.wait([waiting, self._watch], return_when=asyncio.FIRST_COMPLETED)
            waiting.cancel()
        await asyncio.to_thread(nftables.apply, self._plan(current))

    async def update(self, current: Current) -> None:
        await asyncio.to_thread(nftables.apply, self._plan(current))

    async def reconfigure(self, settings: Settings, current: Current) -> None:
        """New destinations: the whole table in one transaction (flows keep their conntrack
        NAT); nothing changes if the kernel refuses it."""
        previous = self.settings
        self.settings = settings
        try:
            await self.update(current)
        except BaseException:
            self.settings = previous
            raise
        self._names = {d.local_port: d.host for d in settings.destinations}

    async def stop(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError, DataplaneError):
                await self._watch
        await asyncio.to_thread(nftables.apply, dns_nft.plan_delete())

    async def _log_flows(self, subscribed: asyncio.Event) -> None:
        try:
            async for flow in conntrack.new_flows(subscribed):
                host = self._names.get(flow.local_port)
                if host is None or flow.destination == flow.local:
                    continue  # not one of our ports, or not DNATed (refused)
                self.log(
                    f"connection {flow.client}:{flow.client_port} port {flow.local_port}"
                    f" -> {host} {flow.destination}:{flow.destination_port}"
                )
        except DataplaneError as exc:
            self.log(f"debug connection log stopped: {exc}")


def cluster_addresses(interface: str) -> list[str]:
    """The IPv4 addresses of the cluster-side interface (where the relay listens)."""
    with Netlink() as nl:
        found = [str(a.ip) for a in nl.addresses(interface)]
    if not found:
        raise DataplaneError(f"{interface} has no IPv4 address to listen on")
    return found


class RelayForwarder:
    """User-space relay: per-connection choice (skip a refusing address) and logging."""

    def __init__(
        self,
        settings: Settings,
        log: Logger,
        bind: list[str] | None = None,
        *,
        reuse_port: bool = False,
        observer: RelayObserver | None = None,
    ) -> None:
        self.settings = settings
        self.bind = bind
        self.log = log
        self.observer = observer
        self.reuse_port = reuse_port
        self.listeners = {
            d.local_port: Listener(self._route(d), [], reuse_port=reuse_port)
            for d in settings.destinations
        }

    def _route(self, d: Destination) -> Route:
        log_connections = self.log if self.settings.debug else None
        return Route(
            d.local_port, d.host, d.remote_port, log_connections=log_connections,
            observer=self.observer,
        )  # fmt: skip

    async def start(self, current: Current) -> None:
        # A kernel-path table left by an earlier run in this pod would DNAT our ports away.
        # The relay needs no privileges, so without CAP_NET_ADMIN this is skipped quietly.
        with contextlib.suppress(DataplaneError):
            await asyncio.to_thread(nftables.apply, dns_nft.plan_delete())
        bind = self.bind
        if bind is None:
            bind = await asyncio.to_thread(cluster_addresses, self.settings.cluster_interface)
        for listener in self.listeners.values():
            listener.bind = bind
        await self.update(current)

    async def update(self, current: Current) -> None:
        for port, listener in self.listeners.items():
            listener.route.addresses = tuple(current.get(port, ()))
            try:
                await listener.sync()
            except OSError as exc:
                raise DataplaneError(f"cannot listen on port {port}: {exc.strerror}") from exc

    async def reconfigure(self, settings: Settings, current: Current) -> None:
        """New destinations: a removed port stops listening, a new one starts, a changed one
        sends new connections to its new route. Established connections are not touched (they
        hold their own sockets). A port that cannot be opened fails the reload before any
        existing port changes (the new listeners are opened first)."""
        self.settings = settings
        wanted = {d.local_port: d for d in settings.destinations}
        opened: dict[int, Listener] = {}
        try:
            for port in wanted.keys() - self.listeners.keys():
                listener = Listener(self._route(wanted[port]), [], reuse_port=self.reuse_port)
                listener.bind = self._bound()
                listener.route.addresses = tuple(current.get(port, ()))
                await listener.sync()
                opened[port] = listener
        except OSError as exc:
            for listener in opened.values():
                listener.close()
            raise DataplaneError(f"cannot listen on port {port}: {exc.strerror}") from exc
        for port in self.listeners.keys() - wanted.keys():
            self.listeners.pop(port).close()  # established connections carry on
        for port, listener in self.listeners.items():
            d = wanted[port]
            if (listener.route.host, listener.route.remote_port) != (d.host, d.remote_port):
                listener.route = self._route(d)  # new connections only
        self.listeners.update(opened)
        await self.update(current)

    def _bound(self) -> list[str]:
        return next((ls.bind for ls in self.listeners.values() if ls.bind), self.bind or [])

    async def stop(self) -> None:
        for listener in self.listeners.values():
            listener.close()
