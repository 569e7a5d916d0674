"""A scripted adapter for the exchange core: settings, and requests/answers as event sequences."""

from __future__ import annotations

from egress_router.http_proxy.model import actions as act
from egress_router.http_proxy.model.connection import Connection
from egress_router.http_proxy.model.exchange import Exchange
from egress_router.http_proxy.model.rules import parse_destinations
from egress_router.http_proxy.model.settings import ProxySettings

RULES = parse_destinations("!*.example.com\n!192.168.1.0/24\n*\n")
SETTINGS = ProxySettings(
    rules=RULES,
    listen=("198.18.0.2",),
    connect_ports=frozenset({443}),
    max_header_bytes=4096,
    header_timeout=10.0,
    idle_timeout=60.0,
    io_timeout=900.0,
)
Headers = list[tuple[bytes, bytes]]


def connection(now: float = 0.0, settings: ProxySettings = SETTINGS) -> Connection:
    return Connection(settings, settings.rules.decide_name, b"1.1 egress-router", now)


def head(
    conn: Connection,
    url: bytes = b"http://web.test/",
    method: bytes = b"GET",
    headers: Headers | None = None,
    *,
    keep_alive: bool = True,
    version11: bool = True,
    now: float = 0.0,
) -> tuple[Exchange, list[act.Action]]:
    """One request head, as httptools reports it (one feed)."""
    ex = conn.message_begin(now)
    conn.url(ex, url)
    for name, value in headers or [(b"Host", b"x")]:
        conn.field(ex, name, value)
    actions = conn.head_complete(method, version11, keep_alive)
    if method != b"CONNECT" and not ex.body_chunked and not (ex.head and ex.head.length):
        conn.message_complete()
    return ex, actions + conn.end_feed(100)


def answer(
    conn: Connection,
    status: int = 200,
    headers: Headers | None = None,
    body: int = 2,
    *,
    keep_alive: bool = True,
) -> list[act.Action]:
    """A whole response from the upstream."""
    fields = [(b"Content-Length", str(body).encode())] if headers is None else headers
    conn.upstream_data()
    actions = conn.response_head(status, b"OK", fields, keep_alive)
    if conn.framing.no_body or status < 200:
        return actions
    conn.response_body(body)
    return actions + conn.response_complete(keep_alive)


def kinds(actions: list[act.Action]) -> list[str]:
    """Actions as short names, for readable assertions."""
    out = []
    for op, payload in actions:
        if op is act.Op.ANSWER:
            out.append("answer " + payload.split(b"\r\n", 1)[0].decode())
        elif op is act.Op.ABORT:
            out.append(f"abort {payload}")
        else:
            out.append(NAMES[op])
    return out


NAMES = {
    act.Op.DIAL: "dial",
    act.Op.SEND_UPSTREAM: "sendupstream",
    act.Op.START_TUNNEL: "starttunnel",
    act.Op.LOG: "log",
    act.Op.PAUSE_READING: "pause",
    act.Op.RESUME_READING: "resume",
    act.Op.CLOSE: "close",
    act.Op.CLOSE_UPSTREAM: "close upstream",
    act.Op.ABORT_UPSTREAM: "abort upstream",
    act.Op.EOF_TO_UPSTREAM: "eof upstream",
    act.Op.EOF_TO_CLIENT: "eof client",
}


def data(action: act.Action) -> bytes:
    """The bytes of an answer or of what is sent upstream (joined)."""
    op, payload = action
    assert op in (act.Op.ANSWER, act.Op.SEND_UPSTREAM), op
    return payload if op is act.Op.ANSWER else b"".join(payload)
