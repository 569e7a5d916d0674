"""EGRESS_DESTINATION grammar: truth tables for every line form and error, plus properties."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from egress_router.common.values import ipv4_alias
from egress_router.errors import VariableError
from egress_router.redirect.model.destinations import (
    BOTH_FAMILIES,
    CNI_PROTOCOLS,
    Destination,
    ExtraProtocol,
    PortRule,
    Protocol,
    parse_destination,
    render_destination,
)
from tests.reference_examples import REDIRECT_CONFIGMAP, REDIRECT_MULTI

IP = ipaddress.IPv4Address


def rule(line: int, port: int, proto: str, ip: str, remote: int | None = None) -> PortRule:
    return PortRule(line, port, Protocol(proto), IP(ip), remote if remote is not None else port)


# -- accepted forms ------------------------------------------------------------------------------

DOC_RULES = (
    rule(1, 80, "tcp", "203.0.113.25"),
    rule(2, 8080, "tcp", "203.0.113.26", 80),
    rule(3, 8443, "tcp", "203.0.113.26", 443),
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # single fallback IP (blog, OCP 3 docs' first example), with or without newline
        ("203.0.113.25", Destination((), IP("203.0.113.25"))),
        ("192.168.123.91\n", Destination((), IP("192.168.123.91"))),
        ("10.1.2.3", Destination((), IP("10.1.2.3"))),
        # <port> <proto> <ip>
        ("80 tcp 10.4.5.6", Destination((rule(1, 80, "tcp", "10.4.5.6"),))),
        ("53 udp 10.4.5.6", Destination((rule(1, 53, "udp", "10.4.5.6"),))),
        # <port> <proto> <ip> <remote_port>
        ("8080 tcp 10.7.8.9 80", Destination((rule(1, 8080, "tcp", "10.7.8.9", 80),))),
        # the documented multi-destination example and its ConfigMap form
        (REDIRECT_MULTI, Destination(DOC_RULES, IP("203.0.113.27"))),
        # line numbers as the user sees them: comments and blank lines count
        (
            REDIRECT_CONFIGMAP,
            Destination(
                (
                    rule(3, 80, "tcp", "203.0.113.25"),
                    rule(5, 8080, "tcp", "203.0.113.26", 80),
                    rule(6, 8443, "tcp", "203.0.113.26", 443),
                ),
                IP("203.0.113.27"),
            ),
        ),
        # CRLF (the reference rejected it), tabs, trailing comments
        (REDIRECT_MULTI.replace("\n", "\r\n"), Destination(DOC_RULES, IP("203.0.113.27"))),
        ("80\ttcp\t10.4.5.6  # web", Destination((rule(1, 80, "tcp", "10.4.5.6"),))),
        # comments after the fallback are fine
        ("10.1.2.3\n# done\n\n", Destination((), IP("10.1.2.3"))),
        # comments only: accepted, nothing mapped (unmapped ports are rejected)
        ("# nothing yet\n\n", Destination(())),
        # same port, different protocols: the kernel keeps them apart
        (
            "53 tcp 10.0.0.1\n53 udp 10.0.0.2",
            Destination((rule(1, 53, "tcp", "10.0.0.1"), rule(2, 53, "udp", "10.0.0.2"))),
        ),
        # upper-case protocol, leading zeros read as decimal (the reference read octal)
        ("80 TCP 10.4.5.6 080", Destination((rule(1, 80, "tcp", "10.4.5.6", 80),))),
        ("65535 udp 10.4.5.6 1", Destination((rule(1, 65535, "udp", "10.4.5.6", 1),))),
    ],
)
def test_accepted(value: str, expected: Destination) -> None:
    assert parse_destination(value) == expected


# -- rejected input: one message naming the line, the text and the reference's phrase ------------


@pytest.mark.parametrize(
    ("value", "line", "phrase"),
    [
        (None, None, "unspecified"),
        ("", None, "unspecified"),
        ("  \n\t\n", None, "unspecified"),
        ("not an IP address", 1, "value 'not an IP address' is invalid"),
        ("10.1.2.3\n80 tcp 10.4.5.6", 2, "fallback IP must be the last line"),
        ("10.1.2.3\n10.1.2.4", 2, "fallback IP must be the last line"),
        ("80 tcp 1.2.3.4\n10.1.2.3\n81 tcp 1.2.3.4", 3, "fallback IP must be the last line"),
        ("80 tcp 10.4.5.6\ninvalid\n10.1.2.3", 2, "value 'invalid' is invalid"),
        ("80 sctp 10.4.5.6", 1, "protocol 'sctp' must be tcp or udp"),
        ("800000 tcp 10.4.5.6", 1, "Invalid port: 800000, must be in the range 1 to 65535"),
        ("0 tcp 10.4.5.6", 1, "Invalid port: 0, must be in the range 1 to 65535"),
        ("80 tcp 10.4.5.6 65536", 1, "Invalid port: 65536, must be in the range 1 to 65535"),
        ("http tcp 10.4.5.6", 1, "local port 'http' is not a number"),
        ("80 tcp 10.4.5.6 x", 1, "remote port 'x' is not a number"),
        ("-1 tcp 10.4.5.6", 1, "is not a number"),
        ("80 tcp 10.4.5.6\n80 tcp 10.4.5.7", 2, "localport 80 is already used"),
        ("80 tcp 10.4.5.6\n080 tcp 10.4.5.7", 2, "localport 80 is already used"),
        ("999.1.2.3", 1, "is not an IPv4 address"),
        ("80 tcp 10.4.5", 1, "is not an IPv4 address"),
        ("80 tcp 10.4.5.6/24", 1, "is not an IPv4 address"),
        ("80 tcp example.com", 1, "is not an IPv4 address"),
        ("127.0.0.1", 1, "cannot be a destination"),
        ("80 tcp 224.0.0.1", 1, "cannot be a destination"),
        ("0.0.0.0", 1, "cannot be a destination"),
        ("255.255.255.255", 1, "cannot be a destination"),
        ("80 tcp", 1, "2 fields"),
        ("80 tcp 1.2.3.4 80 extra", 1, "5 fields"),
        ("# c\n\n80 tcp 10.4.5.6 99999", 3, "Invalid port: 99999"),
    ],
)
def test_rejected(value: str | None, line: int | None, phrase: str) -> None:
    with pytest.raises(VariableError) as info:
        parse_destination(value)
    error = info.value
    assert error.variable == "EGRESS_DESTINATION"
    assert error.line == line
    assert phrase in str(error)
    assert "\n" not in error.one_line()


def test_message_names_variable_line_text_and_expectation() -> None:
    with pytest.raises(VariableError) as info:
        parse_destination("80 tcp 10.4.5.6\n80 sctp 10.4.5.6\n")
    assert str(info.value) == (
        "EGRESS_DESTINATION line 2: value '80 sctp 10.4.5.6' is invalid: protocol 'sctp' must "
        "be tcp or udp (expected '<port> tcp|udp <ip> [<remote_port>]' or a fallback '<ip>' "
        "as the last line)"
    )


def test_duplicate_names_first_line() -> None:
    with pytest.raises(VariableError, match=r"first used on line 1"):
        parse_destination("80 tcp 10.4.5.6\n80 tcp 10.4.5.7")


# -- properties ----------------------------------------------------------------------------------

FIELD = st.one_of(
    st.sampled_from(["80", "tcp", "udp", "TCP", "sctp", "10.0.0.1", "0", "65536", "#", "080"]),
    st.from_regex(r"\A[0-9.]{1,16}\Z"),
    st.text(max_size=8),
)
LINES = st.lists(st.lists(FIELD, max_size=5).map(" ".join), max_size=8).map("\n".join)


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(), LINES))
def test_any_input_parses_or_raises_variable_error(value: str) -> None:
    try:
        parsed = parse_destination(value)
    except VariableError as error:
        assert "\n" not in error.one_line()
        return
    ports = [(r.port, r.protocol) for r in parsed.rules]
    assert len(ports) == len(set(ports))
    assert all(1 <= r.port <= 65535 and 1 <= r.remote_port <= 65535 for r in parsed.rules)


DEST_IP = st.ip_addresses(v=4).filter(lambda a: a.is_global and not a.is_multicast)
RULES = st.lists(
    st.tuples(
        st.integers(1, 65535),
        st.sampled_from(list(Protocol)),
        DEST_IP,
        st.one_of(st.none(), st.integers(1, 65535)),
    ),
    max_size=20,
    unique_by=lambda t: (t[0], t[1]),
)


@settings(max_examples=200, deadline=None)
@given(RULES, st.one_of(st.none(), DEST_IP))
def test_rendered_rules_parse_back(
    rules: list[tuple[int, Protocol, ipaddress.IPv4Address, int | None]],
    fallback: ipaddress.IPv4Address | None,
) -> None:
    lines = [
        f"{port} {proto} {ip}" + ("" if remote is None else f" {remote}")
        for port, proto, ip, remote in rules
    ]
    if fallback is not None:
        lines.append(str(fallback))
    parsed = parse_destination("\n".join(lines) or "# empty")
    assert [(r.port, r.protocol, r.address) for r in parsed.rules] == [
        (port, proto, ip) for port, proto, ip, _ in rules
    ]
    assert [r.remote_port for r in parsed.rules] == [
        port if remote is None else remote for port, _, _, remote in rules
    ]
    assert parsed.fallback == fallback


# -- IPv6 (only where the caller allows it: the CNI grammar) --------------------------------------

IP6 = ipaddress.IPv6Address
BOTH = dict(families=BOTH_FAMILIES, protocols=CNI_PROTOCOLS)
LINE_FORMS_TEXT = (
    " (expected '<port> tcp|udp <ip> [<remote_port>]' or a fallback '<ip>' as the last line)"
)


def test_ipv6_is_refused_by_default_with_the_ipv4_message() -> None:
    with pytest.raises(VariableError) as info:
        parse_destination("80 tcp 2001:db8::1")
    assert str(info.value) == (
        "EGRESS_DESTINATION line 1: value '80 tcp 2001:db8::1' is invalid: '2001:db8::1' is not "
        "an IPv4 address (expected an IPv4 address such as 203.0.113.25)" + LINE_FORMS_TEXT
    )


def test_both_families_accept_ipv6_rules_and_fallback() -> None:
    parsed = parse_destination(
        "80 tcp 2001:DB8::1\n8080 tcp 2001:db8:0:0::2 80\n53 udp 203.0.113.5\n2001:db8::9",
        **BOTH,
    )
    assert parsed == Destination(
        (
            PortRule(1, 80, Protocol.TCP, IP6("2001:db8::1"), 80),
            PortRule(2, 8080, Protocol.TCP, IP6("2001:db8::2"), 80),
            PortRule(3, 53, Protocol.UDP, IP("203.0.113.5"), 53),
        ),
        IP6("2001:db8::9"),
    )
    assert parsed.versions == frozenset({4, 6})
    assert parsed.of_version(6) == Destination(parsed.rules[:2], IP6("2001:db8::9"))
    assert parsed.of_version(4) == Destination(parsed.rules[2:], None)
    assert parse_destination("203.0.113.5", **BOTH).versions == frozenset({4})


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (
            "80 tcp ::ffff:1.2.3.4",
            "::ffff:1.2.3.4 is the IPv4 address 1.2.3.4 (mapped): write it so",
        ),
        ("::ffff:1.2.3.4", "::ffff:1.2.3.4 is the IPv4 address 1.2.3.4 (mapped): write it so"),
        ("80 tcp ::1.2.3.4", "::1.2.3.4 is the IPv4 address 1.2.3.4 (compatible): write it so"),
        ("80 tcp 64:ff9b::1.2.3.4", "64:ff9b::1.2.3.4 is the IPv4 address 1.2.3.4 (nat64): write"),
        ("80 tcp fe80::1", "fe80::1 cannot be a destination (link-local)"),
        ("fe80::1", "fe80::1 cannot be a destination (link-local)"),
        ("80 tcp ::1", "::1 cannot be a destination (loopback, multicast or broadcast)"),
        ("80 tcp ff02::1", "ff02::1 cannot be a destination (loopback, multicast or broadcast)"),
        ("80 tcp ::", ":: cannot be a destination (loopback, multicast or broadcast)"),
        (
            "80 tcp 2001:db8::1%eth0",
            "'2001:db8::1%eth0' is not an IP address (zone ids such as %eth0 are not allowed in an "
            "address)",
        ),
        (
            "80 tcp fe80::1%eth0",
            "'fe80::1%eth0' is not an IP address (zone ids such as %eth0 are not allowed in an "
            "address)",
        ),
        ("80 tcp [2001:db8::1]", "'[2001:db8::1]' is not an IP address (not a valid IPv6 address)"),
        ("[2001:db8::1]:80", "'[2001:db8::1]:80' is not an IP address (not a valid IPv6 address)"),
        (
            "80 tcp 2001:db8::1/64",
            "'2001:db8::1/64' is not an IP address (not a valid IPv6 address)",
        ),
        ("80 tcp 2001:db8:::1", "'2001:db8:::1' is not an IP address (not a valid IPv6 address)"),
        ("80 tcp 1.2.3", "'1.2.3' is not an IP address (expected an IPv4 address such as 203.0."),
    ],
)
def test_ipv6_refusals_are_one_line(value: str, reason: str) -> None:
    with pytest.raises(VariableError) as info:
        parse_destination(value, variable="ip.destinations", **BOTH)
    assert str(info.value).startswith(
        f"ip.destinations line 1: value '{value}' is invalid: {reason}"
    ), str(info.value)
    assert "\n" not in info.value.one_line()


def test_a_local_port_is_used_once_per_protocol_and_family() -> None:
    parsed = parse_destination("80 tcp 203.0.113.5\n80 tcp 2001:db8::5\n80 udp 2001:db8::6", **BOTH)
    assert [(r.port, r.protocol, r.address.version) for r in parsed.rules] == [
        (80, Protocol.TCP, 4),
        (80, Protocol.TCP, 6),
        (80, Protocol.UDP, 6),
    ]
    with pytest.raises(VariableError) as info:
        parse_destination("80 tcp 2001:db8::5\n80 tcp 203.0.113.5\n80 TCP 2001:db8::6", **BOTH)
    assert str(info.value) == (
        "EGRESS_DESTINATION line 3: localport 80 is already used, must be unique for each "
        "destination (tcp 80 first used on line 1)"
    )


def _accepted6(address: ipaddress.IPv6Address) -> bool:
    return not (
        address.is_link_local
        or address.is_loopback
        or address.is_multicast
        or address.is_unspecified
        or ipv4_alias(address) is not None
    )


ANY_IP = st.one_of(DEST_IP, st.ip_addresses(v=6).filter(_accepted6))
MIXED_RULES = st.lists(
    st.tuples(
        st.integers(1, 3),  # the gap before the line: blank lines keep their numbers
        st.integers(1, 65535),
        st.sampled_from([*Protocol, ExtraProtocol.SCTP]),
        ANY_IP,
        st.one_of(st.none(), st.integers(1, 65535)),
    ),
    max_size=12,
    unique_by=lambda t: (t[1], t[2], t[3].version),
)


@settings(max_examples=300, deadline=None)
@given(MIXED_RULES, st.one_of(st.none(), ANY_IP))
def test_mixed_family_destinations_render_and_parse_back(
    items: list[tuple[int, int, Any, Any, int | None]], fallback: Any
) -> None:
    rules, line = [], 0
    for gap, port, protocol, address, remote in items:
        line += gap
        rules.append(PortRule(line, port, protocol, address, port if remote is None else remote))
    destination = Destination(tuple(rules), fallback)
    text = render_destination(destination)
    assert parse_destination(text, **BOTH) == destination
    assert render_destination(parse_destination(text, **BOTH)) == text


FIELD6 = st.one_of(
    FIELD,
    st.sampled_from(
        ["2001:db8::1", "::ffff:1.2.3.4", "fe80::1", "::1", "ff02::1", "::", "[::1]", "%eth0"]
    ),
    st.from_regex(r"\A[0-9a-fA-F:.%\[\]]{1,24}\Z"),
)
LINES6 = st.lists(st.lists(FIELD6, max_size=5).map(" ".join), max_size=8).map("\n".join)


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(), LINES6))
def test_any_input_with_both_families_parses_or_raises_variable_error(value: str) -> None:
    try:
        parsed = parse_destination(value, **BOTH)
    except VariableError as error:
        assert "\n" not in error.one_line()
        return
    keys = [(r.port, r.protocol, r.address.version) for r in parsed.rules]
    assert len(keys) == len(set(keys))
    addresses = [r.address for r in parsed.rules]
    if parsed.fallback is not None:
        addresses.append(parsed.fallback)
    assert all(_accepted6(a) for a in addresses if isinstance(a, ipaddress.IPv6Address))
    assert render_destination(parse_destination(render_destination(parsed), **BOTH)) == (
        render_destination(parsed)
    )
