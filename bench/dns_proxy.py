"""Benchmark: our DNS proxy (kernel path and relay path) against haproxy as the reference image
configures it, on one lab, the same port, alternately.

    .venv/bin/python bench/dns_proxy.py [--rounds 4] [--seconds 3]

Each round runs each test for every contender in turn, restarting the contender for each test
(ours-kernel, ours-relay, haproxy; who goes first rotates) on router port 80,
forwarding to ``<contender>.bench.example:80`` (dnsmasq answers 203.0.113.25/.26/.27, one
address per contender, all served by the same nginx), and
measures from the client pod with wrk:
  * requests/s, a new connection per request (``-H "Connection: close"``);
  * requests/s over keep-alive connections;
  * MiB/s downloading a 1 MiB file over keep-alive.
Requests go to nginx's ``/`` (a fixed 200 answer, no file I/O), so the server's own cost
hides the proxies' cost as little as it can on one shared machine.
Medians over the rounds are printed with ratios to haproxy (ratio of medians, and the median
of the per-round paired ratios). Bounded: rounds x 3 tests x 3 contenders x (seconds + ~2 s
start/stop): about 3 min with the defaults.

haproxy's configuration is generated as egress-dns-proxy.sh generates it (global, defaults,
``resolvers dns-resolver`` from the pod's resolv.conf, one frontend/backend pair per line with
``check resolvers dns-resolver resolve-prefer ipv4``), minus chroot/user/group (we do not switch
users here) and with logging off (nothing listened on its syslog target in the image anyway).
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from egress_router.lab import procs
from egress_router.lab.dns import DnsServer
from egress_router.lab.servers import Nginx
from egress_router.lab.topology import ADDR, Lab

VENV_BIN = Path(sys.executable).parent
EGRESS_ROUTER = str(VENV_BIN / "egress-router")
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
CONTENDERS = ("ours-kernel", "ours-relay", "haproxy")
# Each contender reaches the same nginx through its own name and server address. Otherwise the
# server's TIME_WAIT sockets left by one contender's connections (same 4-tuples, other TCP
# timestamp offsets) make the next contender's SYNs bounce (PAWS) and wait a 1 s retransmit.
NAMES = {c: f"{c}.bench.example" for c in CONTENDERS}
SERVERS = dict(zip(CONTENDERS, (str(ip) for ip in ADDR.server_ips), strict=True))
PORT = 80
URL = f"http://{ADDR.router_pod_ip}:{PORT}"
TESTS = ("new-conn req/s", "keep-alive req/s", "1MiB MiB/s")

HAPROXY_CFG = """
global
    pidfile     {work}/haproxy.pid
    maxconn     4000

defaults
    mode                    tcp
    option                  dontlognull
    option                  tcplog
    option                  redispatch
    retries                 3
    timeout http-request    100s
    timeout queue           1m
    timeout connect         10s
    timeout client          1m
    timeout server          1m
    timeout http-keep-alive 100s
    timeout check           10s

resolvers dns-resolver
    nameserver ns1 {dns}:53
    resolve_retries      3
    timeout retry        1s
    hold valid           10s


frontend fe1
    bind :{port}
    default_backend be1

backend be1
    server dest1 {name}:{port} check resolvers dns-resolver resolve-prefer ipv4

"""


def setup_router(lab: Lab) -> None:
    env = {
        "EGRESS_SOURCE": f"{ADDR.egress_source}/24",
        "EGRESS_GATEWAY": str(ADDR.gateway_ip),
        "EGRESS_ROUTER_MODE": "dns-proxy",
    }
    result = lab.exec("router", [EGRESS_ROUTER, "setup"], env=env)
    if result.returncode != 0:
        raise SystemExit(f"setup failed: {result.stderr}")


def tune(lab: Lab) -> None:
    """Same for every contender: room for many short connections."""
    for role in ("client", "router"):
        lab.sysctl(role, "net.ipv4.ip_local_port_range", '"1024 65000"')
        lab.sysctl(role, "net.ipv4.tcp_tw_reuse", "1")


def fresh_state(lab: Lab) -> None:
    """Every contender starts alike: no connection-tracking entries left by the previous one
    (tens of thousands of TIME_WAIT entries per new-connection test otherwise pile up)."""
    for role in ("router", "web"):
        lab.exec(role, ["conntrack", "-F"])
    time.sleep(0.5)


def start_ours(lab: Lab, forwarding: str) -> procs.Background:
    env = {
        "EGRESS_DNS_PROXY_DESTINATION": f"{PORT} {NAMES['ours-' + forwarding]}\n",
        "EGRESS_DNS_PROXY_FORWARDING": forwarding,
    }
    proc = lab.spawn("router", [EGRESS_ROUTER, "dns-proxy"], name=f"ours-{forwarding}", env=env)
    if not procs.wait_for(lambda: "ready:" in proc.output() or not proc.alive(), 20):
        raise SystemExit(f"dns-proxy did not start: {proc.output()[-1000:]}")
    return proc


def start_haproxy(lab: Lab) -> procs.Background:
    cfg = lab.work / "haproxy.cfg"
    cfg.write_text(
        HAPROXY_CFG.format(
            work=lab.work, dns=ADDR.node_cluster_ip, port=PORT, name=NAMES["haproxy"]
        )
    )
    proc = lab.spawn("router", [HAPROXY, "-f", str(cfg)], name="haproxy")
    if not procs.wait_for(lambda: _serving(lab) or not proc.alive(), 20):
        raise SystemExit(f"haproxy did not start: {proc.output()[-1000:]}")
    return proc


def _serving(lab: Lab) -> bool:
    probe = lab.exec("client", ["curl", "-s", "-o", "/dev/null", "-m", "2", f"{URL}/small.txt"])
    return probe.returncode == 0


def wrk(lab: Lab, args: list[str], seconds: int) -> tuple[float, float]:
    """(requests/s, MB/s) from one wrk run in the client pod."""
    out = lab.exec("client", ["wrk", "-t2", f"-d{seconds}s", *args], timeout=seconds + 30)
    text = out.stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    tps = re.search(r"Transfer/sec:\s+([\d.]+)(\w+)", text)
    if rps is None or tps is None or "Non-2xx" in text:
        raise SystemExit(f"wrk failed: {text} {out.stderr}")
    scale = {"B": 1 / 1048576, "KB": 1 / 1024, "MB": 1.0, "GB": 1024.0}  # wrk: binary units
    return float(rps.group(1)), float(tps.group(1)) * scale.get(tps.group(2), 1.0)


def measure(lab: Lab, test: str, seconds: int) -> float:
    if test == TESTS[0]:
        return wrk(lab, ["-c32", "-H", "Connection: close", f"{URL}/"], seconds)[0]
    if test == TESTS[1]:
        return wrk(lab, ["-c32", f"{URL}/"], seconds)[0]
    return wrk(lab, ["-c8", f"{URL}/1m.bin"], seconds)[1]


def start(lab: Lab, name: str) -> procs.Background:
    fresh_state(lab)
    return start_haproxy(lab) if name == "haproxy" else start_ours(lab, name.removeprefix("ours-"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument(
        "--only", default=",".join(CONTENDERS), help="comma-separated subset of contenders"
    )
    args = parser.parse_args()
    rounds = max(1, min(args.rounds, 7))
    seconds = max(1, min(args.seconds, 8))
    contenders = tuple(c for c in CONTENDERS if c in args.only.split(","))
    if "haproxy" not in contenders:
        parser.error("haproxy is the reference every ratio is computed against")
    # results[contender][test] = one figure per round
    results = {c: {t: [] for t in TESTS} for c in contenders}  # type: dict[str, dict[str, list[float]]]
    with Lab() as lab:
        setup_router(lab)
        tune(lab)
        records = {NAMES[c]: [SERVERS[c]] for c in CONTENDERS}
        DnsServer(lab, records, ttl=30).start().use_from("router")
        Nginx(lab, "web", [f"{ip}:{PORT}" for ip in SERVERS.values()], workers=2).start()
        slot = 0
        for r in range(rounds):
            for test in TESTS:
                # Rotate who goes first, so no contender always follows the same one.
                k = slot % len(contenders)
                order = contenders[k:] + contenders[:k]
                slot += 1
                shown = []
                for name in order:
                    proc = start(lab, name)
                    try:
                        figure = measure(lab, test, seconds)
                    finally:
                        proc.stop()
                    results[name][test].append(figure)
                    shown.append(f"{name} {figure:>9,.0f}")
                print(f"round {r + 1} {test:<17} " + "   ".join(shown), flush=True)
    print()
    print(f"medians over {rounds} rounds, {seconds}s per test (wrk -t2 from the client pod)")
    print(f"{'':<22}" + "".join(f"{t:>20}" for t in TESTS))
    med = {c: {t: statistics.median(results[c][t]) for t in TESTS} for c in contenders}
    for c in contenders:
        print(f"{c:<22}" + "".join(f"{med[c][t]:>20,.0f}" for t in TESTS))
    for c in (c for c in contenders if c != "haproxy"):
        ratios = [med[c][t] / med["haproxy"][t] for t in TESTS]
        print(f"{c + '/haproxy':<22}" + "".join(f"{x:>19.2f}x" for x in ratios))
        paired = [
            statistics.median(
                a / b for a, b in zip(results[c][t], results["haproxy"][t], strict=True)
            )
            for t in TESTS
        ]
        print(f"{'  (median paired ratio)':<22}" + "".join(f"{x:>19.2f}x" for x in paired))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except subprocess.TimeoutExpired as exc:
        sys.exit(f"bench: timed out: {exc}")
