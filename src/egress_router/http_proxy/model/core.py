"""The exchange core's state and the lifecycle of exchanges and of the client connection.

Owns: ``ConnectionCore``: every field of one client connection's state, the adapters'
hot-path queries, starting an exchange (CONNECT port and name level of the policy, upstream
reuse or re-dial), our own answers (``reject``), finishing an exchange (keep-alive, the next
queued request, the doomed one answered last), the client side's EOF, loss, failures,
deadlines (``tick``, time passed in), drain, close and abort, and pausing reading (``block``).
Must not: touch sockets, asyncio or a clock, or see body bytes. The parser events of each side
are ``request_side`` and ``response_side``; ``connection.Connection`` joins them.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from egress_router.http_proxy.model.actions import (
    ABORT_UPSTREAM,
    CLOSE,
    CLOSE_UPSTREAM,
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
from egress_router.http_proxy.model.framing import NOT_FRAMED
from egress_router.http_proxy.model.messages import (
    error_response,
    request_head,
)
from egress_router.http_proxy.model.rules import Decision, Fixed
from egress_router.http_proxy.model.settings import ProxySettings
from egress_router.http_proxy.model.states import (
    BUSY,
    CLOSED,
    CONNECTED,
    DIALING,
    ESTABLISHED,
    HEAD,
    IDLE,
    LINKED,
    NO_LINK,
    PENDING_LIMIT,
    READY,
    TUNNEL,
    TUNNELLED,
    Block,
    Link,
)


class ConnectionCore:
    """One client connection's state. Public fields are read by the adapters; ``activity`` is set
    by them when bytes of the answered request, its answer or a tunnel move (the I/O deadline)."""

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
