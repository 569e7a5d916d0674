"""Observing a router namespace for ``diagnose``: read-only, through the kernel adapters.

Owns: filling ``Observed`` in the namespace this process runs in (the command enters it
first): links, addresses and routes (netlink), ARP probes of the gateway from the reserved
address (raw socket), our nftables table and its counters (``nft -j``), conntrack entries to
the destinations, lookups of named destinations (the pod's resolver) and one bounded TCP test
connection per destination from the reserved address.
Must not: change anything. No route, address, rule or sysctl is written; the ARP probes and
the test connections are the only packets sent. Must not decide (``diagnose.model.verdict``).
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import ipaddress
import socket
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from egress_router.diagnose.model.observations import (
    ArpProbe,
    Connection,
    Expected,
    LinkState,
    Observed,
    Outcome,
    Resolution,
    RouteView,
    RulesetView,
    Target,
)
from egress_router.errors import DataplaneError, ResolveError
from egress_router.kernel import arp, conntrack, nftables
from egress_router.kernel.netlink import Link, Netlink
from egress_router.redirect.model import rules as redirect_rules
from egress_router.runtime.resolver import RESOLV_CONF, Resolver

MAX_TARGETS = 64  # test connections per run (bounds the run time on a huge destination list)
PARALLEL = 16  # test connections in flight at once
FALLBACK_PORT = 80  # a fallback line forwards every port; this one is tried


@dataclass(frozen=True)
class Limits:
    """Time bounds of the probes, in seconds."""

    connect_s: float = 2.0  # per test connection
    arp_s: float = 1.0  # per ARP probe (one retry at half time)
    resolve_s: float = 3.0  # per name lookup


def _link_state(nl: Netlink, link: Link | None, name: str) -> LinkState:
    if link is None:
        return LinkState(name, exists=False)
    return LinkState(
        name,
        exists=True,
        admin_up=link.up,
        carrier=link.running,
        mac=link.mac,
        addresses=tuple(nl.addresses(name)),
    )


def _network(
    exp: Expected,
) -> tuple[LinkState, LinkState, tuple[RouteView, ...], RouteView | None]:
    with Netlink() as nl:
        names = {link.index: link.name for link in nl.links()}
        macvlan = _link_state(nl, nl.link(exp.macvlan), exp.macvlan)
        cluster = _link_state(nl, nl.link(exp.cluster), exp.cluster)
        routes = tuple(
            RouteView(
                None if r.is_default else r.dst,
                r.gateway,
                names.get(r.oif) if r.oif is not None else None,
            )
            for r in nl.routes()
        )
        via = nl.route_to(exp.gateway)
        gateway_route = (
            None
            if via is None
            else RouteView(via.dst, via.gateway, names.get(via.oif) if via.oif else None)
        )
    return macvlan, cluster, routes, gateway_route


def _anonymous_mac(mac: str) -> str:
    """A locally administered unicast MAC, stable for a given interface MAC, never equal to it."""
    digest = hashlib.sha256(mac.encode()).digest()
    return ":".join(f"{b:02x}" for b in (0x02, *digest[:5]))


def _arp(exp: Expected, link: LinkState, limits: Limits) -> tuple[ArpProbe | None, ArpProbe | None]:
    if not (link.exists and link.admin_up and link.carrier and link.mac):
        return None, None

    def one(anonymous: bool) -> ArpProbe:
        assert link.mac is not None
        sender = arp.ZERO_IP if anonymous else exp.source_ip
        try:
            mac, ms = arp.probe(
                exp.macvlan,
                link.mac,
                exp.source_ip,
                exp.gateway,
                limits.arp_s,
                anonymous_mac=_anonymous_mac(link.mac) if anonymous else None,
            )
        except DataplaneError as exc:
            return ArpProbe(exp.gateway, sender, anonymous, None, 0.0, str(exc))
        return ArpProbe(exp.gateway, sender, anonymous, mac, ms)

    ours = one(anonymous=False)
    return ours, (None if ours.answered else one(anonymous=True))


def _counter(rule: dict[str, Any]) -> int | None:
    for stmt in rule.get("expr", []):
        if isinstance(stmt, dict) and isinstance(stmt.get("counter"), dict):
            return int(stmt["counter"].get("packets", 0))
    return None


def _ruleset(exp: Expected, desired: Sequence[nftables.Command] | None) -> RulesetView | None:
    if exp.table is None:
        return None
    listing = nftables.list_table("ip", exp.table)
    if listing is None:
        return RulesetView(exp.table, present=False)
    redirected: int | None = None
    refused: int | None = None
    for item in listing:
        rule = item.get("rule")
        if not rule:
            continue
        count = _counter(rule)
        if count is None:
            continue
        kinds = {next(iter(s)) for s in rule.get("expr", []) if isinstance(s, dict)}
        if "dnat" in kinds:
            redirected = (redirected or 0) + count
        elif "reject" in kinds:
            refused = (refused or 0) + count
    current = redirect_rules.is_current(list(desired), listing) if desired is not None else True
    return RulesetView(
        exp.table,
        present=True,
        current=current,
        redirected_packets=redirected,
        refused_packets=refused,
        elements=redirect_rules.element_counts(listing),
        text=nftables.list_table_text("ip", exp.table) or "",
    )


def _resolve(names: Sequence[str], resolv_conf: str, limits: Limits) -> tuple[Resolution, ...]:
    if not names:
        return ()
    resolver = Resolver(resolv_conf, timeout=limits.resolve_s)

    async def all_names() -> list[Resolution]:
        out = []
        for name in names:
            try:
                answer = await resolver.lookup(name)
            except ResolveError as exc:
                out.append(Resolution(name, error=str(exc)))
                continue
            out.append(Resolution(name, answer.ipv4))
        return out

    return tuple(asyncio.run(all_names()))


def connect(
    source: ipaddress.IPv4Address, address: ipaddress.IPv4Address, port: int, timeout: float
) -> tuple[Outcome, float, str]:
    """One TCP connection from ``source`` to ``address``:``port``; closed at once."""
    started = time.monotonic()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.bind((str(source), 0))
        except OSError as exc:
            return Outcome.ERROR, 0.0, f"cannot use {source} as source: {exc.strerror}"
        try:
            sock.connect((str(address), port))
            outcome, detail = Outcome.CONNECTED, ""
        except ConnectionRefusedError:
            outcome, detail = Outcome.REFUSED, "TCP reset"
        except TimeoutError:
            outcome, detail = Outcome.TIMEOUT, f"no answer in {timeout:g} s"
        except OSError as exc:
            if exc.errno == errno.ENETUNREACH:
                outcome = Outcome.NO_ROUTE
            elif exc.errno in (errno.EHOSTUNREACH, errno.EACCES, errno.EPERM):
                outcome = Outcome.UNREACHABLE
            else:
                outcome = Outcome.ERROR
            detail = exc.strerror or str(exc)
    return outcome, (time.monotonic() - started) * 1000, detail


def _connections(
    exp: Expected, resolutions: Sequence[Resolution], limits: Limits
) -> tuple[Connection, ...]:
    resolved = {r.name: r.addresses for r in resolutions}
    jobs: list[tuple[Target, ipaddress.IPv4Address | None, int | None]] = []
    for target in exp.targets[:MAX_TARGETS]:
        if target.is_name:
            addresses = resolved.get(target.host, ())
            jobs += [(target, a, target.port) for a in addresses] or [(target, None, target.port)]
        else:
            jobs.append((target, ipaddress.IPv4Address(target.host), target.port))

    def run(job: tuple[Target, ipaddress.IPv4Address | None, int | None]) -> Connection:
        target, address, port = job
        if address is None:
            return Connection(target, None, port, Outcome.NOT_TESTED, detail="name not resolved")
        if target.protocol != "tcp":
            return Connection(
                target, address, port, Outcome.NOT_TESTED, detail=f"{target.protocol}"
            )
        tried = FALLBACK_PORT if port is None else port
        outcome, ms, detail = connect(exp.source_ip, address, tried, limits.connect_s)
        return Connection(target, address, tried, outcome, ms, detail)

    with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
        return tuple(pool.map(run, jobs[:MAX_TARGETS]))


def _conntrack(exp: Expected, resolutions: Sequence[Resolution]) -> dict[str, int]:
    wanted = {t.host for t in exp.targets if not t.is_name}
    wanted |= {str(a) for r in resolutions for a in r.addresses}
    counts = dict.fromkeys(sorted(wanted), 0)
    for flow in conntrack.entries():
        if flow.destination in counts and flow.client != str(exp.source_ip):
            counts[flow.destination] += 1
    return counts


def observe(
    exp: Expected,
    *,
    desired: Sequence[nftables.Command] | None = None,
    resolv_conf: str = RESOLV_CONF,
    limits: Limits = Limits(),
) -> Observed:
    """Everything ``diagnose`` looks at, in this namespace (``desired``: our table, if any)."""
    errors: list[str] = []
    macvlan, cluster, routes, gateway_route = _network(exp)
    probe, anonymous = _arp(exp, macvlan, limits)
    ruleset: RulesetView | None = None
    try:
        ruleset = _ruleset(exp, desired)
    except DataplaneError as exc:
        errors.append(f"ruleset: {exc}")
    names = tuple(dict.fromkeys(t.host for t in exp.targets if t.is_name))
    resolutions = _resolve(names, resolv_conf, limits)
    counts: dict[str, int] = {}
    try:  # before the test connections, so their own entries are not counted
        counts = _conntrack(exp, resolutions)
    except DataplaneError as exc:
        errors.append(f"conntrack: {exc}")
    return Observed(
        macvlan=macvlan,
        cluster=cluster,
        routes=routes,
        gateway_route=gateway_route,
        arp=probe,
        anonymous_arp=anonymous,
        ruleset=ruleset,
        conntrack=counts,
        resolutions=resolutions,
        connections=_connections(exp, resolutions, limits),
        errors=tuple(errors),
    )
