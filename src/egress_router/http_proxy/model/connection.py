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

from egress_router.http_proxy.model.framing import NOT_FRAMED, Framing, frame_response
from egress_router.http_proxy.model.request_side import RequestSide
from egress_router.http_proxy.model.response_side import ResponseSide
from egress_router.http_proxy.model.states import (
    BUSY,
    CLOSED,
    CONNECTED,
    DIALING,
    ESTABLISHED,
    HEAD,
    IDEMPOTENT,
    IDLE,
    LAST_CHUNK,
    LINKED,
    NO_LINK,
    PENDING_LIMIT,
    QUEUE_LIMIT,
    READY,
    TUNNEL,
    TUNNELLED,
    Block,
    Link,
    Phase,
)

__all__ = [
    "BUSY",
    "CLOSED",
    "CONNECTED",
    "DIALING",
    "ESTABLISHED",
    "HEAD",
    "IDEMPOTENT",
    "IDLE",
    "LAST_CHUNK",
    "LINKED",
    "NOT_FRAMED",
    "NO_LINK",
    "PENDING_LIMIT",
    "QUEUE_LIMIT",
    "READY",
    "TUNNEL",
    "TUNNELLED",
    "Block",
    "Connection",
    "Framing",
    "Link",
    "Phase",
    "frame_response",
]


class Connection(RequestSide, ResponseSide):
    """One client connection: the request side's and the response side's events on one state
    (``core.ConnectionCore``). The adapters hold one per accepted client connection."""
