"""The redirect ruleset: a parsed ``EGRESS_DESTINATION`` as one nftables table (JSON commands).

Owns: the content of our table ``ip egress_router`` and its fingerprint (which tells the
applier whether the live table already is the desired one).
Must not: run nft (``kernel.nftables`` applies it, prefixed by its atomic table swap).

    table ip egress_router
      map dnat_tcp_addr  local port -> remote address      (one element per TCP line)
      map dnat_tcp_port  local port -> remote port         (same keys)
      map dnat_udp_addr, dnat_udp_port                     (the same for UDP lines)
      chain prerouting (nat, dstnat)
        iifname <cluster> tcp dport <health> accept          only with a health port: the
                                                              kubelet's probes reach us
        iifname <cluster> tcp dport @dnat_tcp_addr counter dnat ip to tcp dport map ...
        iifname <cluster> udp dport @dnat_udp_addr counter dnat ip to udp dport map ...
        iifname <cluster> counter dnat ip to <fallback>      only with a fallback line
      chain postrouting (nat, srcnat)
        oifname <macvlan> snat ip to <bare source>               comment carries the fingerprint
          (several reserved addresses: snat ip to jhash ip saddr . ip daddr mod N seed S
           map { 0 : <first>, 1 : <second>, ... }, so each client/destination pair keeps
           one address, the same after every reload, and the pairs spread over all of them)
      chain input (filter)
        ct state established,related accept
        iifname <cluster> tcp dport <health> accept            only with a health port
        iifname <cluster> icmp type echo-request accept
        iifname <cluster> meta l4proto tcp counter reject with tcp reset  unmapped ports fail
        iifname <cluster> counter reject (icmp port-unreachable)   at once, never reach the router

IPv6 destinations (the CNI grammar) get the same table in the ``ip6`` family, built by the same
code with ``version=6``: ``ipv6_addr`` map data, ``dnat ip6``, SNAT over the IPv6 reserved
addresses, ``icmpv6`` echo requests accepted and unmapped ports refused with ``icmpv6
port-unreachable``. Its input chain also accepts neighbour discovery from the cluster side
(solicitations, advertisements, router advertisements, redirects): without them the pod's
IPv6 neighbours could not resolve it. A router with addresses of one family has only that
family's table (``tables``).

Three hash lookups per new connection (one to count only mapped ports), whatever the number
of lines. The maps' keys are
``tcp dport`` / ``udp dport``: nft adds the ``meta l4proto`` dependency, so a UDP packet can
never match the TCP maps nor the reverse. NAT happens only on a connection's first packet; the
rest follow conntrack. (One map with ``ipv4_addr . inet_service`` data would do the same with
one lookup, but nft 1.0.6's JSON parser cannot declare concatenated map data: it crashes.)
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from egress_router.common.nft import Command, Table, match_meta
from egress_router.common.values import IPAddress
from egress_router.redirect.model.destinations import (
    AnyProtocol,
    Destination,
    ExtraProtocol,
    Protocol,
)
from egress_router.redirect.model.env import Interfaces

FAMILY = "ip"
FAMILY6 = "ip6"
TABLE = "egress_router"
FAMILIES = {4: FAMILY, 6: FAMILY6}
_TABLES = {4: Table(FAMILY, TABLE), 6: Table(FAMILY6, TABLE)}
_ICMP = {4: "icmp", 6: "icmpv6"}
# What the cluster side may send the router itself over IPv6 besides echo requests: neighbour
# discovery (conntrack does not track it, so "established" never covers it).
ND_TYPES = ["nd-router-advert", "nd-neighbor-solicit", "nd-neighbor-advert", "nd-redirect"]
FINGERPRINT_PREFIX = "egress-router config "
# Every DNAT rule and every reject counts its packets: ``egress-router diagnose`` reads them
# (new connections redirected vs refused because their port is in no line).
COUNTER: Command = {"counter": None}
MAP_NAMES: dict[AnyProtocol, str] = {
    Protocol.TCP: "dnat_tcp",
    Protocol.UDP: "dnat_udp",
    ExtraProtocol.SCTP: "dnat_sctp",  # + "_addr" / "_port"
}


def _protocols(destination: Destination) -> list[AnyProtocol]:
    """TCP and UDP always (fixed table layout); SCTP only when a rule uses it."""
    extra = [ExtraProtocol.SCTP] if destination.by_protocol(ExtraProtocol.SCTP) else []
    return [Protocol.TCP, Protocol.UDP, *extra]


def _dnat_map(protocol: AnyProtocol, version: int = 4) -> Command:
    key = {"payload": {"protocol": protocol.value, "field": "dport"}}
    name = MAP_NAMES[protocol]
    return {
        "dnat": {
            "family": FAMILIES[version],
            "addr": {"map": {"key": key, "data": f"@{name}_addr"}},
            "port": {"map": {"key": dict(key), "data": f"@{name}_port"}},
        }
    }


def _in_map(protocol: AnyProtocol) -> Command:
    """``<proto> dport @<map>_addr``: only mapped ports reach the counter (and the DNAT)."""
    key = {"payload": {"protocol": protocol.value, "field": "dport"}}
    return {"match": {"op": "==", "left": key, "right": f"@{MAP_NAMES[protocol]}_addr"}}


def _maps(destination: Destination, protocol: AnyProtocol, version: int = 4) -> list[Command]:
    rules = destination.by_protocol(protocol)
    name = MAP_NAMES[protocol]
    data = "ipv4_addr" if version == 4 else "ipv6_addr"
    addr: dict[str, Any] = {"name": f"{name}_addr", "type": "inet_service", "map": data}
    port: dict[str, Any] = {"name": f"{name}_port", "type": "inet_service", "map": "inet_service"}
    if rules:
        addr["elem"] = [[rule.port, str(rule.address)] for rule in rules]
        port["elem"] = [[rule.port, rule.remote_port] for rule in rules]
    table = _TABLES[version]
    return [table.add("map", **addr), table.add("map", **port)]


def _body(
    destination: Destination,
    ifs: Interfaces,
    health_port: int | None = None,
    version: int = 4,
) -> list[Command]:
    table = _TABLES[version]
    icmp = _ICMP[version]
    cluster = match_meta("iifname", ifs.cluster)
    protocols = _protocols(destination)
    probes: list[Command] = []
    if health_port is not None:
        dport = {
            "match": {
                "op": "==",
                "left": {"payload": {"protocol": "tcp", "field": "dport"}},
                "right": health_port,
            }
        }
        probes = [cluster, dport, {"accept": None}]
    prerouting = [table.rule("prerouting", *probes)] if probes else []
    prerouting += [
        table.rule("prerouting", cluster, _in_map(p), COUNTER, _dnat_map(p, version))
        for p in protocols
    ]
    if destination.fallback is not None:
        prerouting.append(
            table.rule(
                "prerouting",
                cluster,
                COUNTER,
                {"dnat": {"family": FAMILIES[version], "addr": str(destination.fallback)}},
            )
        )
    established = {
        "match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": ["established", "related"]}
    }
    icmp_type = {"payload": {"protocol": icmp, "field": "type"}}
    echo = {"match": {"op": "==", "left": icmp_type, "right": "echo-request"}}
    nd = {"match": {"op": "==", "left": icmp_type, "right": {"set": list(ND_TYPES)}}}
    neighbours = [table.rule("input", cluster, nd, {"accept": None})] if version == 6 else []
    return [
        table.create(),
        *(m for p in protocols for m in _maps(destination, p, version)),
        table.base_chain("prerouting", "nat", "prerouting", -100),
        table.base_chain("postrouting", "nat", "postrouting", 100),
        table.base_chain("input", "filter", "input", 0),
        *prerouting,
        table.rule("input", established, {"accept": None}),
        *([table.rule("input", *probes)] if probes else []),
        table.rule("input", cluster, echo, {"accept": None}),
        *neighbours,
        table.rule(
            "input",
            cluster,
            match_meta("l4proto", "tcp"),
            COUNTER,
            {"reject": {"type": "tcp reset"}},
        ),
        table.rule(
            "input", cluster, COUNTER, {"reject": {"type": icmp, "expr": "port-unreachable"}}
        ),
    ]


# The SNAT hash's seed: fixed, so a flow's address does not change when the table is replaced
# (nft would pick a random seed per rule without one).
SNAT_SEED = 0x65677274


def snat(sources: Sequence[IPAddress]) -> Command:
    """SNAT to the one reserved address, or spread over several by a stable hash (all of
    ``sources`` are of one family: the table's)."""
    family = FAMILIES[sources[0].version]
    if len(sources) == 1:
        return {"snat": {"family": family, "addr": str(sources[0])}}
    pair = [
        {"payload": {"protocol": family, "field": "saddr"}},
        {"payload": {"protocol": family, "field": "daddr"}},
    ]
    key = {"jhash": {"mod": len(sources), "seed": SNAT_SEED, "expr": {"concat": pair}}}
    data = {"set": [[index, str(address)] for index, address in enumerate(sources)]}
    return {"snat": {"family": family, "addr": {"map": {"key": key, "data": data}}}}


def fingerprint(commands: list[Command]) -> str:
    """A stable digest of a command list (what the live table is compared by)."""
    text = json.dumps(commands, sort_keys=True, separators=(",", ":"))
    return FINGERPRINT_PREFIX + hashlib.sha256(text.encode()).hexdigest()[:32]


def redirect_ruleset(
    destination: Destination,
    source: IPAddress | Sequence[IPAddress],
    interfaces: Interfaces,
    health_port: int | None = None,
) -> list[Command]:
    """The whole table of the sources' family (creation commands only; the applier prefixes
    the atomic swap). Only the destination's rules of that family go in.

    ``source``: the reserved address, or all of them of one family (the primary first). The
    SNAT rule carries the fingerprint of everything else as its comment, so reading the live
    table back tells whether it already is this ruleset.
    """
    sources = list(source) if isinstance(source, Sequence) else [source]
    if not sources:
        raise ValueError("redirect_ruleset: no source address")
    version = sources[0].version
    if any(address.version != version for address in sources):
        raise ValueError("redirect_ruleset: sources of two families")
    table = _TABLES[version]
    body = _body(destination.of_version(version), interfaces, health_port, version)
    snat_rule = [match_meta("oifname", interfaces.macvlan), snat(sources)]
    mark = fingerprint([*body, table.rule("postrouting", *snat_rule)])
    return [*body, table.rule("postrouting", *snat_rule, comment=mark)]


def tables(
    destination: Destination,
    sources: Sequence[IPAddress],
    interfaces: Interfaces,
    health_port: int | None = None,
) -> dict[int, list[Command]]:
    """One table per family of ``sources`` (IPv4 first): what a router of those addresses runs."""
    out: dict[int, list[Command]] = {}
    for version in (4, 6):
        mine = [address for address in sources if address.version == version]
        if mine:
            out[version] = redirect_ruleset(destination, mine, interfaces, health_port)
    return out


def live_fingerprint(listing: list[Command] | None) -> str | None:
    """The fingerprint found in a live table's ``nft -j list table`` output (None if absent)."""
    for item in listing or []:
        rule = item.get("rule")
        if rule and rule.get("chain") == "postrouting":
            comment = rule.get("comment")
            if isinstance(comment, str) and comment.startswith(FINGERPRINT_PREFIX):
                return comment
    return None


def element_counts(listing: list[Command] | None) -> dict[str, int]:
    """Elements per map in a live listing (guards against a map emptied behind our back)."""
    counts: dict[str, int] = {}
    for item in listing or []:
        m = item.get("map")
        if m:
            counts[m["name"]] = len(m.get("elem", []))
    return counts


def is_current(desired: list[Command], listing: list[Command] | None) -> bool:
    """True when the live table (listing) is already exactly ``desired``."""
    if listing is None:
        return False
    mark = next(
        (
            c["add"]["rule"].get("comment")
            for c in desired
            if "rule" in c["add"] and c["add"]["rule"].get("comment")
        ),
        None,
    )
    if mark is None or live_fingerprint(listing) != mark:
        return False
    wanted = {
        c["add"]["map"]["name"]: len(c["add"]["map"].get("elem", []))
        for c in desired
        if "map" in c["add"]
    }
    return element_counts(listing) == wanted
