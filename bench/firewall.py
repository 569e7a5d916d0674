"""Egress firewall benchmark on the lab (root): ``.venv/bin/python bench/firewall.py``.

Measures, on one lab, interleaving the variants (none, ours-10, ours-8000, linear-8000, ...):
  1. new TCP connections per second from the client pod through the node to the web server
     (wrk, ``Connection: close``, so every request is a new connection and a new conntrack
     entry, i.e. a full walk of the forward chain): no policy, our 10-rule and 8,000-rule
     policies, and the peer design, the same 8,000 rules as one nftables rule each (what a
     per-rule compiler such as the SDN's flows or an iptables chain costs). The destination
     is matched by the LAST rule, the worst case for linear designs;
  2. the time to validate and apply 8,000 rules (the CLI end to end, and in process);
  3. for a name whose address rotates every second, the share of connections made right
     after a fresh lookup that are wrongly denied: through our DNS proxy (1,000 connections)
     and with polling only (the references' design; the race shows).
Bounded: about three minutes. Cleans up the lab on exit, also on failure.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from egress_router.lab import procs  # noqa: E402
from egress_router.lab.dns import DnsServer  # noqa: E402
from egress_router.lab.servers import Nginx  # noqa: E402
from egress_router.lab.topology import Lab  # noqa: E402

PY = str(Path(sys.executable))
EGRESS_ROUTER = str(Path(sys.executable).parent / "egress-router")
CLIENT = "198.18.0.3"
WEB = "203.0.113.25"
ROTATE_POOL = [f"203.0.113.{i}" for i in range(100, 160)]


def policy_file(path: Path, rules: list[dict]) -> Path:
    doc = {
        "kind": "EgressFirewall",
        "apiVersion": "k8s.ovn.org/v1",
        "metadata": {"name": "default", "namespace": "bench"},
        "spec": {"egress": rules},
    }
    path.write_text(json.dumps(doc))
    return path


def worst_case_rules(n: int) -> list[dict]:
    """n-1 denies of scattered single addresses (no two adjacent), then the allow that matches."""
    rules = [
        {
            "type": "Deny",
            "to": {"cidrSelector": f"10.{i // 200}.{(i % 200)}.{(i * 7) % 250 + 1}/32"},
        }
        for i in range(n - 1)
    ]
    rules.append({"type": "Allow", "to": {"cidrSelector": "203.0.113.0/24"}})
    return rules


def linear_commands(rules: list[dict]) -> list[dict]:
    """The peer: every rule as its own nftables rule, evaluated in order."""
    t = {"family": "inet", "table": "egress_linear"}
    cmds: list[dict] = [
        {"add": {"table": {"family": "inet", "name": "egress_linear"}}},
        {"delete": {"table": {"family": "inet", "name": "egress_linear"}}},
        {"add": {"table": {"family": "inet", "name": "egress_linear"}}},
        {
            "add": {
                "chain": {
                    **t,
                    "name": "fwd",
                    "type": "filter",
                    "hook": "forward",
                    "prio": 0,
                    "policy": "accept",
                }
            }
        },
        {"add": {"chain": {**t, "name": "ns_bench"}}},
        {
            "add": {
                "rule": {
                    **t,
                    "chain": "fwd",
                    "expr": [
                        {
                            "match": {
                                "op": "in",
                                "left": {"ct": {"key": "state"}},
                                "right": ["established", "related"],
                            }
                        },
                        {"accept": None},
                    ],
                }
            }
        },
        {
            "add": {
                "rule": {
                    **t,
                    "chain": "fwd",
                    "expr": [
                        {
                            "match": {
                                "op": "==",
                                "left": {"payload": {"protocol": "ip", "field": "saddr"}},
                                "right": CLIENT,
                            }
                        },
                        {"jump": {"target": "ns_bench"}},
                    ],
                }
            }
        },
    ]
    for rule in rules:
        addr, plen = rule["to"]["cidrSelector"].split("/")
        right = addr if plen == "32" else {"prefix": {"addr": addr, "len": int(plen)}}
        verdict = {"accept": None} if rule["type"] == "Allow" else {"drop": None}
        match = {
            "match": {
                "op": "==",
                "left": {"payload": {"protocol": "ip", "field": "daddr"}},
                "right": right,
            }
        }
        cmds.append({"add": {"rule": {**t, "chain": "ns_bench", "expr": [match, verdict]}}})
    return cmds


def ours_commands(path: Path) -> list[dict]:
    """Exactly what ``firewall apply --pods bench=CLIENT PATH`` sends to the kernel."""
    from egress_router.firewall.agent import load_policies
    from egress_router.firewall.model.decide import parse_node
    from egress_router.firewall.model.plan import compile_plan
    from egress_router.firewall.model.render import FAMILY, TABLE, build
    from egress_router.kernel import nftables

    plan = compile_plan(load_policies([path], None), parse_node([f"bench={CLIENT}"]))
    return build(plan, {}, nftables.replace_table_commands(FAMILY, TABLE))


def nft_apply(lab: Lab, cmds: list[dict]) -> None:
    lab.nft("node", cmds)


def clear(lab: Lab) -> None:
    for table in ("egress_firewall", "egress_linear"):
        lab.exec("node", ["nft", "delete", "table", "inet", table])
    lab.exec("node", ["conntrack", "-F"])


def fw(lab: Lab, *args: str) -> subprocess.CompletedProcess[str]:
    return lab.exec("node", [EGRESS_ROUTER, "firewall", *args], timeout=120)


def conn_rate(lab: Lab, seconds: float) -> float:
    for role in ("node", "web"):  # both track connections (NAT, the server's own firewall)
        lab.exec(role, ["conntrack", "-F"])
    out = lab.exec(
        "client",
        [
            "wrk",
            "-t2",
            "-c16",
            f"-d{max(int(seconds), 1)}s",
            "-H",
            "Connection: close",
            f"http://{WEB}/",
        ],
        timeout=seconds + 30,
    ).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not match or "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(f"wrk failed or some connections were refused: {out}")
    return float(match.group(1))


CLIENT_SCRIPT = r"""
import socket, sys, time, dns.message, dns.query, dns.rdatatype
name, server = sys.argv[1], sys.argv[2]
port, count, pause = int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
ok = denied = errors = 0
for _ in range(count):
    try:
        r = dns.query.udp(dns.message.make_query(name, "A"), server, port=port, timeout=2)
        ip = next(rd.address for rr in r.answer if rr.rdtype == dns.rdatatype.A for rd in rr)
    except Exception:
        errors += 1
        continue
    s = socket.socket(); s.settimeout(1.0)
    try:
        s.connect((ip, 80)); ok += 1
    except OSError:
        denied += 1
    finally:
        s.close()
    time.sleep(pause)
print(ok, denied, errors)
"""


def race(lab: Lab, tmp: Path, proxy: bool, count: int) -> tuple[int, int, int]:
    dns = DnsServer(
        lab, {"rot.example.test": [ROTATE_POOL[0]]}, ttl=1, name=f"rot{int(proxy)}"
    ).start()
    dns.use_from("node")
    path = policy_file(
        tmp / "rot.json",
        [
            {"type": "Allow", "to": {"dnsName": "rot.example.test"}},
            {"type": "Deny", "to": {"cidrSelector": "0.0.0.0/0"}},
        ],
    )
    args = [
        "firewall",
        "run",
        f"--pods=bench={CLIENT}",
        "--ttl-floor=1",
        "--grace=1",
        "--retry-first=0.5",
        str(path),
    ]
    if proxy:
        args += ["--dns-listen=198.18.0.1:5353", "--dns-upstream=198.18.0.1:53"]
    agent = lab.spawn("node", [EGRESS_ROUTER, *args], name=f"fw-race{int(proxy)}")
    stop = threading.Event()
    try:
        if not procs.wait_for(lambda: "running" in agent.output(), 15):
            raise RuntimeError(agent.output())

        def rotate() -> None:
            i = 0
            while not stop.wait(1.0):
                i += 1
                dns.set_records({"rot.example.test": [ROTATE_POOL[i % len(ROTATE_POOL)]]})

        rotator = threading.Thread(target=rotate, daemon=True)
        rotator.start()
        port = "5353" if proxy else "53"
        out = lab.exec(
            "client",
            [PY, "-c", CLIENT_SCRIPT, "rot.example.test", "198.18.0.1", port, str(count), "0.01"],
            timeout=170,
        )
        ok, denied, errors = (int(x) for x in out.stdout.split())
        return ok, denied, errors
    finally:
        stop.set()
        agent.stop()
        dns.proc.stop() if dns.proc else None
        clear(lab)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=2, help="per connection-rate run")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--proxy-connections", type=int, default=1000)
    parser.add_argument("--poll-connections", type=int, default=400)
    opts = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as d,
        Lab(workdir=Path(d) / "lab", web_firewall=False) as lab,
    ):
        tmp = Path(d)
        for ip in ROTATE_POOL:
            lab.exec("web", ["ip", "addr", "add", f"{ip}/32", "dev", "eth0"], check=True)
        Nginx(lab, "web", ["80"], workers=2).start()
        # Hundreds of thousands of short connections: the server (which closes first) must not
        # keep every 4-tuple in TIME_WAIT, or ports collide and SYNs wait for retransmits.
        lab.sysctl("web", "net.ipv4.tcp_max_tw_buckets", "1024")
        lab.exec("client", ["sh", "-c", "echo 1024 65535 > /proc/sys/net/ipv4/ip_local_port_range"])
        lab.sysctl("client", "net.ipv4.tcp_tw_reuse", "1")
        ten = policy_file(tmp / "ten.json", worst_case_rules(10))
        big_rules = worst_case_rules(8000)
        big = policy_file(tmp / "big.json", big_rules)
        pods = f"--pods=bench={CLIENT}"

        # -- 2. validate + apply 8,000 rules -------------------------------------------------
        cli_times, linear_times = [], []
        for _ in range(3):
            clear(lab)
            t0 = time.perf_counter()
            out = fw(lab, "apply", pods, str(big))
            cli_times.append(time.perf_counter() - t0)
            assert out.returncode == 0, out.stderr
            clear(lab)
            t0 = time.perf_counter()
            nft_apply(lab, linear_commands(big_rules))
            linear_times.append(time.perf_counter() - t0)
        inproc = lab.exec(
            "node",
            [PY, "-c", INPROC, str(big), CLIENT],
        )
        print(
            f"apply 8000 rules, CLI end to end (python start, validate, compile, nft check+apply): "
            f"median {statistics.median(cli_times):.3f} s {[round(t, 3) for t in cli_times]}"
        )
        print(
            f"apply 8000 rules, in process: {inproc.stdout.strip()} {inproc.stderr.strip()[-300:]}"
        )
        print(
            "peer (linear, one nft rule per policy rule), nft apply only: "
            f"median {statistics.median(linear_times):.3f} s"
        )

        # -- 1. connection rate -------------------------------------------------------------
        # Switching variants must be quick so that many short interleaved rounds fit: the
        # tables are the exact commands ``firewall apply`` sends, built once here.
        ours10, ours8000 = ours_commands(ten), ours_commands(big)
        linear = linear_commands(big_rules)
        variants = {
            "no policy": lambda: clear(lab),
            "ours 10 rules": lambda: (clear(lab), nft_apply(lab, ours10)),
            "ours 8000 rules": lambda: (clear(lab), nft_apply(lab, ours8000)),
            "linear 8000 rules": lambda: (clear(lab), nft_apply(lab, linear)),
        }
        rates: dict[str, list[float]] = {k: [] for k in variants}
        ratios: dict[str, list[float]] = {k: [] for k in variants}
        for _ in range(opts.rounds):
            for label, setup in variants.items():
                setup()
                rates[label].append(conn_rate(lab, opts.seconds))
            for label in variants:  # paired with the same round's no-policy run (load drifts)
                ratios[label].append(rates[label][-1] / rates["no policy"][-1])
        clear(lab)
        print(
            f"\nnew connections/s through the node (wrk -t2 -c16, Connection: close, "
            f"{opts.rounds} interleaved rounds of {opts.seconds} s):"
        )
        for label, values in rates.items():
            med = statistics.median(values)
            ratio = statistics.median(ratios[label])
            print(
                f"  {label:18s} median {med:9.0f}/s  median paired ratio to no policy {ratio:6.1%}"
                f"  runs {[round(v) for v in values]}"
            )

        # -- 3. DNS race --------------------------------------------------------------------
        print("\nname rotating every second (TTL 1); connect right after a fresh lookup:")
        for label, proxy, count in (
            ("DNS proxy", True, opts.proxy_connections),
            ("polling", False, opts.poll_connections),
        ):
            ok, denied, errors = race(lab, tmp, proxy, count)
            share = denied / max(ok + denied, 1)
            print(
                f"  {label:10s}: {denied} wrongly denied of {ok + denied} ({share:.2%}), "
                f"lookup errors {errors}"
            )
    return 0


INPROC = r"""
import sys, time
from pathlib import Path
from egress_router.firewall.model.decide import parse_node
from egress_router.firewall.model.plan import compile_plan
from egress_router.firewall.model.render import FAMILY, TABLE, build
from egress_router.kernel import nftables
from egress_router.firewall.agent import load_policies
t0 = time.perf_counter()
policies = load_policies([Path(sys.argv[1])], None)
t1 = time.perf_counter()
plan = compile_plan(policies, parse_node([f"bench={sys.argv[2]}"]))
cmds = build(plan, {}, nftables.replace_table_commands(FAMILY, TABLE))
t2 = time.perf_counter()
nftables.check(cmds)
t3 = time.perf_counter()
nftables.apply(cmds)
t4 = time.perf_counter()
steps = plan.namespaces[0].steps
n = len(steps[0].intervals)
print(f"validate {t1-t0:.3f} s, compile {t2-t1:.3f} s ({len(steps)} step, {n} intervals), "
      f"nft check {t3-t2:.3f} s, nft apply {t4-t3:.3f} s, total {t4-t0:.3f} s")
"""

if __name__ == "__main__":
    sys.exit(main())
