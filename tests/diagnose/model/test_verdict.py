"""The verdict as a truth table: one broken observation in, the cause it names out."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import replace

import pytest

from egress_router.diagnose.model.expect import expected_from_env
from egress_router.diagnose.model.observations import (
    ArpProbe,
    Connection,
    LinkState,
    Observed,
    Outcome,
    Resolution,
    RouteView,
    RulesetView,
)
from egress_router.diagnose.model.verdict import Cause, Status, diagnose

IP = ipaddress.IPv4Address
NET = ipaddress.IPv4Network
GATEWAY = IP("198.19.123.1")
SOURCE = IP("198.19.123.99")
MAC = "02:00:00:00:00:99"

ENV = {
    "EGRESS_SOURCE": "198.19.123.99/24",
    "EGRESS_GATEWAY": "198.19.123.1",
    "EGRESS_ROUTER_MODE": "init",
    "EGRESS_DESTINATION": "80 tcp 203.0.113.25\n8080 tcp 203.0.113.26 80\n53 udp 203.0.113.27",
}
EXPECTED = expected_from_env(ENV)


def arp(mac: str | None, anonymous: bool = False) -> ArpProbe:
    return ArpProbe(GATEWAY, IP("0.0.0.0") if anonymous else SOURCE, anonymous, mac, 1.0)


def connections(
    outcome: Outcome = Outcome.CONNECTED, first_only: bool = False
) -> tuple[Connection, ...]:
    out = []
    for i, t in enumerate(EXPECTED.targets):
        if t.protocol != "tcp":
            out.append(Connection(t, IP(t.host), t.port, Outcome.NOT_TESTED))
        else:
            o = outcome if (i == 0 or not first_only) else Outcome.CONNECTED
            out.append(Connection(t, IP(t.host), t.port, o, 1.0))
    return tuple(out)


HEALTHY = Observed(
    macvlan=LinkState(
        "macvlan0", True, True, True, MAC, (ipaddress.IPv4Interface("198.19.123.99/24"),)
    ),
    cluster=LinkState("eth0", True, True, True, "02:00:00:00:00:02"),
    routes=(
        RouteView(None, GATEWAY, "macvlan0"),
        RouteView(NET("198.18.0.0/24"), None, "eth0"),
        RouteView(NET("198.19.123.1/32"), None, "macvlan0"),
    ),
    gateway_route=RouteView(NET("198.19.123.1/32"), None, "macvlan0"),
    arp=arp("02:00:00:00:00:01"),
    anonymous_arp=None,
    ruleset=RulesetView("egress_router", True, True, 3, 0),
    conntrack={"203.0.113.25": 1},
    connections=connections(),
)


def test_healthy_router_is_ok() -> None:
    diagnosis = diagnose(EXPECTED, HEALTHY)
    assert diagnosis.cause is Cause.OK and diagnosis.healthy
    assert all(f.status is not Status.FAIL for f in diagnosis.findings)
    assert diagnosis.summary.startswith("OK")


Change = Callable[[Observed], Observed]


GONE = LinkState("macvlan0", False)


def no_arp(o: Observed) -> Observed:
    return replace(o, arp=arp(None), anonymous_arp=arp(None, True))


def link(**fields: object) -> Change:
    return lambda o: replace(o, macvlan=replace(o.macvlan, **fields))  # type: ignore[arg-type]


def down(o: Observed) -> Observed:
    """Set down: the kernel drops the macvlan's routes with it, no ARP probe is sent."""
    return replace(o, macvlan=replace(o.macvlan, admin_up=False), routes=o.routes[1:2], arp=None)


def default_via(gateway: str, device: str) -> Change:
    return lambda o: replace(o, routes=(RouteView(None, IP(gateway), device), *o.routes[1:]))


def conns(outcome: Outcome, first_only: bool = False) -> Change:
    return lambda o: replace(o, connections=connections(outcome, first_only))


def table(present: bool, current: bool = True, hit: int = 0, refused: int = 0) -> Change:
    return lambda o: replace(
        o, ruleset=RulesetView("egress_router", present, current, hit, refused)
    )


def gateway_by_eth0(o: Observed) -> Observed:
    return replace(o, gateway_route=RouteView(NET("198.19.123.1/32"), IP("198.18.0.1"), "eth0"))


def filtered(o: Observed) -> Observed:
    return replace(o, arp=arp(None), anonymous_arp=arp("02:00:00:00:00:01", True))


@pytest.mark.parametrize(
    ("label", "change", "cause"),
    [
        ("macvlan missing", lambda o: replace(o, macvlan=GONE), Cause.MACVLAN_DOWN),
        ("macvlan set down", down, Cause.MACVLAN_DOWN),
        ("macvlan no carrier", link(carrier=False), Cause.MACVLAN_DOWN),
        ("source not on macvlan", link(addresses=()), Cause.ADDRESS_MISSING),
        ("no default route", lambda o: replace(o, routes=o.routes[1:]), Cause.MISSING_ROUTE),
        ("default via eth0", default_via("198.18.0.1", "eth0"), Cause.MISSING_ROUTE),
        ("gateway reached by eth0", gateway_by_eth0, Cause.MISSING_ROUTE),
        ("connect: no route", conns(Outcome.NO_ROUTE), Cause.MISSING_ROUTE),
        ("live default via another", default_via("198.19.123.7", "macvlan0"), Cause.WRONG_GATEWAY),
        ("ARP answered, nothing forwarded", conns(Outcome.TIMEOUT), Cause.WRONG_GATEWAY),
        ("ARP answered, all prohibited", conns(Outcome.UNREACHABLE), Cause.WRONG_GATEWAY),
        ("gateway silent", no_arp, Cause.GATEWAY_NO_ARP),
        ("gateway answers another MAC only", filtered, Cause.MAC_FILTERED),
        ("table missing", table(False), Cause.RULESET_MISSING),
        ("table stale", table(True, False), Cause.RULESET_MISSING),
        ("one destination refuses", conns(Outcome.REFUSED, True), Cause.DESTINATION_REFUSING),
        ("one destination silent", conns(Outcome.TIMEOUT, True), Cause.DESTINATION_UNREACHABLE),
        ("one prohibits", conns(Outcome.UNREACHABLE, True), Cause.DESTINATION_UNREACHABLE),
        ("clients refused, no rule hit", table(True, True, 0, 4), Cause.RULE_NEVER_HIT),
        # the most basic failure wins: a down macvlan also loses its routes and ARP
        ("down beats route and ARP", lambda o: no_arp(down(o)), Cause.MACVLAN_DOWN),
        ("route beats ARP", lambda o: no_arp(replace(o, routes=o.routes[1:])), Cause.MISSING_ROUTE),
        ("ARP beats targets", lambda o: no_arp(conns(Outcome.TIMEOUT)(o)), Cause.GATEWAY_NO_ARP),
    ],
)  # fmt: skip
def test_each_broken_observation_names_its_cause(label: str, change: Change, cause: Cause) -> None:
    diagnosis = diagnose(EXPECTED, change(HEALTHY))
    assert diagnosis.cause is cause, (label, diagnosis.summary)
    assert not diagnosis.healthy
    assert diagnosis.summary.startswith(cause.value)


def test_gateway_outside_the_source_subnet_is_a_wrong_gateway() -> None:
    expected = expected_from_env({**ENV, "EGRESS_GATEWAY": "198.19.124.1"})
    diagnosis = diagnose(expected, no_arp(HEALTHY))
    assert diagnosis.cause is Cause.WRONG_GATEWAY
    assert "outside the source subnet 198.19.123.0/24" in diagnosis.summary


def test_bare_source_cannot_be_checked_against_a_subnet() -> None:
    expected = expected_from_env({**ENV, "EGRESS_SOURCE": "198.19.123.99"})
    observed = replace(
        HEALTHY,
        macvlan=replace(HEALTHY.macvlan, addresses=(ipaddress.IPv4Interface("198.19.123.99/32"),)),
    )
    assert diagnose(expected, observed).cause is Cause.OK


def test_refused_ports_beside_hits_are_a_warning_only() -> None:
    observed = replace(HEALTHY, ruleset=RulesetView("egress_router", True, True, 5, 2))
    diagnosis = diagnose(expected := EXPECTED, observed)
    assert diagnosis.cause is Cause.OK and expected.table == "egress_router"
    assert [f.status for f in diagnosis.findings if f.check == "counters"] == [Status.WARN]


def test_udp_lines_are_not_tested_but_not_failures() -> None:
    findings = diagnose(EXPECTED, HEALTHY).findings
    assert [f.status for f in findings if f.check == "connect"] == [
        Status.OK,
        Status.OK,
        Status.WARN,
    ]


def test_names_that_do_not_resolve() -> None:
    expected = expected_from_env(
        {
            "EGRESS_SOURCE": "198.19.123.99/24",
            "EGRESS_GATEWAY": "198.19.123.1",
            "EGRESS_ROUTER_MODE": "dns-proxy",
            "EGRESS_DNS_PROXY_DESTINATION": "8080 web.example.test 80",
        }
    )
    assert expected.table is None and expected.targets[0].is_name
    target = expected.targets[0]
    observed = replace(
        HEALTHY,
        ruleset=None,
        resolutions=(Resolution("web.example.test", error="no server answered"),),
        connections=(Connection(target, None, 80, Outcome.NOT_TESTED, detail="name not resolved"),),
    )
    diagnosis = diagnose(expected, observed)
    assert diagnosis.cause is Cause.NAME_UNRESOLVED
    assert "web.example.test" in diagnosis.summary


def test_expectation_reads_the_setup_contract() -> None:
    assert EXPECTED.source == ipaddress.IPv4Interface("198.19.123.99/24")
    assert [(t.local_port, t.host, t.port, t.protocol) for t in EXPECTED.targets] == [
        (80, "203.0.113.25", 80, "tcp"),
        (8080, "203.0.113.26", 80, "tcp"),
        (53, "203.0.113.27", 53, "udp"),
    ]
    fallback = expected_from_env({**ENV, "EGRESS_DESTINATION": "203.0.113.27"})
    assert fallback.targets[0].port is None and fallback.targets[0].local_port is None
    assert expected_from_env({**ENV, "EGRESS_ROUTER_MODE": "http-proxy"}).table is None
