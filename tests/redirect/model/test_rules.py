"""The redirect ruleset: golden plans, protocol separation, fingerprints, constant rule count."""

from __future__ import annotations

import copy
import dataclasses
import ipaddress
import json
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from egress_router.kernel import nftables
from egress_router.kernel.netlink import create_netns, remove_netns
from egress_router.lab import procs
from egress_router.redirect.model import rules as redirect_rules
from egress_router.redirect.model.destinations import (
    BOTH_FAMILIES,
    CNI_PROTOCOLS,
    parse_destination,
)
from egress_router.redirect.model.env import Interfaces, parse_router_env
from egress_router.redirect.report import render_plan
from tests.reference_examples import REDIRECT_MULTI

GOLDEN = Path(__file__).parent / "golden"
SOURCE = ipaddress.IPv4Address("198.19.123.99")


DEFAULT_INTERFACES = Interfaces()


def ruleset(destination: str, interfaces: Interfaces = DEFAULT_INTERFACES) -> list[dict[str, Any]]:
    return redirect_rules.redirect_ruleset(parse_destination(destination), SOURCE, interfaces)


def rules_of(commands: list[dict[str, Any]], chain: str) -> list[dict[str, Any]]:
    return [c["add"]["rule"] for c in commands if c["add"].get("rule", {}).get("chain") == chain]


def maps_of(commands: list[dict[str, Any]]) -> dict[str, list[Any]]:
    return {
        c["add"]["map"]["name"]: c["add"]["map"].get("elem", [])
        for c in commands
        if "map" in c["add"]
    }


@pytest.mark.parametrize(
    ("golden", "env"),
    [
        (
            "unit_test_multi.txt",
            {
                "EGRESS_SOURCE": "192.168.12.99/24",
                "EGRESS_GATEWAY": "192.168.12.1",
                "EGRESS_DESTINATION": REDIRECT_MULTI,
            },
        ),
        (
            "unit_test_blog.txt",
            {
                "EGRESS_SOURCE": "192.168.123.99",
                "EGRESS_GATEWAY": "192.168.123.1",
                "EGRESS_DESTINATION": "192.168.123.91",
            },
        ),
    ],
)
def test_unit_test_plan_matches_golden(golden: str, env: dict[str, str]) -> None:
    parsed = parse_router_env({**env, "EGRESS_ROUTER_MODE": "unit-test"})
    assert render_plan(parsed) == (GOLDEN / golden).read_text()


def test_tcp_and_udp_lines_go_to_separate_maps() -> None:
    maps = maps_of(ruleset("53 tcp 10.0.0.1\n53 udp 10.0.0.2 5353"))
    assert maps == {
        "dnat_tcp_addr": [[53, "10.0.0.1"]],
        "dnat_tcp_port": [[53, 53]],
        "dnat_udp_addr": [[53, "10.0.0.2"]],
        "dnat_udp_port": [[53, 5353]],
    }


def test_map_lookups_are_keyed_on_their_own_protocol() -> None:
    pre = rules_of(ruleset("80 tcp 10.0.0.1"), "prerouting")
    keys = [
        (
            r["expr"][-1]["dnat"]["addr"]["map"]["key"]["payload"]["protocol"],
            r["expr"][-1]["dnat"]["addr"]["map"]["data"],
        )
        for r in pre
    ]
    assert keys == [("tcp", "@dnat_tcp_addr"), ("udp", "@dnat_udp_addr")]


def test_fallback_rule_only_with_a_fallback() -> None:
    assert len(rules_of(ruleset("80 tcp 10.0.0.1"), "prerouting")) == 2
    pre = rules_of(ruleset("80 tcp 10.0.0.1\n10.0.0.9"), "prerouting")
    assert pre[-1]["expr"][-1] == {"dnat": {"family": "ip", "addr": "10.0.0.9"}}


def test_rule_count_does_not_grow_with_lines() -> None:
    many = "\n".join(f"{port} tcp 10.0.{port // 250}.{port % 250 + 1}" for port in range(1, 10_001))
    small, big = ruleset("80 tcp 10.0.0.1"), ruleset(many)
    assert len(small) == len(big)
    assert len(maps_of(big)["dnat_tcp_addr"]) == 10_000


def test_interfaces_appear_in_matches() -> None:
    commands = ruleset("10.0.0.9", Interfaces(macvlan="net1", cluster="eth1"))
    text = str(commands)
    assert "'net1'" in text and "'eth1'" in text and "'eth0'" not in text


def test_fingerprint_tracks_every_input() -> None:
    a = ruleset("80 tcp 10.0.0.1")
    assert redirect_rules.is_current(a, _as_listing(a))
    for other in (
        ruleset("80 tcp 10.0.0.2"),
        ruleset("81 tcp 10.0.0.1"),
        ruleset("80 tcp 10.0.0.1 8080"),
        ruleset("80 tcp 10.0.0.1", Interfaces(cluster="eth9")),
        redirect_rules.redirect_ruleset(
            parse_destination("80 tcp 10.0.0.1"),
            ipaddress.IPv4Address("198.19.123.98"),
            Interfaces(),
        ),
    ):
        assert not redirect_rules.is_current(other, _as_listing(a))


def test_not_current_when_missing_or_tampered() -> None:
    a = ruleset("80 tcp 10.0.0.1\n81 tcp 10.0.0.1")
    assert not redirect_rules.is_current(a, None)
    listing = _as_listing(a)
    for item in listing:
        if item.get("map", {}).get("name") == "dnat_tcp_addr":
            item["map"]["elem"] = item["map"]["elem"][:1]
    assert not redirect_rules.is_current(a, listing)


def _as_listing(commands: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What ``nft -j list table`` returns for these commands (the objects, without the verb)."""
    return [copy.deepcopy(command["add"]) for command in commands]


# -- several reserved addresses: SNAT spread by a stable hash -----------------------------------

THREE = ("192.168.12.99/24", "192.168.12.100/24", "192.168.12.101/24")


def test_unit_test_plan_with_three_addresses_matches_golden() -> None:
    parsed = parse_router_env(
        {
            "EGRESS_SOURCE": THREE[0],
            "EGRESS_GATEWAY": "192.168.12.1",
            "EGRESS_DESTINATION": "80 tcp 203.0.113.25\n8080 tcp 203.0.113.26 80\n203.0.113.27",
            "EGRESS_ROUTER_MODE": "unit-test",
        }
    )
    env = dataclasses.replace(
        parsed, addresses=(*parsed.addresses, *(ipaddress.IPv4Interface(a) for a in THREE[1:]))
    )
    assert render_plan(env) == (GOLDEN / "unit_test_three_addresses.txt").read_text()


def test_one_address_snats_to_it_and_several_hash_over_all_of_them() -> None:
    one = redirect_rules.snat([SOURCE])
    assert one == {"snat": {"family": "ip", "addr": "198.19.123.99"}}
    pool = [SOURCE, ipaddress.IPv4Address("198.19.123.100")]
    spread = redirect_rules.snat(pool)["snat"]["addr"]["map"]
    assert spread["data"] == {"set": [[0, "198.19.123.99"], [1, "198.19.123.100"]]}
    jhash = spread["key"]["jhash"]
    assert (jhash["mod"], jhash["seed"]) == (2, redirect_rules.SNAT_SEED)  # fixed: stable
    fields = [p["payload"]["field"] for p in jhash["expr"]["concat"]]
    assert fields == ["saddr", "daddr"]


def test_a_list_of_one_is_the_single_address_ruleset() -> None:
    destination = parse_destination("203.0.113.25")
    single = redirect_rules.redirect_ruleset(destination, SOURCE, DEFAULT_INTERFACES)
    listed = redirect_rules.redirect_ruleset(destination, [SOURCE], DEFAULT_INTERFACES)
    assert single == listed
    two = [SOURCE, ipaddress.IPv4Address("198.19.123.100")]
    other = redirect_rules.redirect_ruleset(destination, two, DEFAULT_INTERFACES)
    assert redirect_rules.fingerprint(other) != redirect_rules.fingerprint(single)
    assert not redirect_rules.is_current(other, _as_listing(single))
    assert redirect_rules.is_current(other, _as_listing(other))


# -- IPv6: the ip6 table, built by the same code ------------------------------------------------

SOURCE6 = ipaddress.IPv6Address("2001:db8:1::99")
SOURCES6 = [
    SOURCE6,
    ipaddress.IPv6Address("2001:db8:1::100"),
    ipaddress.IPv6Address("2001:db8:1::101"),
]
MIXED = "80 tcp 2001:db8:2::25\n8080 tcp 2001:db8:2::26 80\n53 udp 203.0.113.25\n2001:db8:2::27"


def mixed(text: str = MIXED) -> Any:
    return parse_destination(text, families=BOTH_FAMILIES, protocols=CNI_PROTOCOLS)


def test_ip6_table_of_a_small_destination_matches_golden() -> None:
    """The exact JSON sent to nft for an IPv6 router (the IPv4 rule stays out of it)."""
    commands = redirect_rules.redirect_ruleset(mixed(), SOURCE6, DEFAULT_INTERFACES)
    assert commands == json.loads((GOLDEN / "ip6_table.json").read_text())


def test_ip6_table_parts() -> None:
    commands = redirect_rules.redirect_ruleset(mixed(), SOURCE6, DEFAULT_INTERFACES)
    assert {c["add"][next(iter(c["add"]))]["family"] for c in commands} == {"ip6"}
    assert maps_of(commands) == {
        "dnat_tcp_addr": [[80, "2001:db8:2::25"], [8080, "2001:db8:2::26"]],
        "dnat_tcp_port": [[80, 80], [8080, 80]],
        "dnat_udp_addr": [],  # 53 udp goes to an IPv4 host: the ip table's business
        "dnat_udp_port": [],
    }
    types = {c["add"]["map"]["name"]: c["add"]["map"]["map"] for c in commands if "map" in c["add"]}
    assert types == {
        "dnat_tcp_addr": "ipv6_addr",
        "dnat_tcp_port": "inet_service",
        "dnat_udp_addr": "ipv6_addr",
        "dnat_udp_port": "inet_service",
    }
    pre = rules_of(commands, "prerouting")
    assert pre[-1]["expr"][-1] == {"dnat": {"family": "ip6", "addr": "2001:db8:2::27"}}
    assert all(r["expr"][-1]["dnat"]["family"] == "ip6" for r in pre)
    inputs = [r["expr"][1:] for r in rules_of(commands, "input")]
    icmp = {"payload": {"protocol": "icmpv6", "field": "type"}}
    assert [{"match": {"op": "==", "left": icmp, "right": "echo-request"}}, {"accept": None}] in (
        inputs
    )
    nd = {"set": ["nd-router-advert", "nd-neighbor-solicit", "nd-neighbor-advert", "nd-redirect"]}
    assert [{"match": {"op": "==", "left": icmp, "right": nd}}, {"accept": None}] in inputs
    last = rules_of(commands, "input")[-1]["expr"]
    assert last[-1] == {"reject": {"type": "icmpv6", "expr": "port-unreachable"}}
    (post,) = rules_of(commands, "postrouting")
    assert post["expr"][-1] == {"snat": {"family": "ip6", "addr": "2001:db8:1::99"}}


def test_ipv4_table_has_no_ipv6_rule_and_no_neighbour_discovery() -> None:
    commands = redirect_rules.redirect_ruleset(mixed(), SOURCE, DEFAULT_INTERFACES)
    assert maps_of(commands) == {
        "dnat_tcp_addr": [],
        "dnat_tcp_port": [],
        "dnat_udp_addr": [[53, "203.0.113.25"]],
        "dnat_udp_port": [[53, 53]],
    }
    assert "nd-neighbor-solicit" not in json.dumps(commands) and "icmpv6" not in json.dumps(
        commands
    )
    assert "2001:db8" not in json.dumps(commands)  # nor the IPv6 fallback
    assert all(r["expr"][-1]["dnat"]["family"] == "ip" for r in rules_of(commands, "prerouting"))


def test_three_ipv6_sources_hash_over_ip6_addresses() -> None:
    spread = redirect_rules.snat(SOURCES6)["snat"]
    assert spread["family"] == "ip6"
    key = spread["addr"]["map"]["key"]["jhash"]
    assert key["mod"] == 3 and key["seed"] == redirect_rules.SNAT_SEED
    assert key["expr"]["concat"] == [
        {"payload": {"protocol": "ip6", "field": "saddr"}},
        {"payload": {"protocol": "ip6", "field": "daddr"}},
    ]
    assert spread["addr"]["map"]["data"] == {
        "set": [[0, "2001:db8:1::99"], [1, "2001:db8:1::100"], [2, "2001:db8:1::101"]]
    }


def test_tables_are_keyed_by_family_ipv4_first() -> None:
    v4 = [SOURCE]
    assert list(redirect_rules.tables(mixed(), v4, DEFAULT_INTERFACES)) == [4]
    assert list(redirect_rules.tables(mixed(), SOURCES6, DEFAULT_INTERFACES)) == [6]
    both = redirect_rules.tables(mixed(), [*SOURCES6, SOURCE], DEFAULT_INTERFACES)
    assert list(both) == [4, 6]
    assert both[4] == redirect_rules.redirect_ruleset(mixed(), SOURCE, DEFAULT_INTERFACES)
    assert both[6] == redirect_rules.redirect_ruleset(mixed(), SOURCES6, DEFAULT_INTERFACES)
    assert redirect_rules.tables(mixed(), [], DEFAULT_INTERFACES) == {}


def test_sources_of_two_families_in_one_table_are_refused() -> None:
    with pytest.raises(ValueError, match="sources of two families"):
        redirect_rules.redirect_ruleset(mixed(), [SOURCE, SOURCE6], DEFAULT_INTERFACES)


_CHECK_AND_LIST = """
import json, sys
from egress_router.kernel import nftables
commands = json.load(sys.stdin)
nftables.check(commands)
nftables.apply(commands)
print(json.dumps({f: nftables.list_table(f, "egress_router") for f in ("ip", "ip6")}))
"""


@pytest.fixture
def nft_namespace() -> Any:
    name = f"erv6r{uuid.uuid4().hex[:8]}"
    create_netns(name)
    try:
        yield name
    finally:
        remove_netns(name)


@pytest.mark.lab
@pytest.mark.parametrize(
    "sources",
    [[SOURCE6], SOURCES6, [SOURCE, *SOURCES6]],
    ids=["one-v6", "three-v6", "dual-stack"],
)
def test_the_kernel_accepts_the_tables(nft_namespace: str, sources: list[Any]) -> None:
    """``nft -c`` of the whole transaction (both tables at once, as ``redirect.apply`` sends
    them), then applied in a scratch namespace and read back as current."""
    destination = mixed(MIXED + "\n")
    tables = redirect_rules.tables(destination, sources, DEFAULT_INTERFACES, health_port=8081)
    batch = [
        c
        for version, table in tables.items()
        for c in [
            *nftables.replace_table_commands(redirect_rules.FAMILIES[version], "egress_router"),
            *table,
        ]
    ]
    result = procs.run(
        nft_namespace,
        [sys.executable, "-c", _CHECK_AND_LIST],
        input=json.dumps(batch),
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    listed = json.loads(result.stdout)
    for version, family in redirect_rules.FAMILIES.items():
        if version in tables:
            assert redirect_rules.is_current(tables[version], listed[family])
        else:
            assert listed[family] is None
    text = json.dumps(listed["ip6"])
    for nd_type in redirect_rules.ND_TYPES:
        assert nd_type in text
