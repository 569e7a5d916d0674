"""Response framing: how the end of an upstream answer is found (pure, table-driven).

Owns: ``Framing`` (length, chunked, until EOF, none: HEAD/1xx/204/304) and ``frame_response``,
which picks it from the request method, the status and the response's framing fields.
Must not: parse bytes (httptools does) or hold connection state (``response_side`` does).
"""

from __future__ import annotations

from typing import NamedTuple


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
