"""The redirect ruleset: golden plans, protocol separation, fingerprints, constant rule count."""

from __future__ import annotations

import copy
import dataclasses
import ipaddress
from pathlib import Path
from typing import Any

import pytest

from egress_router.redirect.model import rules as redirect_rules
from egress_router.redirect.model.destinations import parse_destination
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
