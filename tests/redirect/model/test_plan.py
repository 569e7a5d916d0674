"""The network planner: desired vs observed -> ordered operations; empty when already there."""

from __future__ import annotations

import dataclasses
import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from egress_router.redirect.model.env import Interfaces, Mode, RouterEnv, parse_router_env
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
    """A model of the kernel: what each operation does, incl. the flush on the last address;
    sysctls by key, IPv6 addresses refused while IPv6 is disabled on the macvlan."""
    addresses, routes, up = list(state.macvlan_addresses), list(state.routes), state.macvlan_up
    sysctls = {
        "net.ipv4.ip_forward": state.ip_forward,
        "net.ipv6.conf.all.forwarding": state.ipv6_forwarding,
        "net.ipv6.conf.macvlan0.disable_ipv6": state.ipv6_disabled,
    }
    for op in ops:
        if isinstance(op, AddAddress):
            assert op.address not in addresses, "adding an existing address fails (EEXIST)"
            if op.address.version == 6:
                assert sysctls["net.ipv6.conf.macvlan0.disable_ipv6"] == "0", "IPv6 is off"
            addresses.append(op.address)
        elif isinstance(op, DeleteAddress):
            addresses.remove(op.address)
            if not addresses:
                routes = [r for r in routes if r.device != "macvlan0"]
        elif isinstance(op, SetUp):
            if any(a.version == 6 for a in addresses):
                # a link that comes up before forwarding is on could take a router
                # advertisement's default route or SLAAC address
                assert sysctls["net.ipv6.conf.all.forwarding"] == "1", "forwarding after link up"
            up = True
        elif isinstance(op, AddRoute):
            assert up or op.route.device != "macvlan0", "routes on a down link fail"
            assert op.route not in routes, "adding an existing route fails (EEXIST)"
            routes.append(op.route)
        elif isinstance(op, DeleteRoute):
            routes.remove(op.route)
        elif isinstance(op, SetSysctl):
            sysctls[op.key] = op.value
    return ObservedNetwork(
        up,
        tuple(addresses),
        tuple(routes),
        sysctls["net.ipv4.ip_forward"],
        sysctls["net.ipv6.conf.all.forwarding"],
        sysctls["net.ipv6.conf.macvlan0.disable_ipv6"],
    )


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


# -- IPv6 and dual stack (the CNI plugin's ip.addresses of either family) ------------------------

Iface6 = ipaddress.IPv6Interface
IP6 = ipaddress.IPv6Address
Net6 = ipaddress.IPv6Network

V4 = Iface("198.19.123.99/24")
V6 = Iface6("2001:db8:1::99/64")
HOST6 = ObservedRoute(Net6("2001:db8:1::1/128"), None, "macvlan0", 6)
DEFAULT6 = ObservedRoute(None, IP6("2001:db8:1::1"), "macvlan0", 6)
SDN_DEFAULT6 = ObservedRoute(None, IP6("2001:db8:c::1"), "eth0", 6)
ENABLE6 = SetSysctl("net.ipv6.conf.macvlan0.disable_ipv6", "0")
FORWARD4 = SetSysctl("net.ipv4.ip_forward", "1")
FORWARD6 = SetSysctl("net.ipv6.conf.all.forwarding", "1")


def family_env(*addresses: ipaddress.IPv4Interface | ipaddress.IPv6Interface) -> RouterEnv:
    gateways = {4: IP("198.19.123.1"), 6: IP6("2001:db8:1::1")}
    families = sorted({a.version for a in addresses})
    return RouterEnv(
        addresses=addresses,
        gateways=tuple(gateways[v] for v in families),
        mode=Mode.INIT,
        destination=None,
        interfaces=Interfaces(),
    )


def observed6(
    up: bool = False,
    addresses: tuple[ipaddress.IPv4Interface | ipaddress.IPv6Interface, ...] = (),
    routes: tuple[ObservedRoute, ...] = (SDN_DEFAULT, SDN_DEFAULT6),
    forward: str = "0",
    forward6: str = "0",
    disabled: str = "1",
) -> ObservedNetwork:
    return ObservedNetwork(up, addresses, routes, forward, forward6, disabled)


def test_ipv6_only_router_gets_its_family_and_leaves_ipv4_alone() -> None:
    ops = plan_network(family_env(V6), observed6())
    assert ops == [
        ENABLE6,  # before the address: the kernel refuses IPv6 addresses on a disabled link
        AddAddress("macvlan0", V6),
        FORWARD6,  # before the link is up: a forwarding link takes no router advertisement
        SetUp("macvlan0"),
        AddRoute(HOST6),
        DeleteRoute(SDN_DEFAULT6),
        AddRoute(DEFAULT6),
    ]
    assert DeleteRoute(SDN_DEFAULT) not in ops  # the IPv4 default via eth0 is kept
    assert [str(op) for op in ops] == [
        "sysctl net.ipv6.conf.macvlan0.disable_ipv6=0",
        "address add 2001:db8:1::99/64 dev macvlan0",
        "sysctl net.ipv6.conf.all.forwarding=1",
        "link set macvlan0 up",
        "route add 2001:db8:1::1/128 dev macvlan0",  # IPv6 has no scope link
        "route del default via 2001:db8:c::1 dev eth0",
        "route add default via 2001:db8:1::1 dev macvlan0",
    ]


def test_dual_stack_router_gets_both_families_in_order() -> None:
    assert plan_network(family_env(V4, V6), observed6()) == [
        ENABLE6,
        AddAddress("macvlan0", V4),
        AddAddress("macvlan0", V6),
        FORWARD6,
        SetUp("macvlan0"),
        AddRoute(HOST),
        DeleteRoute(SDN_DEFAULT),
        AddRoute(DEFAULT),
        AddRoute(HOST6),
        DeleteRoute(SDN_DEFAULT6),
        AddRoute(DEFAULT6),
        FORWARD4,
    ]


def test_ipv6_enabled_already_needs_no_sysctl_for_it() -> None:
    ops = plan_network(family_env(V6), observed6(disabled="0", forward6="1"))
    assert not any(isinstance(op, SetSysctl) for op in ops)


@pytest.mark.parametrize(
    ("env", "done"),
    [
        (family_env(V6), observed6(True, (V6,), (SDN_DEFAULT, HOST6, DEFAULT6), "0", "1", "0")),
        (
            family_env(V4, V6),
            observed6(True, (V4, V6), (HOST, DEFAULT, HOST6, DEFAULT6), "1", "1", "0"),
        ),
    ],
)
def test_converged_ipv6_and_dual_stack_routers_plan_nothing(
    env: RouterEnv, done: ObservedNetwork
) -> None:
    assert plan_network(env, done) == []


def test_ipv4_only_router_never_plans_ipv6() -> None:
    ops = plan_network(router_env(), observed6())
    assert ENABLE6 not in ops and FORWARD6 not in ops
    assert DeleteRoute(SDN_DEFAULT6) not in ops


def test_a_wrong_ipv6_default_route_on_the_macvlan_is_replaced() -> None:
    stale = ObservedRoute(None, IP6("2001:db8:1::fe"), "macvlan0", 6)
    state = observed6(True, (V6,), (SDN_DEFAULT, HOST6, stale), "0", "1", "0")
    assert plan_network(family_env(V6), state) == [DeleteRoute(stale), AddRoute(DEFAULT6)]


def test_neighbour_advertisements_for_ipv6_addresses() -> None:
    replies = announcements(family_env(V4, V6), request=False)
    assert [str(a) for a in replies] == [
        "gratuitous ARP reply for 198.19.123.99 on macvlan0",
        "unsolicited neighbour advertisement for 2001:db8:1::99 on macvlan0",
    ]


ROUTES_DUAL = st.sampled_from(
    [
        HOST,
        DEFAULT,
        SDN_DEFAULT,
        HOST6,
        DEFAULT6,
        SDN_DEFAULT6,
        ObservedRoute(None, IP6("2001:db8:1::fe"), "macvlan0", 6),
        ObservedRoute(Net6("2001:db8:1::1/128"), None, "eth0", 6),
    ]
)
ADDRESSES_DUAL = st.sampled_from([V4, V6, Iface6("2001:db8:1::98/64"), Iface("198.19.123.98/24")])


@settings(max_examples=300, deadline=None)
@given(
    st.booleans(),
    st.lists(ADDRESSES_DUAL, unique=True, max_size=3),
    st.lists(ROUTES_DUAL, unique=True, max_size=6),
    st.tuples(*[st.sampled_from(["0", "1"])] * 3),
    st.sampled_from([(V6,), (V4, V6), (V6, V4)]),
)
def test_one_plan_reaches_an_ipv6_goal_from_any_state(
    up: bool,
    addresses: list[ipaddress.IPv4Interface | ipaddress.IPv6Interface],
    routes: list[ObservedRoute],
    sysctls: tuple[str, str, str],
    wanted: tuple[ipaddress.IPv4Interface | ipaddress.IPv6Interface, ...],
) -> None:
    env = family_env(*wanted)
    start = ObservedNetwork(up, tuple(addresses), tuple(routes), *sysctls)
    end = simulate(start, list(plan_network(env, start)))
    assert plan_network(env, end) == []
    assert sorted(map(str, end.macvlan_addresses)) == sorted(map(str, wanted))
    assert end.ipv6_disabled == "0" and end.ipv6_forwarding == "1" and end.macvlan_up
    defaults6 = [r for r in end.routes if r.is_default and r.version == 6]
    assert defaults6 == [DEFAULT6] and HOST6 in end.routes
    defaults4 = [r for r in end.routes if r.is_default and r.version == 4]
    if 4 in env.families:
        assert defaults4 == [DEFAULT] and end.ip_forward == "1"
    else:  # an IPv6-only router leaves the IPv4 side (but for the macvlan's own) as it was
        assert end.ip_forward == sysctls[0]
        assert [r for r in end.routes if r.version == 4 and r.device != "macvlan0"] == [
            r for r in routes if r.version == 4 and r.device != "macvlan0"
        ]
