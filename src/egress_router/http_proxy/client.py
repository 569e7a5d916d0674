"""The client side of the proxy: one asyncio Protocol per accepted connection (an adapter).

Owns: moving the client's bytes: feeding them to httptools (in slices, holding unfinished head
lines, keeping what was read while a bound pauses reading), turning parser callbacks into
events of the exchange core (``model.connection``) and carrying out the actions it returns
(answers, dials, upstream writes, tunnels, pause/resume, close, log lines).
Must not: decide anything (the core does) or parse responses (``upstream`` does).

Hot path: request bytes go to httptools; body and tunnel bytes go to ``transport.write`` of the
other side as they arrive, with no per-byte Python work.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from typing import Any, cast

import httptools

from egress_router.errors import ProtocolError
from egress_router.http_proxy import dial
from egress_router.http_proxy.contracts import UpstreamSide, WorkerSide
from egress_router.http_proxy.model import actions as act
from egress_router.http_proxy.model.connection import CLOSED, TUNNEL, Connection
from egress_router.http_proxy.model.exchange import Exchange
from egress_router.http_proxy.model.messages import error_response
from egress_router.http_proxy.model.rules import Decision
from egress_router.http_proxy.splice import SpliceTunnel
from egress_router.runtime import unexpected

# Pipelined bytes are parsed at most this many at a time, so the core's queue and buffer bounds
# are checked between slices (a 256 KiB read of 24-byte requests would otherwise become 10,000
# queued exchanges before we could pause). Bodies go in larger slices.
HEAD_SLICE = 8 * 1024
BODY_SLICE = 64 * 1024
# Bytes of an unfinished head line held back until a line end arrives (or this many are held):
# httptools concatenates a line's partial pieces on every feed, which is quadratic in the number
# of reads for a line trickled in tiny pieces. Holding them makes the work per head linear.
HOLD_LIMIT = 4 * 1024


class ClientProtocol(asyncio.Protocol):
    def __init__(self, worker: WorkerSide) -> None:
        self.worker = worker
        self.core = Connection(worker.settings, worker.decide_name, worker.via, worker.loop.time())
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.peer = "-"
        self.current: Exchange | None = None  # the exchange httptools is filling
        self.upstream: UpstreamSide | None = None
        self.splice: SpliceTunnel | None = None
        self.tunnel_sock: socket.socket | None = None  # connected for a CONNECT, to splice
        self.held: list[bytes] = []  # pieces of an unfinished head line not fed yet
        self.held_bytes = 0
        self.backlog: memoryview | None = None  # read but not parsed: a bound was reached

    # -- asyncio.Protocol -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport = cast(asyncio.Transport, transport)  # uvloop: not a subclass
        peer = transport.get_extra_info("peername")
        if peer:
            self.peer = f"[{peer[0]}]:{peer[1]}" if ":" in peer[0] else f"{peer[0]}:{peer[1]}"
        if not self.worker.opened(self):
            transport.write(error_response(503, "too many connections"))
            transport.close()
            self.core.phase = CLOSED
            return
        transport.set_write_buffer_limits(high=self.worker.settings.write_high_water)

    def data_received(self, data: bytes) -> None:
        core = self.core
        if core.phase is TUNNEL:
            core.activity = True
            if core.active is not None:
                core.active.up_bytes += len(data)
            if self.upstream is not None:
                self.upstream.write(data)
            return
        if core.reading_stopped:
            return  # a pipelined request failed (it is answered in turn) or we closed
        if self.backlog is not None:  # not expected (reading is paused), but keep the order
            self.backlog = memoryview(bytes(self.backlog) + data)
            return
        if core.tunnel_ex is not None:  # after a CONNECT head, before the tunnel is up
            self.run(core.buffer(core.tunnel_ex, [data]))
            return
        if (self.held or (len(data) < HOLD_LIMIT and b"\n" not in data)) and core.expects_head():
            core.head_seen(time.monotonic())
            self.held.append(data)
            self.held_bytes += len(data)
            if self.held_bytes < HOLD_LIMIT and b"\n" not in data:
                return
            data = b"".join(self.held)
            self.held.clear()
            self.held_bytes = 0
        self.feed(data)

    def feed(self, data: bytes | memoryview) -> None:
        """Parse ``data`` in slices, stopping (and keeping the rest) when reading pauses."""
        core = self.core
        total = len(data)
        if total <= HEAD_SLICE and not core.blocks and not core.reading_stopped:
            if self.parse(data, data, total):  # the usual read: one request, or a body piece
                actions = core.end_feed(total)
                if actions:
                    self.run(actions)
            return
        start = 0
        view = memoryview(data)
        while start < total:
            if core.blocks or core.reading_stopped:
                if not core.reading_stopped:
                    self.backlog = view[start:]
                return
            size = HEAD_SLICE if core.expects_head() else BODY_SLICE
            chunk = view[start : start + size]
            start += len(chunk)
            if not self.parse(chunk, data, start):
                return
            actions = core.end_feed(len(chunk))
            if actions:
                self.run(actions)

    def parse(self, chunk: bytes | memoryview, data: bytes | memoryview, end: int) -> bool:
        """Feed one slice (``data[end:]`` follows it); False when parsing stopped: an error
        was answered, or CONNECT (or an Upgrade request) took the rest."""
        try:
            self.parser.feed_data(chunk)
        except httptools.HttpParserUpgrade as exc:
            self.upgraded(bytes(chunk[exc.args[0] :]) + bytes(data[end:]))
            return False
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__context__
            if isinstance(cause, ProtocolError):  # what our callbacks raise on a bad request
                self.run(self.core.fail(cause.status, str(cause)))
            else:  # a bug in a callback: this connection ends, the worker goes on
                self.failed(cause if isinstance(cause, Exception) else exc)
            return False
        except httptools.HttpParserError as exc:
            self.run(self.core.fail(400, f"malformed request: {exc}"))
            return False
        return True

    def eof_received(self) -> bool | None:
        # A half-closed client still gets its answer; tunnels pass the FIN on.
        if self.core.phase is TUNNEL and self.upstream is not None:
            self.run(self.core.tunnel_eof(from_client=True))
            return True
        return True if self.core.eof() else None

    def connection_lost(self, exc: Exception | None) -> None:
        try:
            if self.splice is not None:
                self.splice.close("client connection lost")
            self.run(self.core.lost())
        finally:  # even after a bug, the connection slot is given back
            self.worker.closed(self)

    def pause_writing(self) -> None:
        if self.upstream is not None:
            self.upstream.pause_reading()

    def resume_writing(self) -> None:
        if self.upstream is not None:
            self.upstream.resume_reading()

    # -- httptools callbacks ----------------------------------------------------------------

    def on_message_begin(self) -> None:
        self.current = self.core.message_begin(time.monotonic())

    def on_url(self, url: bytes) -> None:
        assert self.current is not None
        self.core.url(self.current, url)

    def on_header(self, name: bytes, value: bytes) -> None:
        assert self.current is not None
        self.core.field(self.current, name, value)

    def on_headers_complete(self) -> None:
        parser = self.parser
        self.run(
            self.core.head_complete(
                parser.get_method(),
                parser.get_http_version() == "1.1",
                parser.should_keep_alive(),
            )
        )

    def on_body(self, body: bytes) -> None:
        ex = self.current
        assert ex is not None
        parts = [b"%x\r\n" % len(body), body, b"\r\n"] if ex.body_chunked else [body]
        if self.core.body(ex, len(body)) and self.upstream is not None:
            self.upstream.writelines(parts)
        else:
            self.run(self.core.buffer(ex, parts))

    def on_message_complete(self) -> None:
        self.current = None
        ex = self.core.message_complete()
        if ex is not None:  # a chunked body's last chunk
            if self.core.streams(ex) and self.upstream is not None:
                self.upstream.write(b"0\r\n\r\n")
            else:
                self.run(self.core.buffer(ex, [b"0\r\n\r\n"]))

    def upgraded(self, rest: bytes) -> None:
        """httptools stops at CONNECT (and at Upgrade requests, which we relay as plain ones)."""
        self.current = None
        ex = self.core.upgraded()
        if ex is not None:
            if rest:
                self.run(self.core.buffer(ex, [rest]))
            return
        self.parser = httptools.HttpRequestParser(self)
        if rest:
            self.data_received(rest)

    # -- carrying out the core's actions ----------------------------------------------------

    def run(self, actions: list[act.Action]) -> None:
        handlers = HANDLERS
        for op, payload in actions:
            handlers[op](self, payload)

    def do(self, action: act.Action) -> None:
        HANDLERS[action[0]](self, action[1])

    def do_close(self, _: None) -> None:
        self.close_now()

    def do_abort(self, reason: str) -> None:
        self.abort_now(reason)

    def do_answer(self, data: bytes) -> None:
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.write(data)

    def do_send(self, parts: list[bytes]) -> None:
        if self.upstream is not None:
            self.upstream.writelines(parts)

    def do_log(self, ex: Exchange) -> None:
        self.worker.finished(ex, self.peer)

    def do_dial(self, payload: tuple[Exchange, Decision | None]) -> None:
        self.worker.spawn(dial.open_upstream(self, *payload))

    def do_tunnel(self, payload: tuple[Exchange, bytes]) -> None:
        self.start_tunnel(*payload)

    def do_pause(self, _: None) -> None:
        if self.transport is not None:
            self.transport.pause_reading()

    def do_resume(self, _: None) -> None:
        if self.backlog is not None:  # parse what was read first, then read again
            self.worker.loop.call_soon(self.resume_backlog)
        elif self.transport is not None:
            self.transport.resume_reading()

    def do_close_upstream(self, _: None) -> None:
        upstream, self.upstream = self.upstream, None
        if upstream is not None:
            upstream.close()

    def do_abort_upstream(self, _: None) -> None:
        upstream, self.upstream = self.upstream, None
        if upstream is not None:
            upstream.abort()

    def do_eof_to_upstream(self, _: None) -> None:
        if self.upstream is not None:
            self.upstream.write_eof()

    def do_eof_to_client(self, _: None) -> None:
        transport = self.transport
        if transport is not None and transport.can_write_eof():
            transport.write_eof()

    def resume_backlog(self) -> None:
        backlog, self.backlog = self.backlog, None
        if backlog is not None:
            self.feed(backlog)
        core = self.core
        if not core.blocks and not core.reading_stopped and self.transport is not None:
            self.transport.resume_reading()

    def close_now(self) -> None:
        if self.splice is not None:
            self.splice.close("")
            return
        self.worker.closed(self)
        if self.transport is not None:
            self.transport.close()  # after the buffered answer is flushed

    def failed(self, exc: Exception) -> None:
        """A bug hit this connection outside a Protocol callback (the loop reports those):
        report it once and drop the connection; the worker keeps serving the others."""
        unexpected.report("http-proxy", f"connection from {self.peer}", exc)
        if self.splice is not None:
            self.splice.close("internal error")  # both sockets closed, the tunnel logged
        self.core.phase = CLOSED
        upstream, self.upstream = self.upstream, None
        if upstream is not None:
            upstream.abort()
        self.worker.closed(self)
        if self.transport is not None:
            self.transport.abort()

    def abort_now(self, reason: str) -> None:
        if self.splice is not None:
            self.splice.close(reason)
            return
        self.worker.closed(self)
        if self.transport is not None:
            self.transport.abort()

    # -- called by dial, upstream and splice (``contracts.ClientSide``) ---------------------

    def answer(self, parts: list[bytes]) -> None:
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.writelines(parts)

    def reject(self, ex: Exchange, status: int, message: str) -> None:
        """The dial for ``ex`` failed (403 by address, 502, 504)."""
        self.run(self.core.dial_failed(ex, status, message))

    def detach(self, upstream: UpstreamSide) -> None:
        """``upstream`` closed on its own; it is no longer ours to write to."""
        if self.upstream is upstream:
            self.upstream = None

    def adopt(self, upstream: UpstreamSide, ex: Exchange, address: str, rule: str) -> None:
        """The upstream for ``ex`` is connected and policy-checked."""
        if not self.core.accepts(ex):
            upstream.close()
            return
        self.upstream = upstream
        self.run(self.core.connected(ex, address, rule))

    def adopt_tunnel(self, sock: socket.socket, ex: Exchange, address: str, rule: str) -> None:
        """CONNECT succeeded on a raw socket: the kernel will splice both ways."""
        if not self.core.accepts(ex) or self.transport is None:
            sock.close()
            return
        self.transport.pause_reading()  # from now on only the splice pumps read this socket
        self.tunnel_sock = sock
        self.run(self.core.tunnel_ready(ex, address, rule))

    def start_tunnel(self, ex: Exchange, early: bytes) -> None:
        transport = self.transport
        assert transport is not None
        sock = self.tunnel_sock
        if sock is None:  # relayed by the event loop through the upstream Protocol
            self.backlog = None
            transport.resume_reading()
            if early and self.upstream is not None:
                self.upstream.write(early)
            return
        self.tunnel_sock = None
        if transport.get_write_buffer_size():  # never seen: a fresh socket takes 39 bytes
            sock.close()
            self.run(self.core.abort("client not writable"))
            return
        self.splice = SpliceTunnel(self, ex, sock, early)

    def client_socket(self) -> socket.socket:
        assert self.transport is not None
        sock: socket.socket = self.transport.get_extra_info("socket")
        return sock

    def tunnel_closed(self, error: str) -> None:
        self.splice = None
        self.run(self.core.tunnel_closed(error))

    def pause_upstream_writes(self) -> None:
        self.run(self.core.upstream_paused())

    def resume_upstream_writes(self) -> None:
        self.run(self.core.upstream_resumed())

    # -- called by the worker ---------------------------------------------------------------

    def tick(self, now: float) -> None:
        self.run(self.core.tick(now))

    def drain(self) -> None:
        self.run(self.core.drain())

    def abort(self, reason: str) -> None:
        self.run(self.core.abort(reason))


# Who carries out each action (one table for every connection).
HANDLERS: dict[act.Op, Callable[[ClientProtocol, Any], None]] = {
    act.Op.ANSWER: ClientProtocol.do_answer,
    act.Op.SEND_UPSTREAM: ClientProtocol.do_send,
    act.Op.LOG: ClientProtocol.do_log,
    act.Op.DIAL: ClientProtocol.do_dial,
    act.Op.START_TUNNEL: ClientProtocol.do_tunnel,
    act.Op.ABORT: ClientProtocol.do_abort,
    act.Op.PAUSE_READING: ClientProtocol.do_pause,
    act.Op.RESUME_READING: ClientProtocol.do_resume,
    act.Op.CLOSE: ClientProtocol.do_close,
    act.Op.CLOSE_UPSTREAM: ClientProtocol.do_close_upstream,
    act.Op.ABORT_UPSTREAM: ClientProtocol.do_abort_upstream,
    act.Op.EOF_TO_UPSTREAM: ClientProtocol.do_eof_to_upstream,
    act.Op.EOF_TO_CLIENT: ClientProtocol.do_eof_to_client,
}
