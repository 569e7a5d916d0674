"""Every plan the compiler can produce is accepted by the real kernel (``nft -c``)."""

from __future__ import annotations

import ipaddress
import random

import pytest

from egress_router.firewall.model.decide import parse_node
from egress_router.firewall.model.plan import compile_plan
from egress_router.firewall.model.policy import Action, Policy, PortMatch, Rule
from egress_router.firewall.model.render import FAMILY, TABLE, build
from egress_router.kernel import nftables

pytestmark = pytest.mark.lab


def random_rule(rng: random.Random, index: int) -> Rule:
    action = rng.choice(list(Action))
    ports = tuple(
        PortMatch(rng.choice(["tcp", "udp", "sctp"]), rng.choice([None, 53, 80, 443]))
        for _ in range(rng.choice([0, 0, 1, 2]))
    )
    kind = rng.random()
    if kind < 0.2:
        return Rule(
            index, action, dns_name=rng.choice(["a.example.com", "*.example.org"]), ports=ports
        )
    if kind < 0.6:
        plen = rng.choice([0, 8, 16, 24, 30, 31, 32])
        net = ipaddress.ip_network(
            f"10.{rng.randrange(4)}.{rng.randrange(256)}.{rng.randrange(256)}/{plen}", strict=False
        )
    else:
        plen = rng.choice([0, 32, 48, 64, 127, 128])
        net = ipaddress.ip_network(
            f"2001:db8:{rng.randrange(4):x}::{rng.randrange(65536):x}/{plen}", strict=False
        )
    return Rule(index, action, cidr=net, ports=ports)


def test_random_plans_pass_the_kernel_check(lab):
    rng = random.Random(20261122)
    node = parse_node(
        ["a=198.18.0.3/32,2001:db8:18::3/128", "b-x=198.18.0.4/32"], ["198.18.0.0/24"]
    )
    batches = []
    for _ in range(25):
        policies = {
            ns: Policy(
                ns,
                "default",
                "EgressFirewall",
                "t",
                tuple(random_rule(rng, i) for i in range(1, rng.randrange(1, 40))),
            )
            for ns in ("a", "b-x")
        }
        plan = compile_plan(policies, node)
        learned = {
            s.name: [("203.0.113.9" if s.family == 4 else "2001:db8::9", 30.0)]
            for s in plan.dns_sets
        }
        batches.append(
            nftables.batch(build(plan, learned, nftables.replace_table_commands(FAMILY, TABLE)))
        )
    for batch in batches:
        result = lab.exec("node", ["nft", "-c", "-j", "-f", "-"], input=batch)
        assert result.returncode == 0, result.stderr
