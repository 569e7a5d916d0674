"""CLI front end for ``egress-router setup``: the router image's entry point.

Owns: reading the environment, the interface-name flags, dispatching on EGRESS_ROUTER_MODE
(legacy waits for SIGTERM/SIGINT, init and the proxy modes exit, unit-test prints the plan)
and the debug log on stderr.
Must not: parse variables or plan (``redirect.model``), or talk to the kernel directly
(``redirect.apply``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

import typer

from egress_router.errors import VariableError

if TYPE_CHECKING:
    from egress_router.failover.model.settings import FailoverSettings
    from egress_router.redirect.model.env import RouterEnv

MACVLAN_HELP = (
    "Macvlan interface in the pod (env EGRESS_ROUTER_MACVLAN_INTERFACE, default macvlan0)"
)
CLUSTER_HELP = "Cluster-side interface (env EGRESS_ROUTER_CLUSTER_INTERFACE, default eth0)"
FILE_VARIABLE = "EGRESS_DESTINATION_FILE"
FILE_HELP = "Read EGRESS_DESTINATION from this file (env EGRESS_DESTINATION_FILE)"
MAX_DESTINATION_BYTES = 16 * 1024 * 1024  # ~700,000 lines; bounds memory on a wrong path
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


def _with_destination_file(env: dict[str, str], flag: str | None) -> dict[str, str]:
    """EGRESS_DESTINATION read from a file (a ConfigMap mounted as a volume), if one is named.

    A variable is limited to 128 KiB by execve, about 6,000 lines; a file is not.
    """
    name = "--destination-file" if flag is not None else FILE_VARIABLE
    path = flag if flag is not None else env.get(FILE_VARIABLE)
    if not path:
        return env
    if env.get("EGRESS_DESTINATION"):
        raise VariableError(name, "give either EGRESS_DESTINATION or a destination file, not both")
    try:
        with open(path, encoding="utf-8") as handle:
            env["EGRESS_DESTINATION"] = handle.read(MAX_DESTINATION_BYTES + 1)
    except (OSError, UnicodeDecodeError) as exc:
        raise VariableError(name, f"cannot read {path}: {exc}") from None
    if len(env["EGRESS_DESTINATION"]) > MAX_DESTINATION_BYTES:
        raise VariableError(name, f"{path} is larger than {MAX_DESTINATION_BYTES} bytes")
    return env


def setup(
    macvlan_interface: Annotated[
        str | None, typer.Option("--macvlan-interface", help=MACVLAN_HELP)
    ] = None,
    cluster_interface: Annotated[
        str | None, typer.Option("--cluster-interface", help=CLUSTER_HELP)
    ] = None,
    destination_file: Annotated[
        str | None, typer.Option("--destination-file", help=FILE_HELP)
    ] = None,
) -> int:
    """Configure the egress router pod from EGRESS_* variables (the router image's contract).

    Variables: EGRESS_SOURCE, EGRESS_GATEWAY, EGRESS_DESTINATION,
    EGRESS_ROUTER_MODE (legacy, init, http-proxy, dns-proxy, unit-test),
    EGRESS_ROUTER_DEBUG; EGRESS_ROUTER_FAILOVER and friends for active/standby.
    See docs/redirect.md and docs/failover.md.
    """
    from egress_router.redirect.model.env import Mode, parse_router_env

    variables = _with_destination_file(dict(os.environ), destination_file)
    env = parse_router_env(variables, macvlan=macvlan_interface, cluster=cluster_interface)
    if env.mode is Mode.UNIT_TEST:
        from egress_router.redirect.report import render_plan

        sys.stdout.write(render_plan(env))
        return 0

    from egress_router.failover.model import settings as failover_settings

    failover = failover_settings.parse(variables, socket.gethostname())
    log: Log = _debug_log if env.debug else _quiet
    if failover is not None:
        if env.mode is not Mode.LEGACY:
            raise VariableError(
                "EGRESS_ROUTER_FAILOVER", "only the legacy redirect mode fails over"
            )
        return _run_failover(env, failover, variables, log)

    from egress_router.redirect import apply
    from egress_router.runtime import logsink

    legacy = env.mode is Mode.LEGACY  # long-running: a stalled reader must not delay a SIGTERM
    with logsink.installed() if legacy else contextlib.nullcontext():
        log(f"mode {env.mode.value}, source {env.source}, gateway {env.gateway}")
        stop = _stop_event() if legacy else None
        apply.configure(env, log)
        if stop is not None:
            return _wait_for_stop(stop, lambda: apply.announce_request(env, log), log)
        apply.announce_request(env, log)
        return 0


def _run_failover(
    env: RouterEnv, failover: FailoverSettings, variables: dict[str, str], log: Log
) -> int:
    """Legacy mode with EGRESS_ROUTER_FAILOVER: standby first, active when the lease allows."""
    from egress_router.failover.loop import Instance, open_store
    from egress_router.runtime import metrics

    failover_metrics = None
    listen = variables.get("EGRESS_ROUTER_FAILOVER_METRICS", "").strip()
    if listen:
        try:
            host, port = metrics.parse_listen(listen)
        except ValueError as exc:
            raise VariableError("EGRESS_ROUTER_FAILOVER_METRICS", str(exc)) from None
        registry = metrics.new_registry()
        failover_metrics = metrics.FailoverMetrics(registry)
        metrics.serve(host, port, registry)
    from egress_router.runtime import logsink

    with logsink.installed():  # long-running: a stalled reader must not delay a SIGTERM
        stop = _stop_event()
        instance = Instance(env, failover, open_store(failover), log, failover_metrics)
        return instance.run(stop)


def register(app: typer.Typer) -> None:
    """Add this command group to the main application."""
    app.command("setup")(setup)
