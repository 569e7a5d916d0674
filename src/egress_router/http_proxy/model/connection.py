"""The HTTP proxy's exchange core: every decision for one client connection, without I/O.

Owns: the connection's named states (``Phase``, the upstream ``Link``, why reading is paused),
request heads accepted or refused and why (size on the wire, target, CONNECT port, the name level
of the policy), the pipelining queue and its bounds, keep-alive, reuse or re-dial of the upstream
connection, response framing (length, chunked, until EOF, 1xx, HEAD/204/304), the CONNECT switch,
timeouts against deadlines passed in, and the order in which answers and errors reach the client.
Events come in as method calls (parsed heads from httptools in the adapters, upstream connected
or lost, EOF, the clock); actions (``model.actions``) come out, for the adapters to carry out.
Must not: touch sockets, asyncio or a clock, or see body bytes (only their counts): request and
response bodies and tunnel bytes go straight to the other transport. The address level of the
policy runs in ``dial`` (after resolving), with the same pure rules.

Protocol errors found while parsing (``url``, ``field``, ``head_complete``) raise
``ProtocolError`` carrying the status; the adapter hands them back through ``fail``.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable
from typing import NamedTuple

from egress_router.errors import ProtocolError
from egress_router.http_proxy.model.actions import (
    ABORT_UPSTREAM,
    CLOSE,
    CLOSE_UPSTREAM,
    EOF_TO_CLIENT,
    EOF_TO_UPSTREAM,
    PAUSE_READING,
    RESUME_READING,
    Abort,
    Action,
    Answer,
    Dial,
    Log,
    SendUpstream,
    StartTunnel,
)
from egress_router.http_proxy.model.exchange import Exchange
from egress_router.http_proxy.model.messages import (
    Headers,
    error_response,
    parse_absolute,
    parse_authority,
    request_head,
    response_head,
    scan,
)
from egress_router.http_proxy.model.rules import Decision, Fixed
from egress_router.http_proxy.model.settings import ProxySettings


class Phase(enum.Enum):
    """The client connection."""

    IDLE = "idle"  # nothing in flight, no head begun
    HEAD = "head"  # a head is arriving, nothing in flight
    BUSY = "busy"  # a request is being answered (more may be queued, a head may be arriving)
    TUNNEL = "tunnel"  # CONNECT established: bytes only
    CLOSED = "closed"


class Link(enum.Enum):
    """The upstream connection of this client connection (at most one)."""

    NONE = "none"
    DIALING = "dialing"  # resolving and connecting for the active exchange
    READY = "ready"  # connected, idle, reusable for the same host and port
    BUSY = "busy"  # carrying the active exchange
    TUNNEL = "tunnel"  # carrying a CONNECT tunnel (relayed by the event loop)


class Block(enum.Enum):
    """Why reading from the client is paused (reading resumes when none is left)."""

    PENDING = "request bytes buffered"
    QUEUE = "pipelined requests queued"
    UPSTREAM = "upstream not writable"
    FAILED = "a pipelined request failed"


# Members bound to module names once: on Python 3.11, reading a member from its Enum class costs
# about ten times reading a global, and the hot path tests states several times per request.
IDLE, HEAD, BUSY, TUNNEL, CLOSED = Phase.IDLE, Phase.HEAD, Phase.BUSY, Phase.TUNNEL, Phase.CLOSED
NO_LINK, DIALING, READY, LINKED, TUNNELLED = (
    Link.NONE,
    Link.DIALING,
    Link.READY,
    Link.BUSY,
    Link.TUNNEL,
)

# Request body bytes buffered per connection while the upstream connects or is slow; past it we
# stop reading from the client (the kernel's socket buffer holds the rest, not us).
PENDING_LIMIT = 1024 * 1024
# Requests parsed and waiting behind the one being answered (pipelining). Past it we stop
# reading: a client that pipelines faster than the upstream answers costs this many heads.
QUEUE_LIMIT = 32
# Least wire bytes of a head beyond what the parser reports: "METHOD SP url SP HTTP/1.1 CRLF"
# and the final CRLF; per field the colon and CRLF (llhttp requires CR before LF).
LINE_OVERHEAD = 13
FIELD_OVERHEAD = 3
CONNECTED = frozenset({READY, LINKED, TUNNELLED})  # an upstream Protocol exists
IDEMPOTENT = frozenset({b"GET", b"HEAD", b"OPTIONS"})
ESTABLISHED = b"HTTP/1.1 200 Connection established\r\n\r\n"
LAST_CHUNK = b"0\r\n\r\n"


class Framing(NamedTuple):
    """How a response body reaches the client."""

    rechunk: bool  # we chunk it (the upstream chunked it, or its length is unknown)
    until_eof: bool  # it ends when the upstream closes
    no_body: bool  # HEAD, 204, 304
    close: bool  # the client connection closes after it


# Every combination made once: ``frame_response`` runs once per answer.
_FRAMINGS = {
    (r, u, n, c): Framing(r, u, n, c)
    for r in (False, True)
    for u in (False, True)
    for n in (False, True)
    for c in (False, True)
}


def frame_response(
    method: bytes,
    status: int,
    length: int | None,
    chunked: bool,
    *,
    version11: bool,
    keep_alive: bool,
    draining: bool,
) -> Framing:
    """RFC 9112 §6.3 as a proxy applies it towards the client."""
    no_body = method == b"HEAD" or status in (204, 304)
    close = not keep_alive or not version11 or draining
    rechunk = until_eof = False
    if not no_body and (chunked or length is None):
        until_eof = not chunked
        if version11:
            rechunk = True
        else:
            close = True  # an HTTP/1.0 client reads until we close
    return _FRAMINGS[rechunk, until_eof, no_body, close]


NOT_FRAMED = _FRAMINGS[False, False, False, False]


class Connection:
    """One client connection. Public fields are read by the adapters; ``activity`` is set by
    them when bytes of the answered request, its answer or a tunnel move (the I/O deadline)."""

    def __init__(
        self,
        settings: ProxySettings,
        decide_name: Callable[[str], Decision | None],
        via: bytes,
        now: float,
    ) -> None:
        self.settings = settings
        self.decide_name = decide_name
        self.via = via
        self.now = now
        self.phase = IDLE
        self.since = now  # start of the current phase, moved by activity (not in HEAD)
        self.activity = False
        self.current: Exchange | None = None  # being parsed
        self.active: Exchange | None = None  # being answered
        self.queue: deque[Exchange] = deque()
        self.link = NO_LINK
        self.linked: Exchange | None = None  # the exchange the upstream link carries
        self.dialing: Exchange | None = None
        self.link_key: tuple[str, int] | None = None
        self.link_address = "-"
        self.link_rule = "-"
        self.link_rule_id = "none"
        self.reused = False  # the link carried an earlier exchange
        self.received = False  # a byte of the linked exchange's answer arrived
        self.framing = NOT_FRAMED
        self.interim = False  # a 1xx answer is being parsed
        self.blocks: set[Block] = set()
        self.pending_bytes = 0
        self.head_started: float | None = None  # first byte of the unfinished head
        self.head_bytes = 0  # least wire size of the head being parsed
        self.head_span = 0  # bytes fed after the feed that began the head, while unfinished
        self.feeds = 0  # feeds of client bytes to the parser so far
        self.head_feed = 0  # the feed in which the unfinished head began
        self.doomed: tuple[int, str] | None = None  # a pipelined request failed: answer it last
        self.tunnel_ex: Exchange | None = None  # CONNECT parsed: later client bytes are its own
        self.client_eof = False
        self.eofs = 0  # half-closes seen in a tunnel
        self.draining = False

    # -- queries for the adapters' hot paths -------------------------------------------------

    @property
    def reading_stopped(self) -> bool:
        return self.doomed is not None or self.phase is CLOSED

    def expects_head(self) -> bool:
        """The next client bytes belong to a head (between requests or inside one)."""
        current = self.current
        return current is None or not current.method

    def streams(self, ex: Exchange) -> bool:
        """Request body bytes of ``ex`` can go straight to the upstream now."""
        return ex is self.linked and self.link is LINKED

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

    # -- exchanges -----------------------------------------------------------------------------

    def start(self, ex: Exchange) -> list[Action]:
        """Check the policy's name level and reach the upstream for ``ex`` (now active)."""
        self.active = ex
        self.activity = True  # its I/O deadline runs from now
        target = ex.target
        assert target is not None
        ports = self.settings.connect_ports
        if ex.is_connect and ports is not None and target.port not in ports:
            ex.rule_id = Fixed.CONNECT_PORT
            return self.reject(ex, 403, f"CONNECT to port {target.port} is not allowed")
        by_name = None
        if not target.is_address:
            by_name = self.decide_name(target.host)
            if by_name is not None and not by_name.allowed:
                ex.rule = by_name.rule.describe() if by_name.rule.number else by_name.rule.text
                ex.rule_id = by_name.rule.label
                return self.reject(ex, 403, by_name.reason())
        if self.link is READY and self.link_key == (target.host, target.port):
            ex.address, ex.rule = self.link_address, self.link_rule
            ex.rule_id = self.link_rule_id
            self.reused = True
            return self.send(ex)
        actions: list[Action] = []
        if self.link in CONNECTED:
            actions.append(CLOSE_UPSTREAM)
        self.link = DIALING
        self.dialing = ex
        actions.append(Dial(ex, by_name))
        return actions

    def send(self, ex: Exchange) -> list[Action]:
        assert ex.target is not None and ex.head is not None
        self.link = LINKED
        self.linked = ex
        self.received = False
        head = request_head(ex.method, ex.target, ex.head, ex.body_chunked, self.via)
        if not ex.pending:
            return [SendUpstream([head])]
        return [SendUpstream([head, *ex.pending]), *self.take_pending(ex)]

    def take_pending(self, ex: Exchange) -> list[Action]:
        size = sum(map(len, ex.pending))
        ex.pending = []
        self.pending_bytes = max(0, self.pending_bytes - size)
        return self.unblock(Block.PENDING) if self.pending_bytes <= PENDING_LIMIT else []

    def accepts(self, ex: Exchange) -> bool:
        """A dial for ``ex`` finished: is its connection still wanted?"""
        return self.phase is not CLOSED and ex is self.active and ex is self.dialing

    def connected(self, ex: Exchange, address: str, rule: str) -> list[Action]:
        """The upstream for ``ex`` is connected and checked (only when ``accepts(ex)``)."""
        assert ex.target is not None
        self.dialing = None
        self.reused = False
        self.link_key = (ex.target.host, ex.target.port)
        ex.address, ex.rule = self.link_address, self.link_rule = address, rule
        self.link_rule_id = ex.rule_id  # set by the dial with ``rule``
        if ex.is_connect:
            return self.tunnel(ex, TUNNELLED)
        return self.send(ex)

    def tunnel_ready(self, ex: Exchange, address: str, rule: str) -> list[Action]:
        """CONNECT connected on a raw socket the kernel will splice (no upstream link)."""
        self.dialing = None
        ex.address, ex.rule = address, rule
        return self.tunnel(ex, NO_LINK)

    def tunnel(self, ex: Exchange, link: Link) -> list[Action]:
        ex.status = 200
        ex.response_started = True
        self.phase = TUNNEL
        self.link = link
        early = b"".join(ex.pending)
        ex.pending = []
        self.pending_bytes = 0
        self.blocks.clear()  # the adapter reads the client again its own way (or splices)
        self.tunnel_ex = None
        return [Answer(ESTABLISHED), StartTunnel(ex, early)]

    def dial_failed(self, ex: Exchange, status: int, message: str) -> list[Action]:
        if not self.accepts(ex):
            return []
        self.dialing = None
        self.link = NO_LINK
        return self.reject(ex, status, message)

    def reject(self, ex: Exchange, status: int, message: str) -> list[Action]:
        """Answer ``ex`` ourselves (403/502/504); the connection survives when it can."""
        ex.status = status
        if ex.rule == "-" and status == 403:
            ex.rule = message
            if ex.rule_id == Fixed.NONE:
                ex.rule_id = Fixed.OTHER
        ex.error = ex.error or message
        if self.phase is CLOSED:
            return []
        if self.dialing is ex:
            self.dialing = None
            self.link = NO_LINK
        keep = ex.keep_alive and ex.request_done and not ex.is_connect and not self.draining
        ex.keep_alive = keep
        ex.response_started = True
        return [Answer(error_response(status, message, close=not keep)), *self.finish(ex, False)]

    def finish(self, ex: Exchange, keep_link: bool) -> list[Action]:
        """``ex`` is answered; the next request starts or the connection closes."""
        actions = self.log(ex)
        if self.linked is ex:
            self.linked = None
            if keep_link and self.link is LINKED:
                self.link = READY
            else:
                actions.append(CLOSE_UPSTREAM)
                self.link = NO_LINK
        if not (ex.keep_alive and ex.request_done) or self.draining:
            return actions + self.close()
        if self.client_eof and not self.queue:
            return actions + self.close()
        self.active = None
        if self.queue:
            nxt = self.queue.popleft()
            return actions + self.unblock(Block.QUEUE) + self.start(nxt)
        if self.doomed is not None:
            return actions + self.fail(*self.doomed)
        head_arriving = self.current is not None and not self.current.method
        self.phase = HEAD if head_arriving else IDLE
        self.since = self.now
        return actions

    def log(self, ex: Exchange) -> list[Action]:
        if ex.logged:
            return []
        ex.logged = True
        return [Log(ex)]

    # -- the response side (events from the upstream's parser) -----------------------------

    def upstream_data(self) -> None:
        """Bytes of an answer arrived (before they are parsed)."""
        self.activity = True
        self.received = True

    def response_head(
        self, status: int, reason: bytes, headers: Headers, keep_alive: bool
    ) -> list[Action]:
        """A response head; with no body (HEAD/204/304) the exchange is finished here too."""
        ex = self.linked if self.link is LINKED else None
        if ex is None:
            raise ProtocolError("unsolicited response", 502)
        if status < 200:
            if status == 101:
                raise ProtocolError("upstream switched protocols unasked", 502)
            self.interim = True
            if not ex.version11:
                return []
            return [
                Answer(response_head(status, reason, scan(headers), chunked=False, close=False))
            ]
        self.interim = False
        ex.status = status
        head = scan(headers)
        framing = self.framing = frame_response(
            ex.method,
            status,
            head.length,
            head.chunked,
            version11=ex.version11,
            keep_alive=ex.keep_alive,
            draining=self.draining,
        )
        if framing.close:
            ex.keep_alive = False
        ex.response_started = True
        data = response_head(status, reason, head, chunked=framing.rechunk, close=framing.close)
        if framing.no_body:
            return [Answer(data), *self.finish(ex, keep_alive)]
        return [Answer(data)]

    def response_body(self, size: int) -> None:
        ex = self.linked
        if ex is not None:
            ex.down_bytes += size

    def response_complete(self, keep_alive: bool) -> list[Action]:
        if self.interim:
            self.interim = False
            return []
        ex = self.linked
        if ex is None or self.link is not LINKED:
            return []
        actions: list[Action] = [Answer(LAST_CHUNK)] if self.framing.rechunk else []
        return actions + self.finish(ex, keep_alive)

    def upstream_broken(self, message: str) -> list[Action]:
        """The upstream sent something we cannot relay (the answer is 502 or the client cut)."""
        ex = self.linked
        self.linked = None
        self.link = NO_LINK
        actions: list[Action] = [ABORT_UPSTREAM]
        if ex is None:
            return actions
        if ex.response_started:
            return actions + self.abort(message)
        return actions + self.reject(ex, 502, message)

    def upstream_lost(self) -> list[Action]:
        """The upstream link closed (not by us)."""
        link, ex = self.link, self.linked
        self.link = NO_LINK
        self.linked = None
        if link is TUNNELLED:
            return self.close()
        if link is not LINKED or ex is None or ex is not self.active:
            return []
        if not ex.response_started:
            if self.reused and not self.received and ex.method in IDEMPOTENT and not ex.up_bytes:
                # The server closed an idle kept-alive connection as we reused it: retry once.
                assert ex.target is not None
                self.reused = False
                self.link = DIALING
                self.dialing = ex
                return [Dial(ex, self.decide_name(ex.target.host))]
            return self.reject(ex, 502, "upstream closed the connection without answering")
        if self.framing.until_eof:
            actions: list[Action] = [Answer(LAST_CHUNK)] if self.framing.rechunk else []
            return actions + self.finish(ex, False)
        return self.abort("upstream closed mid-response")

    def upstream_paused(self) -> list[Action]:
        return self.block(Block.UPSTREAM)

    def upstream_resumed(self) -> list[Action]:
        return self.unblock(Block.UPSTREAM)

    # -- tunnels ---------------------------------------------------------------------------------

    def tunnel_eof(self, from_client: bool) -> list[Action]:
        """A half-close in a tunnel relayed by the event loop: pass it on; both: close."""
        self.eofs += 1
        action = EOF_TO_UPSTREAM if from_client else EOF_TO_CLIENT
        if self.eofs >= 2:
            return [action, *self.close()]
        return [action]

    def tunnel_closed(self, error: str) -> list[Action]:
        """The spliced tunnel ended (both sides closed, an error, a timeout or shutdown)."""
        actions: list[Action] = []
        ex = self.active
        if ex is not None:
            ex.error = ex.error or error
            actions += self.log(ex)
        self.phase = CLOSED
        return [*actions, Abort(error) if error else CLOSE]

    # -- the client connection ----------------------------------------------------------------

    def eof(self) -> bool:
        """The client half-closed (outside tunnels): True keeps the connection to answer."""
        self.client_eof = True
        return self.active is not None or bool(self.queue)

    def lost(self) -> list[Action]:
        """The client connection is gone."""
        actions: list[Action] = []
        ex = self.active
        if ex is not None and not ex.logged:
            if not (ex.is_connect and ex.status == 200):
                ex.error = ex.error or "connection closed before the answer was complete"
            actions += self.log(ex)
        self.phase = CLOSED
        if self.link in CONNECTED:
            actions.append(CLOSE_UPSTREAM)
        self.link = NO_LINK
        self.linked = self.dialing = None
        return actions

    def fail(self, status: int, message: str) -> list[Action]:
        """A protocol error from the client: answer if nothing was sent yet, then close.

        When it concerns a request pipelined behind one still being answered, reading stops
        (nothing more is parsed or buffered) and the error is answered after the earlier ones."""
        if self.phase is CLOSED:
            return []
        active = self.active
        if active is not None and self.current is not active:
            if self.doomed is None:
                self.doomed = (status, message)
                self.head_started = None
                return self.block(Block.FAILED)
            return []
        ex = active or self.current or Exchange(self.now)
        ex.status, ex.error = status, message
        actions: list[Action] = []
        if not ex.response_started:
            ex.response_started = True
            actions.append(Answer(error_response(status, message)))
        return actions + self.log(ex) + self.close()

    def tick(self, now: float) -> list[Action]:
        """The clock (about once a second): enforce every deadline."""
        self.now = now
        if self.phase is CLOSED:
            return []
        if self.activity:
            self.activity = False
            if self.phase is not HEAD:
                self.since = now
        started = self.head_started  # in any phase: pipelined heads have the same deadline
        if started is not None and now - started > self.settings.header_timeout:
            return self.fail(408, "request head not received in time")
        elapsed = now - self.since
        if self.phase is IDLE and elapsed > self.settings.idle_timeout:
            return self.close()
        if self.phase in (BUSY, TUNNEL) and elapsed > self.settings.io_timeout:
            ex = self.active
            if ex is not None and not ex.response_started:
                ex.keep_alive = False
                return self.reject(ex, 504, "upstream did not answer in time")
            return self.abort("idle timeout")
        return []

    def drain(self) -> list[Action]:
        """Shutdown: finish what is in flight, close what is idle."""
        self.draining = True
        if self.phase is IDLE and self.active is None:
            return self.close()
        return []

    def close(self) -> list[Action]:
        actions: list[Action] = []
        if self.phase is not CLOSED:
            self.phase = CLOSED
            actions.append(CLOSE)
        if self.link in CONNECTED:
            actions.append(CLOSE_UPSTREAM)
        self.link = NO_LINK
        self.linked = self.dialing = None
        return actions

    def abort(self, reason: str) -> list[Action]:
        actions: list[Action] = []
        ex = self.active
        if ex is not None and self.phase is not CLOSED:
            ex.error = reason
            actions += self.log(ex)
        self.phase = CLOSED
        actions.append(Abort(reason))
        if self.link in CONNECTED:
            actions.append(ABORT_UPSTREAM)
        self.link = NO_LINK
        self.linked = self.dialing = None
        return actions

    # -- reading from the client --------------------------------------------------------------

    def block(self, reason: Block) -> list[Action]:
        first = not self.blocks
        self.blocks.add(reason)
        return [PAUSE_READING] if first else []

    def unblock(self, reason: Block) -> list[Action]:
        if reason not in self.blocks:
            return []
        self.blocks.discard(reason)
        if self.blocks or self.phase is CLOSED:
            return []
        return [RESUME_READING]
