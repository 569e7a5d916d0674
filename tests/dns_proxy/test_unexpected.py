"""A bug in the dns-proxy costs one connection or one update: its traceback logged once,
counted, the next connection relayed, the name still followed (non-root: loopback sockets)."""

from __future__ import annotations

import asyncio
import ipaddress
from typing import Any

import pytest

from egress_router.dns_proxy.model.destinations import parse_settings
from egress_router.dns_proxy.relay import Route
from egress_router.dns_proxy.service import DnsProxyService
from egress_router.runtime.resolver import Answer
from tests.dns_proxy.test_relay import LOCAL, _echo_upper, _relay, run
from tests.dns_proxy.test_service import FAST, Recorder


def test_a_bug_in_a_relayed_connection_resets_it_and_the_next_is_relayed(
    reports: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = Route.candidates
    calls = [0]

    def candidates(self: Route) -> Any:
        calls[0] += 1
        if calls[0] == 1:
            raise RuntimeError("injected fault")
        return original(self)

    monkeypatch.setattr(Route, "candidates", candidates)

    async def exchange(port: int) -> bytes:
        reader, writer = await asyncio.open_connection(LOCAL, port)
        writer.write(b"hello")
        writer.write_eof()
        try:
            return await asyncio.wait_for(reader.read(-1), 10)
        except ConnectionResetError:
            return b"reset"
        finally:
            writer.close()

    async def body() -> None:
        backend = await asyncio.start_server(_echo_upper, LOCAL, 0)
        listener = await _relay((LOCAL,), backend.sockets[0].getsockname()[1], [])
        try:
            assert await exchange(listener.route.local_port) in (b"", b"reset")  # not a hang
            assert await exchange(listener.route.local_port) == b"5\nHELLO"
        finally:
            listener.close()
            backend.close()

    run(body)
    reports.assert_one("dns-proxy", "RuntimeError: injected fault")


def test_a_bug_while_following_a_name_is_reported_and_the_name_still_followed(
    reports: Any,
) -> None:
    first = ipaddress.IPv4Address("203.0.113.25")
    moved = ipaddress.IPv4Address("203.0.113.26")
    answers = [Answer((first,), 0)]
    logs: list[str] = []

    class Buggy(Recorder):
        updates = 0

        async def update(self, current: Any) -> None:
            Buggy.updates += 1
            if Buggy.updates == 1:
                raise RuntimeError("injected fault")
            await super().update(current)

    async def lookup(name: str) -> Answer:
        return answers[-1]

    async def body() -> Buggy:
        settings = parse_settings({"EGRESS_DNS_PROXY_DESTINATION": "80 app.example"})
        forwarder = Buggy()
        service = DnsProxyService(settings, forwarder, lookup, logs.append, FAST)
        await service.start()
        answers.append(Answer((moved,), 0))  # the first update has the bug, the retry applies
        for _ in range(200):
            if forwarder.applied[-1][80] == (moved,):
                break
            await asyncio.sleep(0.02)
        await service.stop()
        return forwarder

    forwarder = asyncio.run(asyncio.wait_for(body(), 20))
    assert forwarder.applied[-1][80] == (moved,)
    reports.assert_one("dns-proxy", "RuntimeError: injected fault")
