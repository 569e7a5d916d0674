"""The router's environment contract: order of checks, defaults, modes, interface names."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from egress_router.errors import VariableError
from egress_router.redirect.model.env import Interfaces, Mode, parse_router_env

BASE = {
    "EGRESS_SOURCE": "192.168.12.99/24",
    "EGRESS_GATEWAY": "192.168.12.1",
    "EGRESS_DESTINATION": "203.0.113.25",
}


def env(**changes: str | None) -> dict[str, str]:
    out = dict(BASE)
    for key, value in changes.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        (None, Mode.LEGACY),
        ("", Mode.LEGACY),
        ("legacy", Mode.LEGACY),
        ("init", Mode.INIT),
        ("http-proxy", Mode.HTTP_PROXY),
        ("dns-proxy", Mode.DNS_PROXY),
        ("unit-test", Mode.UNIT_TEST),
    ],
)
def test_modes(mode: str | None, expected: Mode) -> None:
    assert parse_router_env(env(EGRESS_ROUTER_MODE=mode)).mode is expected


@pytest.mark.parametrize(
    ("source", "address", "interface"),
    [
        ("192.168.12.99", "192.168.12.99", "192.168.12.99/32"),
        ("192.168.12.99/24", "192.168.12.99", "192.168.12.99/24"),
        (" 192.168.12.99/24\n", "192.168.12.99", "192.168.12.99/24"),
        ("10.0.0.5/32", "10.0.0.5", "10.0.0.5/32"),
    ],
)
def test_source_forms(source: str, address: str, interface: str) -> None:
    parsed = parse_router_env(env(EGRESS_SOURCE=source))
    assert parsed.source_ip == ipaddress.IPv4Address(address)
    assert parsed.source.interface == ipaddress.IPv4Interface(interface)


@pytest.mark.parametrize(
    ("changes", "variable", "phrase"),
    [
        ({"EGRESS_SOURCE": None}, "EGRESS_SOURCE", "unspecified or invalid"),
        ({"EGRESS_SOURCE": ""}, "EGRESS_SOURCE", "unspecified or invalid"),
        ({"EGRESS_SOURCE": "999.1.2.3"}, "EGRESS_SOURCE", "octets must be 0-255"),
        ({"EGRESS_SOURCE": "1.2.3.4/33"}, "EGRESS_SOURCE", "prefix length"),
        ({"EGRESS_SOURCE": "1.2.3.4\n5.6.7.8"}, "EGRESS_SOURCE", "unspecified or invalid"),
        ({"EGRESS_SOURCE": "egress.example.com"}, "EGRESS_SOURCE", "unspecified or invalid"),
        ({"EGRESS_GATEWAY": None}, "EGRESS_GATEWAY", "unspecified or invalid"),
        ({"EGRESS_GATEWAY": "192.168.12.1/24"}, "EGRESS_GATEWAY", "unspecified or invalid"),
        ({"EGRESS_GATEWAY": "192.168.12.99"}, "EGRESS_GATEWAY", "must differ from"),
        ({"EGRESS_ROUTER_MODE": "redirect"}, "EGRESS_ROUTER_MODE", "Unrecognized"),
        ({"EGRESS_ROUTER_MODE": "INIT"}, "EGRESS_ROUTER_MODE", "Unrecognized EGRESS_ROUTER_MODE"),
        ({"EGRESS_DESTINATION": None}, "EGRESS_DESTINATION", "unspecified"),
        ({"EGRESS_DESTINATION": "bad line"}, "EGRESS_DESTINATION", "is invalid"),
        (
            {"EGRESS_ROUTER_MODE": "unit-test", "EGRESS_DESTINATION": ""},
            "EGRESS_DESTINATION",
            "unspecified",
        ),
        ({"EGRESS_ROUTER_MACVLAN_INTERFACE": "a b"}, "EGRESS_ROUTER_MACVLAN_INTERFACE", "invalid"),
        (
            {"EGRESS_ROUTER_CLUSTER_INTERFACE": "x" * 16},
            "EGRESS_ROUTER_CLUSTER_INTERFACE",
            "invalid",
        ),
        (
            {"EGRESS_ROUTER_CLUSTER_INTERFACE": "macvlan0"},
            "EGRESS_ROUTER_MACVLAN_INTERFACE",
            "differ",
        ),
    ],
)
def test_rejected(changes: dict[str, str | None], variable: str, phrase: str) -> None:
    with pytest.raises(VariableError) as info:
        parse_router_env(env(**changes))
    assert info.value.variable == variable
    assert phrase in str(info.value)


@pytest.mark.parametrize(
    ("changes", "first"),
    [
        # the reference's order: SOURCE, GATEWAY, MODE, DESTINATION
        ({"EGRESS_SOURCE": "x", "EGRESS_GATEWAY": "y", "EGRESS_ROUTER_MODE": "z"}, "EGRESS_SOURCE"),
        ({"EGRESS_GATEWAY": "y", "EGRESS_ROUTER_MODE": "z"}, "EGRESS_GATEWAY"),
        ({"EGRESS_ROUTER_MODE": "z", "EGRESS_DESTINATION": "bad"}, "EGRESS_ROUTER_MODE"),
    ],
)
def test_order_of_checks(changes: dict[str, str], first: str) -> None:
    with pytest.raises(VariableError) as info:
        parse_router_env(env(**changes))
    assert info.value.variable == first


@pytest.mark.parametrize("mode", ["http-proxy", "dns-proxy"])
def test_proxy_modes_ignore_destination(mode: str) -> None:
    parsed = parse_router_env(env(EGRESS_ROUTER_MODE=mode, EGRESS_DESTINATION="garbage here"))
    assert parsed.destination is None


def test_interfaces_default_variable_and_flag() -> None:
    assert parse_router_env(env()).interfaces == Interfaces("macvlan0", "eth0")
    by_var = env(EGRESS_ROUTER_MACVLAN_INTERFACE="net1", EGRESS_ROUTER_CLUSTER_INTERFACE="eth1")
    assert parse_router_env(by_var).interfaces == Interfaces("net1", "eth1")
    flagged = parse_router_env(by_var, macvlan="mv9", cluster="eth7")
    assert flagged.interfaces == Interfaces("mv9", "eth7")
    with pytest.raises(VariableError, match="--macvlan-interface"):
        parse_router_env(env(), macvlan="")


@pytest.mark.parametrize(
    ("value", "debug"),
    [
        (None, False),
        ("", False),
        (" ", False),
        ("0", False),  # the reference turned debug on for any non-empty value, even these
        ("false", False),
        ("off", False),
        ("No", False),
        ("1", True),  # the documented example
        ("true", True),
        (" ON\r\n", True),
        ("yes", True),
    ],
)
def test_debug_is_on_or_off(value: str | None, debug: bool) -> None:
    variables = env() if value is None else env(EGRESS_ROUTER_DEBUG=value)
    assert parse_router_env(variables).debug is debug


@pytest.mark.parametrize("value", ["2", "debug", "enabled", "tru", "\u0661", "on\nyes"])
def test_debug_other_values_are_refused(value: str) -> None:
    with pytest.raises(VariableError, match=r"^EGRESS_ROUTER_DEBUG: expected on or off"):
        parse_router_env(env(EGRESS_ROUTER_DEBUG=value))


def test_debug_is_checked_after_source_and_gateway() -> None:
    with pytest.raises(VariableError, match=r"^EGRESS_GATEWAY"):
        parse_router_env(env(EGRESS_GATEWAY="x", EGRESS_ROUTER_DEBUG="x"))
    with pytest.raises(VariableError, match=r"^EGRESS_ROUTER_DEBUG"):
        parse_router_env(env(EGRESS_ROUTER_DEBUG="x", EGRESS_ROUTER_MODE="x"))


KEYS = ["EGRESS_SOURCE", "EGRESS_GATEWAY", "EGRESS_ROUTER_MODE", "EGRESS_DESTINATION"]


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(KEYS), st.text(max_size=30)))
def test_any_environment_parses_or_raises_variable_error(changes: dict[str, str]) -> None:
    try:
        parse_router_env(env(**changes))
    except VariableError as error:
        assert "\n" not in error.one_line()
