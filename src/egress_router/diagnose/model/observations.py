"""What ``egress-router diagnose`` expects and what it saw: plain frozen values, no I/O.

Owns: the expectation derived from the ``EGRESS_*`` variables (``Expected``: source, gateway,
interfaces, the destinations to test) and the observation of one router namespace
(``Observed``: interfaces, routes, ARP probes, our nftables table's counters, conntrack,
name resolution, test connections), both serialisable for ``--json``.
Must not: observe anything (``diagnose.gather`` fills ``Observed``) or decide anything
(``diagnose.model.verdict`` does).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from enum import StrEnum


class Outcome(StrEnum):
    """How a test connection from the reserved address ended."""

    CONNECTED = "connected"
    REFUSED = "refused"  # a TCP reset: the destination host answered, nothing listens
    TIMEOUT = "timeout"  # no answer at all within the bound
    UNREACHABLE = "unreachable"  # an ICMP error came back (host/net unreachable, prohibited)
    NO_ROUTE = "no route"  # the router's own kernel has no route (ENETUNREACH)
    ERROR = "error"  # anything else (bind failed: the source address is missing, ...)
    NOT_TESTED = "not tested"  # UDP lines, names that did not resolve


@dataclass(frozen=True)
class Target:
    """One destination the router forwards to, as configured (a line of a destination)."""

    label: str  # e.g. "line 2: tcp 8080 -> 203.0.113.26:80"
    host: str  # an IPv4 literal, or a DNS name (dns-proxy mode)
    port: int | None  # the remote port; None for a fallback line (every port)
    protocol: str = "tcp"
    local_port: int | None = None  # the port clients use on the router; None for a fallback

    @property
    def is_name(self) -> bool:
        try:
            ipaddress.IPv4Address(self.host)
        except ValueError:
            return True
        return False


@dataclass(frozen=True)
class Expected:
    """What should be there, from the same variables as ``setup``."""

    source: ipaddress.IPv4Interface
    gateway: ipaddress.IPv4Address
    macvlan: str
    cluster: str
    mode: str
    table: str | None  # our nftables table in this mode (``ip <name>``), None when none
    targets: tuple[Target, ...] = ()

    @property
    def source_ip(self) -> ipaddress.IPv4Address:
        return self.source.ip


@dataclass(frozen=True)
class LinkState:
    """An interface as the kernel reports it (``exists`` False: nothing else is meaningful)."""

    name: str
    exists: bool
    admin_up: bool = False
    carrier: bool = False  # operationally up (a macvlan whose parent is down has none)
    mac: str | None = None
    addresses: tuple[ipaddress.IPv4Interface, ...] = ()


@dataclass(frozen=True)
class RouteView:
    """A main-table IPv4 route (as the kernel adapter types it): ``dst`` None is the default."""

    dst: ipaddress.IPv4Network | ipaddress.IPv6Network | None
    gateway: ipaddress.IPv4Address | ipaddress.IPv6Address | None
    device: str | None

    def __str__(self) -> str:
        via = f" via {self.gateway}" if self.gateway else ""
        dev = f" dev {self.device}" if self.device else ""
        return f"{self.dst or 'default'}{via}{dev}"


@dataclass(frozen=True)
class ArpProbe:
    """One ARP request for the gateway and its answer (``mac`` None: nobody answered).

    ``anonymous``: sent from another MAC with sender address 0.0.0.0 (RFC 5227 probe form),
    asking for a broadcast answer; it tells a gateway that is silent from one that ignores
    the macvlan's MAC.
    """

    target: ipaddress.IPv4Address
    sender: ipaddress.IPv4Address
    anonymous: bool
    mac: str | None
    elapsed_ms: float
    error: str | None = None

    @property
    def answered(self) -> bool:
        return self.mac is not None


@dataclass(frozen=True)
class RulesetView:
    """Our nftables table: present, as ``setup`` would write it, and its counters."""

    table: str
    present: bool
    current: bool = False  # the live table is exactly what the variables describe
    redirected_packets: int | None = None  # DNAT rules (None: the rules carry no counter)
    refused_packets: int | None = None  # reject rules: clients on ports in no line
    elements: dict[str, int] = field(default_factory=dict)  # map name -> element count
    text: str = ""  # the table as ``nft list`` prints it (for people)


@dataclass(frozen=True)
class Resolution:
    """A named destination looked up through the pod's resolver."""

    name: str
    addresses: tuple[ipaddress.IPv4Address, ...] = ()
    error: str | None = None


@dataclass(frozen=True)
class Connection:
    """A test connection from the reserved address to one destination address and port."""

    target: Target
    address: ipaddress.IPv4Address | None
    port: int | None
    outcome: Outcome
    elapsed_ms: float = 0.0
    detail: str = ""


@dataclass(frozen=True)
class Observed:
    """Everything gathered in the router's namespace."""

    macvlan: LinkState
    cluster: LinkState
    routes: tuple[RouteView, ...]
    gateway_route: RouteView | None  # what the kernel answers for ``ip route get GATEWAY``
    arp: ArpProbe | None  # None: not sent (no macvlan, no MAC, or no source address)
    anonymous_arp: ArpProbe | None  # only sent when ``arp`` got no answer
    ruleset: RulesetView | None  # None: no table in this mode
    conntrack: dict[str, int] = field(default_factory=dict)  # destination address -> entries
    resolutions: tuple[Resolution, ...] = ()
    connections: tuple[Connection, ...] = ()
    errors: tuple[str, ...] = ()  # what could not be observed (tools missing, ...)
