"""The HTTP proxy for real: router pod in http-proxy mode, clients in the client pod."""

from __future__ import annotations

import hashlib
import random
import signal
import subprocess
import sys
import time

import pytest

from egress_router.lab.topology import ADDR
from tests.conftest import cli
from tests.http_proxy.conftest import ORIGIN, ROUTER_IP, WEB, ProxyLab

pytestmark = pytest.mark.lab

STRICT = "web.test\n203.0.113.25\n!2001:db8::/32\n"
STRICT_ENV = {
    "EGRESS_HTTP_PROXY_CONNECT_PORTS": "443",
    "EGRESS_HTTP_PROXY_HEADER_TIMEOUT": "1",
    "EGRESS_HTTP_PROXY_IDLE_TIMEOUT": "2",
    "EGRESS_HTTP_PROXY_MAX_HEADER_BYTES": "4096",
}


@pytest.fixture(scope="module")
def strict(plab: ProxyLab) -> ProxyLab:
    plab.start_proxy(8081, STRICT, STRICT_ENV)
    return plab


def status_and_body(result: subprocess.CompletedProcess[str]) -> tuple[str, str]:
    text = result.stdout.replace("\r\n", "\n")
    head, _, body = text.partition("\n\n")
    return head.split("\n", 1)[0], body


# -- the documents' example list, unchanged ---------------------------------------------------


def test_allowed_request_leaves_from_the_reserved_source(plab: ProxyLab) -> None:
    result = plab.curl(f"http://{WEB}/ip")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(ADDR.egress_source)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://www.example.com/", "denied by rule 1: !*.example.com"),
        ("http://EXAMPLE.com./", "denied by rule 1: !*.example.com"),
        ("http://192.168.1.7/", "denied by rule 2: !192.168.1.0/24"),
        ("http://inside.test/", "denied by rule 2: !192.168.1.0/24 (inside.test is 192.168.1.7)"),
        ("http://mixed.test/", "denied by rule 2: !192.168.1.0/24 (mixed.test is 192.168.1.7)"),
        (
            "http://loop.test/",
            "denied: loopback and unspecified addresses need an explicit address rule",
        ),
        ("http://127.0.0.1:9/", "denied: loopback"),
        ("http://127.0.0.1:8080/", "refusing to forward to the proxy itself"),
    ],
)
def test_denied_with_403_naming_the_rule(plab: ProxyLab, url: str, reason: str) -> None:
    status, body = status_and_body(plab.curl("-i", url))
    assert status == "HTTP/1.1 403 Forbidden"
    assert body.strip().startswith(reason)


def test_allowed_name_resolved_by_the_pod_resolver(plab: ProxyLab) -> None:
    assert plab.curl("http://web.test/ip").stdout.strip() == str(ADDR.egress_source)


def test_https_through_connect_is_tunnelled(plab: ProxyLab) -> None:
    result = plab.curl("-k", "https://web.test/")
    assert result.returncode == 0, result.stderr
    assert "s_server" in result.stdout  # the TLS server's own page: TLS was not terminated
    denied = plab.curl("-k", "-v", "https://www.example.com/")
    assert denied.returncode != 0
    assert "403" in denied.stderr


def test_tunnel_carries_large_data_both_ways_intact(plab: ProxyLab) -> None:
    """CONNECT to the origin, then a 3 MB echo inside the tunnel (spliced by the kernel)."""
    big = plab.lab.work / "tunnel.bin"
    big.write_bytes(bytes(range(251)) * 12_000)
    out = plab.lab.work / "tunnel.out"
    result = plab.curl("-p", "-o", str(out), "--data-binary", f"@{big}", f"http://{ORIGIN}/echo")
    assert result.returncode == 0, result.stderr
    assert hashlib.sha256(out.read_bytes()).digest() == hashlib.sha256(big.read_bytes()).digest()
    time.sleep(1.2)
    assert any(
        f"method=CONNECT host={WEB} port=8000" in line and "status=200" in line
        and f"bytes_down={len(big.read_bytes())}" not in line  # head + body: more than the file
        and int(line.split("bytes_up=")[1].split()[0]) > len(big.read_bytes())
        for line in plab.log().splitlines()
    )  # fmt: skip


def test_requests_to_the_proxy_itself_are_refused(plab: ProxyLab) -> None:
    status, body = status_and_body(plab.curl("-i", f"http://{ROUTER_IP}:8080/"))
    assert status == "HTTP/1.1 403 Forbidden" and "the proxy itself" in body
    assert plab.curl("-p", "http://egress-1:8080/").returncode != 0


def test_unknown_name_is_502_and_ipv6_literal_is_parsed(plab: ProxyLab) -> None:
    status, body = status_and_body(plab.curl("-i", "http://nowhere.test/"))
    assert status == "HTTP/1.1 502 Bad Gateway"
    assert "cannot resolve nowhere.test" in body
    status, _ = status_and_body(plab.curl("-i", "http://[2001:db8::1]/"))
    assert status == "HTTP/1.1 502 Bad Gateway"  # allowed by *, no IPv6 route in the lab


def test_listens_on_the_cluster_side_only(plab: ProxyLab) -> None:
    listening = plab.lab.exec("router", ["ss", "-Hltn"]).stdout
    assert f"{ROUTER_IP}:8080" in listening
    assert "0.0.0.0:8080" not in listening and "*:8080" not in listening
    assert f"{ADDR.egress_source}:8080" not in listening


def test_refuses_to_listen_on_the_reserved_address(plab: ProxyLab) -> None:
    for env in (
        {"EGRESS_HTTP_PROXY_LISTEN_ADDRESS": str(ADDR.egress_source)},
        {"EGRESS_ROUTER_CLUSTER_INTERFACE": "macvlan0"},
    ):
        result = cli("http-proxy", env={"EGRESS_HTTP_PROXY_DESTINATION": "*", **env},
                     namespace=plab.lab.ns("router"))  # fmt: skip
        assert result.returncode == 1
        assert "refusing to listen on the reserved external address of macvlan0" in result.stderr


# -- HTTP/1.1 relay --------------------------------------------------------------------------


def test_bodies_both_ways_keep_alive_head_and_1xx(plab: ProxyLab) -> None:
    big = plab.lab.work / "upload.bin"
    big.write_bytes(bytes(range(256)) * 12_000)  # ~3 MB
    digest = hashlib.sha256(big.read_bytes()).hexdigest()
    for framing in ([], ["-H", "Transfer-Encoding: chunked"]):
        result = plab.curl(
            "-o", "/dev/null", "--data-binary", f"@{big}", *framing, f"http://{ORIGIN}/echo"
        )
        assert result.returncode == 0, result.stderr
    out = plab.lab.work / "echo.bin"
    plab.curl("-o", str(out), "-H", "Transfer-Encoding: chunked", "--data-binary", f"@{big}",
              f"http://{ORIGIN}/echo")  # fmt: skip
    assert hashlib.sha256(out.read_bytes()).hexdigest() == digest
    size = plab.curl("-o", "/dev/null", "-w", "%{size_download}", f"http://{WEB}/1m.bin")
    assert size.stdout == str(1024 * 1024)
    assert plab.curl(f"http://{ORIGIN}/chunked").stdout == "hello chunked world"
    assert plab.curl(f"http://{ORIGIN}/close").stdout == "until the end"
    head = plab.curl("-sSI", f"http://{WEB}/small.txt")
    assert head.stdout.startswith("HTTP/1.1 200") and "Content-Length: 3" in head.stdout
    cont = plab.curl("-v", "-H", "Expect: 100-continue", "--data-binary", f"@{big}",
                     f"http://{WEB}/upload")  # fmt: skip
    assert "HTTP/1.1 100 Continue" in cont.stderr and cont.stdout == "ok\n"
    two = plab.curl("-v", f"http://{WEB}/ip", f"http://{WEB}/small.txt")
    assert "Re-using existing connection" in two.stderr or "Reusing existing" in two.stderr


def test_malformed_upstream_answer_is_502(plab: ProxyLab) -> None:
    status, body = status_and_body(plab.curl("-i", f"http://{ORIGIN}/badcl"))
    assert status == "HTTP/1.1 502 Bad Gateway", body
    assert "Content-Length" in body


def test_connection_limit_answers_503(plab: ProxyLab) -> None:
    plab.start_proxy(8083, "*", {"EGRESS_HTTP_PROXY_MAX_CONNECTIONS": "2"})
    code = f"""
import socket, time
held = [socket.create_connection(("{ROUTER_IP}", 8083)) for _ in range(2)]
time.sleep(0.3)
third = socket.create_connection(("{ROUTER_IP}", 8083), timeout=5)
print(third.recv(200).split(b"\\r\\n")[0].decode())
"""
    result = plab.lab.exec("client", [sys.executable, "-c", code], timeout=30)
    assert result.stdout.strip() == "HTTP/1.1 503 Service Unavailable", result.stderr


def test_hop_by_hop_headers_are_not_forwarded(plab: ProxyLab) -> None:
    seen = plab.curl(
        "-H", "Connection: X-Private", "-H", "X-Private: secret", "-H", "Keep-Alive: 5",
        "-H", "Proxy-Authorization: Basic Zm9vOmJhcg==", "-H", "X-End-To-End: yes",
        f"http://{ORIGIN}/headers",
    ).stdout.lower()  # fmt: skip
    assert "x-end-to-end: yes" in seen and f"host: {ORIGIN}" in seen
    assert "via: 1.1 egress-router" in seen
    for gone in ("x-private", "keep-alive", "proxy-authorization", "connection"):
        assert gone not in seen


def test_upgrade_requests_are_relayed_as_plain_requests(plab: ProxyLab) -> None:
    head = (f"GET http://{ORIGIN}/headers HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
            "Upgrade: websocket\r\n\r\n")  # fmt: skip
    tail = f"GET http://{WEB}/small.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    out = plab.raw(head.encode() + tail.encode())
    assert out.count(b"HTTP/1.1 200 OK") == 2
    assert b"upgrade" not in out.lower().split(b"\r\n\r\n", 1)[1]  # the origin never saw it


def test_pipelined_requests_are_answered_in_order(plab: ProxyLab) -> None:
    one = f"GET http://{WEB}/ip HTTP/1.1\r\nHost: {WEB}\r\n\r\n".encode()
    two = f"GET http://{WEB}/small.txt HTTP/1.1\r\nHost: {WEB}\r\nConnection: close\r\n\r\n"
    out = plab.raw(one + two.encode())
    assert out.count(b"HTTP/1.1 200 OK") == 2
    assert out.index(b"198.19.123.99") < out.index(b"ok\n")
    # Many pipelined heads, each with a large field: each head is bounded on its own.
    big = f"GET http://{WEB}/ip HTTP/1.1\r\nHost: {WEB}\r\nX-Pad: {'p' * 2000}\r\n\r\n"
    out = plab.raw((big * 20).encode() + two.encode())
    assert out.count(b"HTTP/1.1 200 OK") == 21


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"POST http://203.0.113.25/upload HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        b"POST http://203.0.113.25/upload HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
        b"Content-Length: 4\r\n\r\nabcd",
        b"POST http://203.0.113.25/upload HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
        b"Content-Length: 3\r\n\r\nabc",
        b"POST http://203.0.113.25/upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        b"\r\nzz\r\nabc\r\n0\r\n\r\n",
        b"POST http://203.0.113.25/upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
        b"GET http://203.0.113.25/ HTTP/1.1\r\nHost: x\r\n x-folded: y\r\n\r\n",
        b"GET /relative HTTP/1.1\r\nHost: 203.0.113.25\r\n\r\n",
        b"GET https://203.0.113.25/ HTTP/1.1\r\nHost: x\r\n\r\n",
        b"NOT-HTTP\r\n\r\n",
        b"CONNECT web.test HTTP/1.1\r\n\r\n",
    ],
    ids=[
        "cl+te",
        "cl-conflict",
        "cl-duplicate",
        "bad-chunk",
        "te-not-chunked",
        "obs-fold",
        "origin-form",
        "https-scheme",
        "garbage",
        "connect-no-port",
    ],
)
def test_malformed_and_smuggling_shapes_get_400(plab: ProxyLab, request_bytes: bytes) -> None:
    out = plab.raw(request_bytes)
    assert out.startswith(b"HTTP/1.1 400 Bad Request"), out[:200]
    assert out.count(b"HTTP/1.1") == 1  # nothing smuggled behind it


def test_two_hundred_concurrent_clients(plab: ProxyLab) -> None:
    code = f"""
import asyncio
async def one(i):
    r, w = await asyncio.open_connection("{ROUTER_IP}", 8080)
    w.write(b"GET http://{WEB}/small.txt HTTP/1.1\\r\\nHost: {WEB}\\r\\n"
            b"Connection: close\\r\\n\\r\\n")
    data = await r.read()
    w.close()
    return data.startswith(b"HTTP/1.1 200") and data.endswith(b"ok\\n")
async def main():
    results = await asyncio.gather(*(one(i) for i in range(200)))
    print(sum(results))
asyncio.run(main())
"""
    result = plab.lab.exec("client", [sys.executable, "-c", code], timeout=60)
    assert result.stdout.strip() == "200", result.stderr


def test_access_log_line_per_request(plab: ProxyLab) -> None:
    plab.curl(f"http://{WEB}/small.txt")
    time.sleep(1.2)  # the log is flushed every second
    lines = [line for line in plab.log().splitlines() if "small.txt" not in line]
    assert any(
        "method=GET host=203.0.113.25 port=80 address=203.0.113.25" in line
        and 'rule="rule 3: *" status=200' in line
        and "bytes_down=3" in line
        for line in lines
    )
    assert any("method=CONNECT host=web.test port=443" in line for line in lines)
    assert any("status=403" in line and "!*.example.com" in line for line in lines)


# -- the stricter proxy: default deny, CONNECT ports, limits, timeouts -------------------------


def test_default_deny_and_connect_ports(strict: ProxyLab) -> None:
    assert strict.curl("http://web.test:8000/", port=8081).stdout == "origin\n"
    assert strict.curl("http://203.0.113.25:8000/", port=8081).stdout == "origin\n"
    status, body = status_and_body(strict.curl("-i", "http://203.0.113.27:8000/", port=8081))
    assert (
        status.endswith("403 Forbidden")
        and "denied: no rule matched and the list does not end in *" in body
    )
    status, body = status_and_body(strict.curl("-i", "-p", "http://web.test:8000/", port=8081))
    assert "403" in status or "CONNECT to port 8000 is not allowed" in body
    assert strict.curl("-k", "https://web.test/", port=8081).returncode == 0
    status, body = status_and_body(strict.curl("-i", "http://[2001:db8::7]/", port=8081))
    assert "403" in status and "rule 3: !2001:db8::/32" in body


def test_too_large_head_gets_431(strict: ProxyLab) -> None:
    head = b"GET http://web.test/ HTTP/1.1\r\nHost: web.test\r\nX-Big: " + b"a" * 8000
    out = strict.raw(head + b"\r\n\r\n", port=8081)
    assert out.startswith(b"HTTP/1.1 431"), out[:100]


def test_slow_header_client_is_cut(strict: ProxyLab) -> None:
    started = time.monotonic()
    out = strict.raw(b"GET http://web.test/ HTTP/1.1\r\n", 0.6, b"Host: we", port=8081, timeout=8)
    assert out.startswith(b"HTTP/1.1 408"), out[:100]
    assert time.monotonic() - started < 6


def test_idle_keep_alive_connection_is_closed(strict: ProxyLab) -> None:
    started = time.monotonic()
    out = strict.raw(
        b"GET http://web.test:8000/ HTTP/1.1\r\nHost: x\r\n\r\n", port=8081, timeout=10
    )
    assert out.startswith(b"HTTP/1.1 200") and out.endswith(b"origin\n")
    assert 1.5 < time.monotonic() - started < 6


def test_upstream_timeouts_give_504(plab: ProxyLab) -> None:
    plab.start_proxy(8082, "*", {"EGRESS_HTTP_PROXY_CONNECT_TIMEOUT": "1",
                                 "EGRESS_HTTP_PROXY_IO_TIMEOUT": "1",
                                 "EGRESS_HTTP_PROXY_SPLICE": "off"})  # fmt: skip
    # Nobody answers ARP for 203.0.113.99: the connect hangs until our bound.
    started = time.monotonic()
    status, body = status_and_body(plab.curl("-i", "http://203.0.113.99/", port=8082))
    assert status == "HTTP/1.1 504 Gateway Timeout", body
    assert "no connection to 203.0.113.99 port 80 in time" in body
    assert time.monotonic() - started < 2.5
    # The origin takes 5 s to answer; we wait 1 s (swept once a second) without a byte moving.
    status, body = status_and_body(plab.curl("-i", f"http://{ORIGIN}/slower", port=8082))
    assert status == "HTTP/1.1 504 Gateway Timeout", body
    assert "upstream did not answer in time" in body
    # The event-loop tunnel (splice off) carries TLS and large data intact too.
    assert "s_server" in plab.curl("-k", "https://web.test/", port=8082).stdout
    big = plab.lab.work / "tunnel2.bin"
    big.write_bytes(bytes(range(253)) * 8_000)
    out = plab.lab.work / "tunnel2.out"
    plab.curl("-p", "-o", str(out), "--data-binary", f"@{big}", f"http://{ORIGIN}/echo", port=8082)
    assert out.read_bytes() == big.read_bytes()


# -- shutdown ---------------------------------------------------------------------------------


def test_sigterm_drains_in_flight_requests_then_exits_0(plab: ProxyLab) -> None:
    proxy = plab.start_proxy(8090, "*", {"EGRESS_HTTP_PROXY_WORKERS": "2"})
    slow = subprocess.Popen(
        ["ip", "netns", "exec", plab.lab.ns("client"), "curl", "-sS", "--max-time", "10",
         "-x", f"http://{ROUTER_IP}:8090", f"http://{ORIGIN}/slow"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        time.sleep(0.7)
        proxy.popen.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        refused = plab.curl("-x", f"http://{ROUTER_IP}:8090", f"http://{WEB}/", timeout=3)
        assert refused.returncode == 7  # no longer accepting
        out, err = slow.communicate(timeout=15)
        assert out == "slow but here\n", err
        assert proxy.popen.wait(timeout=10) == 0
    finally:
        if slow.poll() is None:
            slow.kill()
            slow.wait()


def test_garbage_never_hurts_the_proxy(plab: ProxyLab) -> None:
    rng = random.Random(7)
    for _ in range(25):
        blob = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300)))
        plab.raw(blob, timeout=1.0)
    plab.raw(b"GET http://203.0.113.25/ HTTP/1.1\r\nHost: x\r\n", timeout=0.5)  # cut mid-head
    plab.raw(b"CONNECT web.test:443 HTTP/1.1\r\n\r\n\x16\x03\x01", timeout=0.5)  # cut mid-tunnel
    assert plab.curl(f"http://{WEB}/ip").stdout.strip() == str(ADDR.egress_source)


def test_sigterm_cuts_what_outlives_the_shutdown_bound(plab: ProxyLab) -> None:
    proxy = plab.start_proxy(8091, "*", {"EGRESS_HTTP_PROXY_SHUTDOWN_TIMEOUT": "1"})
    code = f"""
import socket, time
s = socket.create_connection(("{ROUTER_IP}", 8091))
s.sendall(b"CONNECT {ORIGIN} HTTP/1.1\\r\\n\\r\\n")
print(s.recv(100).split(b"\\r\\n")[0].decode(), flush=True)
s.settimeout(10)
started = time.monotonic()
print(s.recv(100), round(time.monotonic() - started), flush=True)
"""
    holder = subprocess.Popen(
        ["ip", "netns", "exec", plab.lab.ns("client"), sys.executable, "-c", code],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "HTTP/1.1 200 Connection established"
        started = time.monotonic()
        proxy.popen.send_signal(signal.SIGTERM)
        assert proxy.popen.wait(timeout=10) == 0
        assert time.monotonic() - started < 3.5  # the 1 s bound plus the drain poll
        out, _ = holder.communicate(timeout=10)
        assert out.startswith("b''")  # the idle tunnel was closed under the client
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()


def test_no_internal_error_was_logged(plab: ProxyLab) -> None:
    """Last in this module: nothing any test did made a proxy log a traceback."""
    time.sleep(1.2)
    for port, proc in plab.proxies.items():
        output = proc.output()
        for marker in ("Traceback", "Exception in callback", "exception was never retrieved"):
            assert marker not in output, f"proxy on {port}: {output[-3000:]}"


def test_processes_inside_the_pod_use_the_proxy_on_loopback(plab: ProxyLab) -> None:
    env = {"http_proxy": "http://127.0.0.1:8080/", "no_proxy": ""}
    result = plab.lab.exec(
        "router", ["curl", "-sS", "--max-time", "10", f"http://{WEB}/ip"], env=env
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(ADDR.egress_source)
