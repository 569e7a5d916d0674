"""Line output to stdout/stderr that never blocks the caller: bounded, dropping, counted.

Owns: the process's two sinks (``stdout()``, ``stderr()``; each a ``runtime.logwriter.LogSink``),
who hears of dropped lines (``observe``: the metrics counter), draining them all before the
process ends (also in a forked worker, which ``os._exit``s), the state a forked child must not
inherit, and, for the long-running commands, ``installed()``: ``sys.stdout``/``sys.stderr``
replaced by streams feeding the sinks, so nothing else (a library's warning, a traceback)
blocks either. The writing itself (direct, backlog, writer thread, drops and notes) is
``runtime.logwriter``.
Must not: format log lines, or set ``O_NONBLOCK`` on the stream's own open file description:
it is shared with every process that inherited it (the proxies' forked workers, their parent,
a shell, the container runtime's other writers), whose blocking writes would start failing
with EAGAIN.

How: while nothing is backlogged, a line is written at once through a description of our own
(``nonblocking_writer``: a pipe, FIFO or terminal reopened through /proc with O_NONBLOCK, a
socket with MSG_DONTWAIT, a regular file as it is), which costs what a plain write costs. When
that would block (the reader is behind) or no such description can be had, lines go to the
backlog and the writer thread writes them, blocking as long as the reader does; new lines
queue behind them, so order is kept. Past ``CAPACITY_BYTES`` they are dropped and counted
(``dropped``, and the metrics counter when metrics are on, see ``observe``); dropping goes on
until the writer has brought the backlog down to half its capacity, so notes come in pairs,
not once per line:

    egress-router: log: stdout is not being read fast enough; dropping lines (pid 41)
    egress-router: log: stdout is being read again; 5210 lines dropped (pid 41)

Several worker processes share a stream: every write is whole lines of at most ``PIPE_BUF``
bytes (a longer line is written alone), which a pipe never splits or interleaves with other
writers'. After a fork the child starts with nothing queued and no writer thread; the parent
keeps its lines.
"""

from __future__ import annotations

import atexit
import contextlib
import io
import os
import sys
import threading
import time
from collections.abc import Iterator
from typing import TextIO, cast

from egress_router.runtime.logwriter import (
    DRAIN_TIMEOUT_S,
    PIPE_BUF,
    DropObserver,
    LogSink,
    nonblocking_writer,
)

__all__ = [
    "PIPE_BUF",
    "LogSink",
    "drain_all",
    "installed",
    "nonblocking_writer",
    "observe",
    "stderr",
    "stdout",
]

PARTIAL_MAX = 64 * 1024  # text without a line break that installed() streams hold back


# -- the process's two streams -------------------------------------------------------------

_sinks: dict[int, LogSink] = {}
_sinks_lock = threading.Lock()


def _sink(fd: int, name: str) -> LogSink:
    try:
        return _sinks[fd]
    except KeyError:
        pass
    with _sinks_lock:
        if fd not in _sinks:
            if not _sinks:
                atexit.register(drain_all)
            _sinks[fd] = LogSink(fd, name)
        return _sinks[fd]


def stdout() -> LogSink:
    """This process's sink for file descriptor 1."""
    return _sink(1, "stdout")


def stderr() -> LogSink:
    """This process's sink for file descriptor 2."""
    return _sink(2, "stderr")


def observe(observer: DropObserver | None) -> None:
    """Tell ``observer(stream, lines)`` about every dropped line (e.g. a metrics counter)."""
    stdout().observer = observer
    stderr().observer = observer


_drain_budget = [DRAIN_TIMEOUT_S]  # seconds this process may still wait for a stalled reader


def drain_all(timeout: float = DRAIN_TIMEOUT_S) -> bool:
    """Before the process ends: wait up to ``timeout`` in all for the queued lines.

    Time spent waiting for a reader that does not come back is taken from one budget per
    process (``DRAIN_TIMEOUT_S``), so draining again (``installed()`` and then atexit) costs
    nothing more once it is spent."""
    started = time.monotonic()
    deadline = started + min(timeout, _drain_budget[0])
    done = True
    for sink in list(_sinks.values()):
        done = sink.drain(max(0.0, deadline - time.monotonic())) and done
    if not done:
        _drain_budget[0] = max(0.0, _drain_budget[0] - (time.monotonic() - started))
    return done


def _before_fork() -> None:
    for sink in list(_sinks.values()):
        sink._before_fork()


def _after_fork_parent() -> None:
    for sink in list(_sinks.values()):
        sink._after_fork_parent()


def _after_fork_child() -> None:
    _drain_budget[0] = DRAIN_TIMEOUT_S
    for sink in list(_sinks.values()):
        sink._after_fork_child()


os.register_at_fork(
    before=_before_fork, after_in_parent=_after_fork_parent, after_in_child=_after_fork_child
)


# -- sys.stdout / sys.stderr for the long-running commands ---------------------------------


class _LineWriter(io.RawIOBase):
    """The binary end of an installed stream: complete lines go to the sink, never blocking."""

    def __init__(self, sink: LogSink) -> None:
        super().__init__()
        self.sink = sink
        self._partial = bytearray()
        self._lock = threading.Lock()

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self.sink.fd

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        size = len(data)
        with self._lock:
            self._partial += data
            end = self._partial.rfind(b"\n") + 1
            if not end and len(self._partial) > PARTIAL_MAX:
                end = len(self._partial)  # a line without end: bounded, sent as it is
                self._partial += b"\n"
            if end:
                lines = bytes(self._partial[:end])
                del self._partial[:end]
                self.sink.put(lines)
        return size


def _stream(sink: LogSink) -> TextIO:
    return io.TextIOWrapper(
        cast("io.BufferedWriter", _LineWriter(sink)),
        encoding="utf-8",
        errors="backslashreplace",
        line_buffering=True,
        write_through=True,
    )


@contextlib.contextmanager
def installed(timeout: float = DRAIN_TIMEOUT_S) -> Iterator[None]:
    """Route ``sys.stdout``/``sys.stderr`` through the sinks for the duration; on the way out
    wait up to ``timeout`` for the queued lines, then restore them."""
    saved = sys.stdout, sys.stderr
    with contextlib.suppress(OSError, ValueError):
        saved[0].flush()
        saved[1].flush()
    sys.stdout, sys.stderr = _stream(stdout()), _stream(stderr())
    try:
        yield
    finally:
        with contextlib.suppress(OSError, ValueError):
            sys.stdout.flush()
            sys.stderr.flush()
        drain_all(timeout)
        sys.stdout, sys.stderr = saved
