"""Benchmark: what the HTTP proxy's access log costs, and what a stalled log reader costs.

    .venv/bin/python bench/log_sink.py [--rounds 3] [--seconds 5] [--workers 1]
                                       [--baseline-src /work/main/src]

One lab, the same port (router pod 198.18.0.2:8080); each round runs every contender once, in
turn, and measures small-response requests/s over 50 keep-alive connections from the client
pod (wrk, absolute-form URL), wrk's p99 latency and the proxy's own CPU per request:
  * ``log off``:  EGRESS_HTTP_PROXY_ACCESS_LOG=off (the peer: no logging at all);
  * ``log pipe``: the access log on, stdout a pipe read by ``cat >/dev/null``;
  * ``stalled``:  the access log on, stdout a pipe nobody reads (``| sleep``): lines are
    dropped once the sink's queue is full, requests must go on at the same rate;
  * with ``--baseline-src``: ``log pipe`` and ``stalled`` for the code in that source tree
    too (e.g. the version before the log sink, whose stalled figure is about 0).
Medians over the rounds and the ratios to ``log off`` are printed. Bounded: rounds x
contenders x seconds plus start-up (about 1 min with the defaults).
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
import time
from pathlib import Path

from egress_router.lab import procs
from egress_router.lab.servers import Nginx
from egress_router.lab.topology import ADDR, Lab

sys.path.insert(0, str(Path(__file__).resolve().parent))
from http_proxy import cpu_seconds, stop, wait_listening, wrk

VENV_BIN = Path(sys.executable).parent
WEB = str(ADDR.server_ip)


def start(lab: Lab, name: str, workers: int, log: str, src: str | None) -> procs.Background:
    env = {
        "EGRESS_HTTP_PROXY_DESTINATION": "*\n",
        "EGRESS_HTTP_PROXY_WORKERS": str(workers),
        "EGRESS_HTTP_PROXY_ACCESS_LOG": "off" if log == "off" else "on",
    }
    command = shlex.quote(str(VENV_BIN / "egress-router")) + " http-proxy"
    if src is not None:
        env["PYTHONPATH"] = src
        command = f"{shlex.quote(sys.executable)} -m egress_router.cli http-proxy"
    tail = {"off": "", "pipe": " | cat >/dev/null", "stalled": " | sleep 100000"}[log]
    proc = lab.spawn("router", ["sh", "-c", command + tail], name=name, env=env)
    wait_listening(lab, proc)
    return proc


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--baseline-src", default=None)
    args = parser.parse_args()
    contenders: list[tuple[str, str, str | None]] = [
        ("log off", "off", None),
        ("log pipe", "pipe", None),
        ("stalled", "stalled", None),
    ]
    if args.baseline_src:
        contenders += [
            ("baseline log pipe", "pipe", args.baseline_src),
            ("baseline stalled", "stalled", args.baseline_src),
        ]
    results: dict[str, list[tuple[float, float, float]]] = {c[0]: [] for c in contenders}
    with Lab() as lab:
        env = {"EGRESS_SOURCE": f"{ADDR.egress_source}/24", "EGRESS_GATEWAY": str(ADDR.gateway_ip),
               "EGRESS_ROUTER_MODE": "http-proxy"}  # fmt: skip
        setup = lab.exec("router", [str(VENV_BIN / "egress-router"), "setup"], env=env)
        if setup.returncode != 0:
            print(setup.stderr, file=sys.stderr)
            return 1
        Nginx(lab, "web", [f"{WEB}:80"], workers=2).start()
        for rnd in range(args.rounds):
            for label, log, src in contenders:
                proc = start(lab, f"{label.replace(' ', '-')}-{rnd}", args.workers, log, src)
                try:
                    time.sleep(0.3)
                    cpu = cpu_seconds(proc.pid)
                    rps, _, p99 = wrk(lab, f"http://{WEB}/small.txt", 50, args.seconds)
                    used = cpu_seconds(proc.pid) - cpu
                    per = used / max(rps * args.seconds, 1) * 1e6
                    results[label].append((rps, p99, per))
                    print(f"round {rnd + 1} {label:18} {rps:9.0f} req/s  p99 {p99:6.2f} ms  "
                          f"{per:6.1f} us/req", flush=True)  # fmt: skip
                finally:
                    stop(lab, proc)
    base = statistics.median(r[0] for r in results["log off"])
    print(f"\nmedians over {args.rounds} rounds, {args.workers} worker(s):")
    for label, rows in results.items():
        rps = statistics.median(r[0] for r in rows)
        p99 = statistics.median(r[1] for r in rows)
        per = statistics.median(r[2] for r in rows)
        print(f"  {label:18} {rps:9.0f} req/s ({rps / base:4.2f}x log off)  p99 {p99:6.2f} ms  "
              f"{per:6.1f} us/req")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
