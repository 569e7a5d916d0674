"""The HTTP proxy reloads its rules without a restart (two workers): a ConfigMap update or
SIGHUP under load fails no request; a CONNECT tunnel opened before a reload that removes its
destination carries on; a bad file is refused with one line and the old rules stay."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from egress_router.lab import procs
from tests.configmap import ConfigMapVolume
from tests.http_proxy.conftest import ROUTER_IP, WEB, ProxyLab
from tests.load_client import Load

pytestmark = pytest.mark.lab

OTHER = "203.0.113.26"  # nothing listens there: allowed is 502, denied is 403
FIRST = f"{WEB}\n"
SECOND = f"{WEB}\n{OTHER}\n"
WITHOUT_WEB = f"{OTHER}\n"
BAD = f"{WEB}\n!!not a rule at all\n"

TUNNEL = r"""
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
s.sendall(b"CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (sys.argv[3].encode(), sys.argv[3].encode()))
head = b""
while b"\r\n\r\n" not in head:
    head += s.recv(4096)
print(head.split(b"\r\n")[0].decode(), flush=True)
for line in sys.stdin:  # one request through the tunnel per line read
    s.sendall(b"GET /ip HTTP/1.1\r\nHost: x\r\n\r\n")
    data = s.recv(65536)
    print(data.split(b"\r\n")[0].decode() + " " + data.rsplit(b"\n", 2)[-2].decode(), flush=True)
"""


def start(plab: ProxyLab, port: int, tmp_path: Path) -> tuple[procs.Background, ConfigMapVolume]:
    volume = ConfigMapVolume(tmp_path / f"config{port}", "destination", FIRST)
    env = {
        "EGRESS_HTTP_PROXY_DESTINATION": "",
        "EGRESS_HTTP_PROXY_DESTINATION_FILE": volume.path,
        "EGRESS_HTTP_PROXY_WORKERS": "2",
    }
    return plab.start_proxy(port, "", env), volume


def status(plab: ProxyLab, url: str, port: int) -> str:
    result = plab.curl("-o", "/dev/null", "-w", "%{http_code}", url, port=port, timeout=5)
    return result.stdout.strip()


def test_update_under_load_and_tunnel_survives(plab: ProxyLab, tmp_path: Path) -> None:
    proxy, volume = start(plab, 8090, tmp_path)
    assert status(plab, f"http://{OTHER}/", 8090) == "403"
    load = Load(plab.lab.ns("client"), ROUTER_IP, 8090, f"http://{WEB}/ip", seconds=5.0)
    time.sleep(1.0)
    volume.update(SECOND)
    assert procs.wait_for(lambda: status(plab, f"http://{OTHER}/", 8090) not in ("403", "000"), 10)
    result = load.result()
    assert result["kept"]["failed"] == 0 and result["fresh"]["failed"] == 0, result
    assert result["kept"]["ok"] and result["fresh"]["ok"], result

    argv = ["ip", "netns", "exec", plab.lab.ns("client"), sys.executable, "-c", TUNNEL]
    argv += [ROUTER_IP, "8090", f"{WEB}:80"]
    tunnel = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert tunnel.stdin is not None and tunnel.stdout is not None
    try:
        assert tunnel.stdout.readline().startswith("HTTP/1.1 200"), proxy.output()
        tunnel.stdin.write("go\n")
        tunnel.stdin.flush()
        assert tunnel.stdout.readline().startswith("HTTP/1.1 200")
        volume.update(WITHOUT_WEB)  # the tunnel's destination is no longer allowed
        assert procs.wait_for(lambda: status(plab, f"http://{WEB}/ip", 8090) == "403", 10)
        tunnel.stdin.write("go\n")
        tunnel.stdin.flush()
        assert tunnel.stdout.readline().startswith("HTTP/1.1 200")  # still carried
    finally:
        tunnel.stdin.close()
        tunnel.wait(timeout=10)
        tunnel.stdout.close()
    assert proxy.output().count("reloaded: 2 rule(s)") == 1, proxy.output()  # worker 0 reports
    proxy.stop(signal.SIGTERM)


def test_bad_file_refused_and_sighup(plab: ProxyLab, tmp_path: Path) -> None:
    proxy, volume = start(plab, 8091, tmp_path)
    volume.update(BAD)
    assert procs.wait_for(lambda: "reload refused" in proxy.output(), 10), proxy.output()
    time.sleep(1.5)
    refused = [line for line in proxy.output().splitlines() if "reload refused" in line]
    assert len(refused) == 1 and "EGRESS_HTTP_PROXY_DESTINATION" in refused[0], refused
    assert status(plab, f"http://{WEB}/ip", 8091) == "200"  # the old rules stay
    assert status(plab, f"http://{OTHER}/", 8091) == "403"
    target = Path(volume.path).resolve()
    stat = target.stat()
    same_size = SECOND + "#" * (len(BAD) - len(SECOND) - 1) + "\n"
    assert len(same_size) == len(BAD)
    target.write_text(same_size)  # same size and mtime: only SIGHUP sees it
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    os.kill(proxy.pid, signal.SIGHUP)  # the main process only; it passes it on
    assert procs.wait_for(
        lambda: status(plab, f"http://{OTHER}/", 8091) not in ("403", "000"), 10
    ), proxy.output()
    proxy.stop(signal.SIGTERM)


def test_health_endpoints(plab: ProxyLab) -> None:
    proxy = plab.start_proxy(8092, FIRST, {"EGRESS_ROUTER_HEALTH_PORT": "127.0.0.1:18082"})

    def probe(path: str) -> str:
        argv = ["curl", "-sS", "-m", "3", f"http://127.0.0.1:18082{path}"]
        return str(plab.lab.exec("router", argv).stdout)

    assert probe("/healthz") == "ok\n"
    assert procs.wait_for(lambda: probe("/readyz") == "ready\n", 10)
    proxy.stop(signal.SIGTERM)
