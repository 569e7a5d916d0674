"""The service loop with a scripted resolver and a recording forwarder (real asyncio time)."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Mapping

from egress_router.common.dns_schedule import RefreshPolicy
from egress_router.dns_proxy.model.destinations import parse_settings
from egress_router.dns_proxy.service import DnsProxyService
from egress_router.errors import ResolveError
from egress_router.runtime.resolver import Answer

IP = ipaddress.IPv4Address
FAST = RefreshPolicy(ttl_min_s=0.05, ttl_max_s=10, retry_base_s=0.05, retry_cap_s=0.2)


class Recorder:
    def __init__(self) -> None:
        self.applied: list[dict[int, tuple[ipaddress.IPv4Address, ...]]] = []
        self.stopped = False

    async def start(self, current: Mapping[int, tuple[ipaddress.IPv4Address, ...]]) -> None:
        self.applied.append(dict(current))

    async def update(self, current: Mapping[int, tuple[ipaddress.IPv4Address, ...]]) -> None:
        self.applied.append(dict(current))

    async def stop(self) -> None:
        self.stopped = True


def test_unresolvable_name_does_not_block_others_and_recovers() -> None:
    answers: dict[str, Answer | None] = {"ok.example": Answer((IP("203.0.113.25"),), 0)}
    logs: list[str] = []

    async def lookup(name: str) -> Answer:
        answer = answers.get(name)
        if answer is None:
            raise ResolveError(name, "no server answered")
        return answer

    async def body() -> None:
        settings = parse_settings(
            {"EGRESS_DNS_PROXY_DESTINATION": "80 ok.example\n81 late.example\n82 10.0.0.1 9"}
        )
        fwd = Recorder()
        service = DnsProxyService(settings, fwd, lookup, logs.append, FAST)
        await service.start()
        assert fwd.applied[0] == {80: (IP("203.0.113.25"),), 81: (), 82: (IP("10.0.0.1"),)}
        answers["late.example"] = Answer((IP("203.0.113.26"),), 0)
        for _ in range(100):
            if fwd.applied[-1][81]:
                break
            await asyncio.sleep(0.02)
        assert fwd.applied[-1][81] == (IP("203.0.113.26"),)
        answers["ok.example"] = Answer((IP("203.0.113.27"), IP("203.0.113.25")), 0)
        for _ in range(100):
            if len(fwd.applied[-1][80]) == 2:
                break
            await asyncio.sleep(0.02)
        assert fwd.applied[-1][80] == (IP("203.0.113.25"), IP("203.0.113.27"))
        await service.stop()
        assert fwd.stopped

    asyncio.run(asyncio.wait_for(body(), 10))
    assert any("cannot resolve late.example" in line for line in logs)
    assert any("port 81 -> late.example:81 (no address yet: refusing)" in line for line in logs)


def test_unchanged_answers_do_not_touch_forwarding() -> None:
    calls = 0

    async def lookup(name: str) -> Answer:
        nonlocal calls
        calls += 1
        return Answer((IP("203.0.113.25"),), 0)

    async def body() -> Recorder:
        settings = parse_settings({"EGRESS_DNS_PROXY_DESTINATION": "80 a.example"})
        fwd = Recorder()
        service = DnsProxyService(settings, fwd, lookup, lambda _: None, FAST)
        await service.start()
        await asyncio.sleep(0.4)
        await service.stop()
        return fwd

    fwd = asyncio.run(body())
    assert calls >= 4  # looked up again every ttl floor (0.05 s)
    assert len(fwd.applied) == 1  # only the start
