"""Random interleavings of events never bring the exchange core into an invalid state.

A small scripted adapter plays the events an asyncio adapter could deliver in any order (heads,
bodies, dial results, answers, losses, EOFs, the clock) and obeys the actions (it stops feeding
heads while reading is paused, delivers answers only to a connected upstream). After every event
the invariants below must hold; the only exception allowed is ``ProtocolError`` where the real
adapters expect one (parsing a head, a response head).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from egress_router.errors import ProtocolError
from egress_router.http_proxy.model import actions as act
from egress_router.http_proxy.model.connection import (
    QUEUE_LIMIT,
    Connection,
    Link,
    Phase,
)
from egress_router.http_proxy.model.exchange import Exchange
from tests.http_proxy.model.helpers import connection

HEADS = [
    (b"GET", b"http://web.test/", []),
    (b"GET", b"http://203.0.113.25/x", []),
    (b"HEAD", b"http://web.test/", []),
    (b"POST", b"http://web.test/up", [(b"Content-Length", b"5")]),
    (b"POST", b"http://web.test/up", [(b"Transfer-Encoding", b"chunked")]),
    (b"GET", b"http://www.example.com/", []),
    (b"GET", b"https://web.test/", []),
    (b"CONNECT", b"web.test:443", []),
    (b"CONNECT", b"web.test:22", []),
    (b"GET", b"http://web.test/", [(b"a", b"b")] * 900),
]
ANSWERS = [
    (200, [(b"Content-Length", b"3")]),
    (200, [(b"Transfer-Encoding", b"chunked")]),
    (200, []),
    (204, []),
    (100, []),
    (101, []),
]
# Mostly well-formed keep-alive requests (they lead further), sometimes refused or closing ones.
HEAD = st.tuples(
    st.just("head"),
    st.sampled_from([0, 0, 1, 1, 2, 3, 4, 0, 1, 3, 5, 6, 7, 8, 9, 7]),
    st.sampled_from([True, True, True, True, False]),
    st.sampled_from([True, True, True, False]),
)
EVENTS = st.one_of(
    HEAD,
    HEAD,
    st.tuples(st.just("partial"), st.integers(1, 5000)),
    st.tuples(st.just("body"), st.integers(1, 400_000)),
    st.tuples(st.just("dial"), st.sampled_from(["ok", "ok", "splice", "fail"])),
    st.tuples(st.just("dial"), st.just("ok")),
    st.tuples(st.just("answer"), st.integers(0, len(ANSWERS) - 1), st.booleans()),
    st.tuples(st.just("answer"), st.integers(0, len(ANSWERS) - 1), st.booleans()),
    st.tuples(st.just("answer_body"), st.integers(1, 100)),
    st.tuples(st.just("serve"), st.booleans()),
    st.tuples(st.just("serve"), st.booleans()),
    st.tuples(st.just("answer_end"), st.booleans()),
    st.tuples(st.just("answer_end"), st.booleans()),
    st.tuples(st.just("tick"), st.floats(0.0, 2.0)),
    st.tuples(st.just("upstream_lost")),
    st.tuples(st.just("upstream_broken")),
    st.tuples(st.sampled_from(["tunnel_eof_client", "tunnel_eof_upstream", "tunnel_closed"])),
    st.tuples(st.sampled_from(["upstream_paused", "upstream_resumed", "eof"])),
    st.tuples(st.sampled_from(["lost", "drain", "abort", "late", "none", "none", "none", "none"])),
)


@dataclass
class Adapter:
    conn: Connection = field(default_factory=connection)
    now: float = 0.0
    paused: bool = False
    dials: list[Exchange] = field(default_factory=list)
    logged: list[Exchange] = field(default_factory=list)
    closed_seen: bool = False

    def run(self, actions: list[act.Action]) -> None:
        for op, payload in actions:
            if self.closed_seen:
                assert op not in (act.Op.ANSWER, act.Op.SEND_UPSTREAM, act.Op.DIAL)
                assert op is not act.Op.START_TUNNEL
            if op is act.Op.PAUSE_READING:
                assert not self.paused
                self.paused = True
            elif op is act.Op.RESUME_READING:
                assert self.paused
                self.paused = False
            elif op is act.Op.DIAL:
                self.dials.append(payload[0])
            elif op is act.Op.LOG:
                assert payload not in self.logged, "logged twice"
                self.logged.append(payload)
            elif op is act.Op.START_TUNNEL:
                self.paused = False  # the adapter reads (or splices) the tunnel itself

    def protocol(self, call: Callable[[], list[act.Action]]) -> None:
        try:
            self.run(call())
        except ProtocolError as exc:
            self.run(self.conn.fail(exc.status, str(exc)))

    def step(self, event: tuple[object, ...]) -> None:
        conn = self.conn
        kind = event[0]
        reading = not self.paused and not conn.reading_stopped and conn.phase is not Phase.TUNNEL
        if kind == "head" and reading and conn.tunnel_ex is None and conn.expects_head():
            index, keep, v11 = event[1], event[2], event[3]
            method, url, fields = HEADS[index]  # type: ignore[index]
            ex = conn.message_begin(self.now)

            def parse() -> list[act.Action]:
                conn.url(ex, url)
                for name, value in fields:
                    conn.field(ex, name, value)
                out = conn.head_complete(method, bool(v11), bool(keep))
                if method == b"CONNECT":
                    up = conn.upgraded()
                    assert up is not None
                elif not ex.body_chunked and not (ex.head and ex.head.length):
                    conn.message_complete()
                return out

            self.protocol(parse)
            if not conn.reading_stopped:
                self.run(conn.end_feed(64))
        elif kind == "partial" and reading and conn.tunnel_ex is None and conn.expects_head():
            if conn.current is None:
                conn.message_begin(self.now)
            self.run(conn.end_feed(int(event[1])))  # type: ignore[call-overload]
        elif kind == "body" and reading and conn.current is not None and conn.current.method:
            ex = conn.current
            if not conn.body(ex, int(event[1])):  # type: ignore[call-overload]
                self.run(conn.buffer(ex, [b"x" * int(event[1])]))  # type: ignore[call-overload]
            conn.message_complete()
        elif kind == "body" and conn.tunnel_ex is not None and not self.paused:
            self.run(conn.buffer(conn.tunnel_ex, [b"t" * int(event[1])]))  # type: ignore[call-overload]
        elif kind == "dial" and self.dials:
            ex = self.dials.pop(0)
            if event[1] == "fail":
                self.run(conn.dial_failed(ex, 502, "cannot connect"))
            elif conn.accepts(ex):
                if event[1] == "splice" and ex.is_connect:
                    self.run(conn.tunnel_ready(ex, "203.0.113.25", "r"))
                else:
                    self.run(conn.connected(ex, "203.0.113.25", "r"))
        elif kind == "answer" and conn.link in (Link.BUSY, Link.READY):
            status, fields = ANSWERS[event[1]]  # type: ignore[index]
            conn.upstream_data()
            try:
                self.run(conn.response_head(status, b"X", fields, bool(event[2])))
            except ProtocolError as exc:
                self.run(conn.upstream_broken(str(exc)))
        elif kind == "serve" and conn.link is Link.BUSY:  # a whole answer in one read
            conn.upstream_data()
            self.run(conn.response_head(200, b"OK", [(b"Content-Length", b"1")], True))
            if conn.link is Link.BUSY:
                conn.response_body(1)
                self.run(conn.response_complete(bool(event[1])))
        elif kind == "answer_body" and conn.link is Link.BUSY:
            conn.upstream_data()
            conn.response_body(int(event[1]))  # type: ignore[call-overload]
        elif kind == "answer_end" and conn.link in (Link.BUSY, Link.READY):
            self.run(conn.response_complete(bool(event[1])))
        elif kind in ("tick", "late"):
            self.now += float(event[1]) if kind == "tick" else 100.0  # type: ignore[arg-type]
            self.run(conn.tick(self.now))
        elif kind == "upstream_lost" and conn.link in (Link.BUSY, Link.READY, Link.TUNNEL):
            self.run(conn.upstream_lost())
        elif kind == "upstream_broken" and conn.link in (Link.BUSY, Link.READY):
            self.run(conn.upstream_broken("bad answer"))
        elif kind == "eof" and conn.phase is not Phase.TUNNEL:
            conn.eof()
        elif kind == "lost":
            self.run(conn.lost())
        elif kind == "drain":
            self.run(conn.drain())
        elif kind == "abort":
            self.run(conn.abort("shutdown"))
        elif kind.startswith("tunnel_eof") and conn.link is Link.TUNNEL:  # type: ignore[union-attr]
            self.run(conn.tunnel_eof(from_client=kind == "tunnel_eof_client"))
        elif kind == "tunnel_closed" and conn.phase is Phase.TUNNEL and conn.link is Link.NONE:
            self.run(conn.tunnel_closed(""))
        elif kind == "upstream_paused" and conn.link is Link.BUSY:
            self.run(conn.upstream_paused())
        elif kind == "upstream_resumed":
            self.run(conn.upstream_resumed())
        self.check()

    def check(self) -> None:
        conn = self.conn
        if self.closed_seen:
            assert conn.phase is Phase.CLOSED
        self.closed_seen = conn.phase is Phase.CLOSED
        if conn.phase is Phase.CLOSED:
            return
        assert len(conn.queue) <= QUEUE_LIMIT
        assert conn.pending_bytes >= 0
        if conn.active is None:
            assert not conn.queue
            assert conn.link in (Link.NONE, Link.READY)
        if conn.link is Link.BUSY:
            assert conn.linked is not None and conn.linked is conn.active
        if conn.link is Link.DIALING:
            assert conn.dialing is conn.active and conn.dialing is not None
        if conn.phase is Phase.TUNNEL:
            assert conn.active is not None and conn.active.status == 200
        else:
            assert self.paused == bool(conn.blocks)
        if conn.phase is Phase.IDLE:
            assert conn.active is None and conn.head_started is None


@settings(max_examples=2000, deadline=None)
@given(st.lists(EVENTS, min_size=10, max_size=120))
def test_random_event_interleavings_keep_the_core_valid(events: list[tuple[object, ...]]) -> None:
    adapter = Adapter()
    for event in events:
        adapter.step(event)
