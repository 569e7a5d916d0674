"""Running the DNS proxy as a process: event loop, signals, and the relay's worker processes.

Owns: choosing the forwarder, the SIGTERM/SIGINT handling (forwarding is removed on the way
out), reloads (SIGHUP, or a change of the EGRESS_DNS_PROXY_DESTINATION_FILE polled every
``POLL_INTERVAL_S``: the destinations are read, parsed and applied again; a bad configuration is
refused with one line and counted, the previous one stays), uvloop, and for the relay path
forking ``relay_workers`` processes that share each port
with SO_REUSEPORT (the kernel spreads new connections over them; each follows the names itself).
Must not: parse configuration or contain forwarding logic.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal
import threading
from collections.abc import Callable

from egress_router.dns_proxy.forwarders import Forwarder, KernelForwarder, RelayForwarder
from egress_router.dns_proxy.model.destinations import Forwarding, Settings
from egress_router.dns_proxy.relay import Logger
from egress_router.dns_proxy.service import DnsProxyService
from egress_router.errors import EgressRouterError
from egress_router.runtime import logsink, unexpected
from egress_router.runtime import workers as processes
from egress_router.runtime.health import Health, serve_health
from egress_router.runtime.reload import Source
from egress_router.runtime.resolver import Resolver
from egress_router.runtime.workers import supervise

Reload = Source[Settings]  # how to re-read the configuration (``runtime.reload``)


def stdout_logger(prefix: str = "dns-proxy") -> Logger:
    """Lines on stdout through the log sink: never blocks; whole lines per write, so several
    workers' lines never interleave."""
    sink = logsink.stdout()

    def log(message: str) -> None:
        sink.line(f"{prefix}: {message}")

    return log


async def _reload(
    service: DnsProxyService, reload: Reload, log: Logger, report: bool, forced: bool
) -> None:
    """One reload; ``report``: this process logs and counts it (one of the workers)."""
    try:
        new = reload.reparse()
        # only the destinations come from the file; the rest is the process's environment
        new = dataclasses.replace(service.settings, destinations=new.destinations)
        if not forced and new == service.settings:
            return
        await service.reconfigure(new)
    except EgressRouterError as exc:
        if report:
            log(f"reload refused, keeping the previous configuration: {exc.one_line()}")
            if service.metrics is not None:
                service.metrics.reload(False)
        return
    if report:
        log(f"reloaded: {len(new.destinations)} port(s)")
        if service.metrics is not None:
            service.metrics.reload(True)


async def _watch(reload: Reload, trigger: asyncio.Event) -> None:
    watch = reload.watch()
    assert watch is not None
    while True:
        await asyncio.sleep(reload.interval_s)
        if watch.changed():
            trigger.set()


async def serve(
    settings: Settings,
    log: Logger,
    *,
    shared_ports: bool = False,
    metrics: bool = False,
    reload: Reload | None = None,
    report: bool = True,
    on_ready: Callable[[], None] | None = None,
) -> None:
    """Run until SIGTERM/SIGINT; forwarding is removed on the way out. ``on_ready`` is called
    once forwarding is on (the readiness probe)."""
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
    stop, hup, changed = asyncio.Event(), asyncio.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()
    unexpected.install(loop, "dns-proxy")  # a relay callback that raised: that connection ends
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, hup.set)
    watcher = None
    try:
        await service.start()
        log(f"ready: {len(settings.destinations)} port(s), {settings.forwarding.value} forwarding")
        if on_ready is not None:
            on_ready()
        if reload is not None and reload.watched:
            watcher = loop.create_task(_watch(reload, changed))
        while not stop.is_set():
            waiters = [loop.create_task(e.wait()) for e in (stop, hup, changed)]
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            for waiter in waiters:
                waiter.cancel()
            if stop.is_set() or reload is None:
                hup.clear()
                continue
            forced = hup.is_set()
            if forced or changed.is_set():
                hup.clear()
                changed.clear()
                await _reload(service, reload, log, report, forced)
        log("stopping")
    finally:
        if watcher is not None:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        await service.stop()


def _run_loop(
    settings: Settings,
    log: Logger,
    shared_ports: bool,
    metrics: tuple[str, int] | None,
    reload: Reload | None = None,
    report: bool = True,
    on_ready: Callable[[], None] | None = None,
) -> None:
    try:
        import uvloop

        factory: Callable[[], asyncio.AbstractEventLoop] | None = uvloop.new_event_loop
    except ImportError:  # pragma: no cover - uvloop is a pinned dependency
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(
            serve(
                settings,
                log,
                shared_ports=shared_ports,
                metrics=metrics is not None,
                reload=reload,
                report=report,
                on_ready=on_ready,
            )
        )


def workers_for(settings: Settings) -> int:
    """One process on the kernel path; the relay's configured count (0: one per CPU)."""
    if settings.forwarding is not Forwarding.RELAY:
        return 1
    return processes.count(settings.relay_workers)


def run(
    settings: Settings,
    metrics: tuple[str, int] | None = None,
    reload: Reload | None = None,
    health: tuple[str, int] | None = None,
) -> int:
    """Blocking entry point used by the command; ``metrics``: serve /metrics there;
    ``reload``: how to reload on SIGHUP or a file change (None: SIGHUP is ignored);
    ``health``: serve /healthz and /readyz there (ready once every process forwards).

    With metrics on, every process writes them into a private directory (prometheus_client's
    multi-process mode) and this process serves their combination; removed at exit.
    Everything written to stdout/stderr goes through the non-blocking log sink."""
    with logsink.installed():
        if metrics is None:
            return _run(settings, None, reload, health)
        from egress_router.runtime import metrics as adapter

        path = adapter.enable_multiprocess()
        try:
            return _run(settings, metrics, reload, health)
        finally:
            adapter.disable_multiprocess(path)


def _run(
    settings: Settings,
    metrics: tuple[str, int] | None,
    reload: Reload | None,
    health: tuple[str, int] | None,
) -> int:
    workers = workers_for(settings)
    if workers == 1:
        if metrics is not None:
            from egress_router.runtime.metrics import serve as serve_metrics

            serve_metrics(*metrics)
        on_ready = None
        if health is not None:
            state = Health()
            serve_health(*health, state)
            on_ready = state.ready
        _run_loop(settings, stdout_logger(), False, metrics, reload, on_ready=on_ready)
        return 0
    return _supervise(settings, workers, metrics, reload, health)


def _ready_when_all(workers: int, pipe: int, state: Health) -> None:
    """Parent thread: one byte per worker once it forwards; then ready."""
    got = 0
    with os.fdopen(pipe, "rb", buffering=0) as reader:
        while got < workers:
            chunk = reader.read(workers - got)
            if not chunk:
                return  # every worker gone before all were ready: stay not ready
            got += len(chunk)
    state.ready()


def _supervise(
    settings: Settings,
    workers: int,
    metrics: tuple[str, int] | None,
    reload: Reload | None,
    health: tuple[str, int] | None,
) -> int:
    """Fork ``workers`` relay processes; stop them all on a signal or when one dies. Each
    worker reloads by itself (SIGHUP is passed on; each polls the file); worker 0 reports.
    The endpoints (metrics, health) are served by this process after forking: workers never
    inherit their threads; each worker reports readiness with one byte on a pipe."""
    ready_r, ready_w = os.pipe() if health is not None else (-1, -1)

    def work(index: int) -> None:
        log = stdout_logger(f"dns-proxy[{index}]")
        on_ready = None
        if ready_w >= 0:
            os.close(ready_r)

            def on_ready() -> None:
                os.write(ready_w, b"r")
                os.close(ready_w)

        _run_loop(settings, log, True, metrics, reload, report=index == 0, on_ready=on_ready)

    def after_fork() -> None:
        if health is not None:
            os.close(ready_w)
            state = Health()
            serve_health(*health, state)
            threading.Thread(
                target=_ready_when_all, args=(workers, ready_r, state), daemon=True
            ).start()
        if metrics is not None:
            from egress_router.runtime import metrics as adapter

            adapter.serve(*metrics)

    on_exit = None
    if metrics is not None:
        from egress_router.runtime import metrics as adapter

        on_exit = adapter.process_exited
    return supervise(
        workers,
        work,
        name="dns-proxy",
        after_fork=after_fork,
        on_exit=on_exit,
        forward_hup=reload is not None,
    )
