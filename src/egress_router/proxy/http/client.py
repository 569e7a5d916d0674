"""The client side of the proxy: one asyncio Protocol per accepted connection.

Owns: parsing requests (httptools), the per-connection queue of exchanges (pipelining), the
policy check before any upstream work, 4xx/5xx answers of our own, flow control towards the
upstream, the switch to a byte tunnel after CONNECT, timeouts and the access-log line.
Must not: parse responses (``upstream`` does) or contain policy logic (``http_proxy.model.rules``).

Hot path: request bytes go to httptools; body and tunnel bytes go to ``transport.write`` of
the other side as they arrive, with no per-byte Python work.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections import deque
from typing import TYPE_CHECKING, cast

import httptools

from egress_router.errors import ProtocolError
from egress_router.proxy.http import dial
from egress_router.proxy.http import upstream as up
from egress_router.proxy.http.exchange import Exchange
from egress_router.proxy.http.messages import (
    error_response,
    parse_absolute,
    parse_authority,
    scan,
)

if TYPE_CHECKING:
    from egress_router.proxy.http.splice import SpliceTunnel
    from egress_router.proxy.http.worker import Worker

IDLE, HEAD, BUSY, TUNNEL, CLOSED = range(5)
PENDING_LIMIT = 1024 * 1024  # request bytes buffered while the upstream connects


class ClientProtocol(asyncio.Protocol):
    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.peer = "-"
        self.phase = IDLE
        self.since = worker.now  # start of the current phase (coarse clock)
        self.activity = False
        self.current: Exchange | None = None  # being parsed
        self.active: Exchange | None = None  # being answered
        self.queue: deque[Exchange] = deque()
        self.upstream: up.UpstreamProtocol | None = None
        self.pending_bytes = 0
        self.head_bytes = 0  # URL and fields of the head being parsed
        self.head_chunks = 0  # bytes received while a head is incomplete
        self.blocks: set[str] = set()  # reasons reading from the client is paused
        self.draining = False
        self.client_eof = False
        self.splice: SpliceTunnel | None = None

    # -- asyncio.Protocol -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport = cast(asyncio.Transport, transport)  # uvloop: not a subclass
        peer = transport.get_extra_info("peername")
        if peer:
            self.peer = f"[{peer[0]}]:{peer[1]}" if ":" in peer[0] else f"{peer[0]}:{peer[1]}"
        worker = self.worker
        if len(worker.connections) >= worker.settings.max_connections or worker.draining:
            transport.write(error_response(503, "too many connections"))
            transport.close()
            self.phase = CLOSED
            return
        transport.set_write_buffer_limits(high=worker.settings.write_high_water)
        worker.connections.add(self)
        self.since = worker.now

    def data_received(self, data: bytes) -> None:
        self.activity = True
        if self.phase == TUNNEL:
            self.upstream_write(data)
            return
        if self.active is not None and self.active.is_connect and self.current is None:
            # Bytes after a CONNECT head, before the tunnel is up: the tunnel's first bytes.
            self.buffer_for(self.active, data)
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            self.upgraded(data[exc.args[0] :])
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__context__
            status = cause.status if isinstance(cause, ProtocolError) else 400
            self.fail(status, str(cause or exc))
        except httptools.HttpParserError as exc:
            self.fail(400, f"malformed request: {exc}")
        else:
            if self.phase == HEAD:  # an unfinished head: bound what the parser holds
                self.head_chunks += len(data)
                if self.head_chunks > self.worker.settings.max_header_bytes:
                    self.fail(431, "request head too large")

    def eof_received(self) -> bool | None:
        # A half-closed client still gets its answer; tunnels pass the FIN on.
        if self.phase == TUNNEL and self.upstream is not None:
            self.upstream.write_eof()
            return True
        self.client_eof = True
        if self.active is not None or self.queue:
            return True  # answer what was asked, then close (see ``done``)
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if self.splice is not None:
            self.splice.close("client connection lost")
        ex = self.active
        if ex is not None and not ex.logged:
            tunnelled = ex.is_connect and ex.status == 200
            if not tunnelled:
                ex.error = ex.error or "connection closed before the answer was complete"
            self.finish_log(ex)
        self.phase = CLOSED
        self.worker.connections.discard(self)
        if self.upstream is not None:
            self.upstream.close()
            self.upstream = None

    def pause_writing(self) -> None:
        if self.upstream is not None:
            self.upstream.pause_reading()

    def resume_writing(self) -> None:
        if self.upstream is not None:
            self.upstream.resume_reading()

    # -- httptools callbacks ----------------------------------------------------------------

    def on_message_begin(self) -> None:
        self.current = Exchange()
        self.head_bytes = 0
        if self.phase == IDLE:
            self.phase = HEAD
            self.since = self.worker.loop.time()  # exact: the header timeout is not extended
            self.head_chunks = 0

    def on_url(self, url: bytes) -> None:
        assert self.current is not None
        self.current.url += url
        if len(self.current.url) > self.worker.settings.max_header_bytes:
            raise ProtocolError("request target too long", 414)

    def on_header(self, name: bytes, value: bytes) -> None:
        assert self.current is not None
        self.head_bytes += len(name) + len(value)
        if self.head_bytes > self.worker.settings.max_header_bytes:
            raise ProtocolError("request head too large", 431)
        self.current.headers.append((name, value))

    def on_headers_complete(self) -> None:
        ex = self.current
        assert ex is not None
        parser = self.parser
        ex.method = parser.get_method()
        ex.version11 = parser.get_http_version() == "1.1"
        ex.keep_alive = parser.should_keep_alive()
        if ex.method == b"CONNECT":
            ex.is_connect = True
            ex.target = parse_authority(ex.url)
            ex.request_done = True
        else:
            ex.target = parse_absolute(ex.url)
            ex.head = head = scan(ex.headers)
            ex.body_chunked = head.chunked
            ex.request_done = not head.chunked and not head.length
        if self.phase == HEAD:
            self.phase = BUSY
            self.since = self.worker.now
        if self.active is None:
            self.start(ex)
        else:
            self.queue.append(ex)

    def on_body(self, body: bytes) -> None:
        ex = self.current
        assert ex is not None
        ex.up_bytes += len(body)
        if ex.body_chunked:
            self.send_body(ex, [b"%x\r\n" % len(body), body, b"\r\n"])
        else:
            self.send_body(ex, [body])

    def on_message_complete(self) -> None:
        ex = self.current
        self.current = None
        if ex is None or ex.is_connect:
            return
        if ex.body_chunked:
            self.send_body(ex, [b"0\r\n\r\n"])
        ex.request_done = True

    # -- exchanges --------------------------------------------------------------------------

    def start(self, ex: Exchange) -> None:
        """Check policy and reach the upstream for ``ex`` (now the active exchange)."""
        self.active = ex
        target = ex.target
        assert target is not None
        if ex.is_connect:
            ports = self.worker.settings.connect_ports
            if ports is not None and target.port not in ports:
                self.reject(ex, 403, f"CONNECT to port {target.port} is not allowed")
                return
        by_name = None
        if not target.is_address:
            by_name = self.worker.decide_name(target.host)
            if by_name is not None and not by_name.allowed:
                ex.rule = by_name.rule.describe() if by_name.rule.number else by_name.rule.text
                self.reject(ex, 403, by_name.reason())
                return
        reuse = self.upstream
        if reuse is not None and reuse.reusable_for(target):
            ex.address, ex.rule = reuse.address, reuse.rule
            reuse.begin(ex)
            return
        if reuse is not None:
            reuse.close()
            self.upstream = None
        self.worker.spawn(dial.open_upstream(self, ex, by_name))

    def attached(self, upstream: up.UpstreamProtocol, ex: Exchange) -> None:
        """The upstream is connected and policy-checked: send what we hold."""
        if self.phase == CLOSED or ex is not self.active:
            upstream.close()
            return
        self.upstream = upstream
        if ex.is_connect:
            ex.status = 200
            assert self.transport is not None
            self.transport.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            ex.response_started = True
            self.phase = TUNNEL
            upstream.tunnel = True
            data = b"".join(ex.pending)
            ex.pending.clear()
            self.pending_bytes = 0
            self.unblock("pending")
            if data:
                upstream.write(data)
            return
        upstream.begin(ex)

    def attached_tunnel(self, sock: socket.socket, ex: Exchange) -> None:
        """CONNECT succeeded on a raw socket: answer 200 and let the kernel splice both ways."""
        from egress_router.proxy.http.splice import SpliceTunnel

        transport = self.transport
        if self.phase == CLOSED or ex is not self.active or transport is None:
            sock.close()
            return
        transport.pause_reading()  # from now on only the splice pumps read this socket
        ex.status = 200
        transport.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        ex.response_started = True
        if transport.get_write_buffer_size():  # never seen: a fresh socket takes 39 bytes
            sock.close()
            self.abort("client not writable")
            return
        early = b"".join(ex.pending)
        ex.pending = []
        self.pending_bytes = 0
        self.blocks.clear()
        self.phase = TUNNEL
        self.splice = SpliceTunnel(self, ex, sock, early)

    def tunnel_closed(self, error: str) -> None:
        """The spliced tunnel ended (both sides closed, an error, a timeout or shutdown)."""
        self.splice = None
        ex = self.active
        if ex is not None:
            ex.error = ex.error or error
            self.finish_log(ex)
        self.phase = CLOSED
        self.worker.connections.discard(self)
        if self.transport is not None:
            if error:
                self.transport.abort()
            else:
                self.transport.close()

    def send_body(self, ex: Exchange, parts: list[bytes]) -> None:
        if ex is self.active and self.upstream is not None and self.upstream.exchange is ex:
            self.upstream.writelines(parts)
        else:
            for part in parts:
                self.buffer_for(ex, part)

    def buffer_for(self, ex: Exchange, data: bytes) -> None:
        ex.pending.append(data)
        if ex.is_connect:
            ex.up_bytes += len(data)
        self.pending_bytes += len(data)
        if self.pending_bytes > PENDING_LIMIT:
            self.block("pending")

    def take_pending(self, ex: Exchange) -> list[bytes]:
        parts, ex.pending = ex.pending, []
        self.pending_bytes = max(0, self.pending_bytes - sum(map(len, parts)))
        if self.pending_bytes <= PENDING_LIMIT:
            self.unblock("pending")
        return parts

    def upstream_write(self, data: bytes) -> None:
        ex = self.active
        if ex is not None:
            ex.up_bytes += len(data)
        if self.upstream is not None:
            self.upstream.write(data)

    def upgraded(self, rest: bytes) -> None:
        """httptools stops at CONNECT (and at Upgrade requests, which we relay as plain ones)."""
        ex = self.active if self.active is not None and self.active.is_connect else None
        if ex is None and self.queue and self.queue[-1].is_connect:
            ex = self.queue[-1]
        if ex is not None:
            self.current = None
            if rest:
                self.buffer_for(ex, rest)
            return
        self.parser = httptools.HttpRequestParser(self)
        if rest:
            self.data_received(rest)

    def done(self, ex: Exchange, upstream_keep_alive: bool) -> None:
        """The upstream's answer to ``ex`` is complete."""
        self.finish_log(ex)
        if not upstream_keep_alive and self.upstream is not None:
            self.upstream.close()
            self.upstream = None
        if not (ex.keep_alive and ex.request_done) or self.draining:
            self.close()
            return
        if self.client_eof and not self.queue:
            self.close()
            return
        self.active = None
        if self.queue:
            self.start(self.queue.popleft())
        else:
            self.phase = IDLE if self.current is None else HEAD
            self.since = self.worker.now

    def reject(self, ex: Exchange, status: int, message: str) -> None:
        """Answer ``ex`` ourselves (403/502/504); the connection survives when it can."""
        ex.status = status
        if ex.rule == "-" and status == 403:
            ex.rule = message
        ex.error = ex.error or message
        if self.transport is None or self.phase == CLOSED:
            return
        keep = ex.keep_alive and ex.request_done and not ex.is_connect and not self.draining
        ex.keep_alive = keep  # an answer that says "Connection: close" is followed by a close
        self.transport.write(error_response(status, message, close=not keep))
        ex.response_started = True
        self.done(ex, upstream_keep_alive=self.upstream is not None)

    def fail(self, status: int, message: str) -> None:
        """A protocol error from the client: answer if nothing was sent yet, then close."""
        ex = self.active or self.current or Exchange()
        ex.status, ex.error = status, message
        if self.transport is not None and not ex.response_started:
            self.transport.write(error_response(status, message))
        self.finish_log(ex)
        self.close()

    def finish_log(self, ex: Exchange) -> None:
        if not ex.logged:
            ex.logged = True
            self.worker.log(ex.log_line(self.peer))
            metrics = self.worker.metrics
            if metrics is not None:  # once per request or tunnel, from the log record
                metrics.exchange(
                    ex.method.decode("latin-1"),
                    ex.status,
                    ex.rule,
                    ex.up_bytes,
                    ex.down_bytes,
                    time.monotonic() - ex.started,
                    ex.is_connect,
                )

    # -- flow control, timeouts, shutdown ---------------------------------------------------

    def block(self, reason: str) -> None:
        if not self.blocks and self.transport is not None:
            self.transport.pause_reading()
        self.blocks.add(reason)

    def unblock(self, reason: str) -> None:
        if reason in self.blocks:
            self.blocks.discard(reason)
            if not self.blocks and self.transport is not None and self.phase != CLOSED:
                self.transport.resume_reading()

    def check_timeouts(self, now: float) -> None:
        settings = self.worker.settings
        if self.activity:
            self.activity = False
            if self.phase != HEAD:
                self.since = now
        elapsed = now - self.since
        if self.phase == HEAD and elapsed > settings.header_timeout:
            self.fail(408, "request head not received in time")
        elif self.phase == IDLE and elapsed > settings.idle_timeout:
            self.close()
        elif self.phase in (BUSY, TUNNEL) and elapsed > settings.io_timeout:
            ex = self.active
            if ex is not None and not ex.response_started:
                self.reject(ex, 504, "upstream did not answer in time")
                self.close()
            else:
                self.abort("idle timeout")

    def drain(self) -> None:
        self.draining = True
        if self.phase == IDLE and self.active is None:
            self.close()

    def close(self) -> None:
        if self.splice is not None:
            self.splice.close("")
            return
        if self.phase != CLOSED:
            self.phase = CLOSED
            self.worker.connections.discard(self)
            if self.transport is not None:
                self.transport.close()  # after the buffered answer is flushed
        if self.upstream is not None:
            self.upstream.close()
            self.upstream = None

    def abort(self, reason: str) -> None:
        if self.splice is not None:
            self.splice.close(reason)
            return
        if self.active is not None and self.phase != CLOSED:
            self.active.error = reason
            self.finish_log(self.active)
            self.active = None
        self.phase = CLOSED
        self.worker.connections.discard(self)
        if self.transport is not None:
            self.transport.abort()
        if self.upstream is not None:
            self.upstream.abort()
            self.upstream = None
