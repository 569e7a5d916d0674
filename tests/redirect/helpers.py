"""Helpers for the router's namespace tests: snapshots, clients, a UDP echo server."""

from __future__ import annotations

import json
import time
from typing import Any

from egress_router.lab.topology import Lab

ROUTER_IP = "198.18.0.2"
WEB_LISTEN = [
    "203.0.113.25:80",
    "203.0.113.26:80",
    "203.0.113.26:443",
    "203.0.113.27:80",
    "203.0.113.27:9000",
]
UDP_ECHO_PORT = 5353


SETTLE_SECONDS = 20.0  # generous: the kernel's deferred work runs late on a loaded machine


def snapshot(lab: Lab, role: str = "router") -> dict[str, Any]:
    """Addresses, routes (all tables), the whole nftables ruleset and ip_forward of a pod.

    Taken once the kernel finished what it does on its own after a link comes up (operstate
    from the link-watch work queue, then the IPv6 link-local address with its local, prefix and
    multicast routes): two snapshots compared byte for byte must differ only by what a command
    changed, never by when they were taken."""
    deadline = time.monotonic() + SETTLE_SECONDS
    current = _read(lab, role)
    while True:
        time.sleep(0.1)
        previous, current = current, _read(lab, role)
        if (current == previous and _settled(current["addresses"])) or (
            time.monotonic() > deadline  # then the comparison shows what still moved
        ):
            return current


def _read(lab: Lab, role: str) -> dict[str, Any]:
    def run_json(argv: list[str]) -> Any:
        return json.loads(lab.exec(role, argv, check=True).stdout or "null")

    return {
        "addresses": run_json(["ip", "-j", "addr"]),
        "routes": run_json(["ip", "-j", "route", "show", "table", "all"]),
        "ruleset": _without_counts(run_json(["nft", "-j", "list", "ruleset"])),
        "ip_forward": lab.exec(role, ["cat", "/proc/sys/net/ipv4/ip_forward"]).stdout,
    }


def _without_counts(node: Any) -> Any:
    """The ruleset with every counter's packets and bytes at 0: counters count traffic (the
    rules carry them for ``diagnose``), they are not configuration a command may have changed."""
    if isinstance(node, dict):
        if set(node) == {"counter"} and isinstance(node["counter"], dict):
            return {"counter": {**node["counter"], "packets": 0, "bytes": 0}}
        return {key: _without_counts(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_without_counts(item) for item in node]
    return node


def _settled(links: list[dict[str, Any]]) -> bool:
    """Every link that is up with a carrier shows operstate UP and a final link-local address."""
    for link in links:
        flags = link.get("flags", [])
        if "LOOPBACK" in flags or "UP" not in flags or "LOWER_UP" not in flags:
            continue
        if link.get("operstate") != "UP":
            return False
        final = [
            a
            for a in link.get("addr_info", [])
            if a.get("family") == "inet6"
            and str(a.get("local", "")).startswith("fe80:")
            and not a.get("tentative")
        ]
        if not final:
            return False
    return True


def curl(lab: Lab, url: str, role: str = "client", timeout: float = 3.0) -> tuple[int, str, str]:
    """(curl exit status, body, stderr) for a GET from ``role``."""
    proc = lab.exec(role, ["curl", "-sS", "-m", str(timeout), url], timeout=timeout + 5)
    return proc.returncode, proc.stdout.strip(), proc.stderr.strip()


UDP_ECHO = """
import socket, sys
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind((sys.argv[1], int(sys.argv[2])))
while True:
    data, peer = sock.recvfrom(2048)
    sock.sendto(f"from {peer[0]}\\n".encode(), peer)
"""


def udp_echo(lab: Lab, address: str, port: int) -> None:
    """A UDP server on the web host answering every datagram with the sender's address."""
    lab.spawn(
        "web",
        ["python3", "-c", UDP_ECHO, address, str(port)],
        name=f"udp-echo-{address}-{port}",
    )


UDP_ASK = """
import socket, sys
from tests.reference_examples import REDIRECT_MULTI, REDIRECT_CONFIGMAP
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.settimeout(float(sys.argv[3]))
sock.connect((sys.argv[1], int(sys.argv[2])))
sock.send(b"ping")
try:
    print(sock.recv(2048).decode().strip())
except ConnectionRefusedError:
    sys.exit("refused")
except TimeoutError:
    sys.exit("timeout")
"""


def udp_ask(lab: Lab, host: str, port: int, timeout: float = 3.0) -> tuple[int, str, str]:
    """Send one datagram from the client; (status, answer, stderr: 'refused' or 'timeout')."""
    proc = lab.exec(
        "client", ["python3", "-c", UDP_ASK, host, str(port), str(timeout)], timeout=timeout + 5
    )
    return proc.returncode, proc.stdout.strip(), proc.stderr.strip()
