"""Worker processes for the user-space proxies: fork, forward signals, reap, report one status.

Owns: forking N workers that each run ``work(index)``, forwarding SIGTERM/SIGINT (and, for
workers that reload, SIGHUP) to them,
running ``after_fork`` in the parent once they exist (e.g. the metrics endpoint: a thread the
workers must not inherit), stopping the others when one dies unexpectedly (the pod restarts us
whole), and turning the workers' exit statuses into ours.
Must not: know what the workers do (the HTTP proxy and the TCP relay both use it).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Callable

from egress_router.runtime import logsink

Work = Callable[[int], None]


def _exit_code(exc: BaseException) -> int:
    code = getattr(exc, "exit_code", 1)
    return code if isinstance(code, int) and code > 0 else 1


def _child(index: int, work: Work, name: str) -> None:
    """Run one worker and leave the process; never returns into the parent's code."""
    code = 0
    try:
        work(index)
    except BaseException as exc:  # one line, as the CLI would print it
        logsink.stderr().line(f"egress-router: {name} worker {index} failed: {exc}")
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
    for index in range(workers):
        pid = os.fork()
        if pid == 0:
            _child(index, work, name)
        children.append(pid)

    stopping = False

    def forward(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signum)

    def pass_on(signum: int, _frame: object) -> None:
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    if forward_hup:
        signal.signal(signal.SIGHUP, pass_on)
    if after_fork is not None:
        try:
            after_fork()
        except BaseException:
            forward(signal.SIGTERM, None)
            for child in children:
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(child, 0)
            raise
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
