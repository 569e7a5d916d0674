"""Reading DNS responses: the CNAME chain of one response and the lowest TTL along it."""

from __future__ import annotations

import ipaddress

import dns.message
import dns.rrset

from egress_router.firewall.resolver import read_answer


def response(qname: str, qtype: str, records: list[tuple[str, int, str, str]]):
    query = dns.message.make_query(qname, qtype)
    reply = dns.message.make_response(query)
    for name, ttl, rdtype, value in records:
        reply.answer.append(dns.rrset.from_text(name, ttl, "IN", rdtype, value))
    return reply


def test_cname_chain_with_lower_cname_ttl():
    reply = response(
        "www.foo.com",
        "A",
        [
            ("www.foo.com.", 10, "CNAME", "edge.cdn.net."),
            ("edge.cdn.net.", 300, "A", "203.0.113.7"),
        ],
    )
    answer = read_answer(reply)
    assert answer is not None
    assert answer.names == ("www.foo.com", "edge.cdn.net")
    assert answer.addresses == ((ipaddress.ip_address("203.0.113.7"), 10),)


def test_aaaa_and_other_types():
    reply = response("v6.foo.com", "AAAA", [("v6.foo.com.", 60, "AAAA", "2001:db8::7")])
    answer = read_answer(reply)
    assert answer is not None and answer.addresses[0][0] == ipaddress.ip_address("2001:db8::7")
    assert read_answer(response("foo.com", "MX", [])) is None


def test_cname_loop_is_bounded():
    reply = response(
        "a.test",
        "A",
        [("a.test.", 5, "CNAME", "b.test."), ("b.test.", 5, "CNAME", "a.test.")],
    )
    answer = read_answer(reply)
    assert answer is not None and answer.addresses == ()


def test_mapped_aaaa_is_the_ipv4_address_pods_reach():
    reply = response("m.foo.com", "AAAA", [("m.foo.com.", 60, "AAAA", "::ffff:203.0.113.26")])
    answer = read_answer(reply)
    assert answer is not None
    assert answer.addresses == ((ipaddress.ip_address("203.0.113.26"), 60),)
