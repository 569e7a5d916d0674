"""Line output to stdout/stderr that never blocks the caller: bounded, dropping, counted.

Owns: one bounded in-memory queue per stream and process, drained by a writer thread that is
the only code ever blocked in ``write(2)`` on the stream; dropping (and counting) lines when the
queue is full, with a note in the stream when dropping starts and one with the count when it
stops; draining with a deadline on the way out; the state a forked worker must not inherit;
and, for the long-running commands, ``installed()``: ``sys.stdout``/``sys.stderr`` replaced by
streams feeding these queues, so nothing else (a library's warning, a traceback) blocks either.
Must not: format log lines, or set ``O_NONBLOCK`` on the stream. The flag belongs to the open
file description, which is shared with every process that inherited it: the proxies' forked
workers, their parent, a shell or the container runtime's other writers. Their blocking writes
would start failing with EAGAIN. A thread blocked in a write costs nobody anything.

Why this shape: a log reader that stalls (``kubectl logs`` paused, a full pipe nobody reads, a
stuck log shipper) must cost log lines, never service. Lines wait in the queue while the writer
is blocked; past ``CAPACITY_BYTES`` they are dropped and counted (``dropped``, and the metrics
counter when metrics are on, see ``observe``). Dropping goes on until the writer has brought the
queue down to half its capacity, so the notes come in pairs, not once per line:

    egress-router: log: stdout is not being read fast enough; dropping lines (pid 41)
    egress-router: log: stdout is being read again; 5210 lines dropped (pid 41)

Several worker processes share a stream: every write is whole lines of at most ``PIPE_BUF``
bytes (a longer line is written alone), which a pipe never interleaves with other writers'.
After a fork the child starts with an empty queue and no writer (it starts one when it first
writes); the parent keeps its lines.
"""

from __future__ import annotations

import atexit
import contextlib
import io
import os
import select
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import TextIO, cast

CAPACITY_BYTES = 256 * 1024  # per stream and process: ~1,300 access-log lines of ~200 bytes
PIPE_BUF = 4096  # a write of at most this many bytes to a pipe is never split or interleaved
BATCH_BYTES = 3500  # lazily written lines are sent once this much waits (or after LINGER_S)
LINGER_S = 1.0  # the longest a lazily written line waits before the writer sends it
DRAIN_TIMEOUT_S = 1.0  # at exit, the longest we wait for a stalled reader before giving up
FORK_JOIN_S = 0.5  # before a fork, the longest we wait for an idle writer thread to end
PARTIAL_MAX = 64 * 1024  # text without a line break that installed() streams hold back

ASYNC_SIGNALS = {
    signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT,
    signal.SIGUSR1, signal.SIGUSR2, signal.SIGCHLD, signal.SIGALRM,
}  # fmt: skip

DropObserver = Callable[[str, int], None]  # (stream name, lines dropped)
Write = Callable[[int, bytes], int]


class LogSink:
    """The non-blocking writer of one file descriptor (use ``stdout()``/``stderr()``)."""

    def __init__(
        self, fd: int, name: str, *, capacity: int = CAPACITY_BYTES, write: Write = os.write
    ) -> None:
        self.fd = fd
        self.name = name
        self.capacity = capacity
        self._write = write
        self.observer: DropObserver | None = None
        self._reset()

    def _reset(self) -> None:
        """A fresh state (also in a forked child: no queue, no writer, no held lock)."""
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._wake = threading.Event()
        self._queue: deque[bytes] = deque()
        self._queued = 0  # bytes in _queue
        self._busy = False  # the writer holds bytes taken from the queue
        self._thread: threading.Thread | None = None
        self._stop = False  # the writer ends once the queue is empty
        self._dropping = False
        self._episode = 0  # lines dropped since dropping started
        self.dropped = 0  # lines dropped by this process, ever

    # -- producers (any thread) ------------------------------------------------------------

    def line(self, text: str, *, lazy: bool = False) -> None:
        """Queue one line (a newline is added if missing); never blocks.

        ``lazy``: the writer is not woken for it alone; it goes out with the next
        ``BATCH_BYTES``, the next ``flush()`` or within ``LINGER_S`` (the access log)."""
        if not text.endswith("\n"):
            text += "\n"
        self.put(text.encode("utf-8", "replace"), lazy=lazy)

    def put(self, data: bytes, *, lazy: bool = False) -> None:
        """Queue whole lines (``data`` ends with a newline); dropped when the queue is full."""
        size = len(data)
        observer, lines = None, 0
        with self._lock:
            if self._dropping or self._queued + size > self.capacity:
                if not self._dropping:
                    self._dropping = True
                    self._push(self._note("is not being read fast enough; dropping lines"))
                    lazy = False
                lines = data.count(b"\n") or 1
                self._episode += lines
                self.dropped += lines
                observer = self.observer
            else:
                self._push(data)
            if self._thread is None:
                self._start()
            wake = not lazy or self._queued >= BATCH_BYTES
        if wake:
            self._wake.set()
        if observer is not None:
            observer(self.name, lines)

    def flush(self) -> None:
        """Send what waits now (without waiting for it to be written)."""
        self._wake.set()

    def drain(self, timeout: float = DRAIN_TIMEOUT_S) -> bool:
        """Wait up to ``timeout`` seconds until everything queued is written; True if it was."""
        deadline = time.monotonic() + timeout
        self._wake.set()
        with self._idle:
            while self._queue or self._busy:
                left = deadline - time.monotonic()
                if left <= 0 or self._thread is None:
                    return False
                self._idle.wait(left)
        return True

    @property
    def dropping(self) -> bool:
        return self._dropping

    # -- internals (under the lock unless said otherwise) ----------------------------------

    def _push(self, data: bytes) -> None:
        self._queue.append(data)
        self._queued += len(data)

    def _note(self, text: str) -> bytes:
        return f"egress-router: log: {self.name} {text} (pid {os.getpid()})\n".encode()

    def _start(self) -> None:
        self._stop = False
        self._thread = threading.Thread(target=self._run, name=f"log-{self.name}", daemon=True)
        self._thread.start()

    def _take(self) -> bytes:
        """Whole lines from the queue, at most PIPE_BUF bytes unless the first is longer."""
        parts = [self._queue.popleft()]
        size = len(parts[0])
        while self._queue and size + len(self._queue[0]) <= PIPE_BUF:
            part = self._queue.popleft()
            parts.append(part)
            size += len(part)
        self._queued -= size
        return b"".join(parts)

    def _run(self) -> None:
        """The writer thread: wait for lines, write them, blocking as long as the reader does."""
        with contextlib.suppress(ValueError, OSError):  # signals are for the main thread
            signal.pthread_sigmask(signal.SIG_BLOCK, ASYNC_SIGNALS)
        while True:
            self._wake.wait(LINGER_S)
            self._wake.clear()
            while True:
                with self._lock:
                    if not self._queue:
                        self._busy = False
                        self._idle.notify_all()
                        if self._stop:
                            self._thread = None
                            return
                        break
                    chunk = self._take()
                    self._busy = True
                self._write_all(chunk)
                with self._lock:
                    if self._dropping and self._queued <= self.capacity // 2:
                        self._dropping = False
                        lines = "line" if self._episode == 1 else "lines"
                        self._push(
                            self._note(f"is being read again; {self._episode} {lines} dropped")
                        )
                        self._episode = 0

    def _write_all(self, data: bytes) -> None:
        while data:
            try:
                written = self._write(self.fd, data)
            except BlockingIOError:  # someone else made the shared description non-blocking
                with contextlib.suppress(OSError, ValueError):
                    select.select([], [self.fd], [], LINGER_S)
                continue
            except OSError:  # closed or broken stream: these lines cannot be written anywhere
                with self._lock:
                    self.dropped += data.count(b"\n")
                return
            data = data[written:]

    # -- fork ------------------------------------------------------------------------------

    def _before_fork(self) -> None:
        """An idle writer ends now (a forked child inherits no thread); one blocked in a write
        stays behind, so a stalled reader never delays a fork."""
        with self._lock:
            thread = self._thread
            if thread is None or self._busy or self._queue:
                return
            self._stop = True
        self._wake.set()
        thread.join(FORK_JOIN_S)

    def _after_fork_parent(self) -> None:
        with self._lock:
            self._stop = False
            if self._thread is None and self._queue:
                self._start()

    def _after_fork_child(self) -> None:
        self.observer = None
        self._reset()


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


def drain_all(timeout: float = DRAIN_TIMEOUT_S) -> bool:
    """Before the process ends: wait up to ``timeout`` in all for the queued lines."""
    deadline = time.monotonic() + timeout
    done = True
    for sink in list(_sinks.values()):
        done = sink.drain(max(0.0, deadline - time.monotonic())) and done
    return done


def _before_fork() -> None:
    for sink in list(_sinks.values()):
        sink._before_fork()


def _after_fork_parent() -> None:
    for sink in list(_sinks.values()):
        sink._after_fork_parent()


def _after_fork_child() -> None:
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
