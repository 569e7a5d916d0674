"""The HTTP exchange core's named states and bounds (pure data, no behaviour).

Owns: ``Phase`` (the client connection), ``Link`` (the upstream connection), ``Block`` (why
reading from the client is paused), their members bound to module names for the hot path, and
the per-connection bounds (pending body bytes, queued requests) with the reasons for them.
Must not: hold state or decide; ``core``, ``request_side`` and ``response_side`` do.
"""

from __future__ import annotations

import enum


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
