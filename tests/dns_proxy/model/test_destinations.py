"""EGRESS_DNS_PROXY_DESTINATION grammar and the DNS proxy settings: truth tables + properties."""

from __future__ import annotations

import contextlib
import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from egress_router.dns_proxy.model.destinations import (
    Destination,
    Forwarding,
    parse_destinations,
    parse_settings,
    render_plan,
)
from egress_router.errors import VariableError
from tests.reference_examples import DNS_PROXY

VAR = "EGRESS_DNS_PROXY_DESTINATION"
IP = ipaddress.IPv4Address


def test_reference_example() -> None:
    assert parse_destinations(DNS_PROXY) == (
        Destination(2, 80, "203.0.113.25", 80, IP("203.0.113.25")),
        Destination(3, 100, "example.com", 100, None),
        Destination(4, 8080, "203.0.113.26", 80, IP("203.0.113.26")),
        Destination(5, 8443, "foobar.com", 443, None),
    )


@pytest.mark.parametrize(
    ("line", "local", "host", "remote", "literal"),
    [
        ("80 203.0.113.25", 80, "203.0.113.25", 80, True),
        ("80 203.0.113.25 8080", 80, "203.0.113.25", 8080, True),
        ("100 example.com", 100, "example.com", 100, False),
        ("8443 foobar.com 443", 8443, "foobar.com", 443, False),
        ("8443 FooBar.COM. 443", 8443, "foobar.com", 443, False),  # case, root dot
        ("1 a-b.c-d.example 65535", 1, "a-b.c-d.example", 65535, False),
        ("65535 198.51.100.255", 65535, "198.51.100.255", 65535, True),
        ("080 10.1.2.3 08", 80, "10.1.2.3", 8, True),  # leading zeros: decimal, never octal
        ("  80\t203.0.113.25  ", 80, "203.0.113.25", 80, True),  # tabs, blanks
        ("80 203.0.113.25 # the web server", 80, "203.0.113.25", 80, True),  # trailing comment
        ("80 svc.namespace", 80, "svc.namespace", 80, False),  # searched via resolv.conf
    ],
)
def test_accepted_lines(line: str, local: int, host: str, remote: int, literal: bool) -> None:
    (d,) = parse_destinations(line + "\r\n")
    assert (d.local_port, d.host, d.remote_port, d.address is not None) == (
        local,
        host,
        remote,
        literal,
    )


@pytest.mark.parametrize(
    ("value", "line", "phrase"),
    [
        ("", None, "Must specify EGRESS_DNS_PROXY_DESTINATION"),
        ("  \n\t\n", None, "Must specify EGRESS_DNS_PROXY_DESTINATION"),
        ("# only a comment\n\n", None, "Must specify EGRESS_DNS_PROXY_DESTINATION"),
        ("invalid", 1, "Bad destination 'invalid'"),
        ("8080 invalid", 1, "Bad destination '8080 invalid'"),  # single label (reference test)
        ("80 localhost", 1, "Bad destination '80 localhost'"),
        ("80 tcp 1.2.3.4", 1, "Bad destination '80 tcp 1.2.3.4'"),
        ("1.2.3.4", 1, "Bad destination '1.2.3.4'"),
        ("80 1.2.3.4 90 100", 1, "Bad destination '80 1.2.3.4 90 100'"),
        ("80 999.1.1.1", 1, "Bad destination '80 999.1.1.1'"),  # octet range
        ("80 1.2.3", 1, "Bad destination '80 1.2.3'"),
        ("80 0.0.0.0", 1, "Bad destination '80 0.0.0.0' (expected a unicast IPv4 address"),
        ("80 127.0.0.1", 1, "Bad destination '80 127.0.0.1'"),
        ("80 0.1.2.3", 1, "Bad destination '80 0.1.2.3'"),
        ("80 224.0.0.1", 1, "Bad destination '80 224.0.0.1'"),
        ("80 255.255.255.255", 1, "Bad destination '80 255.255.255.255'"),
        ("80 1.2.3.4.5", 1, "Bad destination '80 1.2.3.4.5'"),
        ("80 ex..com", 1, "Bad destination '80 ex..com'"),
        ("80 -a.com", 1, "Bad destination '80 -a.com'"),
        ("80 a_b.com", 1, "Bad destination '80 a_b.com'"),
        ("80 [::1]", 1, "Bad destination '80 [::1]'"),
        ("80 exämple.com", 1, "Bad destination '80 exämple.com'"),
        ("http 1.2.3.4", 1, "Bad destination 'http 1.2.3.4'"),
        ("# x\n99999 1.2.3.4", 2, "Invalid port: 99999, must be in the range 1 to 65535"),
        ("0 1.2.3.4", 1, "Invalid port: 0, must be in the range 1 to 65535"),
        ("80 11.12.13.14 88888", 1, "Invalid port: 88888, must be in the range 1 to 65535"),
        ("80 11.12.13.14 http", 1, "Invalid port: http"),
        (
            "80 1.2.3.4\n\n80 example.com",
            3,
            "Proxy port 80 already used, must be unique for each destination"
            " (first used on line 1)",
        ),
    ],
)
def test_rejected(value: str, line: int | None, phrase: str) -> None:
    with pytest.raises(VariableError) as info:
        parse_destinations(value)
    assert info.value.variable == VAR
    assert info.value.line == line
    assert phrase in info.value.one_line()
    assert "\n" not in info.value.one_line()


def test_unset_is_the_same_error_as_empty() -> None:
    with pytest.raises(VariableError, match="Must specify EGRESS_DNS_PROXY_DESTINATION"):
        parse_settings({})


def test_duplicate_destinations_allowed() -> None:
    assert len(parse_destinations("80 example.com\n81 example.com\n")) == 2


@given(st.text(max_size=200))
def test_any_input_parses_or_raises_variable_error(value: str) -> None:
    try:
        result = parse_destinations(value)
    except VariableError as exc:
        assert "\n" not in exc.one_line()
    else:
        assert result
        assert len({d.local_port for d in result}) == len(result)


_fragment = st.sampled_from(
    ["80", "0", "65536", "08", "1.2.3.4", "300.1.1.1", "example.com", "a", "-x.y", "#", " ", "\t"]
)


@given(st.lists(st.lists(_fragment, max_size=4).map(" ".join), max_size=6).map("\n".join))
def test_grammar_shaped_input_parses_or_raises(value: str) -> None:
    with contextlib.suppress(VariableError):
        parse_destinations(value)


# -- settings -------------------------------------------------------------------------------

BASE = {VAR: "80 203.0.113.25"}


def test_defaults() -> None:
    s = parse_settings(BASE)
    assert (s.forwarding, s.debug, s.unit_test, s.ttl_min_s, s.ttl_max_s) == (
        Forwarding.KERNEL,
        False,
        False,
        5,
        1800,
    )
    assert (s.cluster_interface, s.egress_interface) == ("eth0", "macvlan0")


@pytest.mark.parametrize(
    ("env", "field", "value"),
    [
        ({"EGRESS_DNS_PROXY_DEBUG": "1"}, "debug", True),
        ({"EGRESS_DNS_PROXY_DEBUG": "true"}, "debug", True),
        ({"EGRESS_DNS_PROXY_DEBUG": "0"}, "debug", False),
        ({"EGRESS_DNS_PROXY_DEBUG": "false"}, "debug", False),  # common.switches: one reading
        ({"EGRESS_DNS_PROXY_DEBUG": " Off "}, "debug", False),
        ({"EGRESS_DNS_PROXY_DEBUG": ""}, "debug", False),
        ({"EGRESS_DNS_PROXY_DEBUG": "yes"}, "debug", True),
        ({"EGRESS_ROUTER_CLUSTER_INTERFACE": "ens3.100"}, "cluster_interface", "ens3.100"),
        ({"EGRESS_ROUTER_EGRESS_INTERFACE": "br-ex"}, "egress_interface", "br-ex"),
        ({"EGRESS_DNS_PROXY_RELAY_WORKERS": "0"}, "relay_workers", 0),
        ({"EGRESS_DNS_PROXY_RELAY_WORKERS": "16"}, "relay_workers", 16),
        ({"EGRESS_DNS_PROXY_MODE": "unit-test"}, "unit_test", True),
        ({"EGRESS_DNS_PROXY_FORWARDING": "relay"}, "forwarding", Forwarding.RELAY),
        ({"EGRESS_DNS_PROXY_FORWARDING": "KERNEL"}, "forwarding", Forwarding.KERNEL),
        ({"EGRESS_DNS_PROXY_TTL_MIN": "1"}, "ttl_min_s", 1),
        ({"EGRESS_DNS_PROXY_TTL_MAX": "60"}, "ttl_max_s", 60),
        ({"EGRESS_ROUTER_CLUSTER_INTERFACE": "net1"}, "cluster_interface", "net1"),
        ({"EGRESS_DNS_PROXY_RELAY_WORKERS": "4"}, "relay_workers", 4),
    ],
)
def test_knobs(env: dict[str, str], field: str, value: object) -> None:
    assert getattr(parse_settings({**BASE, **env}), field) == value


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"EGRESS_DNS_PROXY_MODE": "test"}, "EGRESS_DNS_PROXY_MODE"),
        ({"EGRESS_DNS_PROXY_FORWARDING": "haproxy"}, "EGRESS_DNS_PROXY_FORWARDING"),
        ({"EGRESS_DNS_PROXY_TTL_MIN": "0"}, "EGRESS_DNS_PROXY_TTL_MIN"),
        ({"EGRESS_DNS_PROXY_TTL_MIN": "5s"}, "EGRESS_DNS_PROXY_TTL_MIN"),
        ({"EGRESS_DNS_PROXY_TTL_MAX": "999999"}, "EGRESS_DNS_PROXY_TTL_MAX"),
        (
            {"EGRESS_DNS_PROXY_TTL_MIN": "60", "EGRESS_DNS_PROXY_TTL_MAX": "30"},
            "EGRESS_DNS_PROXY_TTL_MAX",
        ),
        ({"EGRESS_ROUTER_CLUSTER_INTERFACE": "eth0; rm"}, "EGRESS_ROUTER_CLUSTER_INTERFACE"),
        ({"EGRESS_ROUTER_CLUSTER_INTERFACE": "macvlan0"}, "EGRESS_ROUTER_CLUSTER_INTERFACE"),
        ({"EGRESS_DNS_PROXY_RELAY_WORKERS": "17"}, "EGRESS_DNS_PROXY_RELAY_WORKERS"),
        ({"EGRESS_DNS_PROXY_RELAY_WORKERS": "-1"}, "EGRESS_DNS_PROXY_RELAY_WORKERS"),
        ({"EGRESS_DNS_PROXY_RELAY_WORKERS": "\u0664"}, "EGRESS_DNS_PROXY_RELAY_WORKERS"),
        ({"EGRESS_DNS_PROXY_DEBUG": "debug"}, "EGRESS_DNS_PROXY_DEBUG"),
        ({"EGRESS_DNS_PROXY_DEBUG": "2"}, "EGRESS_DNS_PROXY_DEBUG"),
        ({"EGRESS_ROUTER_CLUSTER_INTERFACE": "a" * 16}, "EGRESS_ROUTER_CLUSTER_INTERFACE"),
        ({"EGRESS_ROUTER_CLUSTER_INTERFACE": "eth*"}, "EGRESS_ROUTER_CLUSTER_INTERFACE"),
        ({"EGRESS_ROUTER_EGRESS_INTERFACE": "mac\u00e9"}, "EGRESS_ROUTER_EGRESS_INTERFACE"),
        ({"EGRESS_ROUTER_EGRESS_INTERFACE": ".."}, "EGRESS_ROUTER_EGRESS_INTERFACE"),
    ],
)
def test_bad_knobs(env: dict[str, str], variable: str) -> None:
    with pytest.raises(VariableError) as info:
        parse_settings({**BASE, **env})
    assert info.value.variable == variable


def test_ttl_min_raises_default_ceiling_never_below_floor() -> None:
    assert parse_settings({**BASE, "EGRESS_DNS_PROXY_TTL_MIN": "3600"}).ttl_max_s == 3600


def test_plan_text() -> None:
    text = render_plan(parse_settings({VAR: DNS_PROXY, "EGRESS_DNS_PROXY_DEBUG": "1"}))
    assert "forwarding=kernel" in text and "debug=on" in text
    assert "line 3: port 100 -> example.com:100 (name, resolved at run time)" in text
    assert "line 4: port 8080 -> 203.0.113.26:80 (address)" in text


_KEYS = st.sampled_from(
    [
        VAR,
        "EGRESS_DNS_PROXY_DEBUG",
        "EGRESS_DNS_PROXY_MODE",
        "EGRESS_DNS_PROXY_FORWARDING",
        "EGRESS_DNS_PROXY_TTL_MIN",
        "EGRESS_DNS_PROXY_TTL_MAX",
        "EGRESS_DNS_PROXY_RELAY_WORKERS",
        "EGRESS_ROUTER_CLUSTER_INTERFACE",
        "EGRESS_ROUTER_EGRESS_INTERFACE",
    ]
)


@given(st.dictionaries(_KEYS, st.text(max_size=30)))
def test_any_environment_parses_or_raises_variable_error(env: dict[str, str]) -> None:
    try:
        settings = parse_settings(env)
    except VariableError as exc:
        assert "\n" not in exc.one_line()
    else:
        assert 1 <= settings.ttl_min_s <= settings.ttl_max_s
        assert settings.cluster_interface != settings.egress_interface


@pytest.mark.parametrize(
    "host", ["::ffff:203.0.113.26", "[::ffff:cb00:711a]", "::203.0.113.26", "64:ff9b::cb00:711a"]
)
def test_ipv6_spellings_of_ipv4_hosts_are_rejected(host: str) -> None:
    """Issue 8: the DNS proxy takes IPv4 literals and names only (and resolves names with A
    queries, checked by ``is_peer``), so no alias form can reach a forwarding decision."""
    with pytest.raises(VariableError, match="an IPv4 address or a host name"):
        parse_destinations(f"80 {host}")
