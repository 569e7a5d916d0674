"""Netlink through pyroute2: the only module that imports pyroute2.

Owns: network namespaces (create, remove, list), links (veth, macvlan, bridge; move, rename,
up), IPv4 and IPv6 addresses and routes (IPv6 duplicate address detection state included),
read and written in one namespace at a time.
Must not: decide what the configuration should be (the features' ``model`` packages plan
it), or touch a namespace other than the one it was opened on (the host's own namespace is
never opened by the lab).

Every pyroute2 failure is re-raised as ``DataplaneError`` naming the operation, and every
request has a deadline (``NETLINK_TIMEOUT_S``): a reply that never comes is an error, not a hang.
The requests go through pyroute2's asyncio API on a private event loop, each wrapped in
``asyncio.wait_for``; nothing here installs signal handlers or raises from one.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from pyroute2 import AsyncIPRoute, netns
from pyroute2.netlink.exceptions import NetlinkError

from egress_router.errors import DataplaneError

MAIN_TABLE = 254
IFF_UP = 0x1
IFF_RUNNING = 0x40
AF_INET = 2
AF_INET6 = 10
FAMILIES = {4: AF_INET, 6: AF_INET6}
IFA_F_DADFAILED = 0x08
IFA_F_TENTATIVE = 0x40
RT_SCOPE_UNIVERSE = 0
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
# The kernel answers a netlink request at once; only a lost reply (or a process stopped in a
# debugger) takes longer. 3 s keeps an interrupted lab demo inside its 5 s exit budget.
NETLINK_TIMEOUT_S = 3.0


@dataclass(frozen=True)
class Link:
    """A network interface as the kernel reports it."""

    index: int
    name: str
    kind: str | None
    mac: str | None
    up: bool
    mtu: int
    running: bool = False  # operationally up (IFF_RUNNING): has a carrier


@dataclass(frozen=True)
class Route:
    """A route of the main table. ``dst`` None means the default route of ``version``."""

    dst: IPNetwork | None
    gateway: IPAddress | None
    oif: int | None
    scope: int = 0
    proto: int = 0
    version: int = 4

    @property
    def is_default(self) -> bool:
        return self.dst is None or self.dst.prefixlen == 0


class DadState:
    """Duplicate address detection of an IPv6 address (``Netlink.dad_states``)."""

    DONE = "done"
    TENTATIVE = "tentative"
    FAILED = "failed"


@contextmanager
def _wrap(operation: str) -> Iterator[None]:
    try:
        yield
    except NetlinkError as exc:
        raise DataplaneError(
            f"netlink {operation} failed: {exc.args[-1]} (errno {exc.code})"
        ) from exc
    except OSError as exc:
        raise DataplaneError(f"netlink {operation} failed: {exc}") from exc


def create_netns(name: str) -> None:
    """Create a named network namespace (as ``ip netns add`` does)."""
    with _wrap(f"create namespace {name}"):
        netns.create(name)


def remove_netns(name: str) -> None:
    """Remove a named network namespace; idempotent (one already gone, even meanwhile, is fine)."""
    if name not in list_netns():
        return
    with _wrap(f"remove namespace {name}"), suppress(FileNotFoundError):
        netns.remove(name)


def list_netns() -> list[str]:
    with _wrap("list namespaces"):
        return list(netns.listnetns())


CLONE_NEWNET = 0x40000000


def enter_netns(path: str) -> None:
    """Move the calling thread (and the children it starts later) into the netns at ``path``.

    Only for short-lived processes that are done with their own namespace (the CNI plugin):
    there is no way back except a saved handle.
    """
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    with _wrap(f"open namespace {path}"):
        fd = os.open(path, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            errno = ctypes.get_errno()
            raise DataplaneError(f"cannot enter namespace {path}: {os.strerror(errno)}")
    finally:
        os.close(fd)


def netns_path(name: str) -> str:
    """The path of a named network namespace (what CNI_NETNS carries)."""
    return os.path.join("/var/run/netns", name)


class Netlink:
    """A netlink session bound to one network namespace (None = the caller's own).

    ``timeout`` bounds every request (opening the session included), in seconds.
    """

    def __init__(self, namespace: str | None = None, timeout: float = NETLINK_TIMEOUT_S) -> None:
        self.namespace = namespace
        self.timeout = timeout
        self._loop = asyncio.new_event_loop()
        try:
            self._ipr: Any = self._run(
                f"open namespace {namespace or '(current)'}", self._open(namespace)
            )
        except BaseException:
            self._loop.close()
            raise

    @staticmethod
    async def _open(namespace: str | None) -> Any:
        ipr = AsyncIPRoute(netns=namespace) if namespace else AsyncIPRoute()
        await ipr.setup_endpoint()
        return ipr

    def _run(self, operation: str, coro: Coroutine[Any, Any, Any]) -> Any:
        with _wrap(operation):
            try:
                return self._loop.run_until_complete(asyncio.wait_for(coro, self.timeout))
            except TimeoutError as exc:
                raise DataplaneError(
                    f"netlink {operation}: no reply within {self.timeout:g} s"
                ) from exc

    def _call(self, operation: str, method: str, *args: Any, **kwargs: Any) -> Any:
        """``await ipr.<method>(...)`` with the deadline; dumps are collected into a list."""

        async def request() -> Any:
            result = await getattr(self._ipr, method)(*args, **kwargs)
            if hasattr(result, "__aiter__"):
                return [m async for m in result]
            return result

        return self._run(operation, request())

    def close(self) -> None:
        if self._loop.is_closed():
            return
        try:
            self._ipr.close()
            # let the transports' scheduled close callbacks run before the loop goes away
            self._loop.run_until_complete(asyncio.sleep(0))
            self._loop.run_until_complete(self._loop.shutdown_asyncgens())
        finally:
            self._loop.close()

    def __enter__(self) -> Netlink:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- links -------------------------------------------------------------------------------

    def links(self) -> list[Link]:
        msgs = self._call("list links", "get_links")
        return [self._to_link(m) for m in msgs]

    @staticmethod
    def _to_link(msg: Any) -> Link:
        info = msg.get("IFLA_LINKINFO")
        kind = info.get("IFLA_INFO_KIND") if info else None
        return Link(
            index=int(msg["index"]),
            name=str(msg.get("IFLA_IFNAME")),
            kind=kind,
            mac=msg.get("IFLA_ADDRESS"),
            up=bool(msg["flags"] & IFF_UP),
            mtu=int(msg.get("IFLA_MTU") or 0),
            running=bool(msg["flags"] & IFF_RUNNING),
        )

    def link(self, name: str) -> Link | None:
        """The link called ``name``, or None."""
        found = self._call(f"look up {name}", "link_lookup", ifname=name)
        if not found:
            return None
        return self._to_link(self._call(f"get {name}", "get_links", found[0])[0])

    def require_link(self, name: str) -> Link:
        found = self.link(name)
        if found is None:
            where = f" in namespace {self.namespace}" if self.namespace else ""
            raise DataplaneError(f"interface {name} not found{where}")
        return found

    def add_veth(self, name: str, peer: str, peer_namespace: str | None = None) -> None:
        """Create a veth pair here; its peer end is created directly in ``peer_namespace``."""
        peer_spec: dict[str, Any] = {"ifname": peer}
        if peer_namespace:
            peer_spec["net_ns_fd"] = peer_namespace
        self._call(f"add veth {name}", "link", "add", ifname=name, kind="veth", peer=peer_spec)

    def add_bridge(self, name: str) -> None:
        self._call(f"add bridge {name}", "link", "add", ifname=name, kind="bridge")

    def add_macvlan(
        self, name: str, parent: str, mode: str = "bridge", mtu: int | None = None
    ) -> None:
        parent_index = self.require_link(parent).index
        extra: dict[str, Any] = {"mtu": mtu} if mtu is not None else {}
        self._call(
            f"add macvlan {name} on {parent}",
            "link",
            "add",
            ifname=name,
            kind="macvlan",
            link=parent_index,
            macvlan_mode=mode,
            **extra,
        )

    def set_master(self, name: str, bridge: str) -> None:
        index, master = self.require_link(name).index, self.require_link(bridge).index
        self._call(f"enslave {name} to {bridge}", "link", "set", index=index, master=master)

    def move_link(self, name: str, namespace: str, new_name: str | None = None) -> None:
        """Move a link into another named namespace, optionally renaming it on the way."""
        index = self.require_link(name).index
        kwargs: dict[str, Any] = {"net_ns_fd": namespace}
        if new_name:
            kwargs["ifname"] = new_name
        self._call(f"move {name} to namespace {namespace}", "link", "set", index=index, **kwargs)

    def move_link_to_path(self, name: str, path: str, new_name: str | None = None) -> None:
        """Move a link into the namespace bound at ``path`` (e.g. a CNI_NETNS), maybe renamed."""
        index = self.require_link(name).index
        with _wrap(f"open namespace {path}"):
            fd = os.open(path, os.O_RDONLY)
        try:
            kwargs: dict[str, Any] = {"net_ns_fd": fd}
            if new_name:
                kwargs["ifname"] = new_name
            self._call(f"move {name} to namespace {path}", "link", "set", index=index, **kwargs)
        finally:
            os.close(fd)

    def rename_link(self, name: str, new_name: str) -> None:
        """Rename a (down) link."""
        index = self.require_link(name).index
        self._call(f"rename {name} to {new_name}", "link", "set", index=index, ifname=new_name)

    def default_route_link(self) -> str | None:
        """The interface carrying this namespace's first IPv4 default route (else IPv6's)."""
        names = {link.index: link.name for link in self.links()}
        for route in [*self.routes(), *self.routes(6)]:
            if route.is_default and route.oif is not None:
                return names.get(route.oif)
        return None

    def set_up(self, name: str) -> None:
        index = self.require_link(name).index
        self._call(f"set {name} up", "link", "set", index=index, state="up")

    def delete_link(self, name: str) -> None:
        found = self.link(name)
        if found is None:
            return
        self._call(f"delete {name}", "link", "del", index=found.index)

    # -- addresses ---------------------------------------------------------------------------

    def addresses(self, name: str) -> list[ipaddress.IPv4Interface]:
        index = self.require_link(name).index
        msgs = self._call(f"list addresses of {name}", "get_addr", family=AF_INET, index=index)
        return [ipaddress.IPv4Interface(f"{m.get('IFA_ADDRESS')}/{m['prefixlen']}") for m in msgs]

    def addresses6(self, name: str) -> list[ipaddress.IPv6Interface]:
        """The IPv6 addresses of ``name`` of global scope (link-local ``fe80::/10`` left out)."""
        return [a for a, _ in self._addresses6(name) if not a.ip.is_link_local]

    def _addresses6(self, name: str) -> list[tuple[ipaddress.IPv6Interface, int]]:
        index = self.require_link(name).index
        msgs = self._call(f"list addresses of {name}", "get_addr", family=AF_INET6, index=index)
        out = []
        for m in msgs:
            flags = m.get("IFA_FLAGS")
            flags = int(m["flags"] if flags is None else flags)
            out.append((ipaddress.IPv6Interface(f"{m.get('IFA_ADDRESS')}/{m['prefixlen']}"), flags))
        return out

    def all_addresses(self, name: str) -> list[IPInterface]:
        """Every IPv4 address of ``name``, then its global IPv6 ones."""
        return [*self.addresses(name), *self.addresses6(name)]

    def dad_states(self, name: str) -> dict[ipaddress.IPv6Address, str]:
        """Each IPv6 address of ``name`` and where its duplicate address detection stands."""
        states = {}
        for address, flags in self._addresses6(name):
            if flags & IFA_F_DADFAILED:
                states[address.ip] = DadState.FAILED
            elif flags & IFA_F_TENTATIVE:
                states[address.ip] = DadState.TENTATIVE
            else:
                states[address.ip] = DadState.DONE
        return states

    def add_address(self, name: str, address: IPInterface) -> None:
        index = self.require_link(name).index
        self._call(
            f"add address {address} to {name}",
            "addr",
            "add",
            index=index,
            address=str(address.ip),
            prefixlen=address.network.prefixlen,
        )

    def delete_address(self, name: str, address: IPInterface) -> None:
        index = self.require_link(name).index
        self._call(
            f"delete address {address} from {name}",
            "addr",
            "del",
            index=index,
            address=str(address.ip),
            prefixlen=address.network.prefixlen,
        )

    # -- routes ------------------------------------------------------------------------------

    def routes(self, version: int = 4) -> list[Route]:
        """The main table's routes of one family (IPv4 by default; IPv6 ones are unicast only:
        the kernel keeps multicast routes in the local table)."""
        msgs = self._call(
            f"list IPv{version} routes", "get_routes", family=FAMILIES[version], table=MAIN_TABLE
        )
        out = []
        for m in msgs:
            dst = m.get("RTA_DST")
            gw = m.get("RTA_GATEWAY")
            out.append(
                Route(
                    dst=ipaddress.ip_network(f"{dst}/{m['dst_len']}") if dst else None,
                    gateway=ipaddress.ip_address(gw) if gw else None,
                    oif=m.get("RTA_OIF"),
                    scope=int(m.get("scope", 0)),
                    proto=int(m.get("proto", 0)),
                    version=version,
                )
            )
        return out

    def route_to(self, dst: ipaddress.IPv4Address) -> Route | None:
        """The route the kernel would use for ``dst`` (``ip route get``), or None if none."""
        try:
            msgs = self._call(f"get route to {dst}", "route", "get", dst=str(dst))
        except DataplaneError as exc:
            if "errno 101" in str(exc) or "errno 113" in str(exc):  # unreachable
                return None
            raise
        for m in msgs:
            gw = m.get("RTA_GATEWAY")
            return Route(
                dst=ipaddress.IPv4Network(f"{dst}/32"),
                gateway=ipaddress.IPv4Address(gw) if gw else None,
                oif=m.get("RTA_OIF"),
            )
        return None

    def _route_args(
        self,
        dst: IPNetwork | None,
        gateway: IPAddress | None,
        dev: str | None,
        version: int,
    ) -> dict[str, Any]:
        default = "0.0.0.0/0" if version == 4 else "::/0"
        args: dict[str, Any] = {
            "dst": str(dst) if dst else default,
            "table": MAIN_TABLE,
            "family": FAMILIES[version],
        }
        if gateway is not None:
            args["gateway"] = str(gateway)
        elif version == 4:
            args["scope"] = 253  # link: the destination is on-link
        if dev is not None:
            args["oif"] = self.require_link(dev).index
        return args

    def add_route(
        self,
        dst: IPNetwork | None,
        gateway: IPAddress | None = None,
        dev: str | None = None,
    ) -> None:
        """Add a main-table route; its family is that of ``dst`` (or of ``gateway`` for a
        default route). IPv6 has no link scope: an on-link route is one without a gateway."""
        known = dst if dst is not None else gateway
        version = known.version if known is not None else 4
        args = self._route_args(dst, gateway, dev, version)
        self._call(f"add route {dst or 'default'}", "route", "add", **args)

    def delete_route(self, route: Route) -> None:
        default = "0.0.0.0/0" if route.version == 4 else "::/0"
        args: dict[str, Any] = {
            "dst": str(route.dst) if route.dst else default,
            "table": MAIN_TABLE,
            "family": FAMILIES[route.version],
        }
        if route.gateway is not None:
            args["gateway"] = str(route.gateway)
        if route.oif is not None:
            args["oif"] = route.oif
        self._call(f"delete route {route.dst or 'default'}", "route", "del", **args)
