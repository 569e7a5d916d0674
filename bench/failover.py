"""Failover under load: the active instance killed (SIGKILL) or frozen (SIGSTOP), repeatedly.

Two ``egress-router setup`` instances (legacy redirect, EGRESS_ROUTER_FAILOVER=file) run in two
router namespaces whose macvlans share the node's ``ext0``; a client in the client pod opens
connections through them continuously (HTTP GET to the web server, which admits only the
reserved source), and a watcher in the gateway namespace sends an ARP request for the reserved
IP every 20 ms and records every answer with its MAC. Each repetition signals the current
active instance, waits for the other to take over, and brings the signalled one back (a new
process after SIGKILL, SIGCONT after a freeze longer than the lease), which must come back as
standby (no flap-back). Printed per repetition: the gap (longest time between two successful
connections around the event), the holder before and after; then the median and worst gap,
and whether two MACs ever answered the same ARP probe (two holders on the wire).

``--backend lease`` fences with a Lease on a real kube-apiserver (started here from the binaries
``scripts/control-plane`` built; each router namespace reaches it through a socat relay over a
unix socket) instead of the lease file.

``--freeze-group`` freezes the instance and its children (its guard too, as a frozen pod's
cgroup would), to show what the wire does when nothing in the pod can withdraw: the kernel's
switch (nftables ``egress_router_fence``) must silence the address on its own.

    sudo .venv/bin/python bench/failover.py [--reps 20] [--signal kill|stop|both]
        [--backend file|lease] [--freeze-group]
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from egress_router.failover.store import FileStore
from egress_router.kube.client import Kube
from egress_router.lab import procs
from egress_router.lab.controlplane import ControlPlane, binaries_dir
from egress_router.lab.failover import ROUTER2_IP, add_router2, router_env
from egress_router.lab.servers import Nginx
from egress_router.lab.topology import Lab

EGRESS_ROUTER = str(Path(sys.executable).parent / "egress-router")
PY = sys.executable
DESTINATION = "80 tcp 203.0.113.25"
SETTLE_S = 1.0  # after an instance (re)starts, before the next event
FREEZE_S = 1.5  # a SIGSTOP lasts longer than the lease, so the standby must take over


class Rig:
    def __init__(self, lab: Lab, lease_file: str, kube: Kube | None, kubeconfig: str) -> None:
        self.lab = lab
        self.lease_file = lease_file
        self.kube = kube
        self.kubeconfig = kubeconfig
        self.roles = {"r1": "router", "r2": "router2"}
        self.peers = {"r1": [str(ROUTER2_IP)], "r2": [str(lab.addr.router_pod_ip)]}
        self.procs: dict[str, procs.Background] = {}
        self.starts = {"r1": 0, "r2": 0}

    def start(self, name: str) -> None:
        self.starts[name] += 1
        env = router_env(self.lab, name, self.peers[name], self.lease_file, DESTINATION)
        if self.kube is not None:
            env.update(EGRESS_ROUTER_FAILOVER="lease", KUBECONFIG=self.kubeconfig)
        self.procs[name] = self.lab.spawn(
            self.roles[name],
            [EGRESS_ROUTER, "setup"],
            name=f"{name}-{self.starts[name]}",
            env=env,
        )

    def holder(self) -> str:
        if self.kube is not None:
            lease = self.kube.read_lease("default", "egress-router")
            return lease.holder if lease is not None else ""
        record = FileStore(self.lease_file).read()
        return record.holder if record is not None else ""

    def active_line(self, name: str) -> bool:
        lines = [ln for ln in self.procs[name].output().splitlines() if ln.startswith("failover:")]
        return bool(lines) and " is active " in lines[-1]

    def standby_line(self, name: str) -> bool:
        lines = [ln for ln in self.procs[name].output().splitlines() if ln.startswith("failover:")]
        return bool(lines) and " is standby " in lines[-1]


def children(pid: int) -> list[int]:
    """The direct children of ``pid`` (the guard runs in its own process group)."""
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def ok_times(path: Path) -> list[float]:
    out = []
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1] == "ok":
            out.append(float(parts[0]))
    return out


def gap_around(oks: list[float], start: float, end: float) -> float:
    """The longest time between consecutive successes in [start, end]."""
    inside = [t for t in oks if start <= t <= end]
    before = [t for t in oks if t < start][-1:]
    after = [t for t in oks if t > end][:1]
    series = before + inside + after
    return max((b - a for a, b in itertools.pairwise(series)), default=float("inf"))


def two_holders(path: Path) -> list[str]:
    """Probe rounds answered by two MACs (from the watcher's log)."""
    rounds: dict[str, set[str]] = {}
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[3] == "reply":
            rounds.setdefault(parts[1], set()).add(parts[2])
    return [f"round {r}: {sorted(m)}" for r, m in rounds.items() if len(m) > 1]


def run(reps: int, how: str, group: bool, logs: Path, backend: str) -> int:
    with contextlib.ExitStack() as stack:
        kube: Kube | None = None
        kubeconfig = ""
        port = 0
        if backend == "lease":
            plane = stack.enter_context(ControlPlane(logs / "cp", bin_dir=binaries_dir()))
            kubeconfig = str(plane.kubeconfig("admin"))
            kube = Kube(kubeconfig)
            stack.callback(kube.close)
            port = int(plane.server.rsplit(":", 1)[1])
            host_relay = subprocess.Popen(
                ["socat", f"UNIX-LISTEN:{logs / 'api.sock'},fork", f"TCP:127.0.0.1:{port}"],
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
            stack.callback(host_relay.wait, 5)
            stack.callback(host_relay.terminate)
        lab = stack.enter_context(Lab(extra_roles=("router2",), workdir=logs / "lab"))
        add_router2(lab)
        Nginx(lab, "web", ["203.0.113.25:80"]).start()
        if kube is not None:
            for role in ("router", "router2"):
                relay = f"TCP-LISTEN:{port},bind=127.0.0.1,fork,reuseaddr"
                sock = f"UNIX-CONNECT:{logs / 'api.sock'}"
                lab.spawn(role, ["socat", relay, sock], name=f"relay-{role}")
        rig = Rig(lab, str(logs / "lease.json"), kube, kubeconfig)
        rig.start("r1")
        assert procs.wait_for(lambda: rig.holder() == "r1", 15.0), rig.procs["r1"].output()
        rig.start("r2")
        assert procs.wait_for(lambda: rig.standby_line("r2"), 15.0), rig.procs["r2"].output()
        time.sleep(SETTLE_S)
        seconds = str(reps * 10 + 30)
        mod = "egress_router.lab.failover"
        watcher = lab.spawn(
            "gw", [PY, "-m", mod, "watch", "lan0", "198.19.123.99", seconds], name="watch"
        )
        targets = f"{lab.addr.router_pod_ip},{ROUTER2_IP}"
        client = lab.spawn(
            "client",
            [PY, "-m", mod, "client", targets, "80", seconds, "198.19.123.99"],
            name="client",
        )
        time.sleep(1.0)
        events: list[tuple[str, float, float, str, str]] = []
        for rep in range(reps):
            sig = {"kill": signal.SIGKILL, "stop": signal.SIGSTOP}[
                how if how != "both" else ("kill", "stop")[rep % 2]
            ]
            old = rig.holder()
            new = "r2" if old == "r1" else "r1"
            victim = rig.procs[old]
            start = time.time()
            frozen = [victim.pid, *children(victim.pid)]  # the instance, its guard, any nft
            if group and sig == signal.SIGSTOP:
                for pid in frozen:
                    os.kill(pid, sig)
            else:
                os.kill(victim.pid, sig)
            took = procs.wait_for(lambda n=new: rig.holder() == n and rig.active_line(n), 10.0)
            done = time.time()
            if sig == signal.SIGKILL:
                victim.popen.wait(5.0)
                time.sleep(0.2)
                rig.start(old)
                back = procs.wait_for(lambda o=old: rig.standby_line(o), 15.0)
            else:
                time.sleep(max(0.0, FREEZE_S - (time.time() - start)))
                if group:
                    for pid in frozen:
                        os.kill(pid, signal.SIGCONT)
                else:
                    os.kill(victim.pid, signal.SIGCONT)
                back = procs.wait_for(lambda o=old: rig.standby_line(o), 10.0)
            time.sleep(SETTLE_S)
            still = rig.holder() == new and rig.active_line(new)
            name = signal.Signals(sig).name
            state = "ok" if took and back and still else f"took={took} back={back} kept={still}"
            events.append((name, start, done, f"{old}->{new}", state))
            print(f"rep {rep + 1:2d} {name:7s} {old}->{new} {state}", flush=True)
        time.sleep(0.5)
        client.stop()
        watcher.stop()
        oks = ok_times(client.log)
        doubles = two_holders(watcher.log)
        print()
        by_signal: dict[str, list[float]] = {}
        for name, start, done, move, state in events:
            gap = gap_around(oks, start, done + 0.5)
            by_signal.setdefault(name, []).append(gap)
            print(f"{name:7s} {move} gap {gap * 1000:7.1f} ms  {state}")
        for name, gaps in by_signal.items():
            print(
                f"{name}: {len(gaps)} reps, median gap {statistics.median(gaps) * 1000:.0f} ms, "
                f"worst {max(gaps) * 1000:.0f} ms, under 1 s: {sum(g < 1 for g in gaps)}"
            )
        print(f"two holders on the wire (ARP probe rounds answered by two MACs): {len(doubles)}")
        for line in doubles[:20]:
            print("  " + line)
        bad = any(e[4] != "ok" for e in events)
        return 1 if bad or doubles else 0
    return 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--signal", choices=["kill", "stop", "both"], default="both")
    parser.add_argument("--freeze-group", action="store_true")
    parser.add_argument("--backend", choices=["file", "lease"], default="file")
    parser.add_argument("--logs", type=Path, default=None)
    args = parser.parse_args()
    logs = args.logs or Path(tempfile.mkdtemp(prefix="failover-bench-"))
    logs.mkdir(parents=True, exist_ok=True)
    print(f"logs in {logs}", flush=True)
    if not 1 <= args.reps <= 200:
        parser.error("--reps must be 1..200 (bounded)")
    return run(args.reps, args.signal, args.freeze_group, logs, args.backend)


if __name__ == "__main__":
    sys.exit(main())
