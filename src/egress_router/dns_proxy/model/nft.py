"""The kernel forwarding path of the DNS proxy, planned as one nftables table (JSON commands).

Owns: the whole ``ip egress_dns_proxy`` table for a given set of current addresses: DNAT of
each local port arriving on the cluster interface to its destination (spread over several
addresses with ``numgen inc``), an immediate TCP reset for ports with no address, and the
source NAT out of the egress (macvlan) interface.
Must not: run ``nft`` (``kernel.nftables`` applies what this returns).

Every change is a full replacement of the table in one transaction (``replace_table_commands``
first), so packets see either the old or the new rules, never a mix. Established connections
keep their destination through the swap: the NAT binding lives in their conntrack entry, not
in the rules, which only decide for a connection's first packet.

    chain prerouting  (nat, dstnat)   iifname CLUSTER tcp dport P dnat to ADDR:RPORT
                                      iifname CLUSTER tcp dport P dnat to numgen inc mod N map
                                          { 0 : A0, 1 : A1, ... } : RPORT
    chain input       (filter)        iifname CLUSTER tcp dport { every P } reject with tcp reset
                                      (only reached by ports that were not DNATed above)
    chain postrouting (nat, srcnat)   oifname EGRESS ct status dnat masquerade
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from typing import Any

from egress_router.common.nft import Command, Table, match_meta
from egress_router.dns_proxy.model.destinations import Destination

FAMILY = "ip"
TABLE = "egress_dns_proxy"
_T = Table(FAMILY, TABLE)
Addresses = tuple[ipaddress.IPv4Address, ...]


def _dport(right: Any) -> dict[str, Any]:
    left = {"payload": {"protocol": "tcp", "field": "dport"}}
    return {"match": {"op": "==", "left": left, "right": right}}


def dnat_target(addresses: Addresses, port: int) -> dict[str, Any]:
    """``dnat to`` one address, or spread round-robin over several (``numgen inc``)."""
    if len(addresses) == 1:
        return {"dnat": {"addr": str(addresses[0]), "port": port}}
    numgen = {"numgen": {"mode": "inc", "mod": len(addresses), "offset": 0}}
    pairs = [[i, str(a)] for i, a in enumerate(addresses)]
    return {"dnat": {"addr": {"map": {"key": numgen, "data": {"set": pairs}}}, "port": port}}


def plan_table(
    destinations: Sequence[Destination],
    current: Mapping[int, Addresses],
    *,
    cluster_interface: str,
    egress_interface: str,
) -> list[Command]:
    """The complete table for ``current`` (local port -> addresses; missing/empty = refuse)."""
    commands = [*plan_delete(), _T.create()]
    commands.append(_T.base_chain("prerouting", "nat", "prerouting", -100))
    commands.append(_T.base_chain("input", "filter", "input", 0))
    commands.append(_T.base_chain("postrouting", "nat", "postrouting", 100))
    for d in destinations:
        addresses = current.get(d.local_port, ())
        if not addresses:
            continue
        commands.append(
            _T.rule(
                "prerouting",
                match_meta("iifname", cluster_interface),
                _dport(d.local_port),
                dnat_target(addresses, d.remote_port),
                comment=f"line {d.line}: {d.host}:{d.remote_port}",
            )
        )
    ports = sorted(d.local_port for d in destinations)
    if ports:
        right: Any = ports[0] if len(ports) == 1 else {"set": ports}
        commands.append(
            _T.rule(
                "input",
                match_meta("iifname", cluster_interface),
                _dport(right),
                {"reject": {"type": "tcp reset"}},
            )
        )
    commands.append(
        _T.rule(
            "postrouting",
            match_meta("oifname", egress_interface),
            {"match": {"op": "in", "left": {"ct": {"key": "status"}}, "right": "dnat"}},
            {"masquerade": None},
        )
    )
    return commands


def plan_delete() -> list[Command]:
    """Remove the table (idempotent: created empty first, then deleted, in one batch)."""
    return _T.replace()
