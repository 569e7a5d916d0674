"""Running the DNS proxy as a process: event loop, signals, and the relay's worker processes.

Owns: choosing the forwarder, the SIGTERM/SIGINT handling (forwarding is removed on the way
out), uvloop, and for the relay path forking ``relay_workers`` processes that share each port
with SO_REUSEPORT (the kernel spreads new connections over them; each follows the names itself).
Must not: parse configuration or contain forwarding logic.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Callable

from egress_router.core.dns_destinations import Forwarding, Settings
from egress_router.dataplane.resolver import Resolver
from egress_router.proxy.dns.forwarders import Forwarder, KernelForwarder, RelayForwarder
from egress_router.proxy.dns.service import DnsProxyService
from egress_router.proxy.tcp.relay import Logger

MAX_WORKERS = 16  # bound on processes (and on DNS queries: each worker follows every name)


def stdout_logger(prefix: str = "dns-proxy") -> Logger:
    def log(message: str) -> None:
        # One write per line: lines from several workers never interleave (< PIPE_BUF).
        sys.stdout.write(f"{prefix}: {message}\n")
        sys.stdout.flush()

    return log


async def serve(settings: Settings, log: Logger, *, shared_ports: bool = False) -> None:
    """Run until SIGTERM/SIGINT; forwarding is removed on the way out."""
    forwarder: Forwarder
    if settings.forwarding is Forwarding.KERNEL:
        forwarder = KernelForwarder(settings, log)
    else:
        forwarder = RelayForwarder(settings, log, reuse_port=shared_ports)
    service = DnsProxyService(settings, forwarder, Resolver().lookup, log)
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


def _run_loop(settings: Settings, log: Logger, shared_ports: bool) -> None:
    try:
        import uvloop

        factory: Callable[[], asyncio.AbstractEventLoop] | None = uvloop.new_event_loop
    except ImportError:  # pragma: no cover - uvloop is a pinned dependency
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(serve(settings, log, shared_ports=shared_ports))


def workers_for(settings: Settings) -> int:
    if settings.forwarding is not Forwarding.RELAY:
        return 1
    wanted = settings.relay_workers or (os.cpu_count() or 1)
    return max(1, min(wanted, MAX_WORKERS))


def run(settings: Settings) -> int:
    """Blocking entry point used by the command."""
    workers = workers_for(settings)
    if workers == 1:
        _run_loop(settings, stdout_logger(), False)
        return 0
    return _supervise(settings, workers)


def _supervise(settings: Settings, workers: int) -> int:
    """Fork ``workers`` relay processes; stop them all on a signal or when one dies."""
    sys.stdout.flush()
    children: list[int] = []
    for index in range(workers):
        pid = os.fork()
        if pid == 0:  # child: its own event loop, never returns into the parent's code
            code = 0
            try:
                _run_loop(settings, stdout_logger(f"dns-proxy[{index}]"), True)
            except BaseException as exc:  # report in one line, as the CLI would
                print(f"egress-router: {exc}", file=sys.stderr, flush=True)
                code = getattr(exc, "exit_code", 1)
            os._exit(code)
        children.append(pid)

    stopping = False

    def forward(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    status = 0
    remaining = set(children)
    while remaining:
        try:
            pid, raw = os.wait()
        except ChildProcessError:
            break
        remaining.discard(pid)
        code = os.waitstatus_to_exitcode(raw)
        if code != 0 or not stopping:
            status = status or (code if code > 0 else 1)
            if not stopping:  # one worker died: stop the others, let the pod restart us
                forward(signal.SIGTERM, None)
    return status
