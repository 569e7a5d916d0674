"""The guided tour of the whole system (``egress-router lab demo``, ``scripts/demo``).

Owns: building the one lab of the tour, running the parts in order (or only the ones asked
for), the topology table, the summary (what each part proved), the exit status, and the
teardown, also on Ctrl-C or SIGTERM at any moment: signals are flags (``lab.interrupts``),
surfacing between steps and in waits; the owner alone tears down, clean-up hooks first.
Must not: configure a router, proxy, firewall or pod itself (the parts run the installed
commands), or touch the host's own network namespace.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence

from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from egress_router.lab import interrupts
from egress_router.lab.topology import ADDR, Lab
from egress_router.lab.tour import cni, dns_proxy, firewall, http_proxy, image, redirect
from egress_router.lab.tour.base import Part, Tour

PARTS: tuple[Part, ...] = (
    redirect.PART,
    http_proxy.PART,
    dns_proxy.PART,
    firewall.PART,
    cni.PART,
    image.PART,
)
MODES = tuple(part.name for part in PARTS)


def _topology(tour: Tour) -> None:
    lab = tour.lab
    table = Table(title=f"lab {lab.lab_id}: the blog's topology in network namespaces")
    for column in ("role", "namespace", "addresses"):
        table.add_column(column)
    table.add_row("client pod", lab.ns("client"), f"eth0 {ADDR.client_pod_ip}")
    table.add_row(
        "router pod", lab.ns("router"), f"eth0 {ADDR.router_pod_ip}, macvlan0 (unconfigured)"
    )
    table.add_row("node", lab.ns("node"), f"cbr0 {ADDR.node_cluster_ip}, ext0 {ADDR.node_lan_ip}")
    table.add_row("gateway", lab.ns("gw"), f"lan0 {ADDR.gateway_ip}, srv0 {ADDR.gateway_server_ip}")
    servers = ", ".join(str(ip) for ip in ADDR.server_ips)
    table.add_row(
        "web server", lab.ns("web"), f"eth0 {servers}; firewall admits only {ADDR.egress_source}"
    )
    tour.console.print(table)


def _run_parts(tour: Tour, parts: Sequence[Part], destination: str | None) -> None:
    _topology(tour)
    for part in parts:
        interrupts.checkpoint()
        tour.part = part.name
        tour.console.rule(f"[bold]{part.title}[/]")
        started = time.monotonic()
        try:
            if part is redirect.PART and destination is not None:
                redirect.run(tour, destination)
            else:
                part.run(tour)
        except interrupts.Interrupted:
            raise
        except Exception as exc:  # a part that breaks is a failed check, the tour goes on
            tour.check("the part ran to its end", False, f"{type(exc).__name__}: {exc}")
        _part_cleanups(tour)
        tour.note(f"{part.name}: {time.monotonic() - started:.1f} s")


def _part_cleanups(tour: Tour) -> None:
    """Put back what the part changed in the lab, so the next part starts from the same."""
    while tour.after_part:
        cleanup = tour.after_part.pop()
        try:
            cleanup()
        except interrupts.Interrupted:
            raise
        except Exception as exc:
            tour.check("the part's changes were undone", False, f"{type(exc).__name__}: {exc}")


def _summary(tour: Tour, parts: Sequence[Part]) -> bool:
    table = Table(show_header=True)
    table.add_column("part")
    table.add_column("checks")
    table.add_column("what it proved")
    all_ok = True
    for part in parts:
        checks = [c for c in tour.checks if c.part == part.name]
        held = sum(c.ok for c in checks)
        if not checks:
            table.add_row(part.name, "-", "[yellow]skipped[/] (see above)")
            continue
        ok = held == len(checks)
        all_ok = all_ok and ok
        failed = "; ".join(c.claim for c in checks if not c.ok)
        mark = "[green]✔[/]" if ok else "[red]✘[/]"
        table.add_row(
            f"{mark} {part.name}",
            f"{held}/{len(checks)}",
            part.proves if ok else f"[red]not proved[/]: {failed}",
        )
    total = len(tour.checks)
    passed = sum(c.ok for c in tour.checks)
    title = f"{passed}/{total} checks held"
    tour.console.print(Panel(table, title=title, border_style="green" if all_ok else "red"))
    return all_ok


def _teardown(tour: Tour, keep: bool) -> None:
    """Clean-up hooks, then the lab (or only its processes with ``keep``).

    Signals arriving now are only recorded (``interrupts.tearing_down``): it runs to its end.
    """
    with interrupts.tearing_down():
        try:
            for cleanup in reversed(tour.cleanups):
                try:
                    cleanup()
                except Exception as exc:  # the lab's removal below takes the rest
                    tour.note(f"clean-up step failed: {exc}")
        finally:
            if keep and interrupts.received() is None:
                tour.lab.processes.stop_all()
                tour.console.print(
                    f"[dim]lab {tour.lab.lab_id} kept; remove with: "
                    f"egress-router lab down {tour.lab.lab_id}[/]"
                )
            else:
                tour.lab.down()
                tour.console.print(f"[dim]lab {tour.lab.lab_id} removed[/]")


def run_demo(
    destination: str | None = None,
    keep: bool = False,
    lab_id: str | None = None,
    only: Sequence[str] = (),
) -> int:
    """Run the tour; 0 only if every check held, 130 when interrupted (Ctrl-C or SIGTERM)."""
    console = Console(highlight=False)
    if os.geteuid() != 0:
        console.print("[red]the lab needs root (network namespaces)[/]")
        return 1
    parts = [p for p in PARTS if not only or p.name in only]
    extra = ("cpod",) if cni.PART in parts else ()
    lab = Lab(lab_id=lab_id, extra_roles=extra) if lab_id else Lab(extra_roles=extra)
    tour = Tour(lab, console)
    with interrupts.owned():
        try:
            started = time.monotonic()
            lab.up()
            _run_parts(tour, parts, destination)
            console.print(f"\n[dim]the tour took {time.monotonic() - started:.1f} s[/]")
        except interrupts.Interrupted:
            pass
        except Exception as exc:
            if interrupts.received() is None:
                tour.part = tour.part or "lab"
                tour.check("the tour ran to its end", False, f"{type(exc).__name__}: {exc}")
        finally:
            if interrupts.received() is not None:
                console.print("\n[yellow]interrupted: tearing the lab down[/]")
            _teardown(tour, keep)
        if interrupts.received() is not None:
            return interrupts.EXIT_INTERRUPTED
    return 0 if _summary(tour, parts) else 1
