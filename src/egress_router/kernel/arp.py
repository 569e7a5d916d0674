"""ARP and IPv6 neighbour advertisements on a raw packet socket: the only module that opens
AF_PACKET sockets.

Owns: announcing that an address now lives at an interface's MAC, so the upstream switch and
gateway learn the macvlan's MAC at once instead of after a timeout. IPv4: in both forms switches
and hosts honour (an unsolicited ARP reply and an ARP request for our own address). IPv6: an
unsolicited neighbour advertisement (RFC 4861 7.2.6: to all-nodes ``ff02::1``, hop limit 255,
Override set, our MAC as the target link-layer address option), built whole here so it goes
out even while the address is still tentative. Also probing who answers for an IPv4 address
(``probe``, what ``arping`` does), for ``diagnose``.
Must not: decide when to announce or probe (the commands do).
"""

from __future__ import annotations

import ipaddress
import select
import socket
import struct
import time

from egress_router.errors import DataplaneError

ETH_P_ARP = 0x0806
ETH_P_IPV6 = 0x86DD
ICMPV6 = 58
NEIGHBOUR_ADVERT = 136
ALL_NODES = ipaddress.IPv6Address("ff02::1")
ALL_NODES_MAC = b"\x33\x33\x00\x00\x00\x01"
NA_OVERRIDE = 0x20000000
BROADCAST = b"\xff" * 6
ARP_REQUEST = 1
ARP_REPLY = 2


def _mac_bytes(mac: str) -> bytes:
    return bytes(int(part, 16) for part in mac.split(":"))


def frame(op: int, mac: str, address: ipaddress.IPv4Address) -> bytes:
    """An Ethernet frame carrying a gratuitous ARP (sender = target = ``address``)."""
    src = _mac_bytes(mac)
    ip = address.packed
    target_mac = BROADCAST if op == ARP_REPLY else b"\x00" * 6
    header = BROADCAST + src + struct.pack("!H", ETH_P_ARP)
    arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, op) + src + ip + target_mac + ip
    return header + arp


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\x00"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def advert_frame(mac: str, address: ipaddress.IPv6Address) -> bytes:
    """An Ethernet frame carrying an unsolicited neighbour advertisement for ``address``."""
    src = _mac_bytes(mac)
    option = struct.pack("!BB", 2, 1) + src  # target link-layer address, 8 bytes
    body = struct.pack("!BBHI", NEIGHBOUR_ADVERT, 0, 0, NA_OVERRIDE) + address.packed + option
    pseudo = address.packed + ALL_NODES.packed + struct.pack("!I3xB", len(body), ICMPV6)
    body = body[:2] + struct.pack("!H", _checksum(pseudo + body)) + body[4:]
    ip6 = struct.pack("!IHBB", 6 << 28, len(body), ICMPV6, 255) + address.packed + ALL_NODES.packed
    return ALL_NODES_MAC + src + struct.pack("!H", ETH_P_IPV6) + ip6 + body


def announce(
    interface: str,
    mac: str,
    address: ipaddress.IPv4Address | ipaddress.IPv6Address,
    *,
    request: bool,
) -> None:
    """Send one gratuitous ARP reply (``request=False``) or request (``request=True``); for an
    IPv6 address an unsolicited neighbour advertisement (both forms send one: RFC 4861 allows
    a few, and the second covers a lost first)."""
    if isinstance(address, ipaddress.IPv6Address):
        kind, proto, data = "neighbour advertisement", ETH_P_IPV6, advert_frame(mac, address)
    else:
        kind = "gratuitous ARP " + ("request" if request else "reply")
        proto = ETH_P_ARP
        data = frame(ARP_REQUEST if request else ARP_REPLY, mac, address)
    try:
        with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(proto)) as sock:
            sock.bind((interface, 0))
            sock.send(data)
    except OSError as exc:
        raise DataplaneError(f"{kind} on {interface} failed: {exc}") from exc


ZERO_IP = ipaddress.IPv4Address("0.0.0.0")


def request_frame(
    eth_source: str, sender_mac: str, sender: ipaddress.IPv4Address, target: ipaddress.IPv4Address
) -> bytes:
    """A broadcast ARP request for ``target`` (sender ``sender_mac``/``sender`` in the body)."""
    header = BROADCAST + _mac_bytes(eth_source) + struct.pack("!H", ETH_P_ARP)
    body = struct.pack("!HHBBH", 1, 0x0800, 6, 4, ARP_REQUEST)
    body += _mac_bytes(sender_mac) + sender.packed + b"\x00" * 6 + target.packed
    return header + body


def reply_from(data: bytes, target: ipaddress.IPv4Address) -> str | None:
    """The MAC in an ARP reply frame sent by ``target``, or None for any other frame."""
    if len(data) < 42 or data[12:14] != struct.pack("!H", ETH_P_ARP):
        return None
    _hw, proto, _hl, _pl, op = struct.unpack("!HHBBH", data[14:22])
    if proto != 0x0800 or op != ARP_REPLY or data[28:32] != target.packed:
        return None
    return ":".join(f"{b:02x}" for b in data[22:28])


def probe(
    interface: str,
    mac: str,
    sender: ipaddress.IPv4Address,
    target: ipaddress.IPv4Address,
    timeout: float,
    *,
    anonymous_mac: str | None = None,
) -> tuple[str | None, float]:
    """Ask who has ``target`` from ``sender`` (as ``arping -I interface -s sender``).

    Returns (the MAC that answered or None, milliseconds waited). With ``anonymous_mac`` the
    request leaves from that MAC instead, with sender 0.0.0.0 (an RFC 5227 probe: nobody
    caches it) and the broadcast address as sender MAC, so the answer comes back broadcast and
    reaches us whatever MAC the path lets through.
    """
    if anonymous_mac is not None:
        frame_ = request_frame(anonymous_mac, "ff:ff:ff:ff:ff:ff", ZERO_IP, target)
    else:
        frame_ = request_frame(mac, mac, sender, target)
    started = time.monotonic()
    try:
        with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP)) as sock:
            sock.bind((interface, 0))
            sock.send(frame_)
            deadline = started + timeout
            resent = False
            while (left := deadline - time.monotonic()) > 0:
                if not resent and left < timeout / 2:  # one retry, as arping -c 2
                    sock.send(frame_)
                    resent = True
                ready, _, _ = select.select([sock], [], [], min(left, timeout / 2))
                if not ready:
                    continue
                found = reply_from(sock.recv(2048), target)
                if found is not None:
                    return found, (time.monotonic() - started) * 1000
    except OSError as exc:
        raise DataplaneError(f"ARP probe of {target} on {interface} failed: {exc}") from exc
    return None, (time.monotonic() - started) * 1000
