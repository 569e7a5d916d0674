"""Redirect mode: our nftables maps against the reference's one-iptables-rule-per-line.

On one lab, in one run, the router pod is switched between four rulesets:

    ours(1)       egress-router setup, 1 destination line
    iptables(1)   iptables-restore into the nat table exactly as the reference image writes it
    ours(N)       N lines (default 10,000), the measured port on the LAST line
    iptables(N)   N lines, the measured port on the LAST line (the worst case for a linear scan)

Ours is removed before theirs is installed and the reverse, so only one NAT ruleset is live.
For each ruleset: new connections per second (wrk from the client pod with ``Connection:
close``, so every request is a new connection whose first packet walks the NAT rules) and
keep-alive requests per second (established connections follow conntrack, so all four should
be equal: their spread shows the measurement noise). Repeats are interleaved, each in a
shuffled order, because the machine is shared; medians and ratios are printed.

    .venv/bin/python bench/redirect.py [--lines 10000] [--repeats 10] [--seconds 1]
"""

from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import sys
import time
from collections.abc import Callable

from egress_router.lab.servers import Nginx
from egress_router.lab.topology import ADDR, Lab

ROUTER = str(ADDR.router_pod_ip)
SERVER = str(ADDR.server_ip)
SOURCE = str(ADDR.egress_source)
PORT = 80
URL = f"http://{ROUTER}:{PORT}/small.txt"


def destination_lines(count: int) -> list[tuple[int, str]]:
    """``count`` (port, ip) lines; the measured port 80 is the last one."""
    filler = [(10_000 + i, f"203.0.113.{26 + i % 2}") for i in range(count - 1)]
    return [*filler, (PORT, SERVER)]


def install_ours(lab: Lab, lines: list[tuple[int, str]]) -> float:
    remove_theirs(lab)
    destination = lab.work / f"destination-{len(lines)}.txt"
    destination.write_text("".join(f"{port} tcp {ip}\n" for port, ip in lines))
    env = {
        "EGRESS_SOURCE": f"{SOURCE}/24",
        "EGRESS_GATEWAY": str(ADDR.gateway_ip),
        "EGRESS_ROUTER_MODE": "init",
        "EGRESS_DESTINATION_FILE": str(destination),
    }
    started = time.monotonic()
    result = lab.exec("router", [sys.executable, "-m", "egress_router.cli", "setup"], env=env)
    if result.returncode != 0:
        raise SystemExit(f"setup failed: {result.stderr}")
    return time.monotonic() - started


def remove_ours(lab: Lab) -> None:
    lab.exec("router", ["nft", "delete", "table", "ip", "egress_router"])


def install_theirs(lab: Lab, lines: list[tuple[int, str]]) -> float:
    """The reference: flush nat, then iptables-restore --noflush of its generated lines."""
    remove_ours(lab)
    rules = [
        f"-A PREROUTING -i eth0 -p tcp --dport {port} -j DNAT --to-destination {ip}"
        for port, ip in lines
    ]
    rules.append(f"-A POSTROUTING -o macvlan0 -j SNAT --to-source {SOURCE}")
    text = "\n".join(["*nat", ":PREROUTING ACCEPT [0:0]", ":POSTROUTING ACCEPT [0:0]", *rules])
    started = time.monotonic()
    lab.exec("router", ["iptables", "-t", "nat", "-F"])
    lab.exec(
        "router",
        ["iptables-restore", "--noflush", "--table", "nat"],
        input=text + "\nCOMMIT\n",
        check=True,
        timeout=120,
    )
    return time.monotonic() - started


def remove_theirs(lab: Lab) -> None:
    lab.exec("router", ["nft", "delete", "table", "ip", "nat"])


def wrk(lab: Lab, seconds: float, close: bool) -> float:
    """Requests per second from the client pod (1 thread, 16 connections)."""
    lab.exec("router", ["conntrack", "-F"])
    argv = ["wrk", "-t1", "-c16", f"-d{int(seconds)}s", "--timeout", "2s", URL]
    if close:
        argv[1:1] = ["-H", "Connection: close"]
    out = lab.exec("client", argv, timeout=seconds + 30, check=True).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if match is None or non2xx:
        raise SystemExit(f"wrk failed: {out}")
    if errors and close is False:
        raise SystemExit(f"wrk socket errors with keep-alive: {errors.group(1)}")
    return float(match.group(1))


def check_path(lab: Lab) -> None:
    """The measured path really goes through the router to the web server from SOURCE."""
    out = lab.exec("client", ["curl", "-sS", "-m", "3", f"http://{ROUTER}:{PORT}/ip"]).stdout
    if out.strip() != SOURCE:
        raise SystemExit(f"the path through the router is broken: {out!r}")


Samples = dict[str, list[float]]


def print_ratios(conn: Samples, keep: Samples, n: int) -> bool:
    """Ratios two ways: of the medians, and the median of per-repeat ratios (each repeat
    measures both sides within seconds of each other, so slow drifts in the machine's load
    cancel). Targets are judged on the per-repeat form."""
    wanted = [
        (conn, f"ours({n})", "ours(1)", "new conn", 0.9),
        (conn, "ours(1)", "iptables(1)", "new conn", 0.95),
        (conn, f"iptables({n})", "iptables(1)", "new conn", None),
        (conn, f"ours({n})", f"iptables({n})", "new conn", None),
        (keep, f"ours({n})", "ours(1)", "keep-alive", None),
        (keep, "ours(1)", "iptables(1)", "keep-alive", None),
        (keep, f"ours({n})", f"iptables({n})", "keep-alive", None),
    ]
    print(f"\nratios{'':34}{'of medians':>11}{'per-repeat median':>19}")
    ok = True
    for samples, top, bottom, what, target in wanted:
        if top not in samples or bottom not in samples:
            continue
        of_medians = statistics.median(samples[top]) / statistics.median(samples[bottom])
        paired = statistics.median(
            a / b for a, b in zip(samples[top], samples[bottom], strict=True)
        )
        verdict = ""
        if target is not None:
            held = paired >= target
            ok &= held
            verdict = f"  (target >= {target}: {'met' if held else 'MISSED'})"
        label = f"{top}/{bottom} {what}"
        print(f"  {label:38}{of_medians:11.2f}{paired:19.2f}{verdict}")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--seconds", type=int, default=1)
    parser.add_argument("--seed", type=int, default=1, help="seed of the per-repeat order")
    parser.add_argument("--only", default="", help="comma-separated subset: ours1,ipt1,oursN,iptN")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("needs root (network namespaces)")
    one, many = destination_lines(1), destination_lines(args.lines)
    configs: dict[str, Callable[[Lab], float]] = {
        "ours(1)": lambda lab: install_ours(lab, one),
        "iptables(1)": lambda lab: install_theirs(lab, one),
        f"ours({args.lines})": lambda lab: install_ours(lab, many),
        f"iptables({args.lines})": lambda lab: install_theirs(lab, many),
    }
    if args.only:
        keys = dict(zip(["ours1", "ipt1", "oursN", "iptN"], list(configs), strict=True))
        configs = {keys[k]: configs[keys[k]] for k in args.only.split(",")}
    conn: dict[str, list[float]] = {name: [] for name in configs}
    keep: dict[str, list[float]] = {name: [] for name in configs}
    install: dict[str, list[float]] = {name: [] for name in configs}
    shuffle = random.Random(args.seed)
    started = time.monotonic()
    with Lab() as lab:
        Nginx(lab, "web", [f"{SERVER}:{PORT}"], workers=1).start()
        lab.sysctl("client", "net.ipv4.tcp_tw_reuse", "1")
        install_ours(lab, one)  # the macvlan, routes and ip_forward, for every ruleset
        for repeat in range(args.repeats):
            order = list(configs)
            shuffle.shuffle(order)  # no ruleset always follows the same one
            for name in order:
                install[name].append(configs[name](lab))
                check_path(lab)
                conn[name].append(wrk(lab, args.seconds, close=True))
                keep[name].append(wrk(lab, args.seconds, close=False))
                print(
                    f"  repeat {repeat + 1} {name:16} new conn/s {conn[name][-1]:9.0f}"
                    f"   keep-alive req/s {keep[name][-1]:9.0f}"
                    f"   install {install[name][-1]:.2f} s",
                    flush=True,
                )
    med_conn = {k: statistics.median(v) for k, v in conn.items()}
    med_keep = {k: statistics.median(v) for k, v in keep.items()}
    print(f"\nmedians of {args.repeats} interleaved repeats, {args.seconds:g} s each:")
    print(f"{'ruleset':18}{'new conn/s':>12}{'keep-alive req/s':>18}{'install s':>11}")
    for name in configs:
        print(
            f"{name:18}{med_conn[name]:12.0f}{med_keep[name]:18.0f}"
            f"{statistics.median(install[name]):11.2f}"
        )
    ok = print_ratios(conn, keep, args.lines)
    print(f"\ntotal {time.monotonic() - started:.0f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
