"""Fuzz of ``EGRESS_DNS_PROXY_DESTINATION`` (issue 8): any input is rejected with one
``VariableError`` line, or accepted and re-rendered identically."""

from __future__ import annotations

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from egress_router.dns_proxy.model import destinations as dns_destinations
from egress_router.errors import VariableError
from tests.fuzz import (
    address_like,
    assert_one_line,
    blank,
    good_ip,
    good_port,
    junk_text,
    line_text,
    port,
)

FUZZ = settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])


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
