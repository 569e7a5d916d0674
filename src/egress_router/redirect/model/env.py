"""The router image's environment contract: ``EGRESS_SOURCE``, ``EGRESS_GATEWAY``,
``EGRESS_ROUTER_MODE``, ``EGRESS_DESTINATION``, ``EGRESS_ROUTER_DEBUG`` and the interface names.

Owns: reading those variables (from a plain mapping) into one frozen ``RouterEnv``, in the
reference's order (SOURCE, GATEWAY, MODE, then DESTINATION for the modes that need it), and
rejecting anything invalid with a one-line ``VariableError`` before anything is touched.
Must not: read ``os.environ`` itself or do any I/O (the command passes the mapping in).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from egress_router.common.endpoints import HEALTH_VARIABLE, parse_health
from egress_router.common.names import interface_variable
from egress_router.common.switches import SWITCH_EXPECTED, parse_switch
from egress_router.common.values import (
    IPv4Source,
    parse_ipv4,
    parse_ipv4_source,
    trim,
)
from egress_router.errors import VariableError
from egress_router.redirect.model.destinations import Destination, parse_destination

DEFAULT_MACVLAN = "macvlan0"
DEFAULT_CLUSTER = "eth0"
MACVLAN_VARIABLE = "EGRESS_ROUTER_MACVLAN_INTERFACE"
CLUSTER_VARIABLE = "EGRESS_ROUTER_CLUSTER_INTERFACE"
DEBUG_VARIABLE = "EGRESS_ROUTER_DEBUG"


class Mode(StrEnum):
    """``EGRESS_ROUTER_MODE``: what ``setup`` does after validating."""

    LEGACY = "legacy"  # configure, then stay up until SIGTERM/SIGINT (the default)
    INIT = "init"  # configure and exit (init container)
    HTTP_PROXY = "http-proxy"  # interface and routes only, for the HTTP proxy container
    DNS_PROXY = "dns-proxy"  # interface and routes only, for the DNS proxy container
    UNIT_TEST = "unit-test"  # print the complete plan, touch nothing

    @property
    def redirects(self) -> bool:
        """True when the mode installs the redirect ruleset (and needs EGRESS_DESTINATION)."""
        return self in (Mode.LEGACY, Mode.INIT, Mode.UNIT_TEST)


@dataclass(frozen=True)
class Interfaces:
    """Interface names inside the router pod: the macvlan and the cluster-side interface."""

    macvlan: str = DEFAULT_MACVLAN
    cluster: str = DEFAULT_CLUSTER


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface


@dataclass(frozen=True)
class RouterEnv:
    """Everything ``setup`` needs, validated. ``destination`` is None in the proxy modes.

    ``addresses``: every reserved address with its prefix, the primary first; IPv4 and IPv6 may
    mix (the CNI plugin's ``ip.addresses``; the variables give one IPv4 address). ``gateways``:
    the gateway of each family present, IPv4's first: the pod has one default route per family.
    """

    addresses: tuple[IPInterface, ...]
    gateways: tuple[IPAddress, ...]
    mode: Mode
    destination: Destination | None
    interfaces: Interfaces
    debug: bool = False
    health: tuple[str, int] | None = None  # EGRESS_ROUTER_HEALTH_PORT: probes' address, port
    written: IPv4Source | None = None  # EGRESS_SOURCE as written (bare or with its prefix)

    def __post_init__(self) -> None:
        families = sorted({a.version for a in self.addresses})
        if not self.addresses or families != sorted(g.version for g in self.gateways):
            raise ValueError("RouterEnv: one gateway per family of the addresses")

    @property
    def source(self) -> IPv4Source:
        """``EGRESS_SOURCE``: the variables' router (setup, failover, diagnose) is IPv4 only."""
        if self.written is not None:
            return self.written
        first = next((a for a in self.addresses if isinstance(a, ipaddress.IPv4Interface)), None)
        if first is None:
            raise ValueError("RouterEnv.source: this router has no IPv4 address")
        return IPv4Source(first.ip, first.network.prefixlen)

    @property
    def gateway(self) -> ipaddress.IPv4Address:
        """``EGRESS_GATEWAY``: the IPv4 gateway (see ``source``)."""
        found = self.gateway_for(4)
        if not isinstance(found, ipaddress.IPv4Address):
            raise ValueError("RouterEnv.gateway: this router has no IPv4 gateway")
        return found

    def gateway_for(self, version: int) -> IPAddress | None:
        """The gateway of one family, or None when no address is of that family."""
        return next((g for g in self.gateways if g.version == version), None)

    @property
    def families(self) -> tuple[int, ...]:
        """The address families present (4 before 6)."""
        return tuple(sorted({a.version for a in self.addresses}))

    @property
    def source_ip(self) -> ipaddress.IPv4Address:
        """The bare IPv4 source address (what failover and diagnose use)."""
        return self.source.address

    @property
    def source_ips(self) -> tuple[IPAddress, ...]:
        """Every bare reserved address, the primary first (the SNAT pools, the announcements)."""
        return tuple(a.ip for a in self.addresses)


def _invalid(exc: ValueError) -> str:
    reason = str(exc)
    return "unspecified or invalid" + ("" if reason.startswith("expected") else f" ({reason})")


def _source(value: str | None) -> IPv4Source:
    text = trim(value or "")
    try:
        return parse_ipv4_source(text)
    except ValueError as exc:
        raise VariableError(
            "EGRESS_SOURCE",
            _invalid(exc),
            text=value or "",
            expected="an IPv4 address such as 192.168.12.99 or 192.168.12.99/24",
        ) from None


def _gateway(value: str | None) -> ipaddress.IPv4Address:
    text = trim(value or "")
    try:
        return parse_ipv4(text)
    except ValueError as exc:
        raise VariableError(
            "EGRESS_GATEWAY",
            _invalid(exc),
            text=value or "",
            expected="an IPv4 address without prefix, such as 192.168.12.1",
        ) from None


def _debug(value: str | None) -> bool:
    """``EGRESS_ROUTER_DEBUG``: on/off (``common.switches``); unset or empty is off."""
    try:
        return parse_switch(value)
    except ValueError:
        raise VariableError(
            DEBUG_VARIABLE, "expected on or off", text=value, expected=SWITCH_EXPECTED
        ) from None


def _mode(value: str | None) -> Mode:
    text = trim(value or "")
    if not text:
        return Mode.LEGACY
    try:
        return Mode(text)
    except ValueError:
        raise VariableError(
            "EGRESS_ROUTER_MODE",
            f"Unrecognized EGRESS_ROUTER_MODE '{value}'",
            expected=", ".join(m.value for m in Mode),
        ) from None


def interface_name(value: str, variable: str) -> str:
    """A Linux interface name (``common.names``), or a ``VariableError`` naming ``variable``."""
    return interface_variable(variable, value)


def _interfaces(env: Mapping[str, str], macvlan: str | None, cluster: str | None) -> Interfaces:
    macvlan_name = interface_name(
        macvlan if macvlan is not None else env.get(MACVLAN_VARIABLE) or DEFAULT_MACVLAN,
        "--macvlan-interface" if macvlan is not None else MACVLAN_VARIABLE,
    )
    cluster_name = interface_name(
        cluster if cluster is not None else env.get(CLUSTER_VARIABLE) or DEFAULT_CLUSTER,
        "--cluster-interface" if cluster is not None else CLUSTER_VARIABLE,
    )
    if macvlan_name == cluster_name:
        raise VariableError(
            MACVLAN_VARIABLE,
            f"the macvlan and the cluster interface must differ (both '{macvlan_name}')",
        )
    return Interfaces(macvlan=macvlan_name, cluster=cluster_name)


def parse_router_env(
    env: Mapping[str, str], *, macvlan: str | None = None, cluster: str | None = None
) -> RouterEnv:
    """Validate every variable (flags ``macvlan``/``cluster`` override the variables)."""
    source = _source(env.get("EGRESS_SOURCE"))
    gateway = _gateway(env.get("EGRESS_GATEWAY"))
    debug = _debug(env.get(DEBUG_VARIABLE))  # the reference's order: after SOURCE and GATEWAY
    mode = _mode(env.get("EGRESS_ROUTER_MODE"))
    destination = parse_destination(env.get("EGRESS_DESTINATION")) if mode.redirects else None
    interfaces = _interfaces(env, macvlan, cluster)
    if gateway == source.address:
        raise VariableError(
            "EGRESS_GATEWAY",
            f"must differ from EGRESS_SOURCE ({source.address})",
            text=env.get("EGRESS_GATEWAY", ""),
        )
    try:
        health = parse_health(env.get(HEALTH_VARIABLE))
    except ValueError as exc:
        raise VariableError(
            HEALTH_VARIABLE, str(exc), text=env.get(HEALTH_VARIABLE, ""),
            expected="a port (e.g. 8081), ADDR:PORT, or off",
        ) from None  # fmt: skip
    return RouterEnv(
        addresses=(source.interface,),
        gateways=(gateway,),
        written=source,
        mode=mode,
        destination=destination,
        interfaces=interfaces,
        debug=debug,
        health=health,
    )
