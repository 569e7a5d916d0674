"""Running the DNS proxy as a process: event loop, signals, and the relay's worker processes.

Owns: choosing the forwarder, the SIGTERM/SIGINT handling (forwarding is removed on the way
out), uvloop, and for the relay path forking ``relay_workers`` processes that share each port
with SO_REUSEPORT (the kernel spreads new connections over them; each follows the names itself).
Must not: parse configuration or contain forwarding logic.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable

from egress_router.dns_proxy.forwarders import Forwarder, KernelForwarder, RelayForwarder
from egress_router.dns_proxy.model.destinations import Forwarding, Settings
from egress_router.dns_proxy.relay import Logger
from egress_router.dns_proxy.service import DnsProxyService
from egress_router.runtime import logsink
from egress_router.runtime.resolver import Resolver
from egress_router.runtime.workers import supervise

MAX_WORKERS = 16  # bound on processes (and on DNS queries: each worker follows every name)


def stdout_logger(prefix: str = "dns-proxy") -> Logger:
    """Lines on stdout through the log sink: never blocks; whole lines per write, so several
    workers' lines never interleave."""
    sink = logsink.stdout()

    def log(message: str) -> None:
        sink.line(f"{prefix}: {message}")

    return log


async def serve(
    settings: Settings, log: Logger, *, shared_ports: bool = False, metrics: bool = False
) -> None:
    """Run until SIGTERM/SIGINT; forwarding is removed on the way out."""
    observer = None
    if metrics:  # created in this process (after a fork): multi-process mode is already on
        from egress_router.runtime.metrics import DnsProxyMetrics

        observer = DnsProxyMetrics()
    forwarder: Forwarder
    if settings.forwarding is Forwarding.KERNEL:
        forwarder = KernelForwarder(settings, log)
    else:
        forwarder = RelayForwarder(settings, log, reuse_port=shared_ports, observer=observer)
    service = DnsProxyService(settings, forwarder, Resolver().lookup, log, metrics=observer)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await service.start()
        log(f"ready: {len(settings.destinations)} port(s), {settings.forwarding.value} forwarding")
        await stop.wait()
        log("stopping")
    finally:
        await service.stop()


def _run_loop(
    settings: Settings, log: Logger, shared_ports: bool, metrics: tuple[str, int] | None
) -> None:
    try:
        import uvloop

        factory: Callable[[], asyncio.AbstractEventLoop] | None = uvloop.new_event_loop
    except ImportError:  # pragma: no cover - uvloop is a pinned dependency
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(serve(settings, log, shared_ports=shared_ports, metrics=metrics is not None))


def workers_for(settings: Settings) -> int:
    if settings.forwarding is not Forwarding.RELAY:
        return 1
    wanted = settings.relay_workers or (os.cpu_count() or 1)
    return max(1, min(wanted, MAX_WORKERS))


def run(settings: Settings, metrics: tuple[str, int] | None = None) -> int:
    """Blocking entry point used by the command; ``metrics``: serve /metrics there.

    With metrics on, every process writes them into a private directory (prometheus_client's
    multi-process mode) and this process serves their combination; removed at exit.
    Everything written to stdout/stderr goes through the non-blocking log sink."""
    with logsink.installed():
        if metrics is None:
            return _run(settings, None)
        from egress_router.runtime import metrics as adapter

        path = adapter.enable_multiprocess()
        try:
            return _run(settings, metrics)
        finally:
            adapter.disable_multiprocess(path)


def _run(settings: Settings, metrics: tuple[str, int] | None) -> int:
    workers = workers_for(settings)
    if workers == 1:
        if metrics is not None:
            from egress_router.runtime.metrics import serve as serve_metrics

            serve_metrics(*metrics)
        _run_loop(settings, stdout_logger(), False, metrics)
        return 0
    return _supervise(settings, workers, metrics)


def _supervise(settings: Settings, workers: int, metrics: tuple[str, int] | None) -> int:
    """Fork ``workers`` relay processes; stop them all on a signal or when one dies."""

    def work(index: int) -> None:
        _run_loop(settings, stdout_logger(f"dns-proxy[{index}]"), True, metrics)

    if metrics is None:
        return supervise(workers, work, name="dns-proxy")
    from egress_router.runtime import metrics as adapter

    address, port = metrics  # served by this process after forking: workers never inherit it
    return supervise(
        workers,
        work,
        name="dns-proxy",
        after_fork=lambda: adapter.serve(address, port),
        on_exit=adapter.process_exited,
    )
