"""The failover lab: a second router pod on the same node, and what the wire shows.

Owns: adding a second router namespace (its own cluster-side veth and its own macvlan on the
node's ``ext0``, the same parent as the first router's), the ``EGRESS_*`` environment of each
failover instance, and two small probes run inside lab namespaces:

* ``watch``, in the gateway namespace: every ``PROBE_S`` an ARP request for the reserved IP out
  of ``lan0``, and every ARP reply or announcement for it printed with the sender MAC and the
  probe round, so two holders show as two MACs answering the same round;
* ``client``, in the client pod: opens a connection through the routers continuously (the
  routers' pod IPs in order, as a Service with both endpoints would) and prints each outcome.

Must not: import the product's failover code; the instances run as ``egress-router setup``.
Run as ``python -m egress_router.lab.failover watch|client ...`` inside a namespace.
"""

from __future__ import annotations

import ipaddress
import os
import select
import socket
import struct
import sys
import time
from typing import TYPE_CHECKING

from egress_router.kernel.netlink import Netlink

if TYPE_CHECKING:
    from egress_router.lab.topology import Lab

ROUTER2_IP = ipaddress.IPv4Address("198.18.0.4")
PROBE_S = 0.02  # ARP probe interval of the watcher
ETH_P_ARP = 0x0806
PROBE_MAC = bytes.fromhex("02000000fa11")
CLIENT_TIMEOUT_S = 0.2  # one connection attempt; a lost one is counted as a failure


def add_router2(lab: Lab, role: str = "router2") -> None:
    """A second router pod: eth0 198.18.0.4 on the node bridge, macvlan0 on the node's ext0."""
    with Netlink(lab.ns("node")) as node:
        node.add_veth("vrouter2", lab.cluster_ifname, lab.ns(role))
        node.set_master("vrouter2", "cbr0")
        node.set_up("vrouter2")
        node.add_macvlan("mvtmp2", "ext0", mode="private")
        node.move_link("mvtmp2", lab.ns(role), new_name=lab.macvlan_name)
    with Netlink(lab.ns(role)) as router:
        router.set_up(lab.cluster_ifname)
        router.add_address(lab.cluster_ifname, ipaddress.IPv4Interface(f"{ROUTER2_IP}/24"))
        router.add_route(None, lab.addr.node_cluster_ip)


def router_env(
    lab: Lab, identity: str, peers: list[str], lease_file: str, destination: str
) -> dict[str, str]:
    """The environment of one failover instance (file backend, default timings)."""
    return {
        "EGRESS_SOURCE": f"{lab.addr.egress_source}/24",
        "EGRESS_GATEWAY": str(lab.addr.gateway_ip),
        "EGRESS_DESTINATION": destination,
        "EGRESS_ROUTER_MODE": "legacy",
        "EGRESS_ROUTER_FAILOVER": "file",
        "EGRESS_ROUTER_LEASE_FILE": lease_file,
        "EGRESS_ROUTER_IDENTITY": identity,
        "EGRESS_ROUTER_PEERS": ",".join(peers),
        "EGRESS_ROUTER_DEBUG": os.environ.get("EGRESS_ROUTER_DEBUG", ""),
    }


# -- the probes (run inside lab namespaces) ------------------------------------------------------


def _arp_request(mac: bytes, target: bytes) -> bytes:
    header = b"\xff" * 6 + mac + struct.pack("!H", ETH_P_ARP)
    body = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + mac + b"\x00" * 4 + b"\x00" * 6 + target
    return header + body


def watch(interface: str, target_ip: str, seconds: float) -> int:
    """Probe for ``target_ip`` and print ``<unix time> <round> <mac> <kind>`` for each answer."""
    target = ipaddress.IPv4Address(target_ip).packed
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP))
    sock.bind((interface, 0))
    own = sock.getsockname()[4]
    # A made-up source MAC: the answers go to it, so the gateway's own kernel ignores them and
    # the probe never refreshes the gateway's neighbour entry (only the routers' ARPs do).
    mac = PROBE_MAC
    end = time.monotonic() + seconds
    next_probe = 0.0
    rounds = 0
    while time.monotonic() < end:
        now = time.monotonic()
        if now >= next_probe:
            rounds += 1
            sock.send(_arp_request(mac, target))
            next_probe = now + PROBE_S
        ready, _, _ = select.select([sock], [], [], max(0.0, next_probe - time.monotonic()))
        if not ready:
            continue
        frame = sock.recv(128)
        if len(frame) < 42:
            continue
        op = struct.unpack("!H", frame[20:22])[0]
        sender_mac, sender_ip = frame[22:28], frame[28:32]
        if sender_ip != target or sender_mac in (mac, own):
            continue
        kind = "reply" if op == 2 else "announce"
        print(f"{time.time():.6f} {rounds} {sender_mac.hex(':')} {kind}", flush=True)
    return 0


def client(targets: list[str], port: int, seconds: float, source: str) -> int:
    """Connect continuously; print ``<unix time> ok|fail`` per attempt: ok is an HTTP 200 from
    the web server saying it saw the reserved ``source`` (GET /ip)."""
    source_line = f"{source}\n".encode()
    end = time.monotonic() + seconds
    request = b"GET /ip HTTP/1.0\r\nHost: web\r\n\r\n"
    while time.monotonic() < end:
        ok = False
        for host in targets:
            try:
                with socket.create_connection((host, port), timeout=CLIENT_TIMEOUT_S) as conn:
                    conn.sendall(request)
                    answer = b""
                    while len(answer) < 4096 and (chunk := conn.recv(4096)):
                        answer += chunk
                    ok = answer.startswith(b"HTTP/1.1 200") and answer.endswith(source_line)
            except OSError:
                ok = False
            if ok:
                break
        print(f"{time.time():.6f} {'ok' if ok else 'fail'}", flush=True)
        time.sleep(0.005)
    return 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["watch"]:
        return watch(argv[1], argv[2], float(argv[3]))
    if argv[:1] == ["client"]:
        return client(argv[1].split(","), int(argv[2]), float(argv[3]), argv[4])
    print(
        "usage: python -m egress_router.lab.failover watch IF IP SECONDS | client IPS PORT S SOURCE"
    )
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
