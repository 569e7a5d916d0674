"""Reading DNS responses (the CNAME chain of one response and the lowest TTL along it), and how
the adapter combines the answers of the families it asks."""

from __future__ import annotations

import asyncio
import ipaddress

import dns.message
import dns.rrset
import pytest

from egress_router.errors import ResolveError
from egress_router.runtime.resolver import Answer, Resolver, read_answer, read_wire


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


def test_the_wire_reader_parses_or_raises_our_error():
    reply = response("w.foo.com", "A", [("w.foo.com.", 30, "A", "203.0.113.9")])
    answer = read_wire(reply.to_wire())
    assert answer is not None and answer.addresses == ((ipaddress.ip_address("203.0.113.9"), 30),)
    with pytest.raises(ResolveError, match="unreadable response"):
        read_wire(b"\x00\x01garbage")


V4, V6 = ipaddress.ip_address("203.0.113.5"), ipaddress.ip_address("2001:db8::5")


def test_an_empty_answer_is_required_away_with_its_note():
    assert Answer((V4, V6), 30).require("n.test").ipv4 == (V4,)
    with pytest.raises(ResolveError, match=r"cannot resolve n.test: no such name \(NXDOMAIN\)"):
        Answer((), 0, "no such name (NXDOMAIN)").require("n.test")


def families(outcomes: dict[int, Answer | ResolveError]) -> Resolver:
    resolver = Resolver(families=(4, 6))

    async def ask(name: str, family: int) -> Answer:
        outcome = outcomes[family]
        if isinstance(outcome, ResolveError):
            raise outcome
        return outcome

    resolver._ask = ask  # type: ignore[method-assign]
    return resolver


FAIL = ResolveError("n.test", "timed out after 10s")


@pytest.mark.parametrize(
    ("a", "aaaa", "expected"),
    [
        (Answer((V4,), 30), Answer((V6,), 20), Answer((V4, V6), 20)),  # lowest TTL of both
        (Answer((V4,), 30), FAIL, Answer((V4,), 30)),  # one family answered: that counts
        (FAIL, Answer((V6,), 20), Answer((V6,), 20)),
        (Answer((), 0, "no A record"), Answer((V6,), 20), Answer((V6,), 20)),
        (
            Answer((), 0, "no A record"),
            Answer((), 0, "no AAAA record"),
            Answer((), 0, "no A or AAAA records"),
        ),
        (
            Answer((), 0, "no such name (NXDOMAIN)"),
            Answer((), 0, "no such name (NXDOMAIN)"),
            Answer((), 0, "no such name (NXDOMAIN)"),
        ),
        (Answer((), 0, "no A record"), FAIL, FAIL),  # nothing found and a failure: a failure
    ],
)
def test_families_combine(a, aaaa, expected):
    resolver = families({4: a, 6: aaaa})
    if isinstance(expected, ResolveError):
        with pytest.raises(ResolveError, match="timed out"):
            asyncio.run(resolver.lookup("n.test"))
    else:
        assert asyncio.run(resolver.lookup("n.test")) == expected
