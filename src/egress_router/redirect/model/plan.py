"""Planning the router pod's network: desired state vs observed state -> operations.

Owns: what the macvlan side must look like (every reserved address, link up; for each address
family present an on-link host route to its gateway, the only default route of that family via
the gateway on the macvlan, and forwarding on: ``net.ipv4.ip_forward=1``, and for IPv6
``net.ipv6.conf.all.forwarding=1`` (the reference wrote ``net.ipv6.ip_forward``, which does
not exist) with IPv6 enabled on the macvlan) and the minimal, ordered list of operations that
gets there from what the kernel reports.
Must not: talk to the kernel. The applier observes, calls ``plan_network`` and executes the
operations in order; an already configured pod yields an empty plan (idempotence).

Order matters: the link is up before routes through it are added (the kernel refuses routes
on a down link), and a stale address (another source before) resets the macvlan's addresses
and routes, because the kernel flushes an interface's routes with its last address.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from egress_router.common.values import IPAddress, IPNetwork
from egress_router.redirect.model.env import IPInterface, RouterEnv

FORWARD_SYSCTL = "net.ipv4.ip_forward"
FORWARD6_SYSCTL = "net.ipv6.conf.all.forwarding"


def disable_ipv6_sysctl(device: str) -> str:
    return f"net.ipv6.conf.{device}.disable_ipv6"


@dataclass(frozen=True)
class ObservedRoute:
    """A main-table route as observed. ``dst`` None is the default route of ``version``."""

    dst: IPNetwork | None
    gateway: IPAddress | None
    device: str | None
    version: int = 4

    @property
    def is_default(self) -> bool:
        return self.dst is None or self.dst.prefixlen == 0


@dataclass(frozen=True)
class ObservedNetwork:
    """The parts of the pod's network the plan depends on."""

    macvlan_up: bool
    macvlan_addresses: tuple[IPInterface, ...]
    routes: tuple[ObservedRoute, ...]
    ip_forward: str
    ipv6_forwarding: str = "0"  # net.ipv6.conf.all.forwarding
    ipv6_disabled: str = "0"  # net.ipv6.conf.<macvlan>.disable_ipv6

    @classmethod
    def empty(cls) -> ObservedNetwork:
        """A freshly moved, unconfigured macvlan (what ``unit-test`` plans against)."""
        return cls(macvlan_up=False, macvlan_addresses=(), routes=(), ip_forward="0")


@dataclass(frozen=True)
class AddAddress:
    device: str
    address: IPInterface

    def __str__(self) -> str:
        return f"address add {self.address} dev {self.device}"


@dataclass(frozen=True)
class DeleteAddress:
    device: str
    address: IPInterface

    def __str__(self) -> str:
        return f"address del {self.address} dev {self.device}"


@dataclass(frozen=True)
class SetUp:
    device: str

    def __str__(self) -> str:
        return f"link set {self.device} up"


@dataclass(frozen=True)
class AddRoute:
    route: ObservedRoute

    def __str__(self) -> str:
        return "route add " + _route_text(self.route)


@dataclass(frozen=True)
class DeleteRoute:
    route: ObservedRoute

    def __str__(self) -> str:
        return "route del " + _route_text(self.route)


@dataclass(frozen=True)
class SetSysctl:
    key: str
    value: str

    def __str__(self) -> str:
        return f"sysctl {self.key}={self.value}"


NetworkOp = AddAddress | DeleteAddress | SetUp | AddRoute | DeleteRoute | SetSysctl


@dataclass(frozen=True)
class Announce:
    """A gratuitous ARP for ``address`` out of ``device`` (reply form, or request form); for
    an IPv6 address an unsolicited neighbour advertisement."""

    device: str
    address: IPAddress
    request: bool

    def __str__(self) -> str:
        if self.address.version == 6:
            return f"unsolicited neighbour advertisement for {self.address} on {self.device}"
        kind = "request" if self.request else "reply"
        return f"gratuitous ARP {kind} for {self.address} on {self.device}"


def _route_text(route: ObservedRoute) -> str:
    dst = "default" if route.is_default else str(route.dst)
    via = f" via {route.gateway}" if route.gateway else ""
    dev = f" dev {route.device}" if route.device else ""
    scope = " scope link" if route.gateway is None and route.version == 4 else ""
    return f"{dst}{via}{dev}{scope}"


def desired_routes(env: RouterEnv) -> tuple[ObservedRoute, ...]:
    """For each family: the host route that makes its gateway on-link, and the default route
    via it."""
    macvlan = env.interfaces.macvlan
    out: list[ObservedRoute] = []
    for gateway in env.gateways:
        host = ipaddress.ip_network((int(gateway), gateway.max_prefixlen))
        out.append(ObservedRoute(host, None, macvlan, gateway.version))
        out.append(ObservedRoute(None, gateway, macvlan, gateway.version))
    return tuple(out)


def _same_dst(a: ObservedRoute, b: ObservedRoute) -> bool:
    if a.version != b.version:
        return False
    if a.is_default or b.is_default:
        return a.is_default and b.is_default
    return a.dst == b.dst


def _same(a: ObservedRoute, b: ObservedRoute) -> bool:
    return _same_dst(a, b) and a.gateway == b.gateway and a.device == b.device


def plan_network(env: RouterEnv, observed: ObservedNetwork) -> list[NetworkOp]:
    """The operations that turn ``observed`` into the desired state (empty when already there)."""
    macvlan = env.interfaces.macvlan
    wanted = env.addresses
    ops: list[NetworkOp] = []
    routes = observed.routes
    if any(a not in wanted for a in observed.macvlan_addresses):
        # A different source before: start the macvlan from scratch. Removing its addresses
        # one by one could take ours with them (secondaries die with their primary), and the
        # kernel flushes the macvlan's routes when its last address goes, so plan without them.
        ops += [DeleteAddress(macvlan, a) for a in observed.macvlan_addresses]
        routes = tuple(r for r in routes if r.device != macvlan)
        ops += [AddAddress(macvlan, want) for want in wanted]
    else:
        # In order: the first of a subnet becomes its primary address, the rest secondaries.
        ops += [AddAddress(macvlan, w) for w in wanted if w not in observed.macvlan_addresses]
    if 6 in env.families and observed.ipv6_forwarding != "1":
        # Before the link comes up: a forwarding interface ignores router advertisements, so
        # none can add a default route or a SLAAC address beside ours.
        ops.append(SetSysctl(FORWARD6_SYSCTL, "1"))
    if not observed.macvlan_up:
        ops.append(SetUp(macvlan))
    for route in desired_routes(env):
        # Only ours may remain for each destination (e.g. the SDN's default via eth0 goes).
        ops += [DeleteRoute(r) for r in routes if _same_dst(route, r) and not _same(route, r)]
        if not any(_same(route, r) for r in routes):
            ops.append(AddRoute(route))
    if 6 in env.families and observed.ipv6_disabled != "0":
        ops.insert(0, SetSysctl(disable_ipv6_sysctl(macvlan), "0"))  # before its addresses
    if 4 in env.families and observed.ip_forward != "1":
        ops.append(SetSysctl(FORWARD_SYSCTL, "1"))
    return ops


def announcements(env: RouterEnv, *, request: bool) -> tuple[Announce, ...]:
    """Gratuitous ARPs for every reserved address (always sent): the reply form first (at
    configuration), then the request form (``apply.announce_request``)."""
    macvlan = env.interfaces.macvlan
    return tuple(Announce(macvlan, ip, request=request) for ip in env.source_ips)
