"""The lab demo: the reference blog's walk-through, run for real and reported.

Owns: the demo's steps (build the lab, show the client is refused by the web server, run the
egress router, show the client gets through it, show the server saw the reserved source IP),
the checks they produce and their rich report; teardown also on Ctrl-C or SIGTERM (see
``lab.interrupts``: signals are flags, surfacing only between steps and in waits).
Must not: configure the router itself (it runs ``egress-router setup`` in the router pod,
exactly as a pod would), or touch the host's own network namespace.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass

from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from egress_router.lab import interrupts, procs
from egress_router.lab.servers import Nginx
from egress_router.lab.topology import ADDR, Lab

SOURCE = f"{ADDR.egress_source}/24"
READY_TIMEOUT_S = 15.0  # setup takes well under a second; 15 s means it failed


@dataclass(frozen=True)
class Check:
    """One claim of the demo and whether it held."""

    claim: str
    ok: bool
    evidence: str


def _curl(lab: Lab, role: str, url: str, timeout: float = 3.0) -> tuple[int, str]:
    proc = lab.exec(role, ["curl", "-sS", "-m", str(timeout), url], timeout=timeout + 5)
    return proc.returncode, (proc.stdout.strip() or proc.stderr.strip())


class Demo:
    """Runs the steps on one lab and collects the checks."""

    def __init__(self, console: Console, destination: str) -> None:
        self.console = console
        self.destination = destination
        self.checks: list[Check] = []

    def step(self, title: str) -> None:
        interrupts.checkpoint()
        self.console.print(f"\n[bold cyan]▶ {title}[/]")

    def check(self, claim: str, ok: bool, evidence: str) -> None:
        interrupts.checkpoint()
        self.checks.append(Check(claim, ok, evidence))
        mark = "[green]✔[/]" if ok else "[red]✘[/]"
        self.console.print(f"  {mark} {claim}\n    [dim]{evidence}[/]")

    def topology(self, lab: Lab) -> None:
        table = Table(title=f"lab {lab.lab_id}: the blog's topology in network namespaces")
        for column in ("role", "namespace", "addresses"):
            table.add_column(column)
        table.add_row("client pod", lab.ns("client"), f"eth0 {ADDR.client_pod_ip}")
        table.add_row(
            "router pod", lab.ns("router"), f"eth0 {ADDR.router_pod_ip}, macvlan0 (unconfigured)"
        )
        table.add_row(
            "node", lab.ns("node"), f"cbr0 {ADDR.node_cluster_ip}, ext0 {ADDR.node_lan_ip}"
        )
        table.add_row(
            "gateway", lab.ns("gw"), f"lan0 {ADDR.gateway_ip}, srv0 {ADDR.gateway_server_ip}"
        )
        table.add_row(
            "web server",
            lab.ns("web"),
            f"eth0 {ADDR.server_ip}; firewall admits only {ADDR.egress_source}",
        )
        self.console.print(table)

    def run(self, lab: Lab) -> None:
        server = str(ADDR.server_ip)
        self.step("Build the lab and start the web server")
        nginx = Nginx(lab, "web", [f"{server}:80"]).start()
        self.topology(lab)

        self.step("The client pod tries the web server directly")
        status, output = _curl(lab, "client", f"http://{server}/")
        self.check(
            "the web server refuses the client pod (its firewall admits only the egress IP)",
            status != 0,
            f"curl http://{server}/ -> exit {status}: {output}",
        )

        self.step("Start the egress router in the router pod (legacy mode, as in the blog)")
        env = {
            "EGRESS_SOURCE": SOURCE,
            "EGRESS_GATEWAY": str(ADDR.gateway_ip),
            "EGRESS_DESTINATION": self.destination,
            "EGRESS_ROUTER_MODE": "legacy",
        }
        for key, value in env.items():
            shown = value.replace("\n", "\\n")
            self.console.print(f"  [dim]{key}=[/]{shown}")
        router = lab.spawn(
            "router", [sys.executable, "-m", "egress_router.cli", "setup"], name="router", env=env
        )
        ready = procs.wait_for(
            lambda: (
                not router.alive()
                or _curl(lab, "client", f"http://{ADDR.router_pod_ip}/ip")[0] == 0
            ),
            timeout=READY_TIMEOUT_S,
            interval=0.1,
        )
        default = lab.exec("router", ["ip", "route", "show", "default"]).stdout.strip()
        self.check(
            "the router is configured and keeps running",
            ready and router.alive(),
            f"{ADDR.egress_source} on macvlan0; {default}"
            if router.alive()
            else f"setup exited: {router.output()[-300:]}",
        )

        self.step("The client pod goes through the router pod instead")
        status, output = _curl(lab, "client", f"http://{ADDR.router_pod_ip}/")
        self.check(
            "the client reaches the web server through the router",
            status == 0 and "Hello World" in output,
            f"curl http://{ADDR.router_pod_ip}/ -> {output}",
        )

        self.step("What the web server saw")
        seen = nginx.client_addresses()
        self.check(
            f"the web server saw only the reserved source IP {ADDR.egress_source}",
            bool(seen) and set(seen) == {str(ADDR.egress_source)},
            f"access log sources: {', '.join(seen) or '(none)'}",
        )

        self.step("Stop the router (SIGTERM), as Kubernetes would")
        code = router.stop()
        self.check("the router exits 0 on SIGTERM", code == 0, f"exit status {code}")

    def summary(self) -> bool:
        passed = sum(c.ok for c in self.checks)
        ok = bool(self.checks) and passed == len(self.checks)
        table = Table(show_header=True)
        table.add_column("")
        table.add_column("check")
        for c in self.checks:
            table.add_row("[green]✔[/]" if c.ok else "[red]✘[/]", c.claim)
        style = "green" if ok else "red"
        title = f"{passed}/{len(self.checks)} checks held"
        self.console.print(Panel(table, title=title, border_style=style))
        return ok


def run_demo(
    destination: str = str(ADDR.server_ip), keep: bool = False, lab_id: str | None = None
) -> int:
    """Run the demo; 0 only if every check held, 130 when interrupted (Ctrl-C or SIGTERM)."""
    console = Console(highlight=False)
    if os.geteuid() != 0:
        console.print("[red]the lab needs root (network namespaces)[/]")
        return 1
    demo = Demo(console, destination)
    lab = Lab(lab_id=lab_id) if lab_id else Lab()
    with interrupts.owned():
        try:
            started = time.monotonic()
            lab.up()
            demo.run(lab)
            console.print(f"\n[dim]demo steps took {time.monotonic() - started:.1f} s[/]")
        except interrupts.Interrupted:
            pass
        except Exception as exc:
            if interrupts.received() is None:
                demo.check("the demo ran to the end", False, f"{type(exc).__name__}: {exc}")
        finally:
            if interrupts.received() is not None:
                console.print("\n[yellow]interrupted: tearing the lab down[/]")
            if keep and interrupts.received() is None:
                lab.processes.stop_all()
                console.print(
                    f"[dim]lab {lab.lab_id} kept; remove with: "
                    f"egress-router lab down {lab.lab_id}[/]"
                )
            else:
                lab.down()
                console.print(f"[dim]lab {lab.lab_id} removed[/]")
        if interrupts.received() is not None:
            return interrupts.EXIT_INTERRUPTED
    return 0 if demo.summary() else 1
