"""The TCP relay on real loopback sockets: bytes both ways, flow control, half-close, failover."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable

from egress_router.dns_proxy.relay import Listener, Route

IP = ipaddress.IPv4Address
LOCAL = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOCAL, 0))
        return int(s.getsockname()[1])


async def _echo_upper(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Reads everything until EOF, then answers with the byte count and the data upper-cased."""
    data = await reader.read(-1)
    writer.write(f"{len(data)}\n".encode() + data.upper())
    await writer.drain()
    writer.close()


def run(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(test(), 30))


async def _relay(addresses: tuple[str, ...], backend_port: int, log: list[str]) -> Listener:
    route = Route(
        free_port(), "svc.example", backend_port, tuple(IP(a) for a in addresses), log.append
    )
    listener = Listener(route, [LOCAL])
    await listener.sync()
    return listener


def test_bytes_both_ways_with_half_close_and_flow_control() -> None:
    async def body() -> None:
        backend = await asyncio.start_server(_echo_upper, LOCAL, 0)
        port = backend.sockets[0].getsockname()[1]
        log: list[str] = []
        listener = await _relay((LOCAL,), port, log)
        reader, writer = await asyncio.open_connection(LOCAL, listener.route.local_port)
        payload = b"abc" * (3 * 1024 * 1024 // 3)  # 3 MiB: far above the buffer high-water
        writer.write(payload)
        await writer.drain()
        writer.write_eof()  # half-close: the backend only answers after our EOF
        answer = await reader.read(-1)
        assert answer == f"{len(payload)}\n".encode() + payload.upper()
        writer.close()
        assert any(line.startswith("connection 127.0.0.1:") for line in log), log
        listener.close()
        backend.close()

    run(body)


def test_refusing_address_is_skipped_for_the_next() -> None:
    async def body() -> None:
        backend = await asyncio.start_server(_echo_upper, LOCAL, 0)
        port = backend.sockets[0].getsockname()[1]
        log: list[str] = []
        # 127.0.0.2 is also loopback but nothing listens there on this port: refused.
        listener = await _relay(("127.0.0.2", LOCAL), port, log)
        for _ in range(4):
            reader, writer = await asyncio.open_connection(LOCAL, listener.route.local_port)
            writer.write(b"x")
            writer.write_eof()
            assert await reader.read(-1) == b"1\nX"
            writer.close()
        assert sum("skip svc.example 127.0.0.2" in line for line in log) >= 2
        listener.close()
        backend.close()

    run(body)


def test_no_reachable_address_resets_the_client() -> None:
    async def body() -> None:
        log: list[str] = []
        listener = await _relay((LOCAL,), free_port(), log)
        reader, writer = await asyncio.open_connection(LOCAL, listener.route.local_port)
        try:
            data = await reader.read(-1)
        except ConnectionResetError:
            data = b""
        assert data == b""
        assert any("refused" in line for line in log), log
        writer.close()
        listener.close()

    run(body)


def test_port_refuses_while_the_route_has_no_address() -> None:
    async def body() -> None:
        backend = await asyncio.start_server(_echo_upper, LOCAL, 0)
        port = backend.sockets[0].getsockname()[1]
        listener = await _relay((), port, [])
        local = listener.route.local_port
        try:
            await asyncio.open_connection(LOCAL, local)
            raise AssertionError("connected to a port without addresses")
        except ConnectionRefusedError:
            pass
        listener.route.addresses = (IP(LOCAL),)
        await listener.sync()
        reader, writer = await asyncio.open_connection(LOCAL, local)
        writer.write_eof()
        assert await reader.read(-1) == b"0\n"
        writer.close()
        listener.route.addresses = ()
        await listener.sync()
        try:
            await asyncio.open_connection(LOCAL, local)
            raise AssertionError("still listening")
        except ConnectionRefusedError:
            pass
        backend.close()

    run(body)


def test_round_robin_turns() -> None:
    route = Route(1, "x", 1, (IP("10.0.0.1"), IP("10.0.0.2"), IP("10.0.0.3")))
    firsts = [route.candidates()[0] for _ in range(6)]
    assert firsts == [IP("10.0.0.1"), IP("10.0.0.2"), IP("10.0.0.3")] * 2
    assert route.candidates() == [IP("10.0.0.1"), IP("10.0.0.2"), IP("10.0.0.3")]


def test_address_that_does_not_answer_is_skipped_after_the_timeout(monkeypatch) -> None:
    from egress_router.dns_proxy import relay

    monkeypatch.setattr(relay, "CONNECT_TIMEOUT_S", 0.3)

    async def body() -> None:
        backend = await asyncio.start_server(_echo_upper, LOCAL, 0)
        port = backend.sockets[0].getsockname()[1]
        # A listener whose accept queue is full drops further SYNs: the dial hangs.
        full = socket.socket()
        full.bind(("127.0.0.3", port))
        full.listen(0)
        fillers = []
        for _ in range(3):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.3", port))
            fillers.append(s)
        await asyncio.sleep(0.1)
        log: list[str] = []
        listener = await _relay(("127.0.0.3", LOCAL), port, log)
        reader, writer = await asyncio.open_connection(LOCAL, listener.route.local_port)
        writer.write(b"y")
        writer.write_eof()
        assert await reader.read(-1) == b"1\nY"
        writer.close()
        assert any("skip svc.example 127.0.0.3" in line and "no answer" in line for line in log)
        listener.close()
        backend.close()
        for s in [full, *fillers]:
            s.close()

    run(body)
