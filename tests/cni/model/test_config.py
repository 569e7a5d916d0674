"""The CNI network configuration and destination grammar: truth tables and properties."""

from __future__ import annotations

import ipaddress
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from egress_router.cni.model.config import (
    CniError,
    parse_config,
    parse_destinations,
    render_config,
)
from egress_router.redirect.model.destinations import ExtraProtocol, Protocol

IP = ipaddress.IPv4Address

BASE: dict[str, Any] = {
    "cniVersion": "0.4.0",
    "name": "egress-router-cni-nad",
    "type": "egress-router",
    "ip": {
        "addresses": ["192.168.3.10/24"],
        "destinations": [
            "80 UDP 10.100.3.0",
            "8080 TCP 203.0.113.26 80",
            "8443 TCP 203.0.113.27 443",
        ],
        "gateway": "192.168.3.1",
    },
    "log_file": "/tmp/egress-router-log",
    "log_level": "debug",
}


def _with(**changes: Any) -> str:
    doc = json.loads(json.dumps(BASE))
    for key, value in changes.items():
        target = doc
        *parents, last = key.split("__")
        for parent in parents:
            target = target.setdefault(parent, {})
        if value is None:
            target.pop(last, None)
        else:
            target[last] = value
    return json.dumps(doc)


def test_canonical_config() -> None:
    config = parse_config(json.dumps(BASE))
    assert config.cni_version == "0.4.0"
    assert config.name == "egress-router-cni-nad"
    assert config.ip.address == ipaddress.IPv4Interface("192.168.3.10/24")
    assert config.ip.gateway == IP("192.168.3.1")
    assert config.master is None and config.mode == "bridge" and config.mtu is None
    assert config.log_file == "/tmp/egress-router-log"
    rules = config.ip.destination.rules
    assert [(r.port, r.protocol, r.address, r.remote_port) for r in rules] == [
        (80, Protocol.UDP, IP("10.100.3.0"), 80),
        (8080, Protocol.TCP, IP("203.0.113.26"), 80),
        (8443, Protocol.TCP, IP("203.0.113.27"), 443),
    ]
    assert config.ip.destinations == tuple(BASE["ip"]["destinations"])


def test_several_addresses_keep_their_order_and_render_back() -> None:
    two = ["192.168.3.10/24", "192.168.3.11/24"]
    config = parse_config(_with(ip__addresses=two))
    assert [str(a) for a in config.ip.addresses] == two
    assert config.ip.address == ipaddress.IPv4Interface(two[0])
    assert config.ip.gateway == IP("192.168.3.1")
    assert render_config(config)["ip"]["addresses"] == two
    assert "gateways" not in render_config(config)["ip"]
    assert parse_config(json.dumps(render_config(config))) == config


def test_per_address_gateways_extension() -> None:
    two = ["192.168.3.10/24", "192.168.3.11/24"]
    gateways = ["192.168.3.1", "192.168.3.1"]
    config = parse_config(_with(ip__addresses=two, ip__gateways=gateways, ip__gateway=None))
    assert config.ip.gateway == IP("192.168.3.1") and config.ip.per_address_gateways
    rendered = render_config(config)["ip"]
    assert (rendered["gateway"], rendered["gateways"]) == ("192.168.3.1", gateways)
    assert parse_config(json.dumps(render_config(config))) == config


def test_single_address_renders_exactly_as_before() -> None:
    config = parse_config(json.dumps(BASE))
    assert render_config(config)["ip"] == {
        "addresses": ["192.168.3.10/24"],
        "gateway": "192.168.3.1",
        "destinations": BASE["ip"]["destinations"],
    }


def test_hand_written_nad_with_master() -> None:
    text = (
        '{"cniVersion":"0.4.0","name":"egress-router-2","type":"egress-router",'
        '"interfaceArgs":{"master":"eth1"},"ip":{"addresses":["192.168.111.200/24"],'
        '"destinations":["172.217.15.78"],"gateway":"192.168.111.1"}}'
    )
    config = parse_config(text)
    assert config.master == "eth1"
    assert config.ip.destination.fallback == IP("172.217.15.78")
    assert config.ip.destination.rules == ()


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("80 UDP 10.100.3.0", (80, "udp", "10.100.3.0", 80)),
        ("8080 TCP 203.0.113.26 80", (8080, "tcp", "203.0.113.26", 80)),
        ("8443 tcp 203.0.113.27 443", (8443, "tcp", "203.0.113.27", 443)),
        ("80 sctp 1.2.3.4", (80, "sctp", "1.2.3.4", 80)),
        ("80 Sctp 1.2.3.4 9", (80, "sctp", "1.2.3.4", 9)),
        ("80 UDP 10.0.0.99/30", (80, "udp", "10.0.0.99", 80)),  # mask tolerated, dropped
        ("8080 TCP 203.0.113.26/30 80", (8080, "tcp", "203.0.113.26", 80)),
    ],
)
def test_destination_forms(entry: str, expected: tuple[int, str, str, int]) -> None:
    (rule,) = parse_destinations([entry]).rules
    assert (rule.port, rule.protocol.value, str(rule.address), rule.remote_port) == expected


def test_catch_all_and_fallback_ip() -> None:
    assert parse_destinations(["10.1.2.3"]).fallback == IP("10.1.2.3")
    assert parse_destinations(["10.1.2.3/32"]).fallback == IP("10.1.2.3")
    d = parse_destinations(["80 tcp 1.2.3.4"], fallback_ip="5.6.7.8")
    assert d.fallback == IP("5.6.7.8") and len(d.rules) == 1
    assert parse_destinations([], fallback_ip="5.6.7.8").fallback == IP("5.6.7.8")
    assert parse_destinations([]).rules == () and parse_destinations([]).fallback is None


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        (["80 icmp 1.2.3.4"], "ip.destinations[0]: value '80 icmp 1.2.3.4' is invalid: protocol"),
        (["abc tcp 1.2.3.4"], "ip.destinations[0]: value 'abc tcp 1.2.3.4' is invalid: local port"),
        (["70000 tcp 1.2.3.4"], "ip.destinations[0]: Invalid port: 70000"),
        (["0 tcp 1.2.3.4"], "ip.destinations[0]: Invalid port: 0"),
        (["80 tcp"], "ip.destinations[0]: value '80 tcp' is invalid: 2 fields"),
        (["1 tcp 1.2.3.4 2 3"], "ip.destinations[0]: value '1 tcp 1.2.3.4 2 3' is invalid: 5"),
        (["80 tcp 1.2.3.4", "80 TCP 5.6.7.8"], "ip.destinations[1]: localport 80 is already"),
        (["1.2.3.4", "80 tcp 5.6.7.8"], "ip.destinations[1]: fallback IP must be the last"),
        (["80 tcp 1.2.3.4/33"], "ip.destinations[0]: '80 tcp 1.2.3.4/33': bad mask '/33'"),
        (["80 tcp 1.2.3.4/\u0662"], "ip.destinations[0]: '80 tcp 1.2.3.4/\u0662': bad mask"),
        (["80 tcp \u0661.2.3.4/8"], "ip.destinations[0]: value '80 tcp \u0661.2.3.4' is"),
        (["80 tcp 1.2.3.4/+8"], "ip.destinations[0]: '80 tcp 1.2.3.4/+8': bad mask '/+8'"),
        (["80 tcp 1.2.3.4/" + "9" * 5000], "ip.destinations[0]: '80 tcp 1.2.3.4/9999"),
        (["80 tcp 1.2.3.256/24"], "ip.destinations[0]: value '80 tcp 1.2.3.256' is invalid"),
        (["80 tcp ::ffff:1.2.3.4"], "ip.destinations[0]: value '80 tcp ::ffff:1.2.3.4' is invalid"),
        (
            ["80 tcp fe80::1"],
            "ip.destinations[0]: value '80 tcp fe80::1' is invalid: fe80::1 cannot",
        ),
        (["80 tcp 2001:db8::1%eth0"], "ip.destinations[0]: value '80 tcp 2001:db8::1%eth0' is"),
        (["80 tcp [2001:db8::1]"], "ip.destinations[0]: value '80 tcp [2001:db8::1]' is invalid"),
        ([""], 'ip.destinations[0]: invalid entry ""'),
        (["80 tcp 1.2.3.4 # x"], "ip.destinations[0]: invalid entry"),
    ],
)
def test_destination_errors(entries: list[str], message: str) -> None:
    with pytest.raises(CniError) as info:
        parse_destinations(entries)
    assert str(info.value).startswith(message), str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("changes", "code", "message"),
    [
        ({"cniVersion": "2.0.0"}, 1, "incompatible CNI versions"),
        ({"name": None}, 7, "name: invalid network name null"),
        ({"name": "-bad"}, 7, 'name: invalid network name "-bad"'),
        ({"ip": None}, 7, "ip: required"),
        ({"ip__addresses": []}, 7, "ip.addresses: at least one address is required"),
        (
            {"ip__addresses": ["192.168.3.10/24", "fd00::1/64"]},
            7,
            "ip.gateway: IPv6 ip.addresses[1] fd00::1/64 has no gateway of its family",
        ),
        (
            {"ip__addresses": ["192.168.3.10/24", "192.168.3.11/24", "192.168.3.10/25"]},
            7,
            "ip.addresses[2]: 192.168.3.10 is already ip.addresses[0]",
        ),
        (
            {"ip__addresses": [f"192.168.3.{i}/24" for i in range(10, 27)]},
            7,
            "ip.addresses: at most 16 addresses, got 17",
        ),
        (
            {"ip__addresses": ["192.168.3.10/24", "192.168.3.1/24"]},
            7,
            "ip.gateway: 192.168.3.1 is the egress address itself",
        ),
        (
            {"ip__gateways": ["192.168.3.1", "192.168.3.1"]},
            7,
            "ip.gateways: one per address (1 in ip.addresses), got 2",
        ),
        (
            {
                "ip__addresses": ["192.168.3.10/24", "192.168.3.11/24"],
                "ip__gateways": ["192.168.3.1", "192.168.3.2"],
            },
            7,
            "ip.gateways[1]: 192.168.3.2 differs from ip.gateway 192.168.3.1 (the router has one",
        ),
        (
            {
                "ip__addresses": ["192.168.3.10/24", "192.168.3.11/24"],
                "ip__gateway": None,
                "ip__gateways": ["192.168.3.1", "192.168.3.254"],
            },
            7,
            "ip.gateways[1]: 192.168.3.254 differs from ip.gateways[0] 192.168.3.1",
        ),
        ({"ip__gateways": ["x"]}, 7, "ip.gateways[0]: 'x' is not an IP address"),
        ({"ip__gateways": "192.168.3.1"}, 7, "ip.gateways: must be a list of strings"),
        ({"ip__addresses": ["192.168.3.10"]}, 7, "ip.addresses[0]: '192.168.3.10' needs a prefix"),
        (
            {"ip__addresses": ["fd00::1/64"]},
            7,
            "ip.gateway: IPv6 ip.addresses[0] fd00::1/64 has no",
        ),
        ({"ip__addresses": ["::ffff:192.168.3.10/120"]}, 7, "ip.addresses[0]: '::ffff:192.168"),
        ({"ip__addresses": ["fe80::10/64"]}, 7, "ip.addresses[0]: fe80::10 cannot be an egress"),
        ({"ip__addresses": ["nope/24"]}, 7, "ip.addresses[0]: 'nope/24' is not an address"),
        ({"ip__addresses": "192.168.3.10/24"}, 7, "ip.addresses: must be a list of strings"),
        ({"ip__gateway": None}, 7, "ip.gateway: required"),
        ({"ip__gateway": "192.168.3.300"}, 7, "ip.gateway: '192.168.3.300' is not an IP address"),
        ({"ip__gateway": "192.168.3.10"}, 7, "ip.gateway: 192.168.3.10 is the egress address"),
        ({"ip__fallbackIP": "x"}, 7, "ip.fallbackIP: 'x' is not an IP address"),
        (
            {"ip__fallbackIP": "2001:db8::9"},
            7,
            "ip.fallbackIP: 2001:db8::9 is IPv6 but ip.addresses",
        ),
        (
            {"ip__destinations": ["80 tcp 2001:db8::9"]},
            7,
            "ip.destinations[0]: 2001:db8::9 is IPv6 but ip.addresses has no IPv6 address",
        ),
        ({"interfaceType": "ipvlan"}, 7, "interfaceType: 'ipvlan' is not supported"),
        ({"interfaceArgs": {"mode": "wild"}}, 7, "interfaceArgs.mode: unknown macvlan mode"),
        ({"interfaceArgs": {"mtu": "big"}}, 7, "interfaceArgs.mtu: 'big' must be an integer"),
        ({"interfaceArgs": {"master": "a/b"}}, 7, "interfaceArgs.master: 'a/b' is not"),
        ({"interfaceArgs": {"master": "eth*"}}, 7, "interfaceArgs.master: 'eth*' is not"),
        ({"interfaceArgs": {"master": "x" * 16}}, 7, "interfaceArgs.master: 'xxxxxxxxxxxxxxxx'"),
        ({"ip__addresses": ["192.168.3.10/33"]}, 7, "ip.addresses[0]: '192.168.3.10/33' is not"),
        ({"ip__addresses": ["192.168.3.10/255.255.255.0"]}, 7, "ip.addresses[0]: '192.168.3"),
        ({"ip__addresses": ["192.168.3.10/\u0662\u0664"]}, 7, "ip.addresses[0]: '192.168.3"),
        ({"interfaceArgs": "eth1"}, 7, 'interfaceArgs: must be an object, got "eth1"'),
        ({"log_level": "loud"}, 7, "log_level: 'loud' must be one of"),
        ({"log_file": 3}, 7, "log_file: must be a string, got 3"),
    ],
)
def test_config_errors(changes: dict[str, Any], code: int, message: str) -> None:
    with pytest.raises(CniError) as info:
        parse_config(_with(**changes))
    assert info.value.code == code
    assert str(info.value).startswith(message), str(info.value)


@pytest.mark.parametrize(("text", "code"), [("", 6), ("{", 6), ("[]", 6), ('{"name": 3}', 7)])
def test_undecodable(text: str, code: int) -> None:
    with pytest.raises(CniError) as info:
        parse_config(text)
    assert info.value.code == code


def test_optional_fields() -> None:
    config = parse_config(
        _with(
            cniVersion=None,
            interfaceType="macvlan",
            interfaceArgs={"master": "ext0", "mode": "Private", "mtu": 1400},
            log_level=None,
            **{"log_level.omitempty": "error"},
            dns={"nameservers": ["10.0.0.10"]},
            ipam={"type": "ignored"},
        )
    )
    assert config.cni_version == "0.1.0"
    assert (config.master, config.mode, config.mtu) == ("ext0", "private", 1400)
    assert config.log_level == "error"
    assert config.dns == {"nameservers": ["10.0.0.10"]}
    assert parse_config(_with(interfaceArgs={"mtu": "9000"})).mtu == 9000


ports = st.integers(min_value=1, max_value=65535)
protocols = st.sampled_from(["tcp", "TCP", "udp", "Udp", "sctp", "SCTP"])
ipv4 = st.integers(min_value=0x0B000000, max_value=0xDF000000).map(IP)


@given(st.lists(st.tuples(ports, protocols, ipv4, st.none() | ports), max_size=8))
def test_rendered_entries_parse_back(items: list[tuple[int, str, IP, int | None]]) -> None:
    seen: set[tuple[int, str]] = set()
    entries = []
    for port, proto, ip, remote in items:
        if (port, proto.lower()) in seen or ip.is_loopback or ip.is_multicast:
            continue
        seen.add((port, proto.lower()))
        entries.append(f"{port} {proto} {ip}" + (f" {remote}" if remote else ""))
    rules = parse_destinations(entries).rules
    assert len(rules) == len(entries)
    for rule, entry in zip(rules, entries, strict=True):
        port, proto, ip, *rest = entry.split()
        assert rule.port == int(port)
        assert rule.protocol in (*Protocol, *ExtraProtocol)
        assert rule.protocol.value == proto.lower()
        assert str(rule.address) == ip
        assert rule.remote_port == int(rest[0] if rest else port)


@given(st.lists(st.text(max_size=30), max_size=4))
def test_any_entries_parse_or_fail_with_one_line(entries: list[str]) -> None:
    try:
        parse_destinations(entries)
    except CniError as exc:
        assert str(exc).startswith("ip.destinations[")
        assert "\n" not in exc.one_line()


# -- IPv6 and dual stack ------------------------------------------------------------------------

IP6 = ipaddress.IPv6Address
DUAL: dict[str, Any] = {
    "addresses": ["192.168.3.10/24", "2001:db8:1::99/64"],
    "gateways": ["192.168.3.1", "2001:db8:1::1"],
    "destinations": ["80 tcp 203.0.113.25", "8080 tcp 2001:db8:2::26 80", "53 UDP 2001:db8:2::53"],
}


def _ip(**ip: Any) -> str:
    return json.dumps({**BASE, "ip": ip})


def test_dual_stack_config() -> None:
    config = parse_config(_ip(**DUAL))
    assert [str(a) for a in config.ip.addresses] == DUAL["addresses"]
    assert config.ip.gateways == (IP("192.168.3.1"), IP6("2001:db8:1::1"))
    assert config.ip.gateway_for(6) == IP6("2001:db8:1::1")
    assert config.ip.gateway == IP("192.168.3.1")  # the first address's family
    rules = config.ip.destination.rules
    assert [(r.port, r.protocol.value, str(r.address), r.remote_port) for r in rules] == [
        (80, "tcp", "203.0.113.25", 80),
        (8080, "tcp", "2001:db8:2::26", 80),
        (53, "udp", "2001:db8:2::53", 53),
    ]


def test_dual_stack_config_renders_and_parses_back() -> None:
    config = parse_config(_ip(**DUAL, fallbackIP="2001:db8:2::99"))
    rendered = render_config(config)
    assert rendered["ip"] == {
        "addresses": ["192.168.3.10/24", "2001:db8:1::99/64"],
        "gateway": "192.168.3.1",
        "destinations": DUAL["destinations"],
        "gateways": ["192.168.3.1", "2001:db8:1::1"],
        "fallbackIP": "2001:db8:2::99",
    }
    assert parse_config(json.dumps(rendered)) == config


def test_ipv6_first_renders_its_gateway_first() -> None:
    config = parse_config(
        _ip(
            addresses=["2001:db8:1::99/64", "192.168.3.10/24", "2001:db8:1::98/64"],
            gateways=["2001:db8:1::1", "192.168.3.1", "2001:db8:1::1"],
        )
    )
    assert config.ip.gateways == (IP("192.168.3.1"), IP6("2001:db8:1::1"))  # IPv4's first
    rendered = render_config(config)["ip"]
    assert rendered["gateway"] == "2001:db8:1::1"
    assert rendered["gateways"] == ["2001:db8:1::1", "192.168.3.1", "2001:db8:1::1"]
    assert parse_config(json.dumps(render_config(config))) == config


def test_ipv6_only_config_with_the_reference_fields() -> None:
    config = parse_config(
        _ip(
            addresses=["2001:db8:1::99/64"],
            gateway="fe80::1",  # a link-local gateway is what IPv6 routers advertise
            destinations=["8443 tcp 2001:db8:2::27/64 443"],
            fallbackIP="2001:db8:2::25",
        )
    )
    assert config.ip.gateways == (IP6("fe80::1"),)
    (rule,) = config.ip.destination.rules
    assert (rule.port, str(rule.address), rule.remote_port) == (8443, "2001:db8:2::27", 443)
    assert config.ip.destination.fallback == IP6("2001:db8:2::25")
    assert "gateways" not in render_config(config)["ip"]
    assert parse_config(json.dumps(render_config(config))) == config


@pytest.mark.parametrize(
    ("ip", "message"),
    [
        (
            {"addresses": DUAL["addresses"], "gateway": "192.168.3.1"},
            "ip.gateway: IPv6 ip.addresses[1] 2001:db8:1::99/64 has no gateway of its family "
            "(give one per address in ip.gateways)",
        ),
        (
            {"addresses": ["192.168.3.10/24"], "gateway": "2001:db8:1::1"},
            "ip.gateway: IPv4 ip.addresses[0] 192.168.3.10/24 has no gateway of its family "
            "(give one per address in ip.gateways)",
        ),
        (
            {"addresses": DUAL["addresses"], "gateways": ["192.168.3.1", "192.168.3.1"]},
            "ip.gateways[1]: 192.168.3.1 is IPv4 but ip.addresses[1] 2001:db8:1::99/64 is IPv6",
        ),
        (
            {"addresses": DUAL["addresses"], "gateways": ["2001:db8:1::1", "2001:db8:1::1"]},
            "ip.gateways[0]: 2001:db8:1::1 is IPv6 but ip.addresses[0] 192.168.3.10/24 is IPv4",
        ),
        (
            {
                "addresses": [*DUAL["addresses"], "2001:db8:1::98/64"],
                "gateways": [*DUAL["gateways"], "2001:db8:1::2"],
            },
            "ip.gateways[2]: 2001:db8:1::2 differs from ip.gateways[1] 2001:db8:1::1 (the router "
            "has one default route per family: one gateway for all its IPv6 addresses)",
        ),
        (
            {
                "addresses": DUAL["addresses"],
                "gateway": "2001:db8:1::5",
                "gateways": DUAL["gateways"],
            },
            "ip.gateways[1]: 2001:db8:1::1 differs from ip.gateway 2001:db8:1::5 (the router has "
            "one default route per family: one gateway for all its IPv6 addresses)",
        ),
        (
            {"addresses": DUAL["addresses"], "gateways": ["192.168.3.1", "2001:db8:1::99"]},
            "ip.gateways[1]: 2001:db8:1::99 is the egress address itself",
        ),
        (
            {"addresses": ["2001:db8:1::99/64"], "gateway": "::ffff:192.168.3.1"},
            "ip.gateway: '::ffff:192.168.3.1' is an IPv6 spelling of 192.168.3.1: write it as IPv4",
        ),
        (
            {"addresses": ["2001:db8:1::99/64"], "gateway": "ff02::2"},
            "ip.gateway: ff02::2 cannot be a gateway (not a unicast address)",
        ),
        (
            {"addresses": ["2001:db8:1::99/64"], "gateway": "2001:db8:1::1%eth0"},
            "ip.gateway: '2001:db8:1::1%eth0' is not an IP address (zone ids such as %eth0 are "
            "not allowed in an address)",
        ),
        (
            {"addresses": ["2001:db8:1::99"], "gateway": "2001:db8:1::1"},
            "ip.addresses[0]: '2001:db8:1::99' needs a prefix length (e.g. 2001:db8:1::99/64)",
        ),
        (
            {"addresses": ["2001:db8:1::99/64", "2001:db8:1::99/120"], "gateway": "2001:db8:1::1"},
            "ip.addresses[1]: 2001:db8:1::99 is already ip.addresses[0]",
        ),
        (
            {"addresses": ["ff02::1/64"], "gateway": "2001:db8:1::1"},
            "ip.addresses[0]: ff02::1 cannot be an egress address (not a unicast address)",
        ),
        (
            {"addresses": ["2001:db8:1::99/64"], "gateway": "2001:db8:1::1", "fallbackIP": "::1"},
            "ip.fallbackIP: ::1 cannot be a destination",
        ),
        (
            {
                "addresses": ["2001:db8:1::99/64"],
                "gateway": "2001:db8:1::1",
                "fallbackIP": "::ffff:203.0.113.5",
            },
            "ip.fallbackIP: '::ffff:203.0.113.5' is the IPv4 address 203.0.113.5: write it so",
        ),
        (
            {
                "addresses": ["2001:db8:1::99/64"],
                "gateway": "2001:db8:1::1",
                "fallbackIP": "203.0.113.5",
            },
            "ip.fallbackIP: 203.0.113.5 is IPv4 but ip.addresses has no IPv4 address to send from",
        ),
        (  # a catch-all written as the last destination entry is named there
            {
                "addresses": ["2001:db8:1::99/64"],
                "gateway": "2001:db8:1::1",
                "destinations": ["80 tcp 2001:db8:2::5", "203.0.113.5"],
            },
            "ip.destinations[1]: 203.0.113.5 is IPv4 but ip.addresses has no IPv4 address to send "
            "from",
        ),
        (
            {
                "addresses": ["2001:db8:1::99/64"],
                "gateway": "2001:db8:1::1",
                "destinations": ["80 tcp 2001:db8:2::5", "80 tcp 2001:db8:2::6"],
            },
            "ip.destinations[1]: localport 80 is already used, must be unique for each "
            "destination (tcp 80 first used on line 1)",
        ),
    ],
)
def test_ipv6_config_errors(ip: dict[str, Any], message: str) -> None:
    with pytest.raises(CniError) as info:
        parse_config(_ip(**{"destinations": [], **ip}))
    assert info.value.code == 7
    assert str(info.value) == message


def test_the_same_port_once_per_family() -> None:
    config = parse_config(
        _ip(**{**DUAL, "destinations": ["80 tcp 203.0.113.25", "80 tcp 2001:db8:2::25"]})
    )
    assert [r.address.version for r in config.ip.destination.rules] == [4, 6]


FAMILY_ADDRESSES = st.lists(
    st.sampled_from(
        [
            "192.168.3.10/24",
            "192.168.3.11/24",
            "2001:db8:1::99/64",
            "2001:db8:1::98/64",
            "10.9.0.5/16",
        ]
    ),
    min_size=1,
    max_size=5,
    unique=True,
)


@given(FAMILY_ADDRESSES, st.booleans())
def test_any_family_mix_renders_and_parses_back(addresses: list[str], per_address: bool) -> None:
    gateway = {4: "192.168.3.1", 6: "2001:db8:1::1"}
    versions = [ipaddress.ip_interface(a).version for a in addresses]
    ip: dict[str, Any] = {"addresses": addresses, "destinations": []}
    if per_address or len(set(versions)) > 1:
        ip["gateways"] = [gateway[v] for v in versions]
    else:
        ip["gateway"] = gateway[versions[0]]
    config = parse_config(_ip(**ip))
    assert [str(a) for a in config.ip.addresses] == addresses
    assert parse_config(json.dumps(render_config(config))) == config


def test_broadcast_fallback_is_refused_as_a_catch_all_entry_is() -> None:
    with pytest.raises(CniError) as info:
        parse_config(_with(ip__fallbackIP="255.255.255.255"))
    assert str(info.value) == "ip.fallbackIP: 255.255.255.255 cannot be a destination"
    with pytest.raises(CniError, match=r"^ip\.destinations\[3\]: value '255\.255\.255\.255'"):
        parse_config(_with(ip__destinations=[*BASE["ip"]["destinations"], "255.255.255.255"]))
