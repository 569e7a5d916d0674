"""The compiled plan decides exactly like the first-match reference, at constant cost."""

from __future__ import annotations

import ipaddress

from hypothesis import given, settings
from hypothesis import strategies as st

from egress_router.firewall.model.decide import decide, parse_node
from egress_router.firewall.model.plan import MapStep, MatchStep, compile_plan, evaluate, fold
from egress_router.firewall.model.policy import Action, Policy, PortMatch, Rule
from egress_router.firewall.model.render import build

from .nft_model import Ruleset

NODE = parse_node(["ns=198.18.0.3/32,2001:db8:18::3/128"], ["198.18.0.0/24"])
SRC4 = ipaddress.ip_address("198.18.0.3")
SRC6 = ipaddress.ip_address("2001:db8:18::3")
NAMES = ["a.example.com", "*.example.org"]

# A small address universe so random rules overlap a lot.
v4_nets = st.builds(
    lambda a, p: (
        ipaddress.ip_network(f"10.0.{a}.0/24", strict=False).supernet(new_prefix=p)
        if p < 24
        else ipaddress.ip_network(f"10.0.{a}.{(a * 37) % 256}/{p}", strict=False)
    ),
    st.integers(0, 7),
    st.integers(20, 32),
) | st.just(ipaddress.ip_network("0.0.0.0/0"))
v6_nets = st.builds(
    lambda a, p: ipaddress.ip_network(f"2001:db8:{a}::/{p}", strict=False),
    st.integers(0, 3),
    st.integers(30, 128),
) | st.just(ipaddress.ip_network("::/0"))
ports = st.lists(
    st.builds(PortMatch, st.sampled_from(["tcp", "udp"]), st.none() | st.sampled_from([80, 443])),
    max_size=2,
).map(tuple)
rule_st = st.tuples(
    st.sampled_from(list(Action)),
    st.one_of(v4_nets, v6_nets, st.sampled_from(NAMES)),
    ports,
)
dst4 = (
    st.builds(
        lambda a, b: ipaddress.ip_address(f"10.0.{a}.{b}"), st.integers(0, 8), st.integers(0, 255)
    )
    | st.just(ipaddress.ip_address("8.8.8.8"))
    | st.just(ipaddress.ip_address("198.18.0.7"))
)
dst6 = st.builds(
    lambda a, b: ipaddress.ip_address(f"2001:db8:{a}::{b:x}"),
    st.integers(0, 4),
    st.integers(0, 65535),
)


def make_policy(specs):
    rules = []
    for i, (action, target, pm) in enumerate(specs, 1):
        if isinstance(target, str):
            rules.append(Rule(i, action, dns_name=target, ports=pm))
        else:
            rules.append(Rule(i, action, cidr=target, ports=pm))
    return {"ns": Policy("ns", "default", "EgressFirewall", "t", tuple(rules))}


@settings(max_examples=300, deadline=None)
@given(
    specs=st.lists(rule_st, max_size=12),
    dst=dst4 | dst6,
    proto=st.sampled_from(["tcp", "udp", "sctp"]),
    port=st.none() | st.sampled_from([80, 443, 22]),
    learned=st.sets(st.sampled_from(NAMES)),
)
def test_plan_equals_first_match_reference(specs, dst, proto, port, learned):
    policies = make_policy(specs)
    plan = compile_plan(policies, NODE)
    src = SRC4 if dst.version == 4 else SRC6
    members = {
        s.name: {dst} for s in plan.dns_sets if s.pattern in learned and s.family == dst.version
    }

    def reference_members(namespace, rule, address):
        return rule.dns_name in learned

    expected = decide(policies, NODE, src, dst, proto=proto, port=port, members=reference_members)
    got = evaluate(plan, src, dst, proto=proto, port=port, members=members)
    assert got == expected.allowed
    learned = {name: [(str(a), 10.0) for a in addrs] for name, addrs in members.items()}
    rendered = Ruleset(build(plan, learned))  # the nft JSON itself decides the same
    assert rendered.accepts(src, dst, proto, port) == expected.allowed


def test_fold_first_match_wins_and_merges():
    # rule 1 allows 10..19, rule 2 denies 0..99, rule 3 allows 50..200
    out = fold([(10, 19, 1, True), (0, 99, 2, False), (50, 200, 3, True)])
    assert [(i.lo, i.hi, i.allow) for i in out] == [
        (0, 9, False),
        (10, 19, True),
        (20, 99, False),
        (100, 200, True),
    ]


def test_8000_cidr_rules_are_one_lookup_per_family():
    specs = [
        (Action.DENY, ipaddress.ip_network(f"10.{i // 256}.{i % 256}.7/32"), ())
        for i in range(7999)
    ]
    specs.append((Action.ALLOW, ipaddress.ip_network("0.0.0.0/0"), ()))
    plan = compile_plan(make_policy(specs), NODE)
    [ns] = plan.namespaces
    assert len(ns.steps) == 1 and isinstance(ns.steps[0], MapStep)
    assert evaluate(plan, SRC4, ipaddress.ip_address("203.0.113.25"))
    assert not evaluate(plan, SRC4, ipaddress.ip_address("10.31.62.7"))


def test_dns_rules_keep_their_place_between_cidr_blocks():
    specs = [
        (Action.ALLOW, ipaddress.ip_network("1.2.3.0/24"), ()),
        (Action.ALLOW, "www.foo.com", ()),
        (Action.DENY, ipaddress.ip_network("0.0.0.0/0"), ()),
    ]
    plan = compile_plan(make_policy(specs), NODE)
    kinds = [type(s).__name__ + str(s.family) for s in plan.namespaces[0].steps]
    assert kinds == ["MapStep4", "MatchStep4", "MatchStep6", "MapStep4"]
    dns_steps = [s for s in plan.namespaces[0].steps if isinstance(s, MatchStep)]
    assert {s.set_name for s in dns_steps} == {d.name for d in plan.dns_sets}


def test_dual_stack_deny_all_covers_ipv6():
    specs = [
        (Action.DENY, ipaddress.ip_network("0.0.0.0/0"), ()),
        (Action.DENY, ipaddress.ip_network("::/0"), ()),
    ]
    plan = compile_plan(make_policy(specs), NODE)
    assert not evaluate(plan, SRC6, ipaddress.ip_address("2001:db8:113::25"))
    assert not evaluate(plan, SRC4, ipaddress.ip_address("203.0.113.25"))
