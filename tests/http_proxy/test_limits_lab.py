"""One client connection cannot exhaust the HTTP proxy (issue 8 item 2): the head size counted on
the wire, the header deadline from each head's first byte, and bounds on queued requests, buffered
bytes and CPU hold while a request is in flight, not only between requests."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.http_proxy.conftest import ORIGIN, ROUTER_IP, WEB, ProxyLab

pytestmark = pytest.mark.lab

ABUSE = str(Path(__file__).with_name("abuse.py"))
# Growth of the proxy's RSS one abusive connection may cause. docs/http-proxy.md derives the
# per-connection bound (about 4 MiB); the rest is margin for the allocator. Before the fix one
# connection grew it by hundreds of MB within seconds.
RSS_GROWTH_KIB = 32 * 1024
# CPU the proxy may spend on one abusive connection over its few seconds. Before the fix it spun
# at 100 % for as long as the client sent.
CPU_SECONDS = 1.0


def abuse(plab: ProxyLab, port: int, mode: str, seconds: float) -> dict[str, Any]:
    pid = plab.proxies[port].pid
    argv = [sys.executable, ABUSE, ROUTER_IP, str(port), str(pid), mode, str(seconds), ORIGIN, WEB]
    result = plab.lab.exec("client", argv, timeout=seconds + 30)
    assert result.returncode == 0, result.stderr
    out: dict[str, Any] = json.loads(result.stdout)
    return out


@pytest.fixture(scope="module")
def limits(plab: ProxyLab) -> ProxyLab:
    plab.start_proxy(8085, "*")
    plab.start_proxy(8086, "*", {"EGRESS_HTTP_PROXY_HEADER_TIMEOUT": "1",
                                 "EGRESS_HTTP_PROXY_IO_TIMEOUT": "3"})  # fmt: skip
    return plab


def test_head_size_is_counted_on_the_wire(limits: ProxyLab) -> None:
    """20,000 ``a:b`` fields are 100 KB on the wire (the names and values alone are 40 KB)."""
    out = abuse(limits, 8085, "fields", 10)
    assert out["answer"].startswith("HTTP/1.1 431"), out
    assert out["closed"], out


def test_pipelining_flood_behind_a_hung_request_is_bounded(limits: ProxyLab) -> None:
    out = abuse(limits, 8085, "flood", 4)
    assert out["rss_growth_kib"] < RSS_GROWTH_KIB, out
    assert out["cpu_s"] < CPU_SECONDS, out
    assert out["sent"] < 32 * 1024 * 1024, out  # the proxy stopped reading: kernel buffers only


def test_endless_header_line_behind_a_hung_request_is_cut(limits: ProxyLab) -> None:
    out = abuse(limits, 8085, "line", 4)
    assert out["rss_growth_kib"] < RSS_GROWTH_KIB, out
    assert out["cpu_s"] < CPU_SECONDS, out
    assert out["sent"] < 32 * 1024 * 1024, out


def test_endless_header_line_is_cut_at_the_size_limit(limits: ProxyLab) -> None:
    out = abuse(limits, 8085, "idle-line", 4)
    assert out["answer"].startswith("HTTP/1.1 431"), out
    assert out["closed"] and out["answered_at"] < 3, out


def test_header_deadline_is_not_extended_by_a_trickle(limits: ProxyLab) -> None:
    """A pipelined head trickled behind a hung request: the head misses its 1 s deadline, so
    reading stops, and the hung request gets its 504 at the 3 s I/O timeout (then the 408, in
    order). Before, every trickled byte counted as activity and the connection lived as long as
    the client wished."""
    out = abuse(limits, 8086, "trickle", 12)
    assert out["answer"] == "HTTP/1.1 504 Gateway Timeout", out
    assert out["closed"], out
    assert out["answered_at"] < 9, out


def test_pipelined_error_is_answered_after_the_earlier_requests(limits: ProxyLab) -> None:
    """A too-large head pipelined behind a slow request: the slow answer first, then 431."""
    slow = f"GET http://{ORIGIN}/slow HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    big = f"GET http://{WEB}/ HTTP/1.1\r\nHost: x\r\nX-Big: {'b' * 70_000}\r\n\r\n".encode()
    started = time.monotonic()
    parts = [big[i : i + 30_000] for i in range(0, len(big), 30_000)]  # argv strings are bounded
    out = limits.raw(slow, *parts, port=8085, timeout=10)
    assert out.startswith(b"HTTP/1.1 200 OK"), out[:200]
    assert b"slow but here\n" in out and out.count(b"HTTP/1.1 ") == 2, out[:400]
    assert out.split(b"slow but here\n", 1)[1].startswith(b"HTTP/1.1 431"), out[:400]
    assert time.monotonic() - started < 9


def test_proxy_still_serves_after_the_abuse(limits: ProxyLab) -> None:
    for port in (8085, 8086):
        assert limits.curl(f"http://{WEB}/small.txt", port=port).stdout == "ok\n"
        output = limits.proxies[port].output()
        assert "Traceback" not in output and "Exception in callback" not in output, output[-3000:]


LATENCY = """
import socket, statistics, sys, time
s = socket.create_connection((sys.argv[1], int(sys.argv[2])))
request = f"GET http://{sys.argv[3]}/small.txt HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n".encode()
times = []
for _ in range(int(sys.argv[4])):
    started = time.perf_counter()
    s.sendall(request)
    answer = b""
    while not answer.endswith(b"ok\\n"):
        answer += s.recv(4096)
    times.append(time.perf_counter() - started)
print(statistics.median(times))
"""
# A median below this is scheduling noise on the shared 2-core machine, not the proxy: with no
# abuser at all, medians of 0.1 ms and 0.35 ms were seen a minute apart.
LATENCY_FLOOR = 0.001
# Together, one connection of each abusive kind may grow the proxy's RSS by at most this (the
# per-connection bound in docs/http-proxy.md is about 6 MiB; allocator slack on top).
LOAD_RSS_GROWTH_KIB = 48 * 1024


def median_latency(plab: ProxyLab, port: int, count: int = 300) -> float:
    argv = [sys.executable, "-c", LATENCY, ROUTER_IP, str(port), WEB, str(count)]
    result = plab.lab.exec("client", argv, timeout=60)
    assert result.returncode == 0, result.stderr
    return float(result.stdout)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.mark.slow
def test_abusive_connections_leave_other_clients_served(limits: ProxyLab) -> None:
    """Bounded load test: one connection of each abusive kind at once, for 8 s; meanwhile a
    well-behaved keep-alive client's median latency stays within 2x of its latency without them
    (before and after), and the proxy's RSS within the documented bound."""
    port = 8085
    proxy = limits.proxies[port]
    before = median_latency(limits, port)
    rss_before = rss_kib(proxy.pid)
    abusers = [
        limits.lab.spawn(
            "client",
            [sys.executable, ABUSE, ROUTER_IP, str(port), str(proxy.pid), mode, "8", ORIGIN, WEB],
            name=f"abuse-{mode}",
        )
        for mode in ("flood", "line", "idle-line", "trickle", "fields")
    ]
    try:
        time.sleep(1.5)
        during = median_latency(limits, port)
        rss_during = rss_kib(proxy.pid)
    finally:
        for proc in abusers:
            proc.popen.wait(timeout=40)
    after = median_latency(limits, port)
    normal = max(before, after, LATENCY_FLOOR)
    print(f"latency before {before * 1e3:.2f} ms, during {during * 1e3:.2f} ms, after "
          f"{after * 1e3:.2f} ms; RSS {rss_before} KiB -> {rss_during} KiB")  # fmt: skip
    assert during <= 2 * normal, (before, during, after)
    assert rss_during - rss_before < LOAD_RSS_GROWTH_KIB, (rss_before, rss_during)
    for proc in abusers:
        assert '"sent"' in proc.output(), proc.output()
