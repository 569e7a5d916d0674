"""common.values: the IPv6 spellings of IPv4 hosts, as a truth table and as properties."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from egress_router.common.values import (
    AliasKind,
    ipv4_alias,
    normalize_address,
    normalize_network,
    unmap_address,
)

V4 = ipaddress.IPv4Address("203.0.113.26")


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("::ffff:203.0.113.26", AliasKind.MAPPED),
        ("::ffff:cb00:711a", AliasKind.MAPPED),
        ("::FFFF:CB00:711A", AliasKind.MAPPED),
        ("0:0:0:0:0:ffff:cb00:711a", AliasKind.MAPPED),
        ("::203.0.113.26", AliasKind.COMPATIBLE),
        ("::cb00:711a", AliasKind.COMPATIBLE),
        ("::ffff:0:203.0.113.26", AliasKind.TRANSLATED),
        ("64:ff9b::203.0.113.26", AliasKind.NAT64),
        ("64:ff9b::cb00:711a", AliasKind.NAT64),
        ("::ffff:cb00:711a%eth0", AliasKind.MAPPED),  # a zone does not hide the host
    ],
)
def test_every_alias_form_is_the_ipv4_host(text: str, kind: AliasKind) -> None:
    address = ipaddress.ip_address(text)
    alias = ipv4_alias(address)
    assert alias is not None and alias.ipv4 == V4 and alias.kind is kind
    assert normalize_address(address) == V4
    assert unmap_address(address) == (V4 if kind is AliasKind.MAPPED else address)


@pytest.mark.parametrize(
    "text",
    [
        "::",  # unspecified, not a compatible 0.0.0.0
        "::1",  # loopback, not a compatible 0.0.0.1
        "2001:db8::cb00:711a",
        "fe80::ffff:cb00:711a",
        "64:ff9b:1::cb00:711a",  # local-use NAT64 prefix: its layout is the network's choice
        "::1:ffff:cb00:711a",
        "fe80::1%eth0",
        "fe80::ffff:cb00:711a%eth0",
        "203.0.113.26",
    ],
)
def test_plain_addresses_are_themselves(text: str) -> None:
    address = ipaddress.ip_address(text)
    assert ipv4_alias(address) is None
    assert normalize_address(address) == address
    assert unmap_address(address) == address


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("::ffff:203.0.113.0/120", "203.0.113.0/24"),
        ("::ffff:0:0/96", "0.0.0.0/0"),
        ("::cb00:7100/120", "203.0.113.0/24"),
        ("64:ff9b::cb00:711a/128", "203.0.113.26/32"),
        ("::/96", "::/96"),  # holds :: and ::1: stays IPv6
        ("::/0", "::/0"),
        ("64:ff9b::/32", "64:ff9b::/32"),
        ("2001:db8::/32", "2001:db8::/32"),
        ("203.0.113.0/24", "203.0.113.0/24"),
    ],
)
def test_networks_inside_an_alias_range_become_ipv4(text: str, expected: str) -> None:
    assert normalize_network(ipaddress.ip_network(text)) == ipaddress.ip_network(expected)


def test_network_kinds_can_be_limited_to_mapped() -> None:
    nat64 = ipaddress.ip_network("64:ff9b::cb00:7100/120")
    assert normalize_network(nat64, frozenset({AliasKind.MAPPED})) == nat64


@given(st.integers(min_value=0, max_value=2**32 - 1))
def test_every_ipv4_address_round_trips_through_every_form(value: int) -> None:
    v4 = ipaddress.IPv4Address(value)
    for prefix in (0xFFFF << 32, 0xFFFF << 48, 0x64FF9B << 96):
        assert normalize_address(ipaddress.IPv6Address(prefix | value)) == v4
    compatible = ipaddress.IPv6Address(value)
    assert normalize_address(compatible) == (compatible if value <= 1 else v4)


@given(st.integers(min_value=0, max_value=2**128 - 1))
def test_normalisation_is_idempotent(value: int) -> None:
    once = normalize_address(ipaddress.IPv6Address(value))
    assert normalize_address(once) == once
