"""The upstream side of the proxy: one asyncio Protocol per upstream connection.

Owns: parsing responses (httptools) and rewriting their heads, streaming bodies back to the
client (re-chunked when the length is unknown), 1xx, HEAD/204/304, reuse of the connection
for the client's next request, and the user-space tunnel used where splice is unavailable.
Must not: resolve, check policy or connect (``dial`` does), or parse requests.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, cast

import httptools

from egress_router.errors import ProtocolError
from egress_router.http_proxy.model.exchange import Exchange
from egress_router.http_proxy.model.messages import (
    Headers,
    Target,
    request_head,
    response_head,
    scan,
)

if TYPE_CHECKING:
    from egress_router.http_proxy.client import ClientProtocol

IDEMPOTENT = frozenset({b"GET", b"HEAD", b"OPTIONS"})


class UpstreamProtocol(asyncio.Protocol):
    def __init__(self, client: ClientProtocol, address: str, rule: str, target: Target) -> None:
        self.client = client
        self.address = address
        self.rule = rule
        self.key = (target.host, target.port)
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.exchange: Exchange | None = None
        self.tunnel = False
        self.closed = False
        self.reused = False
        self.received = False  # any byte of the current answer arrived
        self.reason = b""
        self.headers: Headers = []
        self.out: list[bytes] = []
        self.rechunk = False
        self.until_eof = False
        self.interim = False
        self.skip = False
        self.eofs = 0

    # -- driven by the client -----------------------------------------------------------------

    def reusable_for(self, target: Target) -> bool:
        return not (self.closed or self.tunnel or self.exchange) and self.key == (
            target.host,
            target.port,
        )

    def begin(self, ex: Exchange) -> None:
        assert self.transport is not None and ex.target is not None
        self.reused = self.exchange is None and self.received
        self.exchange = ex
        self.received = False
        assert ex.head is not None
        head = request_head(ex.method, ex.target, ex.head, ex.body_chunked, self.client.worker.via)
        if ex.pending:
            self.transport.writelines([head, *self.client.take_pending(ex)])
        else:
            self.transport.write(head)

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.closed:
            self.transport.write(data)

    def writelines(self, parts: list[bytes]) -> None:
        if self.transport is not None and not self.closed:
            self.transport.writelines(parts)

    def write_eof(self) -> None:
        self.eofs += 1
        if self.transport is not None and self.transport.can_write_eof():
            self.transport.write_eof()
        if self.eofs >= 2:
            self.client.close()

    def pause_reading(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.resume_reading()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    # -- asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport = cast(asyncio.Transport, transport)  # uvloop: not a subclass
        transport.set_write_buffer_limits(high=self.client.worker.settings.write_high_water)

    def data_received(self, data: bytes) -> None:
        client = self.client
        client.activity = True
        if self.tunnel:
            ex = client.active
            if ex is not None:
                ex.down_bytes += len(data)
            if client.transport is not None:
                client.transport.write(data)
            return
        self.received = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            self.broken(str(exc.__context__ or exc))
        except httptools.HttpParserError as exc:
            self.broken(f"bad response from upstream: {exc}")
        if self.out:
            self.flush()
        if self.skip:
            self.skip = False
            self.parser = httptools.HttpResponseParser(self)

    def eof_received(self) -> bool | None:
        if self.tunnel:
            client = self.client
            self.eofs += 1
            if client.transport is not None and client.transport.can_write_eof():
                client.transport.write_eof()
            if self.eofs >= 2:
                client.close()
            return True
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        was_closed, self.closed = self.closed, True
        client = self.client
        if client.upstream is self:
            client.upstream = None
        ex = self.exchange
        self.exchange = None
        if was_closed:
            return
        if self.tunnel:
            client.close()
            return
        if ex is None or ex is not client.active:
            return
        if not ex.response_started:
            if self.reused and not self.received and ex.method in IDEMPOTENT and not ex.up_bytes:
                # The server closed an idle kept-alive connection as we reused it: retry once.
                from egress_router.http_proxy.dial import open_upstream  # (import cycle)

                by_name = None if ex.target is None else client.worker.decide_name(ex.target.host)
                client.worker.spawn(open_upstream(client, ex, by_name))
                return
            client.reject(ex, 502, "upstream closed the connection without answering")
        elif self.until_eof:
            if self.rechunk:
                self.out.append(b"0\r\n\r\n")
            self.flush()
            client.done(ex, upstream_keep_alive=False)
        else:
            client.abort("upstream closed mid-response")

    def pause_writing(self) -> None:
        self.client.block("upstream")

    def resume_writing(self) -> None:
        self.client.unblock("upstream")

    # -- httptools callbacks ------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self.reason = b""
        self.headers = []

    def on_status(self, status: bytes) -> None:
        self.reason += status

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        if self.skip:
            return
        ex = self.exchange
        if ex is None:
            raise ProtocolError("unsolicited response", 502)
        status = self.parser.get_status_code()
        if status < 200:
            if status == 101:
                raise ProtocolError("upstream switched protocols unasked", 502)
            self.interim = True
            if ex.version11:
                self.out.append(
                    response_head(
                        status, self.reason, scan(self.headers), chunked=False, close=False
                    )
                )
            return
        self.interim = False
        ex.status = status
        head = scan(self.headers)
        length, chunked = head.length, head.chunked
        no_body = ex.method == b"HEAD" or status in (204, 304)
        close = not ex.keep_alive or not ex.version11 or self.client.draining
        self.rechunk = self.until_eof = False
        if not no_body and (chunked or length is None):
            self.until_eof = not chunked
            if ex.version11:
                self.rechunk = True
            else:
                close = True
        if close:
            ex.keep_alive = False
        self.out.append(response_head(status, self.reason, head, chunked=self.rechunk, close=close))
        ex.response_started = True
        if no_body:
            self.skip = True  # httptools would wait for a HEAD body: start a fresh parser
            self.finish(ex, self.parser.should_keep_alive())

    def on_body(self, body: bytes) -> None:
        ex = self.exchange
        if self.skip or ex is None:
            return
        ex.down_bytes += len(body)
        if self.rechunk:
            self.out += (b"%x\r\n" % len(body), body, b"\r\n")
        else:
            self.out.append(body)

    def on_message_complete(self) -> None:
        if self.skip or self.interim:
            self.interim = False
            return
        ex = self.exchange
        if ex is None:
            return
        if self.rechunk:
            self.out.append(b"0\r\n\r\n")
        self.finish(ex, self.parser.should_keep_alive())

    def finish(self, ex: Exchange, keep_alive: bool) -> None:
        self.exchange = None
        self.flush()
        self.client.done(ex, keep_alive and not self.closed)

    def flush(self) -> None:
        out, self.out = self.out, []
        transport = self.client.transport
        if transport is not None and not transport.is_closing():
            transport.writelines(out)

    def broken(self, message: str) -> None:
        ex = self.exchange
        self.exchange = None
        self.abort()
        if ex is None:
            return
        if ex.response_started:
            self.flush()
            self.client.abort(message)
        else:
            self.out.clear()
            self.client.reject(ex, 502, message)
