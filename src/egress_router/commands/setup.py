"""CLI front end for ``egress-router setup``: the router image's entry point.

Owns: reading the environment, the interface-name flags, dispatching on EGRESS_ROUTER_MODE
(legacy stays up and reloads, see ``redirect.legacy``; init and the proxy modes exit;
unit-test prints the plan) and the debug log on stderr.
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
FILE_HELP = (
    "Read EGRESS_DESTINATION from this file (env EGRESS_DESTINATION_FILE); "
    "legacy mode reloads it when it changes"
)


if TYPE_CHECKING:
    from egress_router.redirect.model.env import RouterEnv
    from egress_router.runtime.health import Health
    from egress_router.runtime.reload import Signature

Log = Callable[[str], None]


# the interface and destination-file options, shared with `diagnose` (same names, same meaning)
MacvlanOption = Annotated[str | None, typer.Option("--macvlan-interface", help=MACVLAN_HELP)]
ClusterOption = Annotated[str | None, typer.Option("--cluster-interface", help=CLUSTER_HELP)]
DestinationFileOption = Annotated[str | None, typer.Option("--destination-file", help=FILE_HELP)]


def _quiet(_: str) -> None:
    return None


def _debug_log(line: str) -> None:
    print(f"egress-router: debug: {line}", file=sys.stderr, flush=True)


def _signals() -> tuple[threading.Event, threading.Event]:
    """Events set by SIGTERM/SIGINT (stop) and SIGHUP (reload), installed before configuring
    so none is lost."""
    stop, hup = threading.Event(), threading.Event()

    def on_stop(signum: int, _frame: object) -> None:
        stop.set()

    def on_hup(signum: int, _frame: object) -> None:
        hup.set()

    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    signal.signal(signal.SIGHUP, on_hup)
    return stop, hup


def _health(env: RouterEnv) -> Health | None:
    """Serve the probes (alive, not ready) before configuring, if EGRESS_ROUTER_HEALTH_PORT."""
    if env.health is None:
        return None
    from egress_router.runtime.health import Health, serve_health

    health = Health()
    serve_health(*env.health, health)
    return health


def setup(
    macvlan_interface: MacvlanOption = None,
    cluster_interface: ClusterOption = None,
    destination_file: DestinationFileOption = None,
) -> int:
    """Configure the egress router pod from EGRESS_* variables (the router image's contract).

    Variables: EGRESS_SOURCE, EGRESS_GATEWAY, EGRESS_DESTINATION,
    EGRESS_ROUTER_MODE (legacy, init, http-proxy, dns-proxy, unit-test),
    EGRESS_ROUTER_DEBUG, EGRESS_ROUTER_HEALTH_PORT (legacy: /healthz, /readyz);
    EGRESS_ROUTER_FAILOVER and friends for active/standby. Legacy mode reloads on SIGHUP or a
    changed destination file. See docs/redirect.md and docs/failover.md.
    """
    from egress_router.redirect.model.env import Mode, parse_router_env
    from egress_router.runtime.reload import signature, with_variable_file

    def reparse() -> RouterEnv:
        variables = with_variable_file(
            os.environ, "EGRESS_DESTINATION", FILE_VARIABLE, destination_file, "--destination-file"
        )
        return parse_router_env(variables, macvlan=macvlan_interface, cluster=cluster_interface)

    watched = destination_file or os.environ.get(FILE_VARIABLE) or None
    baseline = signature(watched) if watched else None  # before the first read
    env = reparse()
    if env.mode is Mode.UNIT_TEST:
        from egress_router.redirect.report import render_plan

        sys.stdout.write(render_plan(env))
        return 0

    from egress_router.failover.model import settings as failover_settings

    variables = dict(os.environ)
    failover = failover_settings.parse(variables, socket.gethostname())
    log: Log = _debug_log if env.debug else _quiet
    if failover is not None:
        if env.mode is not Mode.LEGACY:
            raise VariableError(
                "EGRESS_ROUTER_FAILOVER", "only the legacy redirect mode fails over"
            )
        return _run_failover(env, failover, variables, log, reparse, watched, baseline)

    from egress_router.redirect import apply
    from egress_router.runtime import logsink

    legacy = env.mode is Mode.LEGACY  # long-running: a stalled reader must not delay a SIGTERM
    with logsink.installed() if legacy else contextlib.nullcontext():
        log(f"mode {env.mode.value}, source {env.source}, gateway {env.gateway}")
        if not legacy:
            apply.configure(env, log)
            apply.announce_request(env, log)
            return 0
        from egress_router.redirect import legacy as legacy_mode
        from egress_router.runtime.health import State as health_state

        stop, hup = _signals()
        health = _health(env)
        apply.configure(env, log)
        router = legacy_mode.LegacyRouter(env, reparse, log)
        if health is not None:
            health.counts = router.counts
            health.set_state(health_state.READY)
        return legacy_mode.run(router, stop, hup, watched, baseline)


def _run_failover(
    env: RouterEnv,
    failover: FailoverSettings,
    variables: dict[str, str],
    log: Log,
    reparse: Callable[[], RouterEnv],
    watched: str | None,
    baseline: Signature,
) -> int:
    """Legacy mode with EGRESS_ROUTER_FAILOVER: standby first, active when the lease allows;
    reloads on SIGHUP or a changed destination file, as legacy mode does."""
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
        stop, hup = _signals()
        health = _health(env)  # /readyz: "standby" until this instance holds the address
        store = open_store(failover)
        instance = Instance(env, failover, store, log, failover_metrics, health, reparse)
        return instance.run(stop, hup, watched, baseline)


def register(app: typer.Typer) -> None:
    """Add this command group to the main application."""
    app.command("setup")(setup)
