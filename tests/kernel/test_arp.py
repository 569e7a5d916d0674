"""ARP frames: the probe's request and the recognition of the answer (no socket needed)."""

from __future__ import annotations

import ipaddress
import struct

from egress_router.kernel.arp import ETH_P_ARP, ZERO_IP, reply_from, request_frame

GATEWAY = ipaddress.IPv4Address("198.19.123.1")
SOURCE = ipaddress.IPv4Address("198.19.123.99")
OURS = "02:00:00:00:00:99"
THEIRS = "52:54:00:03:3f:fd"


def mac(text: str) -> bytes:
    return bytes(int(p, 16) for p in text.split(":"))


def reply(sender: ipaddress.IPv4Address, to: str, op: int = 2) -> bytes:
    header = mac(to) + mac(THEIRS) + struct.pack("!H", ETH_P_ARP)
    body = struct.pack("!HHBBH", 1, 0x0800, 6, 4, op) + mac(THEIRS) + sender.packed
    return header + body + mac(to) + SOURCE.packed


def test_request_asks_for_the_target_from_the_source() -> None:
    frame = request_frame(OURS, OURS, SOURCE, GATEWAY)
    assert frame[:6] == b"\xff" * 6 and frame[6:12] == mac(OURS)
    assert struct.unpack("!H", frame[20:22]) == (1,)  # a request
    assert frame[22:28] == mac(OURS) and frame[28:32] == SOURCE.packed
    assert frame[38:42] == GATEWAY.packed


def test_anonymous_probe_asks_for_a_broadcast_answer() -> None:
    frame = request_frame("02:11:22:33:44:55", "ff:ff:ff:ff:ff:ff", ZERO_IP, GATEWAY)
    assert frame[6:12] == mac("02:11:22:33:44:55")
    assert frame[22:28] == b"\xff" * 6 and frame[28:32] == b"\0" * 4


def test_only_a_reply_from_the_target_counts() -> None:
    assert reply_from(reply(GATEWAY, OURS), GATEWAY) == THEIRS
    assert reply_from(reply(GATEWAY, "ff:ff:ff:ff:ff:ff"), GATEWAY) == THEIRS
    assert reply_from(reply(SOURCE, OURS), GATEWAY) is None  # someone else
    assert reply_from(reply(GATEWAY, OURS, op=1), GATEWAY) is None  # a request
    assert reply_from(b"\x00" * 20, GATEWAY) is None  # runt
