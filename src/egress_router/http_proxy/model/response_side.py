"""The response side of the exchange core: events from the upstream's parser, and tunnels.

Owns: an answer's head (1xx, framing, keep-alive of the link, unsolicited or unasked switches
refused), its body counts and end, the upstream broken or lost (before the first byte: re-dial
an idempotent request on a reused link, else 502; after it: cut), flow control from the
upstream, and a tunnel's half-closes and end.
Must not: touch sockets or see body bytes; the lifecycle is ``core.ConnectionCore``.
"""

from __future__ import annotations

from egress_router.errors import ProtocolError
from egress_router.http_proxy.model.actions import (
    ABORT_UPSTREAM,
    CLOSE,
    EOF_TO_CLIENT,
    EOF_TO_UPSTREAM,
    Abort,
    Action,
    Answer,
    Dial,
)
from egress_router.http_proxy.model.core import ConnectionCore
from egress_router.http_proxy.model.framing import frame_response
from egress_router.http_proxy.model.messages import (
    Headers,
    response_head,
    scan,
)
from egress_router.http_proxy.model.states import (
    CLOSED,
    DIALING,
    IDEMPOTENT,
    LAST_CHUNK,
    LINKED,
    NO_LINK,
    TUNNELLED,
    Block,
)


class ResponseSide(ConnectionCore):
    """The upstream parser's events (``upstream``) and the tunnel's (``client``, ``splice``)."""

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
