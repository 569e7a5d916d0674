"""common.networks: the one CIDR parser, each host-bit policy, prefixes, families, aliases."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from egress_router.common.networks import (
    ALL_ALIASES,
    CidrError,
    CidrPart,
    HostBits,
    parse_cidr,
)
from egress_router.common.values import AliasKind

MAPPED = frozenset({AliasKind.MAPPED})


@pytest.mark.parametrize(
    ("text", "host_bits", "network", "address"),
    [
        ("203.0.113.0/24", HostBits.REJECT, "203.0.113.0/24", "203.0.113.0"),
        ("203.0.113.0/24", HostBits.CLEAR, "203.0.113.0/24", "203.0.113.0"),
        ("203.0.113.0/24", HostBits.KEEP, "203.0.113.0/24", "203.0.113.0"),
        ("203.0.113.7/24", HostBits.CLEAR, "203.0.113.0/24", "203.0.113.0"),
        ("203.0.113.7/24", HostBits.KEEP, "203.0.113.0/24", "203.0.113.7"),
        ("203.0.113.7", HostBits.REJECT, "203.0.113.7/32", "203.0.113.7"),  # a bare host
        ("0.0.0.0/0", HostBits.REJECT, "0.0.0.0/0", "0.0.0.0"),
        ("203.0.113.7/032", HostBits.REJECT, "203.0.113.7/32", "203.0.113.7"),  # decimal
        ("010.0.0.1", HostBits.REJECT, "10.0.0.1/32", "10.0.0.1"),  # decimal, never octal
        ("2001:db8::/32", HostBits.REJECT, "2001:db8::/32", "2001:db8::"),
        ("2001:DB8::1/32", HostBits.CLEAR, "2001:db8::/32", "2001:db8::"),
        ("2001:db8::1/32", HostBits.KEEP, "2001:db8::/32", "2001:db8::1"),
        ("2001:db8::1", HostBits.REJECT, "2001:db8::1/128", "2001:db8::1"),
        ("::/0", HostBits.REJECT, "::/0", "::"),
    ],
)
def test_host_bit_policies(text: str, host_bits: HostBits, network: str, address: str) -> None:
    cidr = parse_cidr(text, host_bits=host_bits)
    assert cidr.network == ipaddress.ip_network(network)
    assert cidr.ip == ipaddress.ip_address(address)


def test_reject_says_what_was_meant() -> None:
    with pytest.raises(CidrError, match=r"host bits set \(did you mean 203.0.113.0/24\?\)") as e:
        parse_cidr("203.0.113.7/24", host_bits=HostBits.REJECT)
    assert e.value.part is CidrPart.HOST_BITS
    with pytest.raises(CidrError, match="did you mean 2001:db8::/32"):
        parse_cidr("2001:db8::1/32", host_bits=HostBits.REJECT)


@pytest.mark.parametrize(
    ("text", "unalias", "network"),
    [
        ("::ffff:203.0.113.0/120", ALL_ALIASES, "203.0.113.0/24"),
        ("::ffff:203.0.113.0/120", MAPPED, "203.0.113.0/24"),
        ("::ffff:203.0.113.9", MAPPED, "203.0.113.9/32"),
        ("64:ff9b::203.0.113.0/120", ALL_ALIASES, "203.0.113.0/24"),
        ("64:ff9b::203.0.113.0/120", MAPPED, "64:ff9b::cb00:7100/120"),  # NAT64 stays IPv6
        ("::ffff:203.0.113.0/120", frozenset(), "::ffff:cb00:7100/120"),
        ("::/80", ALL_ALIASES, "::/80"),  # wider than one alias /96: stays IPv6
    ],
)
def test_aliases_read_as_ipv4_when_asked(
    text: str, unalias: frozenset[AliasKind], network: str
) -> None:
    cidr = parse_cidr(text, host_bits=HostBits.CLEAR, unalias=unalias)
    assert cidr.network == ipaddress.ip_network(network)


def test_an_unaliased_keep_keeps_the_host() -> None:
    cidr = parse_cidr("::ffff:203.0.113.9/120", host_bits=HostBits.KEEP, unalias=MAPPED)
    assert str(cidr) == "203.0.113.9/24"


@pytest.mark.parametrize(
    ("text", "part", "reason"),
    [
        ("", CidrPart.ADDRESS, "IPv4 address"),
        ("203.0.113.256/24", CidrPart.ADDRESS, "0-255"),
        ("203.0.113/24", CidrPart.ADDRESS, "IPv4 address"),
        ("example.com", CidrPart.ADDRESS, "IPv4 address"),
        ("203.0.113.0/33", CidrPart.PREFIX, "the prefix length must be 0-32"),
        ("2001:db8::/129", CidrPart.PREFIX, "the prefix length must be 0-128"),
        ("203.0.113.0/", CidrPart.PREFIX, "0-32"),
        ("203.0.113.0/-1", CidrPart.PREFIX, "0-32"),
        ("203.0.113.0/+8", CidrPart.PREFIX, "0-32"),
        ("203.0.113.0/ 8", CidrPart.PREFIX, "0-32"),
        ("203.0.113.0/8/8", CidrPart.PREFIX, "0-32"),
        ("203.0.113.0/" + "9" * 5000, CidrPart.PREFIX, "0-32"),  # overlong: no int() of it
        ("203.0.113.0/²", CidrPart.PREFIX, "ASCII"),  # a superscript two
        ("١٩٨.18.0.0/15", CidrPart.ADDRESS, "ASCII"),  # Arabic-Indic digits
        ("203.0.113.0/24\n", CidrPart.PREFIX, "0-32"),  # a line break is no blank here
        ("\n203.0.113.0/24", CidrPart.ADDRESS, "IPv4 address"),
        ("[2001:db8::]/32", CidrPart.ADDRESS, "without brackets"),
        ("fe80::1%eth0/64", CidrPart.ADDRESS, "zone ids"),
        ("2001:db8::1:80:x", CidrPart.ADDRESS, "ports and URLs are not allowed"),
        ("http://example.com/", CidrPart.ADDRESS, "ports and URLs are not allowed"),
    ],
)
def test_refused(text: str, part: CidrPart, reason: str) -> None:
    with pytest.raises(CidrError, match=reason) as info:
        parse_cidr(text, host_bits=HostBits.CLEAR)
    assert info.value.part is part


def test_prefix_required() -> None:
    with pytest.raises(CidrError, match=r"prefix length, e\.g\. 1\.2\.3\.0/24") as info:
        parse_cidr("203.0.113.0", host_bits=HostBits.CLEAR, prefix_required=True)
    assert info.value.part is CidrPart.PREFIX


def test_ipv6_refused_when_not_allowed() -> None:
    with pytest.raises(CidrError) as info:
        parse_cidr("2001:db8::/32", host_bits=HostBits.KEEP, ipv6=False)
    assert info.value.part is CidrPart.FAMILY
    assert parse_cidr("203.0.113.1/24", host_bits=HostBits.KEEP, ipv6=False).version == 4


@given(st.text(alphabet="0123456789abcdef:./[]%x \n١", max_size=24), st.sampled_from(HostBits))
def test_any_text_parses_or_raises_cidr_error(text: str, host_bits: HostBits) -> None:
    try:
        cidr = parse_cidr(text, host_bits=host_bits, unalias=ALL_ALIASES)
    except CidrError:
        return
    if host_bits is not HostBits.KEEP:
        assert cidr.ip == cidr.network.network_address
    assert cidr.ip in cidr.network
