"""EGRESS_HTTP_PROXY_DESTINATION: grammar truth tables, the two-level policy, properties."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from egress_router.errors import VariableError
from egress_router.http_proxy.model.rules import (
    DEFAULT_DENY,
    PROTECTED,
    Action,
    Kind,
    connect_address,
    loops_to_self,
    parse_destinations,
)
from tests.reference_examples import HTTP_PROXY


def ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(text)


# -- grammar: every accepted form ------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "action", "kind", "value"),
    [
        ("192.168.1.1", Action.ALLOW, Kind.NETWORK, "192.168.1.1/32"),
        ("192.168.1.0/24", Action.ALLOW, Kind.NETWORK, "192.168.1.0/24"),
        ("0.0.0.0/0", Action.ALLOW, Kind.NETWORK, "0.0.0.0/0"),
        ("10.0.0.1/32", Action.ALLOW, Kind.NETWORK, "10.0.0.1/32"),
        ("2001:db8::1", Action.ALLOW, Kind.NETWORK, "2001:db8::1/128"),
        ("fe80::/10", Action.ALLOW, Kind.NETWORK, "fe80::/10"),
        ("::/0", Action.ALLOW, Kind.NETWORK, "::/0"),
        ("!192.168.1.0/24", Action.DENY, Kind.NETWORK, "192.168.1.0/24"),
        ("www.example.com", Action.ALLOW, Kind.HOST, "www.example.com"),
        ("WWW.Example.COM.", Action.ALLOW, Kind.HOST, "www.example.com"),
        ("cafe.be", Action.ALLOW, Kind.HOST, "cafe.be"),  # the reference called it an IP
        ("dead.beef", Action.ALLOW, Kind.HOST, "dead.beef"),
        ("www", Action.ALLOW, Kind.HOST, "www"),  # the reference dropped it silently
        ("w", Action.ALLOW, Kind.HOST, "w"),
        ("a-b.c", Action.ALLOW, Kind.HOST, "a-b.c"),
        ("!www.example.com", Action.DENY, Kind.HOST, "www.example.com"),
        ("*.example.com", Action.ALLOW, Kind.DOMAIN, "example.com"),
        ("*.Example.COM.", Action.ALLOW, Kind.DOMAIN, "example.com"),
        ("*.com", Action.ALLOW, Kind.DOMAIN, "com"),
        ("!*.example.com", Action.DENY, Kind.DOMAIN, "example.com"),
        ("*", Action.ALLOW, Kind.ANY, None),
    ],
)
def test_accepted_forms(line: str, action: Action, kind: Kind, value: str | None) -> None:
    (rule,) = parse_destinations(line).rules
    assert (rule.action, rule.kind) == (action, kind)
    got = str(rule.network) if kind is Kind.NETWORK else rule.name
    assert got == value
    assert rule.text == line


@pytest.mark.parametrize(
    ("value", "line", "fragment"),
    [
        ("!", 1, "'!' must be followed"),
        ("!!x", 1, "only one '!'"),
        ("!*", 1, "'!*' is not allowed"),
        ("*\nexample.com", 1, "must be the last rule"),
        ("*\n*", 1, "must be the last rule"),
        ("a.com\n*\n# c\nb.com", 2, "must be the last rule"),
        ("10.0.0.1/33", 1, "prefix length must be 0-32"),
        ("10.0.0.0/-1", 1, "prefix length"),
        ("10.0.0.0/", 1, "prefix length"),
        ("::/129", 1, "prefix length must be 0-128"),
        ("10.0.0.1/24", 1, "host bits set"),
        ("256.1.1.1", 1, "IPv4"),
        ("1.2.3", 1, "IPv4"),
        ("1.2.3.4.5", 1, "IPv4"),
        ("[::1]", 1, "brackets"),
        ("fe80::1%eth0", 1, "zone"),
        ("example.com:8080", 1, "IPv6"),
        ("http://example.com/", 1, ""),
        ("foo bar", 1, "one destination per line"),
        ("a_b.com", 1, "not an IP address"),
        ("*.*.x", 1, "'*.' must be followed"),
        ("*x.com", 1, "'*' is only allowed"),
        (".example.com", 1, "not an IP address"),
        ("exa mple", 1, "one destination"),
        ("# only\n\n", 0, "no destinations"),
        ("", 0, "not set or empty"),
        ("  \r\n", 0, "not set or empty"),
        ("ok.com\n\nbad_name", 3, "not an IP address"),
        ("١.١.١.١", 1, "not an IP address"),
    ],
)
def test_rejected_forms(value: str, line: int, fragment: str) -> None:
    with pytest.raises(VariableError) as caught:
        parse_destinations(value)
    error = caught.value
    assert error.variable == "EGRESS_HTTP_PROXY_DESTINATION"
    assert error.line == (line or None)
    assert fragment in str(error)
    assert "\n" not in error.one_line()


def test_crlf_comments_and_blank_lines() -> None:
    table = parse_destinations("# c\r\n!*.bad.example.com\r\n*.example.com # ok\r\n\r\n*\r\n")
    assert [(r.number, r.line, r.text) for r in table.rules] == [
        (1, 2, "!*.bad.example.com"),
        (2, 3, "*.example.com"),
        (3, 5, "*"),
    ]


def test_unit_test_table_of_the_documented_example() -> None:
    assert parse_destinations(HTTP_PROXY).render() == (
        "rule  line  action  kind     destination\n"
        "   1     1  deny    domain   example.com and its subdomains\n"
        "   2     2  deny    network  192.168.1.0/24\n"
        "   3     3  allow   any      everything else\n"
        "default: allow (final *)\n"
    )
    assert parse_destinations("example.com").render().endswith("default: deny (no final *)\n")


# -- the policy as a truth table ----------------------------------------------------------------

MIXED = "\n".join(
    [
        "!*.bad.example.com",  # 1
        "*.example.com",  # 2
        "!10.0.0.0/8",  # 3
        "192.168.0.0/16",  # 4
        "exact.test",  # 5
        "!blocked.test",  # 6
    ]
)


@pytest.mark.parametrize(
    ("rules", "host", "addresses", "allowed", "rule"),
    [
        # the documents' example
        (HTTP_PROXY, "www.example.com", [], False, 1),
        (HTTP_PROXY, "example.com", [], False, 1),
        (HTTP_PROXY, "EXAMPLE.com.", [], False, 1),
        (HTTP_PROXY, "notexample.com", ["203.0.113.25"], True, 3),
        (HTTP_PROXY, "203.0.113.25", ["203.0.113.25"], True, 3),
        (HTTP_PROXY, "192.168.1.7", ["192.168.1.7"], False, 2),
        (HTTP_PROXY, "internal.test", ["192.168.1.7"], False, 2),  # name into a denied CIDR
        (HTTP_PROXY, "multi.test", ["203.0.113.25", "192.168.1.7"], False, 2),  # every address
        (HTTP_PROXY, "192.168.2.7", ["192.168.2.7"], True, 3),
        # ordering: first name rule wins
        (MIXED, "x.bad.example.com", [], False, 1),
        (MIXED, "bad.example.com", [], False, 1),
        (MIXED, "good.example.com", ["203.0.113.25"], True, 2),
        (MIXED, "good.example.com", ["10.1.2.3"], False, 3),  # allowed name, denied CIDR
        (MIXED, "exact.test", ["203.0.113.25"], True, 5),
        (MIXED, "sub.exact.test", ["203.0.113.25"], False, 0),  # exact means exact
        (MIXED, "blocked.test", ["192.168.1.1"], False, 6),  # name deny beats address allow
        (MIXED, "other.test", ["192.168.1.1"], True, 4),  # unmatched name, allowed address
        (MIXED, "other.test", ["203.0.113.25"], False, 0),  # default deny
        (MIXED, "192.168.3.3", ["192.168.3.3"], True, 4),
        (MIXED, "10.9.9.9", ["10.9.9.9"], False, 3),
        (MIXED, "8.8.8.8", ["8.8.8.8"], False, 0),
        # IP literals never match name rules
        ("1.2.3.4\n!*.test", "1.2.3.4", ["1.2.3.4"], True, 1),
        ("example.test", "203.0.113.9", ["203.0.113.9"], False, 0),
        # IPv6
        ("!2001:db8::/32\n*", "2001:db8::5", ["2001:db8::5"], False, 1),
        ("!2001:db8::/32\n*", "v6.test", ["2001:db8::5"], False, 1),
        ("2001:db8::/32", "v6.test", ["2001:db8::5"], True, 1),
        # loopback/unspecified need an explicit address rule, even with * or an allowed name
        ("*", "127.0.0.1", ["127.0.0.1"], False, -1),
        ("*", "localhost", ["127.0.0.1"], False, -1),
        ("*", "any.test", ["0.0.0.0"], False, -1),
        ("rebind.test\n*", "rebind.test", ["::1"], False, -1),
        ("127.0.0.0/8", "127.0.0.1", ["127.0.0.1"], True, 1),
        # default allow / deny
        ("*", "anything.test", ["203.0.113.25"], True, 1),
        ("a.test", "b.test", ["203.0.113.25"], False, 0),
    ],
)
def test_policy_truth_table(
    rules: str, host: str, addresses: list[str], allowed: bool, rule: int
) -> None:
    decision = parse_destinations(rules).decide(host, [ip(a) for a in addresses])
    assert decision.allowed is allowed
    if rule == 0:
        assert decision.rule is DEFAULT_DENY
    elif rule == -1:
        assert decision.rule is PROTECTED
    else:
        assert decision.rule.number == rule


def test_decide_name_and_address_levels() -> None:
    table = parse_destinations(MIXED)
    assert table.decide_name("10.0.0.1") is None
    by_name = table.decide_name("good.example.com")
    assert by_name is not None and by_name.allowed and by_name.rule.number == 2
    assert table.decide_address(ip("10.0.0.1"), by_name).rule.number == 3
    assert table.decide_address(ip("203.0.113.1"), by_name) is by_name
    assert table.decide_address(ip("203.0.113.1")).rule is DEFAULT_DENY
    assert by_name.reason() == "allowed by rule 2: *.example.com"


# -- properties ---------------------------------------------------------------------------------

ALPHABET = st.sampled_from(list("abcz019.:/*!-_ #\t\r\n[]%ÿ١"))


@settings(max_examples=400, deadline=None)
@given(st.text(ALPHABET, max_size=40))
def test_any_input_parses_or_raises_variable_error(value: str) -> None:
    try:
        table = parse_destinations(value)
    except VariableError as error:
        assert "\n" not in error.one_line()
        return
    assert table.rules
    assert all(r.kind is not Kind.ANY for r in table.rules[:-1])
    table.render()


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.sampled_from(["*.a.test", "!b.a.test", "!10.0.0.0/8", "10.1.0.0/16", "c.test"])),
    st.sampled_from(["a.test", "b.a.test", "c.test", "d.test"]),
    st.lists(st.sampled_from(["10.1.1.1", "10.2.2.2", "203.0.113.1"]), min_size=1, max_size=3),
)
def test_every_address_must_pass(rules: list[str], host: str, addresses: list[str]) -> None:
    """A name is allowed only if each of its addresses alone would be allowed."""
    table = parse_destinations("\n".join([*rules, "*"]))
    whole = table.decide(host, [ip(a) for a in addresses]).allowed
    each = all(table.decide(host, [ip(a)]).allowed for a in addresses)
    assert whole == each


# -- IPv6 spellings of IPv4 hosts are decided as those hosts (issue 8, item 1) ------------------

DENY_26 = "!203.0.113.26\n*"
ALIASES_26 = [
    "::ffff:203.0.113.26",
    "::ffff:cb00:711a",
    "0:0:0:0:0:ffff:cb00:711a",
    "::203.0.113.26",
    "::ffff:0:203.0.113.26",
    "64:ff9b::cb00:711a",
]


@pytest.mark.parametrize("form", ALIASES_26)
@pytest.mark.parametrize(
    ("rules", "allowed", "why"),
    [
        (DENY_26, False, "denied by rule 1: !203.0.113.26"),
        ("!203.0.113.0/24\n*", False, "denied by rule 1: !203.0.113.0/24"),
        ("!::ffff:203.0.113.26\n*", False, "denied by rule 1: !::ffff:203.0.113.26"),
        ("!::/0\n*", False, "denied by rule 1: !::/0"),  # the written form's deny holds too
        ("203.0.113.0/24", True, "allowed by rule 1: 203.0.113.0/24"),
        ("2001:db8::/32", False, "denied: no rule matched and the list does not end in *"),
        ("*.example.com\n!198.18.0.0/15\n*", True, "allowed by rule 3: *"),
    ],
)
def test_alias_forms_decide_as_their_ipv4_host(
    form: str, rules: str, allowed: bool, why: str
) -> None:
    decision = parse_destinations(rules).decide_address(ip(form))
    assert (decision.allowed, decision.reason()) == (allowed, why)


@pytest.mark.parametrize(
    "form", ["::ffff:127.0.0.1", "::ffff:7f00:1", "::127.0.0.1", "::ffff:127.9.9.9",
             "::ffff:0.0.0.0", "::ffff:0:127.0.0.1", "64:ff9b::127.0.0.1"],
)  # fmt: skip
def test_alias_forms_of_loopback_are_protected(form: str) -> None:
    decision = parse_destinations("*").decide_address(ip(form))
    assert decision.rule is PROTECTED and not decision.allowed


def test_alias_forms_by_name_are_decided_on_every_address() -> None:
    table = parse_destinations("web.test\n!203.0.113.26\n*")
    decision = table.decide("web.test", [ip("203.0.113.25"), ip("::ffff:203.0.113.26")])
    assert decision.reason() == "denied by rule 2: !203.0.113.26"


@pytest.mark.parametrize(
    ("line", "network"),
    [
        ("::ffff:203.0.113.0/120", "203.0.113.0/24"),
        ("::ffff:203.0.113.26", "203.0.113.26/32"),
        ("64:ff9b::cb00:711a", "203.0.113.26/32"),
        ("::/0", "::/0"),
    ],
)
def test_alias_rules_are_shown_as_the_ipv4_network_they_mean(line: str, network: str) -> None:
    (rule,) = parse_destinations(line).rules
    assert rule.network == ipaddress.ip_network(network)


@pytest.mark.parametrize(
    ("address", "dialled"),
    [
        ("::ffff:203.0.113.26", "203.0.113.26"),
        ("::203.0.113.26", "203.0.113.26"),
        ("64:ff9b::cb00:711a", "64:ff9b::cb00:711a"),  # only the translator knows the way
        ("::ffff:0:cb00:711a", "::ffff:0:cb00:711a"),
        ("2001:db8::1", "2001:db8::1"),
        ("203.0.113.26", "203.0.113.26"),
    ],
)
def test_connect_address_is_the_decided_host(address: str, dialled: str) -> None:
    assert connect_address(ip(address)) == ip(dialled)


@pytest.mark.parametrize(
    ("addresses", "port", "loop"),
    [
        (["198.18.0.2"], 8080, True),
        (["::ffff:198.18.0.2"], 8080, True),
        (["::ffff:c612:2"], 8080, True),
        (["64:ff9b::198.18.0.2"], 8080, True),
        (["203.0.113.25", "::ffff:127.0.0.1"], 8080, True),
        (["::ffff:198.18.0.2"], 8081, False),
        (["198.18.0.3"], 8080, False),
    ],
)
def test_loops_to_self_sees_through_alias_forms(
    addresses: list[str], port: int, loop: bool
) -> None:
    own = [ip("198.18.0.2"), ip("127.0.0.1")]
    assert loops_to_self([ip(a) for a in addresses], port, own, 8080) is loop
