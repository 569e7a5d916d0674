"""ARP frames: the probe's request and the recognition of the answer (no socket needed)."""

from __future__ import annotations

import ipaddress
import struct
import sys
import time
import uuid
from collections.abc import Iterator

import pytest

from egress_router.kernel.arp import ETH_P_ARP, ZERO_IP, advert_frame, reply_from, request_frame
from egress_router.kernel.netlink import Netlink, create_netns, remove_netns
from egress_router.lab import procs

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


# -- IPv6: the unsolicited neighbour advertisement (RFC 4861 4.4, 7.2.6) -------------------------

TARGET6 = ipaddress.IPv6Address("2001:db8:1::99")


def ones_complement_sum(data: bytes) -> int:
    """RFC 1071 by the book, written apart from ``arp._checksum``: 16-bit words, end-around
    carry."""
    if len(data) % 2:
        data += b"\0"
    total = 0
    for i in range(0, len(data), 2):
        total += (data[i] << 8) | data[i + 1]
        total = (total & 0xFFFF) + (total >> 16)
    return total


def test_advert_frame_layout() -> None:
    frame = advert_frame(OURS, TARGET6)
    assert len(frame) == 14 + 40 + 32
    # Ethernet: to the all-nodes multicast MAC, from ours, IPv6
    assert frame[0:6] == bytes.fromhex("333300000001")
    assert frame[6:12] == mac(OURS)
    assert frame[12:14] == b"\x86\xdd"
    # IPv6 header: version 6, traffic class and flow label 0, payload 32, ICMPv6, hop limit 255
    ip6 = frame[14:54]
    assert ip6[0:4] == b"\x60\x00\x00\x00"
    assert struct.unpack("!H", ip6[4:6]) == (32,)
    assert (ip6[6], ip6[7]) == (58, 255)  # a hop limit below 255 makes receivers drop it
    assert ip6[8:24] == TARGET6.packed
    assert ip6[24:40] == ipaddress.IPv6Address("ff02::1").packed
    # ICMPv6 neighbour advertisement: type 136, code 0, flags R=0 S=0 O=1, the target
    icmp = frame[54:]
    assert (icmp[0], icmp[1]) == (136, 0)
    assert icmp[4:8] == b"\x20\x00\x00\x00"  # only Override: unsolicited, not a router
    assert icmp[8:24] == TARGET6.packed
    # target link-layer address option: type 2, length 1 (8 octets), our MAC
    assert icmp[24:26] == b"\x02\x01" and icmp[26:32] == mac(OURS)


def test_advert_checksum_is_valid_over_the_rfc_4443_pseudo_header() -> None:
    for address, ours in ((TARGET6, OURS), (ipaddress.IPv6Address("2001:db8:ffff::1"), THEIRS)):
        frame = advert_frame(ours, address)
        icmp = frame[54:]
        source, destination = frame[22:38], frame[38:54]
        # RFC 4443 2.3 / RFC 8200 8.1: source, destination, upper-layer length (32 bits),
        # three zero octets, next header 58
        pseudo = source + destination + len(icmp).to_bytes(4, "big") + b"\0\0\0" + bytes([58])
        assert ones_complement_sum(pseudo + icmp) == 0xFFFF  # the receiver's check
        zeroed = icmp[:2] + b"\0\0" + icmp[4:]
        expected = ~ones_complement_sum(pseudo + zeroed) & 0xFFFF
        assert struct.unpack("!H", icmp[2:4]) == (expected,) and expected != 0


_NO_DAD = " && ".join(
    f"echo 0 > /proc/sys/net/ipv6/conf/{scope}/accept_dad" for scope in ("all", "default")
)
_ANNOUNCE = """
import ipaddress, sys
from egress_router.kernel import arp
arp.announce(sys.argv[1], sys.argv[2], ipaddress.ip_address(sys.argv[3]), request=False)
"""


@pytest.fixture
def namespace() -> Iterator[str]:
    name = f"erv6na{uuid.uuid4().hex[:8]}"
    create_netns(name)
    try:
        procs.run(name, ["sh", "-c", _NO_DAD], timeout=30, check=True)
        with Netlink(name) as nl:
            nl.add_veth("v6a", "v6b")
            nl.set_up("v6a")
            nl.set_up("v6b")
            nl.add_address("v6b", ipaddress.IPv6Interface("2001:db8:1::1/64"))
        yield name
    finally:
        remove_netns(name)


@pytest.mark.lab
def test_the_kernel_takes_our_advertisement(namespace: str) -> None:
    """A neighbour that still holds an old MAC for the address learns ours from one
    advertisement: the kernel checked its checksum, hop limit and options."""
    with Netlink(namespace) as nl:
        ours = nl.require_link("v6a").mac
    assert ours is not None
    old = "02:00:00:00:00:01"
    neigh = ["ip", "-6", "neigh"]
    procs.run(
        namespace,
        [*neigh, "replace", str(TARGET6), "lladdr", old, "dev", "v6b", "nud", "stale"],
        check=True,
    )

    def learned() -> str:
        shown = procs.run(namespace, [*neigh, "show", str(TARGET6), "dev", "v6b"], check=True)
        return shown.stdout

    assert old in learned()
    sent = procs.run(namespace, [sys.executable, "-c", _ANNOUNCE, "v6a", ours, str(TARGET6)])
    assert sent.returncode == 0, sent.stderr
    deadline = time.monotonic() + 10
    while ours not in learned() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert f"lladdr {ours}" in learned()
