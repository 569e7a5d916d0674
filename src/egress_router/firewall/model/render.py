"""A ``Plan`` as nftables JSON commands for our one table, ``inet egress_firewall``.

Owns: the table layout and the commands for a full atomic replacement, and the commands that
add learned addresses to a DNS set (the only thing a DNS change ever sends).
Must not: run ``nft`` (``kernel.nftables`` applies what this returns).

    chain forward (filter, hook forward, priority filter; policy accept)
        ct state established,related accept        replies and inbound connections' packets
        ip daddr @exempt_v4 accept                  the cluster's pod and service networks
        ip6 daddr @exempt_v6 accept
        ip saddr vmap @sources_v4                   pod network -> jump ns_<namespace>
        ip6 saddr vmap @sources_v6
    chain ns_<namespace>                            the plan's steps, in rule order:
        ip daddr vmap @ns_x_m0v4                    folded CIDR rules (interval verdict map)
        ip daddr @ns_x_d...v4 accept|goto deny      a dnsName rule (set with timeouts)
        ip daddr 1.2.3.0/24 tcp dport {80} ...      a CIDR rule with ports
    chain deny                                      reject with icmpx admin-prohibited

Denials reject (ICMP administratively prohibited) rather than drop, so a denied client fails
at once instead of waiting for a timeout.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Mapping, Sequence
from typing import Any

from egress_router.common.nft import Command, Table
from egress_router.firewall.model.plan import (
    Interval,
    MapStep,
    MatchStep,
    Plan,
    address,
)
from egress_router.firewall.model.policy import Network

FAMILY = "inet"
TABLE = "egress_firewall"
_T = Table(FAMILY, TABLE)
ALLOW: dict[str, Any] = {"accept": None}
DENY: dict[str, Any] = {"goto": {"target": "deny"}}
_PROTO = {4: "ip", 6: "ip6"}
_TYPE = {4: "ipv4_addr", 6: "ipv6_addr"}


def _addr(family: int, field: str) -> dict[str, Any]:
    return {"payload": {"protocol": _PROTO[family], "field": field}}


def _net(net: Network) -> Any:
    if net.prefixlen == net.max_prefixlen:
        return str(net.network_address)
    return {"prefix": {"addr": str(net.network_address), "len": net.prefixlen}}


def _interval(iv: Interval, family: int) -> Any:
    if iv.lo == iv.hi:  # most elements of a big policy: one address object, not two
        return str(address(iv.lo, family))
    return {"range": [str(address(iv.lo, family)), str(address(iv.hi, family))]}


def _ports(step: MatchStep) -> list[list[dict[str, Any]]]:
    """One match list per protocol (rules are ORed over protocols by emitting one rule each)."""
    if not step.ports:
        return [[]]
    out = []
    for proto in dict.fromkeys(p.protocol for p in step.ports):
        entries = [p for p in step.ports if p.protocol == proto]
        match: list[dict[str, Any]] = [
            {"match": {"op": "==", "left": {"meta": {"key": "l4proto"}}, "right": proto}}
        ]
        if all(p.port is not None for p in entries):
            ports = sorted({p.port for p in entries if p.port is not None})
            match.append(
                {
                    "match": {
                        "op": "==",
                        "left": {"payload": {"protocol": "th", "field": "dport"}},
                        "right": ports[0] if len(ports) == 1 else {"set": ports},
                    }
                }
            )
        out.append(match)
    return out


def elements(addrs: Sequence[tuple[str, float]]) -> list[Any]:
    """Set elements with their timeouts (whole seconds, at least 1; infinite: no timeout, as
    ``firewall apply`` writes the addresses it resolved once)."""
    return [
        a if math.isinf(t) else {"elem": {"val": a, "timeout": max(1, math.ceil(t))}}
        for a, t in addrs
    ]


def build(
    plan: Plan,
    learned: Mapping[str, Sequence[tuple[str, float]]],
    prefix: Sequence[Command] = (),
) -> list[Command]:
    """``prefix`` (the adapter's table-replacement commands) followed by the whole table."""
    cmds: list[Command] = [*prefix, _T.create()]
    cmds.append(_T.add("chain", name="deny"))
    reject = {"reject": {"type": "icmpx", "expr": "admin-prohibited"}}
    cmds.append(_T.rule("deny", {"counter": None}, reject))
    cmds.append(_T.base_chain("forward", "filter", "forward", 0))
    fwd: list[Command] = [
        _T.rule(
            "forward",
            {
                "match": {
                    "op": "in",
                    "left": {"ct": {"key": "state"}},
                    "right": ["established", "related"],
                }
            },
            ALLOW,
        )
    ]
    for family in (4, 6):
        exempt = [n for n in plan.exempt if n.version == family]
        if exempt:
            name = f"exempt_v{family}"
            cmds.append(_T.add("set", name=name, type=_TYPE[family], flags=["interval"]))
            cmds.append(_T.add("element", name=name, elem=[_net(n) for n in _merge(exempt)]))
            fwd.append(_T.rule("forward", _in_set(family, "daddr", name), ALLOW))
    for ns in plan.namespaces:
        cmds.append(_T.add("chain", name=ns.chain))
    for family in (4, 6):
        sources = [(n, c) for n, c in plan.sources if n.version == family]
        if sources:
            name = f"sources_v{family}"
            cmds.append(
                _T.add("map", name=name, type=_TYPE[family], map="verdict", flags=["interval"])
            )
            elem = [[_net(n), {"jump": {"target": c}}] for n, c in sources]
            cmds.append(_T.add("element", name=name, elem=elem))
            fwd.append(
                _T.rule("forward", {"vmap": {"key": _addr(family, "saddr"), "data": "@" + name}})
            )
    cmds += fwd
    for dset in plan.dns_sets:
        cmds.append(_T.add("set", name=dset.name, type=_TYPE[dset.family], flags=["timeout"]))
        if learned.get(dset.name):
            cmds.append(_T.add("element", name=dset.name, elem=elements(learned[dset.name])))
    for ns in plan.namespaces:
        for step in ns.steps:
            cmds += _step_commands(ns.chain, step)
    return cmds


def _merge(nets: list[Network]) -> list[Network]:
    v4 = [n for n in nets if isinstance(n, ipaddress.IPv4Network)]
    v6 = [n for n in nets if isinstance(n, ipaddress.IPv6Network)]
    return [*ipaddress.collapse_addresses(v4), *ipaddress.collapse_addresses(v6)]


def _in_set(family: int, field: str, name: str) -> dict[str, Any]:
    return {"match": {"op": "==", "left": _addr(family, field), "right": "@" + name}}


def _step_commands(chain: str, step: MapStep | MatchStep) -> list[Command]:
    if isinstance(step, MapStep):
        elem = [[_interval(iv, step.family), ALLOW if iv.allow else DENY] for iv in step.intervals]
        return [
            _T.add(
                "map", name=step.name, type=_TYPE[step.family], map="verdict", flags=["interval"]
            ),
            _T.add("element", name=step.name, elem=elem),
            _T.rule(chain, {"vmap": {"key": _addr(step.family, "daddr"), "data": "@" + step.name}}),
        ]
    if step.cidr is not None:
        dst = {"match": {"op": "==", "left": _addr(step.family, "daddr"), "right": _net(step.cidr)}}
    else:
        dst = _in_set(step.family, "daddr", step.set_name or "")
    verdict = ALLOW if step.allow else DENY
    return [_T.rule(chain, dst, *ports, verdict) for ports in _ports(step)]


def learn_commands(set_name: str, addrs: Sequence[tuple[str, float]]) -> list[Command]:
    """Add ``addrs`` to a DNS set, (re)setting their timeouts, in one transaction.

    ``add`` creates a missing element but leaves an existing one's timeout alone, so each is
    added, deleted and added again: the net effect is "present with this timeout" either way.
    """
    if not addrs:
        return []
    elem = elements(addrs)
    return [
        _T.add("element", name=set_name, elem=elem),
        {
            "delete": {
                "element": {
                    "family": FAMILY,
                    "table": TABLE,
                    "name": set_name,
                    "elem": [a for a, _ in addrs],
                }
            }
        },
        _T.add("element", name=set_name, elem=elem),
    ]
