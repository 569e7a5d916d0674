"""One lab for all HTTP proxy tests of a module: router pod set up in http-proxy mode, nginx,
an origin with odd framings, a TLS server, dnsmasq, and proxies started on demand."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from egress_router.lab import procs
from egress_router.lab.dns import DnsServer
from egress_router.lab.servers import Nginx
from egress_router.lab.topology import Lab
from tests.conftest import EGRESS_ROUTER, setup_router
from tests.reference_examples import HTTP_PROXY

ROUTER_IP = "198.18.0.2"
WEB = "203.0.113.25"
ORIGIN = f"{WEB}:8000"
RECORDS = {
    "egress-1": [ROUTER_IP],  # the Service name the documents' clients use
    "www.example.com": [WEB],
    "web.test": [WEB],
    "inside.test": ["192.168.1.7"],
    "mixed.test": ["203.0.113.26", "192.168.1.7"],
    "loop.test": ["127.0.0.1"],
}
RAW_CLIENT = """
import socket, sys, time
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3]))
for part in sys.argv[4:]:
    if part.startswith("sleep:"):
        time.sleep(float(part[6:]))
    else:
        s.sendall(bytes.fromhex(part))
out = b""
try:
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        out += chunk
except (socket.timeout, ConnectionResetError):
    pass
sys.stdout.write(out.hex())
"""


@dataclass
class ProxyLab:
    lab: Lab
    nginx: Nginx
    dns: DnsServer
    proxies: dict[int, procs.Background] = field(default_factory=dict)

    def start_proxy(
        self, port: int, destination: str, env: dict[str, str] | None = None
    ) -> procs.Background:
        full = {
            "EGRESS_HTTP_PROXY_DESTINATION": destination,
            "EGRESS_HTTP_PROXY_LISTEN_PORT": str(port),
            "EGRESS_HTTP_PROXY_WORKERS": "1",
            **(env or {}),
        }
        proc = self.lab.spawn(
            "router", [EGRESS_ROUTER, "http-proxy"], name=f"proxy{port}", env=full
        )
        if not procs.wait_for(lambda: "listening on" in proc.output() or not proc.alive(), 10):
            raise AssertionError(proc.output())
        assert proc.alive(), proc.output()
        self.proxies[port] = proc
        return proc

    def curl(
        self, *args: str, port: int = 8080, timeout: float = 10
    ) -> subprocess.CompletedProcess[str]:
        proxy = f"http://egress-1:{port}/"
        env = {"http_proxy": proxy, "https_proxy": proxy, "no_proxy": "", "NO_PROXY": ""}
        argv = ["curl", "-sS", "--max-time", str(timeout), *args]
        result: subprocess.CompletedProcess[str] = self.lab.exec(
            "client", argv, env=env, timeout=timeout + 5
        )
        return result

    def raw(self, *parts: bytes | float, port: int = 8080, timeout: float = 5.0) -> bytes:
        """Send raw bytes (floats are pauses) to the proxy; everything read until close."""
        args = [f"sleep:{p}" if isinstance(p, float) else p.hex() for p in parts]
        argv = [sys.executable, "-c", RAW_CLIENT, ROUTER_IP, str(port), str(timeout), *args]
        result = self.lab.exec("client", argv, timeout=timeout + 30)
        assert result.returncode == 0, result.stderr
        return bytes.fromhex(result.stdout)

    def log(self, port: int = 8080) -> str:
        return self.proxies[port].output()


def _tls_server(lab: Lab) -> None:
    key, cert = lab.work / "tls.key", lab.work / "tls.crt"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
         "-out", str(cert), "-days", "1", "-subj", "/CN=web.test"],
        check=True, capture_output=True,
    )  # fmt: skip
    lab.spawn(
        "web",
        ["openssl", "s_server", "-accept", "443", "-cert", str(cert), "-key", str(key), "-www"],
        name="tls",
    )


@pytest.fixture(scope="module")
def plab() -> Iterator[ProxyLab]:
    if os.geteuid() != 0:
        pytest.skip("needs root for network namespaces")
    with Lab() as lab:  # work dir under /run: nginx's unprivileged workers must read it
        setup_router(lab, mode="http-proxy")
        nginx = Nginx(lab, "web", [f"{WEB}:80"]).start()
        lab.spawn("web", [sys.executable, str(Path(__file__).with_name("origin.py")), WEB, "8000"],
                  name="origin")  # fmt: skip
        _tls_server(lab)
        dns = DnsServer(lab, RECORDS).start()
        dns.use_from("router", "client")
        env = ProxyLab(lab, nginx, dns)
        env.start_proxy(8080, HTTP_PROXY)
        time.sleep(0.3)
        yield env
        for proc in env.proxies.values():
            proc.stop(signal.SIGTERM)
