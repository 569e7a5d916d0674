"""Fuzz of ``EGRESS_HTTP_PROXY_DESTINATION`` (issue 8): any input is rejected with one
``VariableError`` line, or accepted and re-rendered identically (``parse(table.text())``)."""

from __future__ import annotations

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from egress_router.errors import VariableError
from egress_router.http_proxy.model import rules as http_rules
from tests.fuzz import (
    address_like,
    assert_one_line,
    good_ip,
    junk_text,
    line_text,
)

FUZZ = settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])


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
