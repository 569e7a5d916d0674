"""Benchmark: our HTTP proxy against squid configured as the reference image configures it, on
one lab, the same port (router pod 198.18.0.2:8080), alternately.

    .venv/bin/python bench/http_proxy.py [--rounds 3] [--seconds 5] [--workers 1]

Both get the documents' example list (``!*.example.com``, ``!192.168.1.0/24``, ``*``). Each
round runs ours, then squid, and measures from the client pod:
  * small-response requests/s over 50 keep-alive connections (wrk, absolute-form URL), with
    wrk's p99 latency;
  * MB/s downloading a 1 MiB file over 4 keep-alive connections (wrk);
  * MB/s through CONNECT tunnels: 4 connections, each ``CONNECT 203.0.113.25:80`` then
    back-to-back ``GET /1m.bin`` inside the tunnel (a small uvloop client, bytes only counted);
    the same client without any proxy, from the router pod, gives the ceiling of this machine.
For each test the proxy's own CPU time (all its processes, from /proc) per request or per GB is
printed too: it does not depend on how busy the shared machine is.
Medians over the rounds and our/squid ratios are printed. Bounded: rounds x 2 x 3 x seconds
plus start-up (about 2 min with the defaults).

squid.conf is the reference's fixed header (http_port 8080, cache deny all, access_log none all,
debug_options ALL,0, shutdown_lifetime 0) and its ACL section for the same list, plus what squid
needs to run here as in a pod: visible_hostname, and pid file, cache log and core dumps in a
temporary directory. Our proxy runs with its defaults, access log ON (to a file).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import sys
import time
from pathlib import Path

from egress_router.lab import procs
from egress_router.lab.dns import DnsServer
from egress_router.lab.servers import Nginx
from egress_router.lab.topology import ADDR, Lab

VENV_BIN = Path(sys.executable).parent
EGRESS_ROUTER = str(VENV_BIN / "egress-router")
SQUID = shutil.which("squid") or "/usr/sbin/squid"
WEB = str(ADDR.server_ip)
PROXY = f"{ADDR.router_pod_ip}:8080"
RULES = "!*.example.com\n!192.168.1.0/24\n*\n"
TESTS = (
    "small req/s",
    "small p99 ms",
    "small CPU us/req",
    "1MiB MB/s",
    "1MiB CPU s/GB",
    "CONNECT MB/s",
    "CONNECT CPU s/GB",
)
TICK = os.sysconf("SC_CLK_TCK")

SQUID_CONF = """http_port 8080
cache deny all
access_log none all
debug_options ALL,0
shutdown_lifetime 0

acl dest1 dstdomain .example.com
http_access deny dest1

acl dest2 dst 192.168.1.0/24
http_access deny dest2

http_access allow all
visible_hostname egress-router
pid_filename {work}/squid.pid
cache_log {work}/cache.log
coredump_dir {work}
"""

CONNECT_CLIENT = r"""
import asyncio, sys, time
try:
    import uvloop
except ImportError:
    uvloop = None
HOST, PORT, TARGET = sys.argv[1], int(sys.argv[2]), sys.argv[3]
CONNS, SECONDS, DIRECT = int(sys.argv[4]), float(sys.argv[5]), sys.argv[6] == "direct"
REQ = f"GET /1m.bin HTTP/1.1\r\nHost: {TARGET}\r\n\r\n".encode()
total = 0
class Client(asyncio.Protocol):
    def __init__(self, done):
        self.done, self.buf, self.left = done, b"", 0
        self.state = "head" if DIRECT else "connect"
    def connection_made(self, t):
        self.t = t
        if DIRECT:
            t.write(REQ)
        else:
            t.write(f"CONNECT {TARGET}:80 HTTP/1.1\r\nHost: {TARGET}:80\r\n\r\n".encode())
    def data_received(self, data):
        global total
        if self.state == "body":
            n = len(data)
            if n < self.left:
                self.left -= n; total += n; return
            total += self.left; data = data[self.left:]; self.left = 0
            self.state = "head"; self.buf = b""
            self.t.write(REQ)
        self.buf += data
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return
        head, rest = self.buf[:end], self.buf[end + 4:]
        if self.state == "connect":
            assert head.startswith(b"HTTP/1.1 200") or head.startswith(b"HTTP/1.0 200"), head
            self.state = "head"; self.buf = b""; self.t.write(REQ)
            return
        length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
        self.state, self.left, self.buf = "body", length, b""
        if rest:
            self.data_received(rest)
    def connection_lost(self, exc):
        if not self.done.done():
            self.done.set_result(None)
async def main():
    loop = asyncio.get_running_loop()
    conns = []
    for _ in range(CONNS):
        t, _ = await loop.create_connection(lambda: Client(loop.create_future()), HOST, PORT)
        conns.append(t)
    start = time.monotonic()
    await asyncio.sleep(SECONDS)
    elapsed = time.monotonic() - start
    for t in conns:
        t.abort()
    print(total / elapsed / 1e6)
if uvloop:
    uvloop.install()
asyncio.run(main())
"""

WRK_SCRIPT = 'wrk.path = "{url}"\n'


def wrk(lab: Lab, url: str, conns: int, seconds: float) -> tuple[float, float, float]:
    """(requests/s, MB/s, p99 ms) from wrk with an absolute-form request path."""
    script = lab.work / f"wrk-{abs(hash(url))}.lua"
    script.write_text(WRK_SCRIPT.format(url=url))
    argv = ["wrk", "-t2", f"-c{conns}", f"-d{int(seconds)}s", "--latency", "-s", str(script),
            f"http://{PROXY}"]  # fmt: skip
    result = lab.exec("client", argv, timeout=seconds + 30)
    out = result.stdout
    found = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if found is None:
        raise RuntimeError(f"wrk failed: {out[-500:]} {result.stderr[-500:]}")
    rps = float(found.group(1))
    transfer = re.search(r"Transfer/sec:\s+([\d.]+)(\w+)", out)
    assert transfer is not None, out
    scale = {"B": 1e-6, "KB": 1024 / 1e6, "MB": 1024**2 / 1e6, "GB": 1024**3 / 1e6}
    mbps = float(transfer.group(1)) * scale[transfer.group(2)]
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out)
    assert p99 is not None, out
    ms = float(p99.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    if "Non-2xx" in out or "Socket errors" in out or rps < 1:
        print("   wrk:", out[-600:], result.stderr[-300:])
    return rps, mbps, ms


def connect_mbps(lab: Lab, seconds: float, direct: bool = False) -> float:
    """Through CONNECT from the client pod, or (``direct``) from the router pod to nginx with
    no proxy at all: the ceiling of this client and path on this machine."""
    host, port = (WEB, "80") if direct else PROXY.split(":")
    mode = "direct" if direct else "connect"
    argv = [sys.executable, "-c", CONNECT_CLIENT, host, port, WEB, "4", str(seconds), mode]
    result = lab.exec("router" if direct else "client", argv, timeout=seconds + 30)
    if result.returncode != 0:
        print("   connect client failed:", result.stderr[-400:])
        return 0.0
    return float(result.stdout.strip())


def wait_listening(lab: Lab, proc: procs.Background) -> None:
    def ready() -> bool:
        return ":8080" in lab.exec("router", ["ss", "-Hltn", "sport = :8080"]).stdout

    if not procs.wait_for(ready, 15):
        raise RuntimeError(f"proxy did not start: {proc.output()[-800:]}")


def start_ours(lab: Lab, workers: int) -> procs.Background:
    env = {"EGRESS_HTTP_PROXY_DESTINATION": RULES, "EGRESS_HTTP_PROXY_WORKERS": str(workers)}
    log = lab.work / "ours-access.log"
    argv = ["sh", "-c", f'exec "$0" http-proxy >>{log}', EGRESS_ROUTER]
    proc = lab.spawn("router", argv, name="ours", env=env)
    wait_listening(lab, proc)
    return proc


def start_squid(lab: Lab) -> procs.Background:
    work = lab.work / "squid"
    work.mkdir(exist_ok=True)
    os.chmod(work, 0o777)  # squid drops to its own user for some files
    conf = work / "squid.conf"
    conf.write_text(SQUID_CONF.format(work=work))
    proc = lab.spawn("router", [SQUID, "-N", "-f", str(conf)], name="squid")
    wait_listening(lab, proc)
    return proc


def stop(lab: Lab, proc: procs.Background) -> None:
    proc.stop()
    procs.wait_for(lambda: ":8080" not in lab.exec("router", ["ss", "-Hltn"]).stdout, 10)


def cpu_seconds(group: int) -> float:
    """User + system CPU of every process in the proxy's process group (workers included)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == group:  # pgrp
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICK


def measure(lab: Lab, proc: procs.Background, seconds: float) -> dict[str, float]:
    """Each test's figure and the proxy's own CPU per unit of work (independent of load)."""
    cpu = cpu_seconds(proc.pid)
    rps, _, p99 = wrk(lab, f"http://{WEB}/small.txt", 50, seconds)
    cpu, small_cpu = cpu_seconds(proc.pid), cpu_seconds(proc.pid) - cpu
    _, mbps, _ = wrk(lab, f"http://{WEB}/1m.bin", 4, seconds)
    cpu, mib_cpu = cpu_seconds(proc.pid), cpu_seconds(proc.pid) - cpu
    tunnel = connect_mbps(lab, seconds)
    tunnel_cpu = cpu_seconds(proc.pid) - cpu
    return {
        TESTS[0]: rps,
        TESTS[1]: p99,
        TESTS[2]: small_cpu / max(rps * seconds, 1) * 1e6,
        TESTS[3]: mbps,
        TESTS[4]: mib_cpu / max(mbps * seconds / 1000, 1e-9),
        TESTS[5]: tunnel,
        TESTS[6]: tunnel_cpu / max(tunnel * seconds / 1000, 1e-9),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    # One worker by default: wrk, nginx and the proxy share this machine's 2 cores, and a second
    # worker only competes with the load generator for them (see docs/http-proxy.md).
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    results: dict[str, dict[str, list[float]]] = {
        name: {t: [] for t in TESTS} for name in ("ours", "squid")
    }
    with Lab() as lab:
        env = {"EGRESS_SOURCE": f"{ADDR.egress_source}/24", "EGRESS_GATEWAY": str(ADDR.gateway_ip),
               "EGRESS_ROUTER_MODE": "http-proxy"}  # fmt: skip
        setup = lab.exec("router", [EGRESS_ROUTER, "setup"], env=env)
        if setup.returncode != 0:
            print(setup.stderr, file=sys.stderr)
            return 1
        Nginx(lab, "web", [f"{WEB}:80"], workers=2).start()
        # A pod always has a resolver (cluster DNS); squid stalls for a long time without one.
        DnsServer(lab, {"web.test": [WEB]}).start().use_from("router")
        ceiling: list[float] = []
        for round_ in range(1, args.rounds + 1):
            ceiling.append(connect_mbps(lab, args.seconds, direct=True))
            print(f"round {round_} no proxy: router pod -> nginx {ceiling[-1]:,.1f} MB/s")
            for name in ("ours", "squid"):
                proc = start_ours(lab, args.workers) if name == "ours" else start_squid(lab)
                try:
                    time.sleep(0.5)
                    got = measure(lab, proc, args.seconds)
                finally:
                    stop(lab, proc)
                for test, value in got.items():
                    results[name][test].append(value)
                shown = "  ".join(f"{t} {v:,.1f}" for t, v in got.items())
                print(f"round {round_} {name:<5} {shown}", flush=True)
    print(
        f"\nmedians over {args.rounds} rounds of {args.seconds:g}s; ours with {args.workers} "
        "worker(s), access log on; squid 1 process (as the image runs it)"
    )
    print(
        f"ceiling without any proxy (router pod -> nginx, same client): "
        f"{statistics.median(ceiling):,.1f} MB/s"
    )
    print(f"{'test':<17} {'ours':>12} {'squid':>12} {'ours/squid':>11}")
    for test in TESTS:
        ours = statistics.median(results["ours"][test])
        squid = statistics.median(results["squid"][test])
        ratio = ours / squid if squid else float("inf")
        print(f"{test:<17} {ours:>12,.2f} {squid:>12,.2f} {ratio:>10.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
