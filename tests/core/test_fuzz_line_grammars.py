"""Fuzz of the line grammars (issue 8): ``EGRESS_DESTINATION``, ``EGRESS_HTTP_PROXY_DESTINATION``,
``EGRESS_DNS_PROXY_DESTINATION`` and the ``EGRESS_SOURCE``/``EGRESS_GATEWAY`` values. Any input
is rejected with one ``VariableError`` line, or accepted and re-rendered identically."""

from __future__ import annotations

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from egress_router.core import dns_destinations, http_rules, redirect
from egress_router.core.router_env import parse_router_env
from egress_router.core.values import parse_ipv4, parse_ipv4_source
from egress_router.errors import VariableError
from tests.fuzz import assert_one_line, hostile_char, junk_text, line_text, mostly

FUZZ = settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])

ipv4 = st.tuples(*[st.integers(0, 260)] * 4).map(lambda t: ".".join(map(str, t)))
good_ip = st.tuples(st.integers(1, 223), *[st.integers(0, 255)] * 3).map(
    lambda t: ".".join(map(str, t))
)
good_port = st.integers(1, 65535).map(str)
port = st.integers(0, 70000).map(str) | st.sampled_from(["080", "65535", "1", "+80", "8\u0660"])
address_like = (
    ipv4
    | st.sampled_from(["203.0.113.25", "198.19.0.99", "\uff11\uff19\uff18.19.0.99", "127.0.0.1"])
    | st.tuples(ipv4, hostile_char).map("".join)
)
blank = st.sampled_from([" ", "\t", "  "])
redirect_line = st.tuples(
    good_port, blank, st.sampled_from(["tcp", "udp", "TCP"]), blank, good_ip,
    st.just("") | good_port.map(" ".__add__),
).map("".join)  # fmt: skip


@FUZZ
@given(
    line_text(
        st.sampled_from(["tcp", "udp", "TCP", "sctp"]) | port | address_like | junk_text,
        redirect_line,
    ),
    mostly(st.just(""), good_ip.map("\n".__add__), 3),
)
def test_egress_destination(value: str, fallback: str) -> None:
    value += fallback
    try:
        parsed = redirect.parse_destination(value)
    except VariableError as error:
        event("rejected")
        assert error.variable == "EGRESS_DESTINATION"
        assert_one_line(error)
        return
    event("accepted")
    text = redirect.render_destination(parsed)
    assert redirect.parse_destination(text) == parsed
    assert redirect.render_destination(redirect.parse_destination(text)) == text


http_field = (
    st.sampled_from(["*", "!*", "*.example.com", "www.example.com", "!10.0.0.0/8", "::/0"])
    | st.sampled_from(["fe80::1%eth0", "2001:db8::/\u00b2", "10.0.0.0/\u0662\u0664", "!!a.b"])
    | st.tuples(
        st.sampled_from(["", "!"]), address_like, st.sampled_from(["", "/8", "/24", "/33"])
    ).map("".join)
    | junk_text
)


good_http = st.tuples(
    st.sampled_from(["", "!"]),
    good_ip.map(lambda ip: ip.rsplit(".", 1)[0] + ".0/24")
    | good_ip
    | st.sampled_from(["www.example.com", "*.example.com", "2001:db8::/32", "example.org."]),
).map("".join)


@FUZZ
@given(line_text(http_field, good_http), st.sampled_from(["", "\n*"]))
def test_http_proxy_destination(value: str, wildcard: str) -> None:
    value += wildcard
    try:
        table = http_rules.parse_destinations(value)
    except VariableError as error:
        event("rejected")
        assert error.variable == "EGRESS_HTTP_PROXY_DESTINATION"
        assert_one_line(error)
        return
    event("accepted")
    text = table.text()
    assert http_rules.parse_destinations(text) == table
    assert http_rules.parse_destinations(text).text() == text


dns_field = port | address_like | st.sampled_from(["example.com", "EXAMPLE.com.", "a"]) | junk_text


good_dns = st.tuples(
    good_port,
    blank,
    good_ip | st.sampled_from(["example.com", "Www.Example.COM.", "a-b.test"]),
    st.sampled_from(["", " 53", " 8080"]),
).map("".join)


@FUZZ
@given(line_text(dns_field, good_dns))
def test_dns_proxy_destination(value: str) -> None:
    try:
        parsed = dns_destinations.parse_destinations(value)
    except VariableError as error:
        event("rejected")
        assert error.variable == "EGRESS_DNS_PROXY_DESTINATION"
        assert_one_line(error)
        return
    event("accepted")
    text = dns_destinations.render_destinations(parsed)
    assert dns_destinations.parse_destinations(text) == parsed
    assert dns_destinations.render_destinations(parsed) == text


single_value = mostly(
    st.tuples(st.sampled_from(["", " "]), good_ip, st.sampled_from(["", "/24", "/32"])).map(
        "".join
    ),
    st.tuples(
        st.sampled_from(["", " ", "\t"]),
        address_like,
        st.sampled_from(["", "/24", "/32", "/0", "/33", "/\u00b2", "/\u0662\u0664"]),
        st.sampled_from(["", "\n", "\r\n", " "]) | hostile_char,
    ).map("".join)
    | junk_text,
    3,
)


@settings(max_examples=400, deadline=None)
@given(single_value, single_value)
def test_source_and_gateway(source: str, gateway: str) -> None:
    env = {"EGRESS_SOURCE": source, "EGRESS_GATEWAY": gateway, "EGRESS_DESTINATION": "203.0.113.9"}
    try:
        parsed = parse_router_env(env)
    except VariableError as error:
        event("rejected")
        assert error.variable in ("EGRESS_SOURCE", "EGRESS_GATEWAY")
        assert_one_line(error)
        return
    event("accepted")
    assert parse_ipv4_source(str(parsed.source)) == parsed.source
    assert parse_ipv4(str(parsed.gateway)) == parsed.gateway
