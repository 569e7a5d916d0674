"""The firewall's polling tasks driven by the shared schedule: a scripted resolver and a
recording agent, real asyncio time, no root."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pytest

from egress_router.errors import DataplaneError, ResolveError
from egress_router.firewall import loop
from egress_router.firewall.model.decide import Address
from egress_router.firewall.model.dnsrules import dns_settings
from egress_router.runtime.resolver import Answer

A, B = ipaddress.ip_address("203.0.113.25"), ipaddress.ip_address("2001:db8::26")
# floor 0.1 s, grace 0.4 s (a lookup is "slow" after 0.2 s), retries every 0.05 s
FAST = dns_settings(ttl_floor=0.1, ttl_ceiling=10, grace=0.4, retry_first=0.05, retry_max=0.2)


@dataclass
class Config:
    dns: object = FAST


@dataclass
class Metrics:
    lookups: list[bool] = field(default_factory=list)

    def lookup(self, ok: bool) -> None:
        self.lookups.append(ok)


@dataclass
class FakeAgent:
    config: Config = field(default_factory=Config)
    metrics: Metrics = field(default_factory=Metrics)
    learned: list[tuple[str, list[tuple[Address, float]]]] = field(default_factory=list)
    refuse: bool = False

    def learn_everywhere(self, name: str, addrs: Sequence[tuple[Address, float]]) -> int:
        if self.refuse:
            raise DataplaneError("nftables refused the ruleset: test")
        self.learned.append((name, list(addrs)))
        return len(addrs)


class Scripted:
    """Answers from a script: an Answer, a ResolveError, or (seconds, Answer) for a slow one."""

    budget = 1.0

    def __init__(self, script: list[object]) -> None:
        self.script = script
        self.asked = 0
        self.done = asyncio.Event()

    async def lookup(self, name: str) -> Answer:
        step = self.script[min(self.asked, len(self.script) - 1)]
        self.asked += 1
        if isinstance(step, tuple):
            await asyncio.sleep(step[0])
            step = step[1]
        if self.asked >= len(self.script):  # the last step has answered
            self.done.set()
        if isinstance(step, (ResolveError, RuntimeError)):
            raise step
        assert isinstance(step, Answer)
        return step


def follow(script: list[object], agent: FakeAgent | None = None) -> tuple[FakeAgent, list[str]]:
    agent = agent or FakeAgent()
    resolver = Scripted(script)
    logs: list[str] = []

    async def main() -> None:
        states: dict[str, loop.State] = {}
        task = asyncio.create_task(loop.poll(agent, "n.example", resolver, states))  # type: ignore[arg-type]
        await asyncio.wait_for(resolver.done.wait(), 10)
        await asyncio.sleep(0.02)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    mp = pytest.MonkeyPatch()
    mp.setattr(loop, "log", logs.append)
    try:
        asyncio.run(main())
    finally:
        mp.undo()
    return agent, logs


FAIL = ResolveError("n.example", "timed out after 10s")


def test_answers_are_written_with_their_lifetime_and_failures_keep_them() -> None:
    agent, logs = follow([Answer((A, B), 1), FAIL, FAIL, Answer((A,), 1)])
    assert agent.metrics.lookups == [True, False, False, True]
    first = agent.learned[0]
    assert first[0] == "n.example" and [a for a, _ in first[1]] == [A, B]
    assert all(life == pytest.approx(1.4, abs=0.05) for _, life in first[1])  # ttl 1 + grace
    kept = agent.learned[1][1]  # the first failure: last good, valid for the retry + grace
    assert [a for a, _ in kept] == [A, B] and kept[0][1] == pytest.approx(0.45, abs=0.05)
    assert logs == [
        "cannot resolve n.example: timed out after 10s; retrying, last good addresses kept",
        "n.example resolves again after 2 failed lookups",
    ]


def test_a_negative_answer_is_a_failure_and_a_first_failure_writes_nothing() -> None:
    agent, logs = follow([Answer((), 0, "no such name (NXDOMAIN)"), Answer((A,), 1)])
    assert agent.metrics.lookups == [False, True]
    assert [name for name, _ in agent.learned] == ["n.example"]  # only the answer
    assert logs[0] == (
        "cannot resolve n.example: no such name (NXDOMAIN); retrying, last good addresses kept"
    )


def test_a_slow_lookup_extends_the_last_good_by_the_budget() -> None:
    agent, _ = follow([Answer((A,), 0), (0.5, Answer((A,), 5))])
    lifetimes = [life for _, addrs in agent.learned for _, life in addrs]
    # answer (0.1 + 0.4), then slow after 0.2 s (budget 1 + grace 0.4), then the answer (5.4)
    assert lifetimes[0] == pytest.approx(0.5, abs=0.05)
    assert lifetimes[1] == pytest.approx(1.4, abs=0.05)
    assert lifetimes[2] == pytest.approx(5.4, abs=0.05)


def test_a_refused_write_is_logged_and_polling_goes_on() -> None:
    agent, logs = follow([Answer((A,), 0), Answer((A,), 0)], FakeAgent(refuse=True))
    assert agent.metrics.lookups[:2] == [True, True]
    assert logs[0].startswith("cannot update the addresses of n.example: ")


def test_a_bug_in_a_lookup_is_reported_once_and_the_name_is_retried(reports: Any) -> None:
    agent, _ = follow([Answer((A,), 0), RuntimeError("injected fault"), Answer((B,), 1)])
    reports.assert_one("firewall", "RuntimeError: injected fault")
    assert [a for _, addrs in agent.learned for a, _ in addrs][-1] == B  # polling went on


def test_pollers_follow_the_names_and_forget_dropped_ones() -> None:
    class Named(FakeAgent):
        names: ClassVar[set[str]] = {"a.example", "b.example"}

        def polled_names(self) -> set[str]:
            return self.names

    async def main() -> None:
        agent = Named()
        resolver = Scripted([Answer((A,), 5)])
        pollers = loop.Pollers(agent, resolver)  # type: ignore[arg-type]
        pollers.sync()
        await asyncio.sleep(0.05)
        assert set(pollers.states) == {"a.example", "b.example"}
        assert pollers.states["a.example"].addresses == (A,)
        Named.names = {"b.example"}
        pollers.sync()
        assert set(pollers.tasks) == set(pollers.states) == {"b.example"}
        pollers.cancel()

    asyncio.run(main())
