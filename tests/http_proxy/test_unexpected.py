"""A bug in the proxy costs one connection: its traceback logged once, counted, the worker
goes on serving (non-root: a worker and an origin on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
from collections.abc import Callable
from typing import Any

import pytest
import uvloop

from egress_router.http_proxy import dial
from egress_router.http_proxy.model.connection import Connection
from egress_router.http_proxy.model.rules import parse_destinations
from egress_router.http_proxy.model.settings import ProxySettings
from egress_router.http_proxy.worker import Worker

LOCAL = "127.0.0.1"


async def _origin(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:  # the proxy dropped the request it was sending
        writer.close()
        return
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
    await writer.drain()
    writer.close()


async def _get(port: int, origin: int) -> bytes:
    reader, writer = await asyncio.open_connection(LOCAL, port)
    writer.write(
        f"GET http://{LOCAL}:{origin}/ HTTP/1.1\r\nHost: {LOCAL}:{origin}\r\n"
        "Connection: close\r\n\r\n".encode()
    )
    try:
        return await asyncio.wait_for(reader.read(-1), 10)
    except ConnectionResetError:
        return b""
    finally:
        writer.close()


def _once(original: Callable[..., Any]) -> Callable[..., Any]:
    """``original``, except that its first call raises RuntimeError (the injected bug)."""
    calls = [0]

    def patched(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        if calls[0] == 1:
            raise RuntimeError("injected fault")
        return original(*args, **kwargs)

    return patched


LOOPS = pytest.mark.parametrize("loop", ["asyncio", "uvloop"])


def _serve(test: Callable[[int, int], Any], loop: str) -> None:
    async def body() -> None:
        origin = await asyncio.start_server(_origin, LOCAL, 0)
        origin_port = origin.sockets[0].getsockname()[1]
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((LOCAL, 0))
        sock.listen()
        sock.setblocking(False)
        port = sock.getsockname()[1]
        settings = ProxySettings(
            rules=parse_destinations(f"{LOCAL}\n"), listen=(LOCAL,), port=port, access_log=False
        )
        worker = Worker(settings, asyncio.get_running_loop())
        serving = asyncio.ensure_future(worker.serve([sock]))
        try:
            await asyncio.sleep(0.05)
            await test(port, origin_port)
        finally:
            os.kill(os.getpid(), signal.SIGTERM)  # the worker's own graceful stop
            await asyncio.wait_for(serving, 30)
            origin.close()
            await origin.wait_closed()
            sock.close()

    factory = uvloop.new_event_loop if loop == "uvloop" else asyncio.new_event_loop
    event_loop = factory()  # as run_worker does it
    try:
        event_loop.run_until_complete(asyncio.wait_for(body(), 60))
    finally:
        event_loop.close()


@LOOPS
@pytest.mark.parametrize(
    ("where", "target"),
    [
        ("a parser callback", (Connection, "head_complete")),  # the connection path
        ("data_received", (Connection, "end_feed")),  # the loop's exception handler reports it
        ("the dial task", (dial, "loops_to_self")),
    ],
)
def test_a_bug_costs_one_request_and_the_next_is_served(
    where: str,
    target: tuple[Any, str],
    loop: str,
    reports: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    owner, name = target
    monkeypatch.setattr(owner, name, _once(getattr(owner, name)))

    async def test(port: int, origin: int) -> None:
        first = await _get(port, origin)
        assert not first.startswith(b"HTTP/1.1 200"), first
        second = await _get(port, origin)
        assert second.startswith(b"HTTP/1.1 200 OK") and second.endswith(b"ok"), second

    _serve(test, loop)
    reports.assert_one("http-proxy", "RuntimeError: injected fault")


@LOOPS
def test_a_bug_in_the_sweep_ends_that_connection_not_the_sweep(
    loop: str, reports: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Connection, "tick", _once(Connection.tick))

    async def test(port: int, origin: int) -> None:
        reader, writer = await asyncio.open_connection(LOCAL, port)  # idle: the sweep ticks it
        with contextlib.suppress(ConnectionResetError):  # dropped by the bug
            assert await asyncio.wait_for(reader.read(-1), 10) == b""
        writer.close()
        await asyncio.sleep(1.2)  # the next sweep still runs: it would raise in a dead task
        answer = await _get(port, origin)
        assert answer.startswith(b"HTTP/1.1 200 OK"), answer

    _serve(test, loop)
    reports.assert_one("http-proxy", "RuntimeError: injected fault")
