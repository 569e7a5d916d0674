"""Worker processes for the user-space proxies: fork, forward signals, reap, report one status.

Owns: forking N workers that each run ``work(index)``, forwarding SIGTERM/SIGINT (and, for
workers that reload, SIGHUP) to them, running ``after_fork`` in the parent once they exist and
before they start working (e.g. the metrics endpoint: a thread the workers must not inherit,
listening before any worker says it is ready), stopping the others when one dies unexpectedly
(the pod restarts us whole), and turning the workers' exit statuses into ours; how many
workers a configured count means (``count``: the CPUs this process may run on, for ``0``).
Must not: know what the workers do (the HTTP proxy and the TCP relay both use it).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import traceback
from collections.abc import Callable

from egress_router.common.switches import MAX_WORKERS, PER_CPU
from egress_router.errors import EgressRouterError
from egress_router.runtime import logsink

Work = Callable[[int], None]
# What ends a worker without being a bug: our error tree (one line says it all), a signal.
EXPECTED = (EgressRouterError, KeyboardInterrupt, SystemExit)


def cpus() -> int:
    """The CPUs this process may run on (its affinity mask: a container's cpuset), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def count(configured: int, *, per_cpu_max: int = MAX_WORKERS) -> int:
    """Worker processes for a parsed count (``common.switches.parse_workers``): the count
    itself, or for ``0`` one per CPU, at most ``per_cpu_max``; always 1..``MAX_WORKERS``."""
    wanted = configured if configured != PER_CPU else min(cpus(), per_cpu_max)
    return max(1, min(wanted, MAX_WORKERS))


def _exit_code(exc: BaseException) -> int:
    code = getattr(exc, "exit_code", 1)
    return code if isinstance(code, int) and code > 0 else 1


def _child(index: int, work: Work, name: str, gate: int | None) -> None:
    """Run one worker and leave the process; never returns into the parent's code.

    ``gate``: a pipe's read end; the worker starts only once the parent wrote to it (its
    ``after_fork`` finished, so nothing a worker announces precedes e.g. /metrics listening)."""
    code = 0
    try:
        if gate is not None:
            go = os.read(gate, 1)
            os.close(gate)
            if not go:  # the parent failed in after_fork: it reports why
                os._exit(1)
        work(index)
    except BaseException as exc:  # one line, as the CLI would print it
        line = f"egress-router: {name} worker {index} failed: {exc}"
        if not isinstance(exc, EXPECTED):  # a bug: its traceback too, as the CLI would show it
            line += "\n" + "".join(traceback.format_exception(exc)).rstrip("\n")
        logsink.stderr().line(line)
        code = _exit_code(exc)
    logsink.drain_all()  # os._exit skips atexit; a stalled reader delays us a second at most
    os._exit(code)


def supervise(
    workers: int,
    work: Work,
    *,
    name: str,
    after_fork: Callable[[], None] | None = None,
    on_exit: Callable[[int], None] | None = None,
    forward_hup: bool = False,
) -> int:
    """Fork ``workers`` processes running ``work(index)``; 0 when all stopped cleanly on a signal.

    ``after_fork`` runs in the parent after forking; if it raises, the workers are stopped and
    reaped and the exception propagates. ``on_exit(pid)`` runs for every reaped worker.
    ``forward_hup``: pass SIGHUP on to the workers (they reload); otherwise it is left alone.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    if forward_hup:  # until a worker installs its own handler, SIGHUP must not kill it
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
    children: list[int] = []
    gate, opened = os.pipe() if after_fork is not None else (None, None)
    for index in range(workers):
        pid = os.fork()
        if pid == 0:
            if opened is not None:
                os.close(opened)
            _child(index, work, name, gate)
        children.append(pid)
    if gate is not None:
        os.close(gate)

    stopping = False

    def pass_on(signum: int, _frame: object) -> None:
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signum)

    def forward(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True
        pass_on(signum, frame)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    if forward_hup:
        signal.signal(signal.SIGHUP, pass_on)
    if after_fork is not None and opened is not None:
        try:
            after_fork()
        except BaseException:
            os.close(opened)  # the workers read end-of-file and leave without working
            forward(signal.SIGTERM, None)
            for child in children:
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(child, 0)
            raise
        with contextlib.suppress(BrokenPipeError):  # every worker already stopped by a signal
            os.write(opened, b"g" * len(children))
        os.close(opened)
    status = 0
    remaining = set(children)
    while remaining:
        try:
            pid, raw = os.wait()
        except InterruptedError:
            continue
        except ChildProcessError:
            break
        if pid not in remaining:
            continue
        remaining.discard(pid)
        if on_exit is not None:
            on_exit(pid)
        code = os.waitstatus_to_exitcode(raw)
        if code != 0 or not stopping:
            status = status or (code if code > 0 else 1)
            if not stopping:  # a worker died on its own: stop the rest
                forward(signal.SIGTERM, None)
    return status
