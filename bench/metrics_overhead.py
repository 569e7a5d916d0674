"""Benchmark: what turning the HTTP proxy's metrics on costs, on one lab, alternately.

    .venv/bin/python bench/metrics_overhead.py [--rounds 3] [--seconds 4] [--workers 1]

Each round runs our proxy without metrics, then with ``EGRESS_HTTP_PROXY_METRICS`` (scraped once
a second from the router pod during the run, as Prometheus would, more often), and measures
small-response requests/s over 50 keep-alive connections (wrk) and the proxy's own CPU per
request (all its processes, from /proc: independent of how busy the shared machine is).
Medians and on/off ratios are printed. Bounded: rounds x 2 x seconds plus start-up (< 1 min
with the defaults). Reuses the helpers of ``bench/http_proxy.py``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time

from egress_router.lab import procs
from egress_router.lab.dns import DnsServer
from egress_router.lab.servers import Nginx
from egress_router.lab.topology import ADDR, Lab
from http_proxy import EGRESS_ROUTER, RULES, WEB, cpu_seconds, stop, wait_listening, wrk

METRICS = f"{ADDR.router_pod_ip}:9100"


def start(lab: Lab, workers: int, metrics: bool) -> procs.Background:
    env = {"EGRESS_HTTP_PROXY_DESTINATION": RULES, "EGRESS_HTTP_PROXY_WORKERS": str(workers)}
    if metrics:
        env["EGRESS_HTTP_PROXY_METRICS"] = METRICS
    log = lab.work / "access.log"
    argv = ["sh", "-c", f'exec "$0" http-proxy >>{log}', EGRESS_ROUTER]
    proc = lab.spawn("router", argv, name="metrics" if metrics else "plain", env=env)
    wait_listening(lab, proc)
    return proc


def scraper(lab: Lab, done: threading.Event) -> None:
    url = f"http://{METRICS}/metrics"
    while not done.wait(1.0):
        lab.exec("router", ["curl", "-sS", "-o", "/dev/null", "--max-time", "2", url])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    rps: dict[bool, list[float]] = {False: [], True: []}
    cpu_us: dict[bool, list[float]] = {False: [], True: []}
    with Lab() as lab:
        env = {"EGRESS_SOURCE": f"{ADDR.egress_source}/24", "EGRESS_GATEWAY": str(ADDR.gateway_ip),
               "EGRESS_ROUTER_MODE": "http-proxy"}  # fmt: skip
        if lab.exec("router", [EGRESS_ROUTER, "setup"], env=env).returncode != 0:
            return 1
        Nginx(lab, "web", [f"{WEB}:80"], workers=2).start()
        DnsServer(lab, {"web.test": [WEB]}).start().use_from("router")
        for round_ in range(1, args.rounds + 1):
            for metrics in (False, True):
                proc = start(lab, args.workers, metrics)
                done = threading.Event()
                thread = threading.Thread(target=scraper, args=(lab, done), daemon=True)
                try:
                    time.sleep(0.5)
                    if metrics:
                        thread.start()
                    before = cpu_seconds(proc.pid)
                    got, _, _ = wrk(lab, f"http://{WEB}/small.txt", 50, args.seconds)
                    used = cpu_seconds(proc.pid) - before
                finally:
                    done.set()
                    if metrics:
                        thread.join()
                    stop(lab, proc)
                rps[metrics].append(got)
                cpu_us[metrics].append(used / max(got * args.seconds, 1) * 1e6)
                name = "on " if metrics else "off"
                print(f"round {round_} metrics {name}: {got:,.0f} req/s, "
                      f"{cpu_us[metrics][-1]:.1f} us CPU/request", flush=True)  # fmt: skip
    off_rps, on_rps = statistics.median(rps[False]), statistics.median(rps[True])
    off_cpu, on_cpu = statistics.median(cpu_us[False]), statistics.median(cpu_us[True])
    print(f"\nmedians over {args.rounds} rounds of {args.seconds:g}s, {args.workers} worker(s)")
    print(f"{'':<22} {'off':>10} {'on':>10} {'on/off':>8}")
    print(f"{'small req/s':<22} {off_rps:>10,.0f} {on_rps:>10,.0f} {on_rps / off_rps:>7.2f}x")
    print(
        f"{'proxy CPU/request us':<22} {off_cpu:>10.1f} {on_cpu:>10.1f} {on_cpu / off_cpu:>7.2f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
