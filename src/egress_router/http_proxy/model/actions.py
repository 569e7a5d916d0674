"""What the exchange core asks its adapters to do: one small value per action, in order.

Owns: the action vocabulary of ``model.connection`` (write to the client, dial, send a request
upstream, start a tunnel, pause or resume reading, half-close, close, abort, log).
Must not: carry behaviour. The adapters (``client``, ``upstream``, ``dial``) carry actions out;
request and response body bytes never become actions (they go straight to the other transport).
"""

from __future__ import annotations

from dataclasses import dataclass

from egress_router.http_proxy.model.exchange import Exchange
from egress_router.http_proxy.model.rules import Decision


@dataclass(frozen=True, slots=True)
class Answer:
    """Bytes for the client, after everything answered before them."""

    data: bytes


@dataclass(frozen=True, slots=True)
class Dial:
    """Resolve the exchange's target, check every address, connect (``dial``); the result comes
    back as ``connected``, ``dial_failed`` or ``tunnel_ready``."""

    exchange: Exchange
    by_name: Decision | None


@dataclass(frozen=True, slots=True)
class SendUpstream:
    """Bytes for the upstream connection (a request head and the body buffered so far)."""

    parts: list[bytes]


@dataclass(frozen=True, slots=True)
class StartTunnel:
    """CONNECT is answered: relay bytes both ways from now on, ``early`` first (client bytes
    that arrived before the upstream was connected)."""

    exchange: Exchange
    early: bytes


@dataclass(frozen=True, slots=True)
class Log:
    """The exchange is over (answered, refused or cut): one access-log line and its metrics."""

    exchange: Exchange


@dataclass(frozen=True, slots=True)
class Abort:
    """Reset the client connection (and the upstream): nothing more can be answered."""

    reason: str


@dataclass(frozen=True, slots=True)
class Simple:
    """An action without data; the instances below are the only ones."""

    name: str


PAUSE_READING = Simple("pause reading from the client")
RESUME_READING = Simple("resume reading from the client")
CLOSE = Simple("close the client connection once what was answered is flushed")
CLOSE_UPSTREAM = Simple("close the upstream connection")
ABORT_UPSTREAM = Simple("abort the upstream connection")
EOF_TO_UPSTREAM = Simple("half-close towards the upstream (tunnel)")
EOF_TO_CLIENT = Simple("half-close towards the client (tunnel)")

Action = Answer | Dial | SendUpstream | StartTunnel | Log | Abort | Simple
