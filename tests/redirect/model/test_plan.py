"""The network planner: desired vs observed -> ordered operations; empty when already there."""

from __future__ import annotations

import dataclasses
import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from egress_router.redirect.model.env import RouterEnv, parse_router_env
from egress_router.redirect.model.plan import (
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
    (reply,) = announcements(router_env(), request=False)
    (request,) = announcements(router_env(), request=True)
    assert (reply.request, request.request) == (False, True)
    assert reply.address == request.address == IP("198.19.123.99")
    assert str(reply) == "gratuitous ARP reply for 198.19.123.99 on macvlan0"


# -- several reserved addresses (the CNI plugin's ip.addresses) ---------------------------------

TWO = (Iface("198.19.123.99/24"), Iface("198.19.123.100/24"))


def two_address_env() -> RouterEnv:
    return dataclasses.replace(router_env(), addresses=TWO, written=None)


def test_every_address_is_added_in_order_then_the_routes() -> None:
    assert plan_network(two_address_env(), observed()) == [
        AddAddress("macvlan0", TWO[0]),
        AddAddress("macvlan0", TWO[1]),
        SetUp("macvlan0"),
        AddRoute(HOST),
        DeleteRoute(SDN_DEFAULT),
        AddRoute(DEFAULT),
        SetSysctl("net.ipv4.ip_forward", "1"),
    ]


def test_a_missing_second_address_is_added_alone() -> None:
    done = observed(True, ("198.19.123.99/24",), (HOST, DEFAULT), "1")
    assert plan_network(two_address_env(), done) == [AddAddress("macvlan0", TWO[1])]
    complete = observed(True, tuple(str(a) for a in TWO), (HOST, DEFAULT), "1")
    assert plan_network(two_address_env(), complete) == []


def test_an_address_no_longer_wanted_resets_the_macvlan() -> None:
    before = observed(True, ("198.19.123.99/24", "198.19.123.7/24"), (HOST, DEFAULT), "1")
    assert plan_network(two_address_env(), before) == [
        DeleteAddress("macvlan0", TWO[0]),
        DeleteAddress("macvlan0", Iface("198.19.123.7/24")),
        AddAddress("macvlan0", TWO[0]),
        AddAddress("macvlan0", TWO[1]),
        AddRoute(HOST),
        AddRoute(DEFAULT),
    ]


def test_one_gratuitous_arp_per_address_in_each_form() -> None:
    env = two_address_env()
    replies = announcements(env, request=False)
    requests = announcements(env, request=True)
    assert [(a.address, a.request) for a in replies] == [(t.ip, False) for t in TWO]
    assert [(a.address, a.request) for a in requests] == [(t.ip, True) for t in TWO]


# -- property: from any observed state, one plan reaches the goal and the next plan is empty ----


ROUTES = st.sampled_from(
    [
        HOST,
        DEFAULT,
        SDN_DEFAULT,
        ObservedRoute(None, IP("198.19.123.254"), "macvlan0"),
        ObservedRoute(Net("198.19.123.1/32"), None, "eth0"),
        ObservedRoute(Net("10.0.0.0/8"), IP("198.18.0.1"), "eth0"),
    ]
)
ADDRESSES = st.sampled_from(["198.19.123.99/24", "198.19.123.99/32", "198.19.123.98/24"])


def simulate(state: ObservedNetwork, ops: list[object]) -> ObservedNetwork:
    """A model of the kernel: what each operation does, incl. the flush on the last address."""
    addresses, routes, up, forward = (
        list(state.macvlan_addresses),
        list(state.routes),
        state.macvlan_up,
        state.ip_forward,
    )
    for op in ops:
        if isinstance(op, AddAddress):
            assert op.address not in addresses, "adding an existing address fails (EEXIST)"
            addresses.append(op.address)
        elif isinstance(op, DeleteAddress):
            addresses.remove(op.address)
            if not addresses:
                routes = [r for r in routes if r.device != "macvlan0"]
        elif isinstance(op, SetUp):
            up = True
        elif isinstance(op, AddRoute):
            assert up or op.route.device != "macvlan0", "routes on a down link fail"
            assert op.route not in routes, "adding an existing route fails (EEXIST)"
            routes.append(op.route)
        elif isinstance(op, DeleteRoute):
            routes.remove(op.route)
        elif isinstance(op, SetSysctl):
            forward = op.value
    return ObservedNetwork(up, tuple(addresses), tuple(routes), forward)


@settings(max_examples=300, deadline=None)
@given(
    st.booleans(),
    st.lists(ADDRESSES, unique=True, max_size=3),
    st.lists(ROUTES, unique=True, max_size=5),
    st.sampled_from(["0", "1"]),
    st.sampled_from(["198.19.123.99/24", "198.19.123.99"]),
)
def test_one_plan_reaches_the_goal_from_any_state(
    up: bool, addresses: list[str], routes: list[ObservedRoute], forward: str, source: str
) -> None:
    env = router_env(source)
    start = ObservedNetwork(up, tuple(Iface(a) for a in addresses), tuple(routes), forward)
    end = simulate(start, list(plan_network(env, start)))
    assert plan_network(env, end) == []
    assert end.macvlan_addresses == (env.source.interface,)
    defaults = [r for r in end.routes if r.is_default]
    assert defaults == [DEFAULT]
    assert HOST in end.routes and end.ip_forward == "1" and end.macvlan_up
