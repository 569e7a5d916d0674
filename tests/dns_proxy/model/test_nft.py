"""The kernel path's nftables table: golden JSON for the reference example and its variants."""

from __future__ import annotations

import ipaddress

from egress_router.dns_proxy.model import nft as dns_nft
from egress_router.dns_proxy.model.destinations import parse_destinations

IP = ipaddress.IPv4Address
DESTS = parse_destinations("80 203.0.113.25\n100 example.com\n8443 foobar.com 443\n")


def _rules(commands: list[dict], chain: str) -> list[list[dict]]:
    return [
        c["add"]["rule"]["expr"]
        for c in commands
        if "rule" in c.get("add", {}) and c["add"]["rule"]["chain"] == chain
    ]


def plan(current: dict[int, tuple[ipaddress.IPv4Address, ...]]) -> list[dict]:
    return dns_nft.plan_table(DESTS, current, cluster_interface="eth0", egress_interface="macvlan0")


def test_whole_table_swapped_in_one_batch() -> None:
    commands = plan({80: (IP("203.0.113.25"),)})
    assert commands[:3] == [
        {"add": {"table": {"family": "ip", "name": "egress_dns_proxy"}}},
        {"delete": {"table": {"family": "ip", "name": "egress_dns_proxy"}}},
        {"add": {"table": {"family": "ip", "name": "egress_dns_proxy"}}},
    ]
    hooks = [c["add"]["chain"]["hook"] for c in commands if "chain" in c.get("add", {})]
    assert hooks == ["prerouting", "input", "postrouting"]


def test_single_address_dnat_only_from_the_cluster_interface() -> None:
    pre = _rules(plan({80: (IP("203.0.113.25"),), 100: (IP("203.0.113.26"),)}), "prerouting")
    assert pre[0] == [
        {"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": "eth0"}},
        {
            "match": {
                "op": "==",
                "left": {"payload": {"protocol": "tcp", "field": "dport"}},
                "right": 80,
            }
        },
        {"dnat": {"addr": "203.0.113.25", "port": 80}},
    ]
    assert pre[1][2] == {"dnat": {"addr": "203.0.113.26", "port": 100}}


def test_several_addresses_round_robin() -> None:
    pre = _rules(plan({8443: (IP("203.0.113.26"), IP("203.0.113.27"))}), "prerouting")
    assert pre == [
        [
            pre[0][0],
            pre[0][1],
            {
                "dnat": {
                    "addr": {
                        "map": {
                            "key": {"numgen": {"mode": "inc", "mod": 2, "offset": 0}},
                            "data": {"set": [[0, "203.0.113.26"], [1, "203.0.113.27"]]},
                        }
                    },
                    "port": 443,
                }
            },
        ]
    ]


def test_unresolved_ports_are_not_dnatted_and_every_port_resets_in_input() -> None:
    commands = plan({80: (IP("203.0.113.25"),), 100: ()})
    assert len(_rules(commands, "prerouting")) == 1
    (inp,) = _rules(commands, "input")
    assert inp[1]["match"]["right"] == {"set": [80, 100, 8443]}
    assert inp[2] == {"reject": {"type": "tcp reset"}}


def test_masquerade_only_dnatted_traffic_out_of_the_macvlan() -> None:
    (post,) = _rules(plan({}), "postrouting")
    assert post == [
        {"match": {"op": "==", "left": {"meta": {"key": "oifname"}}, "right": "macvlan0"}},
        {"match": {"op": "in", "left": {"ct": {"key": "status"}}, "right": "dnat"}},
        {"masquerade": None},
    ]


def test_delete_is_idempotent_batch() -> None:
    assert [next(iter(c)) for c in dns_nft.plan_delete()] == ["add", "delete"]
