"""The exchange core through every state and transition, without sockets or root."""

from __future__ import annotations

import pytest

from egress_router.errors import ProtocolError
from egress_router.http_proxy.model import actions as act
from egress_router.http_proxy.model.connection import (
    ESTABLISHED,
    LAST_CHUNK,
    PENDING_LIMIT,
    QUEUE_LIMIT,
    Block,
    Connection,
    Framing,
    Link,
    Phase,
    frame_response,
)
from egress_router.http_proxy.model.exchange import Exchange
from tests.http_proxy.model.helpers import SETTINGS, answer, connection, data, head, kinds


def dialled(now: float = 0.0, url: bytes = b"http://web.test/") -> tuple[Connection, Exchange]:
    conn = connection(now)
    ex, actions = head(conn, url)
    assert kinds(actions) == ["dial"]
    assert conn.accepts(ex)
    return conn, ex


# -- one exchange, keep-alive, reuse ----------------------------------------------------------


def test_get_dial_send_answer_keep_alive() -> None:
    conn, ex = dialled()
    assert (conn.phase, conn.link) == (Phase.BUSY, Link.DIALING)
    sent = conn.connected(ex, "203.0.113.25", "rule 3: *")
    assert kinds(sent) == ["sendupstream"]
    assert data(sent[0]).startswith(b"GET / HTTP/1.1\r\nHost: web.test\r\n")
    assert b"Via: 1.1 egress-router\r\n" in data(sent[0])
    assert conn.link is Link.BUSY and conn.streams(ex)
    done = answer(conn)
    assert kinds(done) == ["answer HTTP/1.1 200 OK", "log"]
    assert (conn.phase, conn.link, conn.active) == (Phase.IDLE, Link.READY, None)
    assert (ex.status, ex.down_bytes, ex.address, ex.rule) == (200, 2, "203.0.113.25", "rule 3: *")


def test_next_request_reuses_the_upstream_for_the_same_host_only() -> None:
    conn, ex = dialled()
    conn.connected(ex, "203.0.113.25", "rule 3: *")
    answer(conn)
    again, actions = head(conn, b"http://web.test/two")
    assert kinds(actions) == ["sendupstream"] and conn.reused
    assert again.address == "203.0.113.25"
    answer(conn)
    _, actions = head(conn, b"http://other.test/")
    assert kinds(actions) == ["close upstream", "dial"]
    assert conn.link is Link.DIALING


def test_upstream_that_will_not_keep_alive_is_closed_after_the_answer() -> None:
    conn, ex = dialled()
    conn.connected(ex, "203.0.113.25", "r")
    assert kinds(answer(conn, keep_alive=False)) == [
        "answer HTTP/1.1 200 OK",
        "log",
        "close upstream",
    ]
    assert conn.link is Link.NONE and conn.phase is Phase.IDLE


def test_client_without_keep_alive_is_closed_after_the_answer() -> None:
    conn = connection()
    ex, _ = head(conn, keep_alive=False)
    conn.connected(ex, "203.0.113.25", "r")
    actions = answer(conn)
    assert kinds(actions) == ["answer HTTP/1.1 200 OK", "log", "close", "close upstream"]
    assert b"Connection: close" in data(actions[0])
    assert conn.phase is Phase.CLOSED


# -- pipelining --------------------------------------------------------------------------------


def test_pipelined_requests_are_answered_in_order_on_one_upstream() -> None:
    conn, first = dialled()
    second, queued = head(conn, b"http://web.test/2")
    assert queued == [] and list(conn.queue) == [second]
    conn.connected(first, "203.0.113.25", "r")
    actions = answer(conn)
    assert kinds(actions) == ["answer HTTP/1.1 200 OK", "log", "sendupstream"]
    assert conn.active is second and conn.linked is second
    assert kinds(answer(conn)) == ["answer HTTP/1.1 200 OK", "log"]
    assert conn.phase is Phase.IDLE


def test_queue_bound_pauses_reading_and_draining_it_resumes() -> None:
    conn, first = dialled()
    paused = []
    for i in range(QUEUE_LIMIT):
        _, actions = head(conn, b"http://web.test/%d" % i)
        paused += actions
    assert kinds(paused) == ["pause"] and conn.blocks == {Block.QUEUE}
    conn.connected(first, "203.0.113.25", "r")
    assert kinds(answer(conn)) == ["answer HTTP/1.1 200 OK", "log", "resume", "sendupstream"]
    assert not conn.blocks


def test_pending_body_bound_pauses_until_it_is_sent() -> None:
    conn = connection()
    ex, _ = head(conn, b"http://web.test/up", b"POST", [(b"Content-Length", b"3000000")])
    assert not conn.body(ex, PENDING_LIMIT)
    assert conn.buffer(ex, [b"x" * PENDING_LIMIT]) == []
    assert kinds(conn.buffer(ex, [b"y"])) == ["pause"]
    assert kinds(conn.buffer(ex, [b"z"])) == []  # already paused
    sent = conn.connected(ex, "203.0.113.25", "r")
    assert kinds(sent) == ["sendupstream", "resume"]
    assert sent[0][0] is act.Op.SEND_UPSTREAM and len(sent[0][1]) == 4
    assert conn.pending_bytes == 0 and conn.body(ex, 10)  # now streamed


def test_chunked_request_body_and_its_last_chunk() -> None:
    conn = connection()
    ex, _ = head(conn, b"http://web.test/up", b"POST", [(b"Transfer-Encoding", b"chunked")])
    assert ex.body_chunked and not ex.request_done
    assert conn.message_complete() is ex and ex.request_done
    assert conn.message_complete() is None  # nothing being parsed


# -- early answers, EOF, lost upstreams ---------------------------------------------------------


def test_early_answer_before_the_body_ended_closes_the_connection() -> None:
    conn = connection()
    ex, _ = head(conn, b"http://web.test/up", b"POST", [(b"Content-Length", b"10")])
    conn.connected(ex, "203.0.113.25", "r")
    assert conn.body(ex, 4)
    assert kinds(answer(conn, 413)) == ["answer HTTP/1.1 413 OK", "log", "close", "close upstream"]


def test_client_eof_mid_body_still_gets_the_answer_then_close() -> None:
    conn = connection()
    ex, _ = head(conn, b"http://web.test/up", b"POST", [(b"Content-Length", b"10")])
    conn.connected(ex, "203.0.113.25", "r")
    assert conn.eof() is True
    assert kinds(answer(conn)) == ["answer HTTP/1.1 200 OK", "log", "close", "close upstream"]


def test_client_eof_when_idle_closes_at_once_and_after_pipelined_answers() -> None:
    assert connection().eof() is False
    conn, first = dialled()
    head(conn, b"http://web.test/2")
    assert conn.eof() is True
    conn.connected(first, "203.0.113.25", "r")
    assert kinds(answer(conn))[-1] == "sendupstream"  # the queued one is still answered
    assert kinds(answer(conn))[-2:] == ["close", "close upstream"]


def test_reused_upstream_lost_before_any_byte_is_redialled_once() -> None:
    conn, ex = dialled()
    conn.connected(ex, "203.0.113.25", "r")
    answer(conn)
    again, _ = head(conn)
    actions = conn.upstream_lost()
    assert kinds(actions) == ["dial"] and conn.dialing is again and not conn.reused
    conn.connected(again, "203.0.113.25", "r")
    assert kinds(conn.upstream_lost()) == ["answer HTTP/1.1 502 Bad Gateway", "log"]


@pytest.mark.parametrize(
    ("method", "received", "reused"),
    [(b"POST", False, True), (b"GET", True, True), (b"GET", False, False)],
    ids=["not-idempotent", "answer-started-arriving", "fresh-connection"],
)
def test_upstream_lost_before_the_answer_is_502(
    method: bytes, received: bool, reused: bool
) -> None:
    conn, ex = dialled()
    conn.connected(ex, "203.0.113.25", "r")
    if reused:
        answer(conn)
        ex, _ = head(conn, method=method, headers=[(b"Content-Length", b"0")])
    if received:
        conn.upstream_data()
    actions = conn.upstream_lost()
    assert kinds(actions)[:2] == ["answer HTTP/1.1 502 Bad Gateway", "log"]
    assert ex.status == 502 and conn.link is Link.NONE


def test_upstream_lost_mid_answer_ends_a_close_delimited_body_or_cuts() -> None:
    conn, ex = dialled()
    conn.connected(ex, "203.0.113.25", "r")
    conn.response_head(200, b"OK", [], False)  # no length: until EOF, re-chunked
    assert conn.framing == Framing(rechunk=True, until_eof=True, no_body=False, close=False)
    actions = conn.upstream_lost()
    assert actions[0] == act.Answer(LAST_CHUNK)
    assert kinds(actions)[1:] == ["log"]  # re-chunked: the client's connection carries on
    assert conn.phase is Phase.IDLE
    conn, ex = dialled()
    conn.connected(ex, "203.0.113.25", "r")
    conn.response_head(200, b"OK", [(b"Content-Length", b"9")], True)
    assert kinds(conn.upstream_lost()) == ["log", "abort upstream closed mid-response"]


def test_lost_idle_or_foreign_upstream_changes_nothing() -> None:
    conn, ex = dialled()
    conn.connected(ex, "203.0.113.25", "r")
    answer(conn)
    assert conn.upstream_lost() == [] and conn.link is Link.NONE


def test_broken_upstream_answer_is_502_or_a_cut() -> None:
    conn, ex = dialled()
    conn.connected(ex, "203.0.113.25", "r")
    assert kinds(conn.upstream_broken("bad")) == [
        "abort upstream",
        "answer HTTP/1.1 502 Bad Gateway",
        "log",
    ]
    conn, ex = dialled()
    conn.connected(ex, "203.0.113.25", "r")
    conn.response_head(200, b"OK", [(b"Content-Length", b"9")], True)
    assert kinds(conn.upstream_broken("bad")) == ["abort upstream", "log", "abort bad"]
    assert kinds(connection().upstream_broken("x")) == ["abort upstream"]


# -- response framing ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "status", "length", "chunked", "v11", "keep", "expected"),
    [
        (b"GET", 200, 5, False, True, True, (False, False, False, False)),
        (b"GET", 200, None, True, True, True, (True, False, False, False)),
        (b"GET", 200, None, False, True, True, (True, True, False, False)),
        (b"GET", 200, None, False, False, True, (False, True, False, True)),
        (b"GET", 200, None, True, False, True, (False, False, False, True)),
        (b"HEAD", 200, None, False, True, True, (False, False, True, False)),
        (b"GET", 204, None, False, True, True, (False, False, True, False)),
        (b"GET", 304, None, False, True, True, (False, False, True, False)),
        (b"GET", 200, 5, False, True, False, (False, False, False, True)),
    ],
    ids=["length", "chunked", "until-eof", "until-eof-http10", "chunked-http10", "head", "204",
         "304", "client-close"],
)  # fmt: skip
def test_response_framing(
    method: bytes,
    status: int,
    length: int | None,
    chunked: bool,
    v11: bool,
    keep: bool,
    expected: tuple[bool, bool, bool, bool],
) -> None:
    framing = frame_response(
        method, status, length, chunked, version11=v11, keep_alive=keep, draining=False
    )
    assert framing == Framing(*expected)
    draining = frame_response(
        method, status, length, chunked, version11=v11, keep_alive=keep, draining=True
    )
    assert draining.close


def test_chunked_answer_gets_its_last_chunk_and_head_answer_ends_at_its_head() -> None:
    conn, ex = dialled()
    conn.connected(ex, "203.0.113.25", "r")
    actions = answer(conn, headers=[(b"Transfer-Encoding", b"chunked")], body=5)
    assert kinds(actions) == ["answer HTTP/1.1 200 OK", "answer 0", "log"]
    assert b"Transfer-Encoding: chunked" in data(actions[0])
    head_ex, _ = head(conn, method=b"HEAD")
    actions = conn.response_head(200, b"OK", [(b"Content-Length", b"99")], True)
    assert kinds(actions) == ["answer HTTP/1.1 200 OK", "log"] and head_ex.logged
    assert conn.response_complete(True) == []  # a stray end from the parser is ignored


def test_interim_answers_reach_http11_clients_only() -> None:
    conn, ex = dialled()
    conn.connected(ex, "203.0.113.25", "r")
    assert kinds(conn.response_head(100, b"Continue", [], True)) == ["answer HTTP/1.1 100 Continue"]
    assert conn.response_complete(True) == [] and not conn.interim
    assert kinds(answer(conn)) == ["answer HTTP/1.1 200 OK", "log"]
    conn = connection()
    ex, _ = head(conn, version11=False, keep_alive=False)
    conn.connected(ex, "203.0.113.25", "r")
    assert conn.response_head(103, b"Early", [], True) == []
    with pytest.raises(ProtocolError) as info:
        conn.response_head(101, b"Switching", [], True)
    assert info.value.status == 502


def test_unsolicited_answer_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="unsolicited"):
        connection().response_head(200, b"OK", [], True)
    assert connection().response_complete(True) == []
    connection().response_body(5)  # nothing linked: nothing counted, no error


# -- our own answers -----------------------------------------------------------------------------


def test_denied_name_is_403_and_the_connection_stays() -> None:
    conn = connection()
    ex, actions = head(conn, b"http://www.example.com/")
    assert kinds(actions) == ["answer HTTP/1.1 403 Forbidden", "log"]
    assert ex.rule == "rule 1: !*.example.com" and conn.phase is Phase.IDLE
    assert b"Connection: keep-alive" in data(actions[0])


@pytest.mark.parametrize(
    ("target", "reason"),
    [(b"web.test:8443", b"CONNECT to port 8443"), (b"www.example.com:443", b"denied by rule 1")],
)
def test_refused_connect_says_close_and_closes(target: bytes, reason: bytes) -> None:
    conn = connection()
    _, actions = head(conn, target, b"CONNECT", [])
    assert kinds(actions) == ["answer HTTP/1.1 403 Forbidden", "log", "close"]
    answer_data = data(actions[0])
    assert b"Connection: close" in answer_data and reason in answer_data


@pytest.mark.parametrize(
    ("url", "fields", "status"),
    [
        (b"http://web.test/" + b"a" * 5000, [], 414),
        (b"http://web.test/", [(b"a", b"b")] * 900, 431),  # 900 x "a:b\r\n" = 4.5 KB on the wire
        (b"https://web.test/", [], 400),
        (b"/relative", [], 400),
    ],
    ids=["target-too-long", "many-tiny-fields", "https-scheme", "origin-form"],
)
def test_heads_refused_while_parsing(
    url: bytes, fields: list[tuple[bytes, bytes]], status: int
) -> None:
    conn = connection()
    with pytest.raises(ProtocolError) as info:
        head(conn, url, headers=fields)
    assert info.value.status == status
    actions = conn.fail(info.value.status, str(info.value))
    assert kinds(actions)[1:] == ["log", "close"]
    assert kinds(actions)[0].startswith(f"answer HTTP/1.1 {status}")


def test_head_too_large_counting_the_method_at_the_end() -> None:
    conn = connection()
    ex = conn.message_begin(0.0)
    conn.url(ex, b"http://web.test/")
    conn.field(ex, b"x", b"y" * (4096 - 13 - 16 - 1 - 3))
    with pytest.raises(ProtocolError):
        conn.head_complete(b"GET", True, True)


def test_dial_failures_answer_only_the_exchange_still_waiting() -> None:
    conn, ex = dialled()
    assert kinds(conn.dial_failed(ex, 502, "cannot resolve")) == [
        "answer HTTP/1.1 502 Bad Gateway",
        "log",
    ]
    assert conn.link is Link.NONE and ex.error == "cannot resolve"
    assert conn.dial_failed(ex, 504, "late") == []  # not active any more


def test_reject_after_close_only_records_it() -> None:
    conn, ex = dialled()
    conn.close()
    assert conn.reject(ex, 504, "x") == [] and ex.status == 504
    assert not conn.accepts(ex)


# -- pipelined errors wait their turn --------------------------------------------------------------


def test_pipelined_error_is_answered_after_the_request_before_it() -> None:
    conn, first = dialled()
    conn.message_begin(0.0)
    assert kinds(conn.fail(431, "request head too large")) == ["pause"]
    assert conn.reading_stopped and conn.blocks == {Block.FAILED}
    assert conn.fail(400, "again") == []  # reading stopped: nothing else is answered early
    conn.connected(first, "203.0.113.25", "r")
    actions = answer(conn)
    assert kinds(actions) == [
        "answer HTTP/1.1 200 OK",
        "log",
        "answer HTTP/1.1 431 Request Header Fields Too Large",
        "log",
        "close",
        "close upstream",
    ]


def test_head_that_never_ends_is_cut_at_the_size_limit() -> None:
    conn = connection()
    conn.message_begin(0.0)
    assert conn.end_feed(3000) == []  # the feed that began the head is not counted
    assert conn.end_feed(4000) == []
    assert kinds(conn.end_feed(200)) == ["answer HTTP/1.1 431 Request Header Fields Too Large",
                                         "log", "close"]  # fmt: skip


# -- deadlines ----------------------------------------------------------------------------------


def test_header_deadline_runs_from_the_first_byte_whatever_moves() -> None:
    conn = connection()
    conn.head_seen(1.0)  # held bytes, not parsed yet
    conn.message_begin(5.0)
    conn.activity = True
    assert conn.tick(10.5) == [] and conn.since == 5.0  # HEAD is not extended by activity
    assert kinds(conn.tick(11.5))[0] == "answer HTTP/1.1 408 Request Timeout"


def test_pipelined_head_deadline_stops_reading_behind_a_busy_request() -> None:
    conn, _ = dialled()
    conn.head_seen(2.0)
    conn.activity = True
    assert conn.tick(5.0) == [] and conn.since == 5.0
    assert kinds(conn.tick(12.5)) == ["pause"] and conn.doomed is not None
    assert conn.head_started is None


def test_idle_and_io_timeouts() -> None:
    conn = connection()
    assert conn.tick(59.0) == []
    assert kinds(conn.tick(61.0)) == ["close"]
    assert conn.tick(62.0) == []  # closed: nothing more
    conn, ex = dialled()
    assert conn.tick(1.0) == []  # the request started: its deadline runs from here
    assert kinds(conn.tick(902.0)) == ["answer HTTP/1.1 504 Gateway Timeout", "log", "close"]
    conn, ex = dialled()
    conn.connected(ex, "203.0.113.25", "r")
    conn.response_head(200, b"OK", [(b"Content-Length", b"9")], True)
    conn.tick(1.0)
    assert kinds(conn.tick(902.0)) == ["log", "abort idle timeout", "abort upstream"]


# -- CONNECT -------------------------------------------------------------------------------------


def test_connect_tunnel_through_the_event_loop() -> None:
    conn = connection()
    ex, actions = head(conn, b"web.test:443", b"CONNECT", [])
    assert kinds(actions) == ["dial"] and ex.is_connect and ex.request_done
    assert conn.upgraded() is ex and conn.tunnel_ex is ex
    conn.buffer(ex, [b"\x16\x03\x01"])
    actions = conn.connected(ex, "203.0.113.25", "r")
    assert actions == [act.Answer(ESTABLISHED), act.StartTunnel(ex, b"\x16\x03\x01")]
    assert (conn.phase, conn.link, ex.status, ex.up_bytes) == (Phase.TUNNEL, Link.TUNNEL, 200, 3)
    assert kinds(conn.tunnel_eof(from_client=True)) == ["eof upstream"]
    assert kinds(conn.tunnel_eof(from_client=False)) == ["eof client", "close", "close upstream"]


def test_connect_tunnel_ends_when_the_upstream_goes() -> None:
    conn = connection()
    ex, _ = head(conn, b"web.test:443", b"CONNECT", [])
    conn.connected(ex, "203.0.113.25", "r")
    assert kinds(conn.upstream_lost()) == ["close"]
    assert kinds(conn.lost()) == ["log"] and ex.error == ""  # a tunnel is not an error


def test_spliced_connect_and_its_end() -> None:
    conn = connection()
    ex, _ = head(conn, b"[2001:db8::1]:443", b"CONNECT", [])
    actions = conn.tunnel_ready(ex, "2001:db8::1", "rule 3: *")
    assert kinds(actions) == ["answer HTTP/1.1 200 Connection established", "starttunnel"]
    assert conn.link is Link.NONE and conn.phase is Phase.TUNNEL
    assert kinds(conn.tunnel_closed("tunnel read failed")) == ["log", "abort tunnel read failed"]
    conn = connection()
    ex, _ = head(conn, b"web.test:443", b"CONNECT", [])
    conn.tunnel_ready(ex, "203.0.113.25", "r")
    assert kinds(conn.tunnel_closed("")) == ["log", "close"]


def test_connect_queued_behind_a_request_owns_later_bytes() -> None:
    conn, first = dialled()
    connect, _ = head(conn, b"web.test:443", b"CONNECT", [])
    assert conn.upgraded() is connect
    conn.connected(first, "203.0.113.25", "r")
    assert kinds(answer(conn)) == ["answer HTTP/1.1 200 OK", "log", "close upstream", "dial"]
    assert conn.upgraded() is connect
    conn = connection()
    assert conn.upgraded() is None  # an Upgrade request: parse on


# -- lifecycle ------------------------------------------------------------------------------------


def test_client_lost_mid_exchange_is_logged_with_an_error() -> None:
    conn, ex = dialled()
    conn.connected(ex, "203.0.113.25", "r")
    assert kinds(conn.lost()) == ["log", "close upstream"]
    assert ex.error.startswith("connection closed before") and conn.phase is Phase.CLOSED
    assert connection().lost() == []


def test_drain_closes_idle_connections_and_busy_ones_when_answered() -> None:
    assert kinds(connection().drain()) == ["close"]
    conn, ex = dialled()
    assert conn.drain() == []
    conn.connected(ex, "203.0.113.25", "r")
    actions = answer(conn)
    assert kinds(actions)[-2:] == ["close", "close upstream"]
    assert b"Connection: close" in data(actions[0])


def test_abort_and_upstream_flow_control() -> None:
    conn, ex = dialled()
    assert kinds(conn.upstream_paused()) == ["pause"]
    assert kinds(conn.upstream_resumed()) == ["resume"]
    assert conn.upstream_resumed() == []
    assert kinds(conn.abort("shutdown")) == ["log", "abort shutdown"]  # dialling: no upstream
    assert ex.error == "shutdown"
    assert kinds(conn.abort("again")) == ["abort again"]
    assert conn.unblock(Block.QUEUE) == []


def test_edges_after_close_and_of_the_pause_set() -> None:
    conn = connection()
    ex, _ = head(conn, b"http://web.test/up", b"POST", [(b"Transfer-Encoding", b"chunked")])
    conn.connected(ex, "203.0.113.25", "r")
    conn.response_head(200, b"OK", [(b"Content-Length", b"9")], True)
    actions = conn.fail(400, "malformed request: bad chunk")  # the answer already started
    assert kinds(actions) == ["log", "close", "close upstream"]
    assert conn.fail(400, "x") == [] and conn.log(ex) == []
    assert kinds(conn.close()) == []  # closed twice: nothing more
    assert kinds(conn.tunnel_closed("")) == ["close"]  # no exchange left to log
    conn = connection()
    conn.block(Block.QUEUE)
    assert conn.block(Block.PENDING) == []
    assert conn.unblock(Block.QUEUE) == []  # still paused for the pending bytes
    assert kinds(conn.unblock(Block.PENDING)) == ["resume"]


def test_access_log_line() -> None:
    conn = connection(10.0)
    ex, _ = head(conn, b"http://www.example.com/", now=10.0)
    line = ex.log_line("198.18.0.3:5000", 1795305952.6904, 10.25)
    assert line == (
        "ts=1795305952.690 client=198.18.0.3:5000 method=GET host=www.example.com port=80 "
        'address=- rule="rule 1: !*.example.com" status=403 bytes_up=0 bytes_down=0 ms=250.00 '
        'error="denied by rule 1: !*.example.com"\n'
    )
    blank = connection().fail(408, "request head not received in time")[1]
    assert blank[0] is act.Op.LOG
    assert "method=- host=- port=0" in blank[1].log_line("-", 0.0, 0.0)


def test_settings_in_the_helpers_are_the_strict_ones() -> None:
    assert SETTINGS.max_header_bytes == 4096 and SETTINGS.connect_ports == {443}
