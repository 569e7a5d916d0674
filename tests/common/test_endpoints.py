"""common.endpoints: ADDR:PORT and [V6]:PORT, with and without defaults; the health variable."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from egress_router.common.endpoints import (
    Endpoint,
    parse_endpoint,
    parse_health,
    split_host_port,
)


@pytest.mark.parametrize(
    ("text", "split"),
    [
        ("example.com:443", ("example.com", "443")),
        ("198.18.0.2:9100", ("198.18.0.2", "9100")),
        ("[2001:db8::1]:443", ("2001:db8::1", "443")),
        ("[2001:db8::1]", ("2001:db8::1", None)),
        ("2001:db8::1", ("2001:db8::1", None)),  # unbracketed: an address, no port
        ("2001:db8::1:443", ("2001:db8::1:443", None)),
        ("198.18.0.2", ("198.18.0.2", None)),
        (":443", ("", "443")),
        ("x:", ("x", "")),
    ],
)
def test_split(text: str, split: tuple[str, str | None]) -> None:
    assert split_host_port(text) == split


@pytest.mark.parametrize("text", ["[::1", "[::1]x", "[::1]x:80", "::1]:80", "a[b]:80"])
def test_split_refuses_brackets_out_of_place(text: str) -> None:
    with pytest.raises(ValueError):
        split_host_port(text)


@pytest.mark.parametrize(
    ("text", "kwargs", "endpoint"),
    [
        ("198.18.0.2:9100", {}, ("198.18.0.2", 9100)),
        ("[2001:db8::1]:65535", {}, ("2001:db8::1", 65535)),
        ("198.18.0.2:09100", {}, ("198.18.0.2", 9100)),  # decimal
        ("198.18.0.53", {"default_port": 53}, ("198.18.0.53", 53)),
        ("[2001:db8::53]", {"default_port": 53}, ("2001:db8::53", 53)),
        ("2001:db8::53", {"default_port": 53}, ("2001:db8::53", 53)),
        ("[2001:db8::53]:5353", {"default_port": 53}, ("2001:db8::53", 5353)),
        ("8081", {"default_host": "0.0.0.0"}, ("0.0.0.0", 8081)),
        ("127.0.0.1:9", {"default_host": "0.0.0.0"}, ("127.0.0.1", 9)),
    ],
)
def test_endpoints(text: str, kwargs: dict[str, object], endpoint: tuple[str, int]) -> None:
    parsed = parse_endpoint(text, **kwargs)  # type: ignore[arg-type]
    assert (parsed.host, parsed.port) == endpoint


@pytest.mark.parametrize(
    "text",
    [
        "",
        "9100",  # no default host: an address is required
        ":9100",
        "198.18.0.2",  # no default port: a port is required
        "198.18.0.2:",
        "198.18.0.2:0",
        "198.18.0.2:65536",
        "198.18.0.2:" + "9" * 5000,  # overlong
        "198.18.0.2:+80",
        "198.18.0.2:8_0",
        "198.18.0.2:٨٠",  # Arabic-Indic digits
        "198.18.0.2:８０",  # fullwidth digits
        "١٩٨.18.0.2:80",
        "198.18.0.2:80\n",  # line breaks: the caller trims, the parser never does
        "198.18.0.2\n:80",
        "metrics.local:9100",  # an address, not a name
        "::1:9100",  # IPv6 with a port needs brackets
        "[198.18.0.2]:80",  # brackets are for IPv6
        "[fe80::1%eth0]:80",  # no zone ids
        "[::1]",
    ],
)
def test_refused_without_defaults(text: str) -> None:
    with pytest.raises(ValueError):
        parse_endpoint(text)


def test_the_bracket_hint() -> None:
    with pytest.raises(ValueError, match=r"IPv6 in brackets.*\[2001:db8::2\]:9100"):
        parse_endpoint("2001:db8::2:9100")


def test_endpoint_text() -> None:
    assert str(Endpoint(ipaddress.ip_address("2001:db8::1"), 53)) == "[2001:db8::1]:53"
    assert str(Endpoint(ipaddress.ip_address("198.18.0.2"), 53)) == "198.18.0.2:53"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, None),
        ("", None),
        (" \t", None),
        ("off", None),
        ("OFF", None),
        ("8081", ("0.0.0.0", 8081)),
        (" 8081\r\n", ("0.0.0.0", 8081)),
        ("[::ffff:127.0.0.1]:9", ("127.0.0.1", 9)),  # normalised: binds the IPv4 address
        ("[::1]:9", ("::1", 9)),
    ],
)
def test_health(text: str | None, expected: tuple[str, int] | None) -> None:
    assert parse_health(text) == expected


@given(st.text(alphabet="0123456789abcdef:.[]%x \n٨", max_size=24))
def test_any_text_is_an_endpoint_or_a_value_error(text: str) -> None:
    try:
        endpoint = parse_endpoint(text, default_port=53)
    except ValueError:
        return
    assert 1 <= endpoint.port <= 65535
    assert parse_endpoint(str(endpoint)) == endpoint  # the text parses back
