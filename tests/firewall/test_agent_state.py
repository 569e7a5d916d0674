"""The agent's learned-address bookkeeping, with the kernel replaced by a recorder."""

from __future__ import annotations

import ipaddress
import threading
import time

import pytest

from egress_router.firewall import agent as agent_mod
from egress_router.firewall.agent import Agent, AgentConfig
from egress_router.firewall.model.decide import parse_node
from egress_router.firewall.model.policy import index_by_namespace, parse_text
from egress_router.kernel import nftables
from tests.reference_examples import EGRESS_NETWORK_POLICY

from .helpers import allow_name

ip = ipaddress.ip_address


@pytest.fixture
def recorded(monkeypatch):
    batches: list[list[dict]] = []

    def apply(commands):
        time.sleep(0.01)  # a kernel write takes a while: concurrent callers must wait for it
        batches.append(list(commands))

    monkeypatch.setattr(nftables, "apply", apply)
    monkeypatch.setattr(nftables, "check", lambda commands: None)
    monkeypatch.setattr(nftables, "list_table", lambda family, name: None)
    return batches


def make_agent():
    import json

    other = json.dumps(
        {
            "kind": "EgressFirewall",
            "apiVersion": "k8s.ovn.org/v1",
            "metadata": {"name": "default", "namespace": "other"},
            "spec": {"egress": [allow_name("www.foo.com")]},
        }
    )
    policies = index_by_namespace(
        parse_text(EGRESS_NETWORK_POLICY, "ex.json", "myproj") + parse_text(other, "o.json")
    )
    node = parse_node(["myproj=198.18.0.3/32", "other=198.18.0.4/32"])
    agent = Agent(AgentConfig([], node))
    agent.apply(policies)
    return agent


def elements_written(batches):
    return [
        (c["add"]["element"]["name"], e["elem"]["val"], e["elem"]["timeout"])
        for batch in batches
        for c in batch
        if "element" in c.get("add", {})
        for e in c["add"]["element"]["elem"]
        if isinstance(e, dict) and "elem" in e
    ]


def test_learn_writes_once_then_only_when_lifetime_grows(recorded):
    agent = make_agent()
    recorded.clear()
    assert agent.learn("myproj", ["www.foo.com"], [(ip("203.0.113.26"), 10)]) == 1
    assert agent.learn("myproj", ["www.foo.com"], [(ip("203.0.113.26"), 10)]) == 0  # known
    assert agent.learn("myproj", ["www.foo.com"], [(ip("203.0.113.26"), 60)]) == 1  # extended
    names = {name for name, _, _ in elements_written(recorded)}
    assert names == {agent.plan.sets_for("myproj", "www.foo.com")[0].name}


def test_learning_is_scoped_to_the_namespace_and_family(recorded):
    agent = make_agent()
    recorded.clear()
    agent.learn("myproj", ["www.foo.com"], [(ip("203.0.113.26"), 10), (ip("2001:db8::7"), 10)])
    written = elements_written(recorded)
    v4 = agent.plan.sets_for("myproj", "www.foo.com")[0].name
    assert (v4, "203.0.113.26", 10) in written
    assert all(not name.startswith("ns_other") for name, _, _ in written)
    assert any(val == "2001:db8::7" and name.endswith("v6") for name, val, _ in written)
    recorded.clear()
    assert agent.learn_everywhere("www.foo.com", [(ip("203.0.113.27"), 10)]) == 2  # both


def test_concurrent_learners_return_only_after_the_kernel_write(recorded):
    agent = make_agent()
    recorded.clear()
    done: list[int] = []

    def learner():
        agent.learn("myproj", ["www.foo.com"], [(ip("203.0.113.26"), 10)])
        done.append(len(recorded))  # the write had happened when this caller returned

    threads = [threading.Thread(target=learner) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert done and min(done) >= 1


def test_address_cap(recorded, monkeypatch):
    monkeypatch.setattr(agent_mod, "MAX_ADDRESSES_PER_NAME", 5)
    agent = make_agent()
    addrs = [(ip(f"203.0.113.{i}"), 10 + i) for i in range(1, 11)]
    agent.learn("myproj", ["www.foo.com"], addrs)
    kept = agent.learned[("myproj", "www.foo.com")]
    assert sorted(int(a) & 0xFF for a in kept) == [6, 7, 8, 9, 10]  # the longest-lived stay
