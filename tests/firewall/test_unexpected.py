"""A bug in the firewall agent costs one apply or one DNS answer: its traceback logged once,
counted, the agent goes on (non-root: the adapters driven with stand-ins around them)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import dns.message
import dns.rcode
import pytest

from egress_router.firewall import cluster
from egress_router.firewall.dns_server import DnsServer
from egress_router.firewall.model.cluster import Desired
from egress_router.firewall.model.decide import Address


class _Learner:
    """The agent as the DNS server sees it; ``dns_patterns`` has a bug the first time."""

    metrics = None

    def __init__(self) -> None:
        self.calls = 0

    def dns_patterns(self, client: str) -> tuple[str, list[str]] | None:
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("injected fault")
        return None  # a client without policy: the answer goes through as it is

    def dns_lifetime(self, ttl: float) -> float:
        return ttl

    def learn(
        self, namespace: str, patterns: Sequence[str], addrs: Sequence[tuple[Address, float]]
    ) -> int:
        return 0


def test_a_bug_in_a_dns_query_answers_servfail_and_the_next_is_answered(reports: Any) -> None:
    query = dns.message.make_query("app.example.test", "A")
    reply = dns.message.make_response(query).to_wire()

    async def forward(data: bytes) -> bytes:
        return reply

    async def body() -> tuple[bytes, bytes]:
        server = DnsServer(_Learner(), ("198.18.0.53", 53))
        first = await server.answer(query.to_wire(), "198.18.0.9", forward)
        second = await server.answer(query.to_wire(), "198.18.0.9", forward)
        return first, second

    first, second = asyncio.run(body())
    assert dns.message.from_wire(first).rcode() == dns.rcode.SERVFAIL  # fail closed
    assert second == reply
    reports.assert_one("firewall", "RuntimeError: injected fault")


class _Agent:
    def __init__(self) -> None:
        self.applies = 0

    def apply(self, policies: Any, node: Any) -> None:
        self.applies += 1
        if self.applies == 1:
            raise RuntimeError("injected fault")


def test_a_bug_in_an_apply_keeps_the_rules_and_the_next_apply_runs(
    reports: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines: list[str] = []
    monkeypatch.setattr(cluster, "log", lines.append)
    monkeypatch.setattr(cluster, "summary", lambda agent: "0 policies")
    monkeypatch.setattr(cluster.Reconciler, "_write_statuses", lambda self, view, desired: False)
    monkeypatch.setattr(cluster.Reconciler, "_post_events", lambda self, events: False)
    monkeypatch.setattr(cluster, "warnings", lambda *args: [])
    agent = _Agent()
    config = SimpleNamespace(node="node-1")
    reconciler = cluster.Reconciler(agent, None, config)  # type: ignore[arg-type]
    desired = Desired(policies={}, node=SimpleNamespace(pods=()), in_force={}, problems={})  # type: ignore[arg-type]
    reconciler.reconcile(None, desired)  # type: ignore[arg-type]
    assert reconciler.kernel_error == "RuntimeError: injected fault"
    assert reconciler.applied is None
    reconciler.reconcile(None, desired)  # type: ignore[arg-type]
    assert agent.applies == 2 and reconciler.kernel_error is None
    assert lines[0] == "apply failed, previous rules stay in force: RuntimeError: injected fault"
    assert lines[1].startswith("applied: 0 policies")
    reports.assert_one("firewall", "RuntimeError: injected fault")
