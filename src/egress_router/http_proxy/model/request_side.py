"""The request side of the exchange core: events from the client's parser.

Owns: a head's bounds on the wire (target, field and head sizes, the head deadline's start),
its target and framing accepted or refused (``ProtocolError`` with the status), the pipelining
queue bounds, body bytes streamed or buffered (counts only), CONNECT and Upgrade taking the
rest of the bytes.
Must not: touch sockets or see body bytes; the lifecycle is ``core.ConnectionCore``.
"""

from __future__ import annotations

from egress_router.errors import ProtocolError
from egress_router.http_proxy.model.actions import (
    Action,
)
from egress_router.http_proxy.model.core import ConnectionCore
from egress_router.http_proxy.model.exchange import Exchange
from egress_router.http_proxy.model.messages import (
    parse_absolute,
    parse_authority,
    scan,
)
from egress_router.http_proxy.model.states import (
    BUSY,
    FIELD_OVERHEAD,
    HEAD,
    IDLE,
    LINE_OVERHEAD,
    LINKED,
    PENDING_LIMIT,
    QUEUE_LIMIT,
    Block,
)


class RequestSide(ConnectionCore):
    """The client parser's events (httptools callbacks in ``client``)."""

    # -- the request side (events from the client's parser) ---------------------------------

    def head_seen(self, now: float) -> None:
        """A byte of a head arrived (perhaps held before the parser sees it)."""
        if self.head_started is None:
            self.head_started = now

    def message_begin(self, now: float) -> Exchange:
        if self.head_started is None:  # the deadline runs from the first byte, held ones too
            self.head_started = now
        ex = self.current = Exchange(now)
        self.head_bytes = LINE_OVERHEAD
        self.head_span = 0
        self.head_feed = self.feeds
        if self.phase is IDLE:
            self.phase = HEAD
            self.since = now
        return ex

    def url(self, ex: Exchange, part: bytes) -> None:
        ex.url += part
        self.head_bytes += len(part)
        if len(ex.url) > self.settings.max_header_bytes:
            raise ProtocolError("request target too long", 414)

    def field(self, ex: Exchange, name: bytes, value: bytes) -> None:
        # Counted as on the wire, not just names and values: 20,000 "a:b" fields are 100 KB.
        self.head_bytes += len(name) + len(value) + FIELD_OVERHEAD
        if self.head_bytes > self.settings.max_header_bytes:
            raise ProtocolError("request head too large", 431)
        ex.headers.append((name, value))

    def head_complete(self, method: bytes, version11: bool, keep_alive: bool) -> list[Action]:
        ex = self.current
        assert ex is not None
        self.head_started = None
        self.head_bytes += len(method)
        if self.head_bytes > self.settings.max_header_bytes:
            raise ProtocolError("request head too large", 431)
        ex.method, ex.version11, ex.keep_alive = method, version11, keep_alive
        if method == b"CONNECT":
            ex.is_connect = True
            ex.target = parse_authority(ex.url)
            ex.request_done = True
        else:
            ex.target = parse_absolute(ex.url)
            ex.head = head = scan(ex.headers)
            ex.body_chunked = head.chunked
            ex.request_done = not head.chunked and not head.length
        ex.headers = []  # the scanned head holds what we send: queued requests stay small
        if self.phase is HEAD:
            self.phase = BUSY
            self.since = self.now
        if self.active is None:
            return self.start(ex)
        self.queue.append(ex)
        return []

    def end_feed(self, size: int) -> list[Action]:
        """``size`` bytes were fed to the parser (the adapter feeds in slices)."""
        feed = self.feeds
        self.feeds = feed + 1
        current = self.current
        if current is not None and not current.method and self.head_feed != feed:
            # A head still unfinished that began in an earlier feed: all of this one is its.
            self.head_span += size
            if self.head_span > self.settings.max_header_bytes:
                return self.fail(431, "request head too large")
        if len(self.queue) >= QUEUE_LIMIT:
            return self.block(Block.QUEUE)
        return []

    def body(self, ex: Exchange, size: int) -> bool:
        """Request body bytes of ``ex`` were parsed; True if they can go straight upstream
        (otherwise the adapter hands them to ``buffer``)."""
        if ex is self.active:
            self.activity = True  # only the answered request's bytes keep the exchange alive
        ex.up_bytes += size
        return ex is self.linked and self.link is LINKED

    def buffer(self, ex: Exchange, parts: list[bytes]) -> list[Action]:
        """Request bytes for an upstream not connected (or not ours) yet: held, bounded."""
        size = sum(map(len, parts))
        ex.pending += parts
        if ex.is_connect:
            ex.up_bytes += size
            self.activity = True
        self.pending_bytes += size
        if self.pending_bytes > PENDING_LIMIT:
            return self.block(Block.PENDING)
        return []

    def message_complete(self) -> Exchange | None:
        """The request's body ended; returns it when a chunked body needs its last chunk."""
        ex = self.current
        self.current = None
        if ex is None or ex.is_connect:
            return None
        ex.request_done = True
        return ex if ex.body_chunked else None

    def upgraded(self) -> Exchange | None:
        """The parser stopped at CONNECT (or an Upgrade request, relayed as a plain one): the
        CONNECT exchange that owns every later client byte, or None to parse on."""
        active = self.active
        if active is not None and active.is_connect:
            ex: Exchange | None = active
        elif self.queue and self.queue[-1].is_connect:
            ex = self.queue[-1]
        else:
            return None
        self.current = None
        self.tunnel_ex = ex
        return ex
