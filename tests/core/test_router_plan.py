"""The network planner: desired vs observed -> ordered operations; empty when already there."""

from __future__ import annotations

import ipaddress

import pytest

from egress_router.core.router_env import RouterEnv, parse_router_env
from egress_router.core.router_plan import (
    AddAddress,
    AddRoute,
    DeleteAddress,
    DeleteRoute,
    ObservedNetwork,
    ObservedRoute,
    SetSysctl,
    SetUp,
    announcements,
    plan_network,
)

Net = ipaddress.IPv4Network
Iface = ipaddress.IPv4Interface
IP = ipaddress.IPv4Address

HOST = ObservedRoute(Net("198.19.123.1/32"), None, "macvlan0")
DEFAULT = ObservedRoute(None, IP("198.19.123.1"), "macvlan0")
SDN_DEFAULT = ObservedRoute(None, IP("198.18.0.1"), "eth0")


def router_env(source: str = "198.19.123.99/24", **extra: str) -> RouterEnv:
    return parse_router_env(
        {
            "EGRESS_SOURCE": source,
            "EGRESS_GATEWAY": "198.19.123.1",
            "EGRESS_ROUTER_MODE": "init",
            "EGRESS_DESTINATION": "203.0.113.25",
            **extra,
        }
    )


def observed(
    up: bool = False,
    addresses: tuple[str, ...] = (),
    routes: tuple[ObservedRoute, ...] = (SDN_DEFAULT,),
    forward: str = "0",
) -> ObservedNetwork:
    return ObservedNetwork(up, tuple(Iface(a) for a in addresses), routes, forward)


def test_fresh_pod_gets_the_reference_sequence() -> None:
    assert plan_network(router_env(), observed()) == [
        AddAddress("macvlan0", Iface("198.19.123.99/24")),
        SetUp("macvlan0"),
        AddRoute(HOST),
        DeleteRoute(SDN_DEFAULT),
        AddRoute(DEFAULT),
        SetSysctl("net.ipv4.ip_forward", "1"),
    ]


def test_bare_source_is_a_host_address() -> None:
    ops = plan_network(router_env("198.19.123.99"), observed())
    assert ops[0] == AddAddress("macvlan0", Iface("198.19.123.99/32"))


def test_configured_pod_plans_nothing() -> None:
    done = observed(True, ("198.19.123.99/24",), (HOST, DEFAULT), "1")
    assert plan_network(router_env(), done) == []


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (observed(False, ("198.19.123.99/24",), (HOST, DEFAULT), "1"), [SetUp("macvlan0")]),
        (
            observed(True, ("198.19.123.99/24",), (HOST, DEFAULT), "0"),
            [SetSysctl("net.ipv4.ip_forward", "1")],
        ),
        (observed(True, ("198.19.123.99/24",), (DEFAULT,), "1"), [AddRoute(HOST)]),
        (
            observed(True, ("198.19.123.99/24",), (HOST, DEFAULT, SDN_DEFAULT), "1"),
            [DeleteRoute(SDN_DEFAULT)],
        ),
    ],
)
def test_only_differences_are_planned(state: ObservedNetwork, expected: list[object]) -> None:
    assert plan_network(router_env(), state) == expected


def test_new_source_resets_addresses_and_macvlan_routes() -> None:
    before = observed(True, ("198.19.123.98/24",), (HOST, DEFAULT), "1")
    assert plan_network(router_env(), before) == [
        DeleteAddress("macvlan0", Iface("198.19.123.98/24")),
        AddAddress("macvlan0", Iface("198.19.123.99/24")),
        AddRoute(HOST),
        AddRoute(DEFAULT),
    ]


def test_other_interface_names() -> None:
    env = router_env(EGRESS_ROUTER_MACVLAN_INTERFACE="net1")
    ops = plan_network(env, observed())
    assert AddRoute(ObservedRoute(None, IP("198.19.123.1"), "net1")) in ops


def test_announcements_reply_then_request_for_bare_ip() -> None:
    reply, request = announcements(router_env())
    assert (reply.request, request.request) == (False, True)
    assert reply.address == request.address == IP("198.19.123.99")
    assert str(reply) == "gratuitous ARP reply for 198.19.123.99 on macvlan0"
