"""Starting the proxy: listening sockets, worker processes, signals and the exit status.

Owns: binding every listen address once per worker (SO_REUSEPORT, so the kernel spreads
connections over the workers), raising the descriptor limit, forking the workers and forwarding
SIGTERM/SIGINT (and SIGHUP: each worker reloads its rules) to them, the health endpoint, and
collecting their exit statuses.
Must not: handle connections (``worker``/``client``/``upstream`` do).
"""

from __future__ import annotations

import dataclasses
import resource
import socket
import sys

from egress_router.errors import DataplaneError
from egress_router.http_proxy.model.rules import RuleTable
from egress_router.http_proxy.model.settings import ProxySettings
from egress_router.http_proxy.worker import run_worker
from egress_router.runtime import logsink
from egress_router.runtime.health import Health, serve_health
from egress_router.runtime.reload import Source
from egress_router.runtime.workers import supervise

FDS_PER_CONNECTION = 2  # the client's socket and the upstream's
FDS_RESERVED = 64  # listeners, resolver, log, stdio


def raise_fd_limit(settings: ProxySettings) -> ProxySettings:
    """Use the hard descriptor limit, and cap ``max_connections`` to what it allows."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    fit = max(16, (soft - FDS_RESERVED) // FDS_PER_CONNECTION)
    if settings.max_connections > fit:
        return dataclasses.replace(settings, max_connections=fit)
    return settings


def bind(address: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((address, port))
        sock.listen(4096)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise DataplaneError(f"cannot listen on {address} port {port}: {exc.strerror}") from None
    return sock


def serve(
    settings: ProxySettings,
    reload: Source[RuleTable] | None = None,
    health: tuple[str, int] | None = None,
) -> int:
    """Run until SIGTERM/SIGINT; 0 when every worker drained and exited cleanly.

    With metrics on, every worker writes them into a private directory (prometheus_client's
    multi-process mode) and this process serves their sum; the directory is removed at exit.
    Everything written to stdout/stderr goes through the non-blocking log sink."""
    with logsink.installed():
        if settings.metrics is None:
            return _serve(settings, reload, health)
        from egress_router.runtime import metrics

        path = metrics.enable_multiprocess()
        try:
            return _serve(settings, reload, health)
        finally:
            metrics.disable_multiprocess(path)


def _serve_metrics(settings: ProxySettings) -> None:
    if settings.metrics is not None:
        from egress_router.runtime import metrics

        metrics.serve(*settings.metrics)


def _serve_health(health: tuple[str, int] | None) -> None:
    """Ready as soon as every listening socket is bound (the kernel queues connections)."""
    if health is not None:
        state = Health()
        serve_health(*health, state)
        state.ready()


def _serve(
    settings: ProxySettings, reload: Source[RuleTable] | None, health: tuple[str, int] | None
) -> int:
    settings = raise_fd_limit(settings)
    groups = [[bind(a, settings.port) for a in settings.listen] for _ in range(settings.workers)]
    where = ", ".join(f"{a}:{settings.port}" for a in settings.listen)

    def ready() -> None:  # once every socket listens and the metrics are served
        print(
            f"egress-router http-proxy: listening on {where} with {settings.workers} worker(s), "
            f"{len(settings.rules.rules)} rule(s)",
            file=sys.stderr,
            flush=True,
        )

    if settings.workers == 1:
        _serve_metrics(settings)
        _serve_health(health)
        ready()
        run_worker(settings, groups[0], reload)
        return 0

    def work(index: int) -> None:  # in the worker: keep only its own sockets
        for other, group in enumerate(groups):
            if other != index:
                for sock in group:
                    sock.close()
        run_worker(settings, groups[index], reload, report=index == 0)

    def close_parent_sockets() -> None:
        for group in groups:
            for sock in group:
                sock.close()
        _serve_metrics(settings)  # after forking: the workers never inherit its thread
        _serve_health(health)
        ready()

    on_exit = None
    if settings.metrics is not None:
        from egress_router.runtime import metrics

        on_exit = metrics.process_exited
    return supervise(
        settings.workers,
        work,
        name="http-proxy",
        after_fork=close_parent_sockets,
        on_exit=on_exit,
        forward_hup=reload is not None,
    )
