"""A bug in the relay costs one connection: its traceback logged once, counted, the next
connection is relayed (non-root: real loopback sockets)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from egress_router.dns_proxy.relay import Route
from tests.dns_proxy.test_relay import LOCAL, _echo_upper, _relay, run


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
