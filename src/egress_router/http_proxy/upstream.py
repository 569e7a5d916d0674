"""The upstream side of the proxy: one asyncio Protocol per upstream connection (an adapter).

Owns: moving the upstream's bytes: feeding answers to httptools, turning its callbacks into
events of the client's exchange core, streaming body bytes to the client as they come (chunk
framing added when the core's framing says so, one ``writelines`` per read), and the user-space
tunnel used where splice is unavailable.
Must not: decide framing, keep-alive, retries or errors (the core does), resolve or connect
(``dial`` does), or parse requests.
"""

from __future__ import annotations

import asyncio
from typing import cast

import httptools

from egress_router.errors import ProtocolError
from egress_router.http_proxy.contracts import ClientSide
from egress_router.http_proxy.model import actions as act
from egress_router.http_proxy.model.connection import TUNNELLED
from egress_router.http_proxy.model.messages import Headers
from egress_router.runtime import unexpected

ANSWER = act.Op.ANSWER  # bound once: an Enum member read from its class is slow on 3.11


class UpstreamProtocol(asyncio.Protocol):
    def __init__(self, client: ClientSide) -> None:
        self.client = client
        self.core = client.core
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.reason = b""
        self.headers: Headers = []
        self.out: list[bytes] = []  # for the client, written once per read
        self.skip = False  # the answer has no body: a fresh parser for the next one

    # -- driven by the client (``contracts.UpstreamSide``) --------------------------------------

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.closed:
            self.transport.write(data)

    def writelines(self, parts: list[bytes]) -> None:
        if self.transport is not None and not self.closed:
            self.transport.writelines(parts)

    def write_eof(self) -> None:
        if self.transport is not None and self.transport.can_write_eof():
            self.transport.write_eof()

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
        if self.closed:
            return
        core = self.core
        core.upstream_data()
        if core.link is TUNNELLED:
            ex = core.active
            if ex is not None:
                ex.down_bytes += len(data)
            self.client.answer([data])
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__context__
            if isinstance(cause, ProtocolError):  # what our callbacks raise on a bad answer
                self.broken(str(cause))
            else:  # a bug in a callback: the client gets a 502, the worker goes on
                unexpected.report("http-proxy", "an upstream answer", cause or exc)
                self.broken("internal error")
        except httptools.HttpParserError as exc:
            self.broken(f"bad response from upstream: {exc}")
        if self.out:
            self.flush()
        if self.skip:
            self.skip = False
            self.parser = httptools.HttpResponseParser(self)

    def eof_received(self) -> bool | None:
        if self.core.link is TUNNELLED and not self.closed:
            self.client.run(self.core.tunnel_eof(from_client=False))
            return True
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        was_closed, self.closed = self.closed, True
        if not was_closed:  # not closed by us: the core decides (retry, 502, end of body, cut)
            self.flush()
            self.client.detach(self)
            self.client.run(self.core.upstream_lost())

    def pause_writing(self) -> None:
        self.client.pause_upstream_writes()

    def resume_writing(self) -> None:
        self.client.resume_upstream_writes()

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
        parser = self.parser
        actions = self.core.response_head(
            parser.get_status_code(), self.reason, self.headers, parser.should_keep_alive()
        )
        if self.core.framing.no_body and not self.core.interim:
            self.skip = True  # httptools would wait for a HEAD body: start a fresh parser
        self.act(actions)

    def on_body(self, body: bytes) -> None:
        if self.skip:
            return
        self.core.response_body(len(body))
        if self.core.framing.rechunk:
            self.out += (b"%x\r\n" % len(body), body, b"\r\n")
        else:
            self.out.append(body)

    def on_message_complete(self) -> None:
        if self.skip:
            return
        self.act(self.core.response_complete(self.parser.should_keep_alive() and not self.closed))

    # -- carrying out actions -----------------------------------------------------------------

    def act(self, actions: list[act.Action]) -> None:
        """Answers join the body bytes of this read; anything else runs after them."""
        for action in actions:
            if action[0] is ANSWER:
                self.out.append(action[1])
            else:
                self.flush()
                self.client.do(action)

    def flush(self) -> None:
        if self.out:
            out, self.out = self.out, []
            self.client.answer(out)

    def broken(self, message: str) -> None:
        if not self.core.linked or not self.core.linked.response_started:
            self.out.clear()  # nothing of this answer reached the client: it gets a 502
        else:
            self.flush()
        self.closed = True
        self.client.run(self.core.upstream_broken(message))
        if self.transport is not None:
            self.transport.abort()
