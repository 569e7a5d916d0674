"""CLI front end for ``egress-router setup``: the router image's entry point.

Owns: reading the environment, the interface-name flags, dispatching on EGRESS_ROUTER_MODE
(legacy waits for SIGTERM/SIGINT, init and the proxy modes exit, unit-test prints the plan)
and the debug log on stderr.
Must not: parse variables or plan (``core``), or talk to the kernel directly (``router.apply``).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import Annotated

import typer

MACVLAN_HELP = "Macvlan interface inside the pod [env EGRESS_ROUTER_MACVLAN_INTERFACE; macvlan0]"
CLUSTER_HELP = "Cluster-side interface [env EGRESS_ROUTER_CLUSTER_INTERFACE; eth0]"
SECOND_ARP_DELAY_S = 2.0  # as the reference: the request form follows the reply after 2 s


Log = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


def _debug_log(line: str) -> None:
    print(f"egress-router: debug: {line}", file=sys.stderr, flush=True)


def _stop_event() -> threading.Event:
    """An event set by SIGTERM or SIGINT (installed before configuring, so none is lost)."""
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    return stop


def _wait_for_stop(stop: threading.Event, second_arp: Callable[[], object], log: Log) -> int:
    """Legacy mode: block until SIGTERM or SIGINT, then exit 0 (nothing is undone)."""
    if not stop.wait(SECOND_ARP_DELAY_S):
        second_arp()
    while not stop.wait(3600.0):
        pass
    log("stopping on signal")
    return 0


def setup(
    macvlan_interface: Annotated[
        str | None, typer.Option("--macvlan-interface", help=MACVLAN_HELP)
    ] = None,
    cluster_interface: Annotated[
        str | None, typer.Option("--cluster-interface", help=CLUSTER_HELP)
    ] = None,
) -> int:
    """Configure the egress router pod from EGRESS_* variables (the router image's contract)."""
    from egress_router.core.router_env import Mode, parse_router_env

    env = parse_router_env(os.environ, macvlan=macvlan_interface, cluster=cluster_interface)
    if env.mode is Mode.UNIT_TEST:
        from egress_router.router.report import render_plan

        sys.stdout.write(render_plan(env))
        return 0

    from egress_router.router import apply

    log: Log = _debug_log if env.debug else _quiet
    log(f"mode {env.mode.value}, source {env.source}, gateway {env.gateway}")
    stop = _stop_event() if env.mode is Mode.LEGACY else None
    apply.configure(env, log)
    if stop is not None:
        return _wait_for_stop(stop, lambda: apply.announce_request(env, log), log)
    apply.announce_request(env, log)
    return 0


def register(app: typer.Typer) -> None:
    """Add this command group to the main application."""
    app.command("setup")(setup)
