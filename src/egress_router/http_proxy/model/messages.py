"""HTTP/1.1 message heads as the proxy rewrites them: hop-by-hop headers, framing, errors.

Owns: turning a parsed request or response head into the bytes we send on the next hop
(RFC 9110 §7.6.1: drop hop-by-hop fields and every field named in ``Connection``; set our own
framing and ``Via``), parsing request targets (absolute-form, authority-form, IPv6 literals),
and the short error responses (400, 403, 431, 502, 503, 504).
Must not: touch sockets or decide policy.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import httptools

from egress_router.common.endpoints import split_host_port
from egress_router.common.values import is_decimal, parse_port
from egress_router.errors import ProtocolError

# RFC 9110 §7.6.1 plus the de-facto ones every proxy drops.
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)

REASONS = {
    400: "Bad Request",
    403: "Forbidden",
    405: "Method Not Allowed",
    408: "Request Timeout",
    431: "Request Header Fields Too Large",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}

Headers = list[tuple[bytes, bytes]]


@dataclass(frozen=True)
class Target:
    """Where a request goes: host (a name, or an address without brackets), port, origin-form."""

    host: str
    port: int
    path: bytes
    is_address: bool

    @property
    def authority(self) -> bytes:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return (host if self.port == 80 else f"{host}:{self.port}").encode()


def _host(raw: str) -> tuple[str, bool]:
    text = raw.strip("[]") if raw.startswith("[") and raw.endswith("]") else raw
    if "%" in text:
        raise ProtocolError(f"bad host {raw!r} (no zone identifiers)")
    try:
        return str(ipaddress.ip_address(text)), True
    except ValueError:
        pass
    if not text or ":" in text or "%" in text:
        raise ProtocolError(f"bad host {raw!r}")
    return text.lower().removesuffix("."), False


_TARGETS: dict[bytes, Target] = {}
TARGET_CACHE_SIZE = 4096  # parsed request targets kept (a pure function of the bytes)


def parse_absolute(url: bytes) -> Target:
    """``http://host[:port]/path?query`` (the only scheme a forward proxy relays in clear)."""
    try:
        return _TARGETS[url]
    except KeyError:
        pass
    target = _parse_absolute(url)
    if len(_TARGETS) >= TARGET_CACHE_SIZE:
        _TARGETS.clear()
    _TARGETS[url] = target
    return target


def _parse_absolute(url: bytes) -> Target:
    try:
        parsed = httptools.parse_url(url)
    except httptools.HttpParserInvalidURLError:
        raise ProtocolError("bad request target") from None
    if parsed.schema is None or parsed.host is None:
        raise ProtocolError("a proxy needs an absolute URL (http://host/path)")
    if parsed.schema.lower() != b"http":
        raise ProtocolError(f"scheme {parsed.schema.decode('latin-1')!r} is not supported")
    if parsed.userinfo:
        raise ProtocolError("credentials in the URL are not forwarded")
    host, is_address = _host(parsed.host.decode("latin-1"))
    path = parsed.path or b"/"
    if parsed.query is not None:
        path += b"?" + parsed.query
    return Target(host, parsed.port or 80, path, is_address)


def parse_authority(target: bytes) -> Target:
    """``host:port`` or ``[v6]:port``, the CONNECT target."""
    text = target.decode("latin-1")
    try:
        host, port_text = split_host_port(text)  # common.endpoints: the [V6]:PORT rule
    except ValueError:
        raise ProtocolError("CONNECT needs host:port") from None
    if port_text is None:
        unbracketed_v6 = text.count(":") > 1 and not text.startswith("[")
        raise ProtocolError(
            "IPv6 CONNECT targets need brackets" if unbracketed_v6 else "CONNECT needs host:port"
        )
    if not is_decimal(port_text):
        raise ProtocolError("CONNECT needs host:port")
    try:
        port = parse_port(port_text)
    except ValueError:
        raise ProtocolError("CONNECT port out of range") from None
    name, is_address = _host(f"[{host}]" if text.startswith("[") else host)
    return Target(name, port, b"", is_address)


# Fields the one-pass scan looks at; everything else is copied as it came.
_SPECIAL = HOP_BY_HOP | {b"content-length", b"host"}
_PLAIN_CONNECTION = frozenset({b"close", b"keep-alive", b""})


@dataclass(frozen=True)
class Head:
    """A scanned head: wire bytes of its end-to-end fields (Content-Length kept, Host and the
    hop-by-hop ones dropped), its Content-Length and whether the body is chunked."""

    fields: bytes
    length: int | None
    chunked: bool


def scan(headers: Headers) -> Head:
    """One pass over the fields (the proxy's hot path); the parser already validated framing."""
    parts: list[bytes] = []
    length: int | None = None
    chunked = False
    named: set[bytes] | None = None
    for name, value in headers:
        lower = name.lower()
        if lower in _SPECIAL:
            if lower == b"content-length":
                length = int(value)
                parts += (name, b": ", value, b"\r\n")
            elif lower == b"transfer-encoding":
                chunked = value.rsplit(b",", 1)[-1].strip().lower() == b"chunked"
            elif lower == b"connection":
                tokens = {t.strip().lower() for t in value.split(b",")} - _PLAIN_CONNECTION
                if tokens:
                    named = (named or set()) | tokens
            continue
        parts += (name, b": ", value, b"\r\n")
    if named:  # rare: fields named in Connection are hop-by-hop too (RFC 9110 §7.6.1)
        parts = []
        for name, value in headers:
            lower = name.lower()
            if lower not in named and (lower not in _SPECIAL or lower == b"content-length"):
                parts += (name, b": ", value, b"\r\n")
    return Head(b"".join(parts), length, chunked)


def request_head(method: bytes, target: Target, head: Head, chunked: bool, via: bytes) -> bytes:
    """The request we send upstream (origin-form, Host from the target, our framing, Via)."""
    return b"".join(
        (method, b" ", target.path, b" HTTP/1.1\r\nHost: ", target.authority, b"\r\n",
         head.fields, b"Via: ", via, b"\r\n",
         b"Transfer-Encoding: chunked\r\n\r\n" if chunked else b"\r\n")
    )  # fmt: skip


def response_head(status: int, reason: bytes, head: Head, *, chunked: bool, close: bool) -> bytes:
    """The response we send the client (we always answer HTTP/1.1)."""
    return b"".join(
        (b"HTTP/1.1 %d " % status, reason, b"\r\n", head.fields, b"Via: 1.1 egress-router\r\n",
         b"Transfer-Encoding: chunked\r\n" if chunked else b"",
         b"Connection: close\r\n\r\n" if close else b"\r\n")
    )  # fmt: skip


def error_response(status: int, body: str, *, close: bool = True) -> bytes:
    """A short text/plain answer of our own (403 names the deciding rule)."""
    data = (body.replace("\r", " ").replace("\n", " ") + "\n").encode("utf-8", "replace")
    head = (
        f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\nContent-Length: {len(data)}\r\n"
        f"{'Connection: close' if close else 'Connection: keep-alive'}\r\n\r\n"
    )
    return head.encode("latin-1") + data
