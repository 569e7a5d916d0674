"""Fuzz of ``EGRESS_DESTINATION`` and the ``EGRESS_SOURCE``/``EGRESS_GATEWAY`` values (issue 8):
any input is rejected with one ``VariableError`` line, or accepted and re-rendered identically
(``parse(render(x)) == x``)."""

from __future__ import annotations

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from egress_router.common.values import parse_ipv4, parse_ipv4_source
from egress_router.errors import VariableError
from egress_router.redirect.model import destinations as redirect
from egress_router.redirect.model.env import parse_router_env
from tests.fuzz import (
    address_like,
    assert_one_line,
    blank,
    good_ip,
    good_port,
    hostile_char,
    junk_text,
    line_text,
    mostly,
    port,
)

FUZZ = settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])


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
