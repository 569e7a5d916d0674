"""Heartbeats between failover instances: small UDP datagrams on the cluster-side network.

Owns: the heartbeat socket, the datagram format (``ERFO1 <identity> <role>``) and accepting
datagrams only from the configured peers, so detection depends on the instances themselves,
not on node health or the API server.
Must not: decide anything from what it hears (``model.machine`` does).
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket

from egress_router.errors import DataplaneError

MAGIC = b"ERFO1"
MAX_DATAGRAM = 256  # identity (<= 63) + role + magic; longer datagrams are not ours
MAX_PER_DRAIN = 64  # bounds the work of one loop step under a flood


class Heartbeats:
    def __init__(self, port: int, peers: tuple[ipaddress.IPv4Address, ...], identity: str) -> None:
        self.port = port
        self.peers = frozenset(str(p) for p in peers)
        self.identity = identity
        try:
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.sock.bind(("0.0.0.0", port))
            self.sock.setblocking(False)
        except OSError as exc:
            raise DataplaneError(f"cannot open the heartbeat socket on UDP {port}: {exc}") from exc

    def fileno(self) -> int:
        return self.sock.fileno()

    def send(self, role: str) -> None:
        """One datagram to every peer; a peer that is down is not an error."""
        message = b" ".join((MAGIC, self.identity.encode(), role.encode()))
        for peer in self.peers:
            with contextlib.suppress(OSError):
                self.sock.sendto(message, (peer, self.port))

    def drain(self) -> list[tuple[str, str]]:
        """(identity, role) of every pending valid datagram from a configured peer."""
        heard: list[tuple[str, str]] = []
        for _ in range(MAX_PER_DRAIN):
            try:
                data, (address, _port) = self.sock.recvfrom(MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                break
            try:
                source = ipaddress.ip_address(address)
            except ValueError:
                continue
            if isinstance(source, ipaddress.IPv6Address) and source.ipv4_mapped is not None:
                source = source.ipv4_mapped
            if str(source) not in self.peers:
                continue
            parts = data.split(b" ")
            if len(parts) != 3 or parts[0] != MAGIC or not parts[1].isascii():
                continue
            identity, role = parts[1].decode(), parts[2].decode("ascii", "replace")
            if identity != self.identity:
                heard.append((identity, role))
        return heard

    def close(self) -> None:
        self.sock.close()
