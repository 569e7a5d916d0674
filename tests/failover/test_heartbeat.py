"""Heartbeats on real UDP sockets (loopback): only configured peers, only our format."""

from __future__ import annotations

import ipaddress
import socket
import time

from egress_router.failover.heartbeat import Heartbeats

LOOP = ipaddress.IPv4Address("127.0.0.1")


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def drain_soon(hb: Heartbeats) -> list[tuple[str, str]]:
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        got = hb.drain()
        if got:
            return got
        time.sleep(0.01)
    return []


def test_heard_from_a_peer_ignored_from_others_and_garbage() -> None:
    port = free_udp_port()
    a = Heartbeats(port, (LOOP,), "a")
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as raw:
            raw.sendto(b"hello", ("127.0.0.1", port))
            raw.sendto(b"ERFO1 b active extra", ("127.0.0.1", port))
            raw.sendto(b"ERFO1 a active", ("127.0.0.1", port))  # our own name: ignored
            raw.sendto(b"ERFO1 b active", ("127.0.0.1", port))
        assert drain_soon(a) == [("b", "active")]
    finally:
        a.close()
    stranger = Heartbeats(free_udp_port(), (ipaddress.IPv4Address("198.18.0.9"),), "c")
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as raw:
            raw.sendto(b"ERFO1 b active", ("127.0.0.1", stranger.port))
        time.sleep(0.1)
        assert stranger.drain() == []  # 127.0.0.1 is not a configured peer
    finally:
        stranger.close()
