"""ARP on a raw packet socket: the only module that opens AF_PACKET sockets.

Owns: announcing that an IPv4 address now lives at an interface's MAC, in both forms switches
and hosts honour (an unsolicited ARP reply and an ARP request for our own address), so the
upstream switch and gateway learn the macvlan's MAC at once instead of after a timeout; and
probing who answers for an address (``probe``, what ``arping`` does), for ``diagnose``.
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


def announce(interface: str, mac: str, address: ipaddress.IPv4Address, *, request: bool) -> None:
    """Send one gratuitous ARP reply (``request=False``) or request (``request=True``)."""
    op = ARP_REQUEST if request else ARP_REPLY
    try:
        with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP)) as sock:
            sock.bind((interface, 0))
            sock.send(frame(op, mac, address))
    except OSError as exc:
        kind = "request" if request else "reply"
        raise DataplaneError(f"gratuitous ARP {kind} on {interface} failed: {exc}") from exc


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
