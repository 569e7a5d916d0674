"""A TCP relay: each accepted connection is spliced to one of a route's current addresses.

Owns: accepting on a local port, dialling the destination (round-robin over the route's
addresses, skipping an address that refuses or times out for the next one), and moving bytes
both ways with asyncio Protocols and pause/resume flow control, half-close and resets passed on.
Must not: resolve names or parse configuration (the caller updates ``Route.addresses``), or
touch bytes (no parsing, no per-chunk objects: ``data_received`` writes straight through).

Bounds: each direction buffers at most ``HIGH_WATER`` bytes before the other side is paused,
so a slow reader costs at most ~2x that per connection; a dial waits ``CONNECT_TIMEOUT_S`` per
address; connections have no idle timeout (the reference's 1-minute cut broke idle database
pools) but use TCP keepalive so a vanished peer is noticed.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, cast

from egress_router.runtime import unexpected

HIGH_WATER = 256 * 1024  # bytes queued towards one peer before we stop reading the other
LOW_WATER = 64 * 1024
CONNECT_TIMEOUT_S = 5.0  # per address; the next address is tried after this
BACKLOG = 4096  # pending accepts per port (bursts of new connections)

Logger = Callable[[str], None]
TCP_INFO_BYTES_RECEIVED = 128  # offset of tcpi_bytes_received (u64) in struct tcp_info


class RelayObserver(Protocol):
    """Told once per connection and side (never per chunk), e.g. the metrics adapter."""

    def relay_open(self, port: int) -> None: ...
    def relay_closed(self, port: int, up: int, dial_failed: bool) -> None: ...
    def relay_upstream_closed(self, port: int, down: int) -> None: ...


@dataclass
class Route:
    """Where one local port goes. ``addresses`` is replaced in place when the name moves."""

    local_port: int
    host: str
    remote_port: int
    addresses: tuple[ipaddress.IPv4Address, ...] = ()
    log_connections: Logger | None = None
    observer: RelayObserver | None = None
    _turn: int = field(default=0, repr=False)

    def candidates(self) -> list[ipaddress.IPv4Address]:
        """The addresses to try for a new connection, starting with the next in turn."""
        addrs = self.addresses
        if not addrs:
            return []
        start = self._turn % len(addrs)
        self._turn = start + 1
        return list(addrs[start:] + addrs[:start])


def _set_keepalive(transport: asyncio.BaseTransport) -> None:
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)


def _reset(transport: asyncio.BaseTransport) -> None:
    """Close with an RST (SO_LINGER 0), as a refused or broken destination would look."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()  # type: ignore[attr-defined]


def _received(transport: asyncio.BaseTransport | None, fin: bool) -> int:
    """Payload bytes the kernel received on this connection (its FIN excluded), from TCP_INFO;
    read once when the side closes, so counting costs nothing per chunk."""
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is None:
        return 0
    try:
        raw = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 136)
    except OSError:
        return 0
    if len(raw) < TCP_INFO_BYTES_RECEIVED + 8:
        return 0
    (count,) = struct.unpack_from("Q", raw, TCP_INFO_BYTES_RECEIVED)
    return max(0, int(count) - (1 if fin else 0))


class _Side(asyncio.Protocol):
    """One end of a spliced pair; ``peer`` is the other end's transport."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.peer: _Side | None = None
        self.eof = False
        self.closed = False
        self.early: list[bytes] = []  # at most one read (pause_reading follows at once)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        self.transport.set_write_buffer_limits(high=HIGH_WATER, low=LOW_WATER)

    def data_received(self, data: bytes) -> None:
        peer = self.peer
        if peer is not None and peer.transport is not None:
            peer.transport.write(data)
        else:  # before the dial finished (some loops deliver despite pause_reading): hold it
            self.early.append(data)
            if self.transport is not None:
                self.transport.pause_reading()

    def eof_received(self) -> bool:
        self.eof = True
        peer = self.peer
        if peer is not None and peer.transport is not None and not peer.closed:
            if peer.eof:  # both directions finished: done
                peer.transport.close()
                return False
            if peer.transport.can_write_eof():
                peer.transport.write_eof()
        return True  # keep our sending half open for the peer's remaining bytes

    def pause_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None and not self.peer.closed:
            self.peer.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        peer = self.peer
        if peer is None or peer.transport is None or peer.closed:
            return
        if exc is not None:
            _reset(peer.transport)  # pass a reset on as a reset
        else:
            peer.transport.close()  # flushes what is queued, then FIN


class _Upstream(_Side):
    def __init__(self, client: _Downstream) -> None:
        super().__init__()
        self.peer = client

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        _set_keepalive(transport)  # accepted sockets inherit it from the listening socket

    def connection_lost(self, exc: Exception | None) -> None:
        client = self.peer
        if isinstance(client, _Downstream) and client.route.observer is not None:
            down = _received(self.transport, self.eof)
            client.route.observer.relay_upstream_closed(client.route.local_port, down)
        super().connection_lost(exc)


class _Downstream(_Side):
    """An accepted client connection; dials the route before reading anything."""

    def __init__(self, route: Route, connections: set[_Downstream]) -> None:
        super().__init__()
        self.route = route
        self.connections = connections
        self.task: asyncio.Task[None] | None = None
        self.timed_out = False  # the dial timer fired (vs. a shutdown cancelling the task)
        self.dial_failed = False  # no address could be reached

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        assert self.transport is not None
        self.transport.pause_reading()
        self.connections.add(self)
        self.task = asyncio.get_running_loop().create_task(self._dial())
        if self.route.observer is not None:
            self.route.observer.relay_open(self.route.local_port)

    def _dial_timed_out(self) -> None:
        if self.task is not None and not self.task.done():
            self.timed_out = True
            self.task.cancel()

    def _skip(self, address: ipaddress.IPv4Address, reason: str) -> None:
        route = self.route
        if route.log_connections is not None:
            route.log_connections(
                f"skip {route.host} {address}:{route.remote_port} for port"
                f" {route.local_port}: {reason}"
            )

    async def _dial(self) -> None:
        try:
            await self._dial_addresses()
        except Exception as exc:  # a bug costs this connection (reset), never a silent hang
            unexpected.report("dns-proxy", f"a connection to port {self.route.local_port}", exc)
            self.dial_failed = True
            if not self.closed and self.transport is not None:
                _reset(self.transport)

    async def _dial_addresses(self) -> None:
        loop = asyncio.get_running_loop()
        route = self.route
        assert self.transport is not None
        for address in route.candidates():
            if self.closed:
                return
            # A plain timer cancelling this task costs less per dial than asyncio.timeout().
            timer = loop.call_later(CONNECT_TIMEOUT_S, self._dial_timed_out)
            try:
                transport, _ = await loop.create_connection(
                    lambda: _Upstream(self), str(address), route.remote_port
                )
            except asyncio.CancelledError:
                if not self.timed_out:
                    raise  # shutting down
                self.timed_out = False
                self._skip(address, f"no answer within {CONNECT_TIMEOUT_S:g}s")
                continue
            except OSError as exc:
                self._skip(address, exc.strerror or type(exc).__name__)
                continue
            finally:
                timer.cancel()
            upstream = cast(_Upstream, transport.get_protocol())
            if self.closed:  # the client went away while we were dialling
                transport.close()
                return
            self.peer = upstream
            if route.log_connections is not None:
                client = self.transport.get_extra_info("peername") or ("?", 0)
                route.log_connections(
                    f"connection {client[0]}:{client[1]} port {route.local_port}"
                    f" -> {route.host} {address}:{route.remote_port}"
                )
            if self.early:
                transport.write(b"".join(self.early))
                self.early.clear()
            if self.eof and transport.can_write_eof():
                transport.write_eof()
            self.transport.resume_reading()
            return
        if route.log_connections is not None:
            client = self.transport.get_extra_info("peername") or ("?", 0)
            route.log_connections(
                f"refused {client[0]}:{client[1]} port {route.local_port}: no reachable address"
                f" for {route.host}"
            )
        self.dial_failed = True
        if not self.closed:
            _reset(self.transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.connections.discard(self)
        route = self.route
        if route.observer is not None:
            up = _received(self.transport, self.eof)
            route.observer.relay_closed(route.local_port, up, self.dial_failed)
        if self.peer is None and self.task is not None and not self.task.done():
            self.closed = True
            return  # the dial notices ``closed``
        super().connection_lost(exc)


class Listener:
    """One local port: listens while the route has addresses, refuses (closed port) otherwise."""

    def __init__(self, route: Route, bind: list[str], *, reuse_port: bool = False) -> None:
        self.route = route
        self.bind = bind
        self.reuse_port = reuse_port  # several worker processes share the port
        self.server: asyncio.Server | None = None
        self.connections: set[_Downstream] = set()

    async def sync(self) -> None:
        """Open or close the listening socket to match whether the route has addresses."""
        if self.route.addresses and self.server is None:
            loop = asyncio.get_running_loop()
            self.server = await loop.create_server(
                lambda: _Downstream(self.route, self.connections),
                host=self.bind or None,
                port=self.route.local_port,
                backlog=BACKLOG,
                reuse_address=True,
                reuse_port=self.reuse_port or None,
            )
            for sock in self.server.sockets:  # inherited by every accepted connection
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        elif not self.route.addresses and self.server is not None:
            self.server.close()  # established connections carry on; new ones are refused
            self.server = None

    def close(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None
