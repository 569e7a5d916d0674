"""Request targets, hop-by-hop handling and our own answers (no sockets)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from egress_router.errors import ProtocolError
from egress_router.http_proxy.model.messages import (
    Target,
    error_response,
    parse_absolute,
    parse_authority,
    request_head,
    response_head,
    scan,
)


@pytest.mark.parametrize(
    ("url", "target"),
    [
        (b"http://203.0.113.25/small.txt", Target("203.0.113.25", 80, b"/small.txt", True)),
        (b"http://Example.COM./a?b=1", Target("example.com", 80, b"/a?b=1", False)),
        (b"http://example.com:8080", Target("example.com", 8080, b"/", False)),
        (b"http://[2001:db8::1]:81/x", Target("2001:db8::1", 81, b"/x", True)),
        (b"HTTP://example.com/", Target("example.com", 80, b"/", False)),
    ],
)
def test_absolute_targets(url: bytes, target: Target) -> None:
    assert parse_absolute(url) == target


@pytest.mark.parametrize(
    "url",
    [b"/relative", b"https://example.com/", b"ftp://example.com/", b"http://u:p@example.com/",
     b"http://exa mple.com/", b"http:///path", b""],
)  # fmt: skip
def test_bad_absolute_targets(url: bytes) -> None:
    with pytest.raises(ProtocolError):
        parse_absolute(url)


@pytest.mark.parametrize(
    ("authority", "target"),
    [
        (b"example.com:443", Target("example.com", 443, b"", False)),
        (b"[2001:db8::1]:443", Target("2001:db8::1", 443, b"", True)),
        (b"203.0.113.25:8443", Target("203.0.113.25", 8443, b"", True)),
    ],
)
def test_connect_targets(authority: bytes, target: Target) -> None:
    assert parse_authority(authority) == target
    assert target.authority == (authority if target.port != 80 else authority.rsplit(b":")[0])


@pytest.mark.parametrize(
    "authority", [b"example.com", b"example.com:0", b"example.com:99999", b"2001:db8::1:443",
                  b":443", b"example.com:https", b"[::1%eth0]:443"],
)  # fmt: skip
def test_bad_connect_targets(authority: bytes) -> None:
    with pytest.raises(ProtocolError):
        parse_authority(authority)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=60))
def test_any_target_parses_or_raises_protocol_error(data: bytes) -> None:
    for parse in (parse_absolute, parse_authority):
        try:
            parse(data)
        except ProtocolError as error:
            assert error.status == 400


def test_hop_by_hop_fields_are_dropped_and_framing_read() -> None:
    head = scan(
        [
            (b"Host", b"ignored"),
            (b"Connection", b"keep-alive, X-Private"),
            (b"X-Private", b"secret"),
            (b"Keep-Alive", b"timeout=5"),
            (b"Proxy-Authorization", b"Basic Zm9v"),
            (b"Transfer-Encoding", b"gzip, chunked"),
            (b"TE", b"trailers"),
            (b"Upgrade", b"websocket"),
            (b"Content-Length", b"12"),
            (b"X-Kept", b"1"),
        ]
    )
    assert head.fields == b"Content-Length: 12\r\nX-Kept: 1\r\n"
    assert head.length == 12 and head.chunked
    target = Target("example.com", 8080, b"/p", False)
    assert request_head(b"POST", target, head, True, b"1.1 egress-router") == (
        b"POST /p HTTP/1.1\r\nHost: example.com:8080\r\nContent-Length: 12\r\nX-Kept: 1\r\n"
        b"Via: 1.1 egress-router\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    assert response_head(200, b"OK", scan([(b"Server", b"x")]), chunked=False, close=True) == (
        b"HTTP/1.1 200 OK\r\nServer: x\r\nVia: 1.1 egress-router\r\nConnection: close\r\n\r\n"
    )


def test_error_answers_are_one_short_line() -> None:
    answer = error_response(403, "denied by rule 1: !*.example.com\r\nInjected: yes")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 403 Forbidden\r\n")
    assert b"Connection: close" in head
    assert body == b"denied by rule 1: !*.example.com  Injected: yes\n"
    assert f"Content-Length: {len(body)}".encode() in head
