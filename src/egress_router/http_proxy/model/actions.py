"""What the exchange core asks its adapters to do: one small value per action, in order.

Owns: the action vocabulary of ``model.connection`` (write to the client, dial, send a request
upstream, start a tunnel, pause or resume reading, half-close, close, abort, log).
Must not: carry behaviour. The adapters (``client``, ``upstream``, ``dial``) carry actions out;
request and response body bytes never become actions (they go straight to the other transport).

An action is a plain ``(Op, payload)`` tuple, made by the constructors below: a few are made per
request on the hot path, and a tuple costs a tenth of a class instance there. The adapters
dispatch on ``action[0]``; ``payload`` is what the constructor documents.
"""

from __future__ import annotations

import enum
from typing import Any

from egress_router.http_proxy.model.exchange import Exchange
from egress_router.http_proxy.model.rules import Decision


class Op(enum.Enum):
    ANSWER = "bytes for the client, after everything answered before them"
    DIAL = "resolve, check every address and connect for an exchange"
    SEND_UPSTREAM = "bytes for the upstream connection"
    START_TUNNEL = "CONNECT answered: relay bytes both ways from now on"
    LOG = "an exchange is over: its access-log line and metrics"
    ABORT = "reset the client connection (and the upstream)"
    PAUSE_READING = "pause reading from the client"
    RESUME_READING = "resume reading from the client"
    CLOSE = "close the client connection once what was answered is flushed"
    CLOSE_UPSTREAM = "close the upstream connection"
    ABORT_UPSTREAM = "abort the upstream connection"
    EOF_TO_UPSTREAM = "half-close towards the upstream (tunnel)"
    EOF_TO_CLIENT = "half-close towards the client (tunnel)"


Action = tuple[Op, Any]
# Bound once (reading a member from its Enum class is slow on 3.11; these are made per request).
_ANSWER, _SEND, _LOG = Op.ANSWER, Op.SEND_UPSTREAM, Op.LOG


def Answer(data: bytes) -> Action:  # CapWords: reads as the value it makes
    """Payload: the bytes."""
    return (_ANSWER, data)


def Dial(exchange: Exchange, by_name: Decision | None) -> Action:
    """Payload: ``(exchange, by_name)``; the result comes back as ``connected``,
    ``tunnel_ready`` or ``dial_failed``."""
    return (Op.DIAL, (exchange, by_name))


def SendUpstream(parts: list[bytes]) -> Action:
    """Payload: the parts (a request head and the body buffered so far)."""
    return (_SEND, parts)


def StartTunnel(exchange: Exchange, early: bytes) -> Action:
    """Payload: ``(exchange, early)``: client bytes that arrived before the upstream."""
    return (Op.START_TUNNEL, (exchange, early))


def Log(exchange: Exchange) -> Action:
    """Payload: the exchange."""
    return (_LOG, exchange)


def Abort(reason: str) -> Action:
    """Payload: the reason (logged with the exchange)."""
    return (Op.ABORT, reason)


PAUSE_READING: Action = (Op.PAUSE_READING, None)
RESUME_READING: Action = (Op.RESUME_READING, None)
CLOSE: Action = (Op.CLOSE, None)
CLOSE_UPSTREAM: Action = (Op.CLOSE_UPSTREAM, None)
ABORT_UPSTREAM: Action = (Op.ABORT_UPSTREAM, None)
EOF_TO_UPSTREAM: Action = (Op.EOF_TO_UPSTREAM, None)
EOF_TO_CLIENT: Action = (Op.EOF_TO_CLIENT, None)
