"""Gratuitous ARP on a raw packet socket: the only module that opens AF_PACKET sockets.

Owns: announcing that an IPv4 address now lives at an interface's MAC, in both forms switches
and hosts honour (an unsolicited ARP reply and an ARP request for our own address), so the
upstream switch and gateway learn the macvlan's MAC at once instead of after a timeout.
Must not: decide when to announce (the setup command does).
"""

from __future__ import annotations

import ipaddress
import socket
import struct

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
