"""One stream's line writer that never blocks its caller: direct, backlogged or dropped.

Owns: writing whole lines to one file descriptor through a non-blocking open file description
of our own (``nonblocking_writer``), the bounded backlog when the stream is behind and the
writer thread that empties it, dropping and counting lines when the backlog is full, the two
notes written into the stream around a drop, and draining with a deadline.
Must not: know which streams a process has, or touch ``sys.stdout``/``sys.stderr``
(``runtime.logsink`` does); set ``O_NONBLOCK`` on the file descriptor it is given (that
description is shared with other processes).
"""

from __future__ import annotations

import contextlib
import functools
import os
import select
import signal
import socket
import stat
import threading
import time
from collections import deque
from collections.abc import Callable

CAPACITY_BYTES = 256 * 1024  # per stream and process: ~1,300 access-log lines of ~200 bytes
PIPE_BUF = 4096  # a write of at most this many bytes to a pipe is never split or interleaved
BATCH_BYTES = 3500  # lazy lines are handed on once this much waits (or on flush())
POLL_S = 1.0  # the writer thread looks for work at least this often (a lost wake-up costs this)
DRAIN_TIMEOUT_S = 1.0  # at exit, the longest we wait for a stalled reader before giving up
FORK_JOIN_S = 0.5  # before a fork, the longest we wait for an idle writer thread to end

ASYNC_SIGNALS = {
    signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT,
    signal.SIGUSR1, signal.SIGUSR2, signal.SIGCHLD, signal.SIGALRM,
}  # fmt: skip

DropObserver = Callable[[str, int], None]  # (stream name, lines dropped)
Write = Callable[[int, bytes], int]
Direct = tuple[Callable[[bytes], int], int]  # a write raising BlockingIOError; fd to poll


def nonblocking_writer(fd: int) -> Direct | None:
    """A write to ``fd`` that never waits, through a description of our own; None if there is
    none (then every line goes through the writer thread).

    A pipe, FIFO or terminal is opened again through /proc (a new open file description: its
    O_NONBLOCK is ours alone, and a write of at most PIPE_BUF bytes is still all or nothing);
    a socket takes MSG_DONTWAIT per call; a regular file never waits for a reader."""
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        return None
    if stat.S_ISREG(mode):
        return functools.partial(os.write, fd), fd
    if stat.S_ISSOCK(mode):
        try:
            sock = socket.socket(fileno=os.dup(fd))
        except OSError:
            return None
        return functools.partial(_send_nowait, sock), sock.fileno()
    if stat.S_ISFIFO(mode) or stat.S_ISCHR(mode):
        flags = os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY
        try:
            private = os.open(f"/proc/self/fd/{fd}", flags)  # EACCES, ENXIO: no reader, ...
        except OSError:
            return None
        return functools.partial(os.write, private), private
    return None


def _send_nowait(sock: socket.socket, data: bytes) -> int:
    return sock.send(data, socket.MSG_DONTWAIT)


def _wait_writable(fd: int) -> None:
    """Until ``fd`` takes more (a pipe: a free page, so a write of PIPE_BUF fits) or POLL_S."""
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    with contextlib.suppress(OSError):
        poller.poll(POLL_S * 1000)


class LogSink:
    """The non-blocking writer of one file descriptor (use ``stdout()``/``stderr()``).

    ``write`` replaces ``os.write`` for the writer thread and turns the direct path off."""

    def __init__(
        self,
        fd: int,
        name: str,
        *,
        capacity: int = CAPACITY_BYTES,
        write: Write | None = None,
    ) -> None:
        self.fd = fd
        self.name = name
        self.capacity = capacity
        self._write: Write = write or os.write
        self._direct: Direct | None = None if write else nonblocking_writer(fd)
        self.observer: DropObserver | None = None
        self._reset()

    def _reset(self) -> None:
        """A fresh state (also in a forked child: no queue, no writer, no held lock)."""
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._wake = threading.Event()
        self._pending: list[bytes] = []  # lazy lines not yet handed on
        self._pending_size = 0
        self._queue: deque[bytes] = deque()  # the backlog the writer thread owns
        self._queued = 0  # bytes in _queue
        self._busy = False  # the writer holds bytes taken from the queue
        self._thread: threading.Thread | None = None
        self._stop = False  # the writer ends once the queue is empty
        self._dropping = False
        self._episode = 0  # lines dropped since dropping started
        self.dropped = 0  # lines dropped by this process, ever

    # -- producers (any thread) ------------------------------------------------------------

    def line(self, text: str, *, lazy: bool = False) -> None:
        """Write one line (a newline is added if missing); never blocks.

        ``lazy``: held back until ``BATCH_BYTES`` wait or ``flush()`` is called (the access
        log: fewer, larger writes; its worker flushes every second)."""
        if not text.endswith("\n"):
            text += "\n"
        self.put(text.encode("utf-8", "replace"), lazy=lazy)

    def put(self, data: bytes, *, lazy: bool = False) -> None:
        """Write whole lines (``data`` ends with a newline); dropped when the backlog is full."""
        with self._lock:
            if lazy:
                dropped = 0
                if self._pending_size + len(data) > BATCH_BYTES:  # writes stay <= PIPE_BUF
                    dropped = self._emit_pending()
                self._pending.append(data)
                self._pending_size += len(data)
                if self._pending_size >= BATCH_BYTES:
                    dropped += self._emit_pending()
            else:
                dropped = self._emit_pending() + self._emit(data)
            observer = self.observer
        if dropped and observer is not None:
            observer(self.name, dropped)

    def flush(self) -> None:
        """Hand on the lazy lines now (without waiting for them to be written)."""
        with self._lock:
            dropped = self._emit_pending()
            observer = self.observer
        if dropped and observer is not None:
            observer(self.name, dropped)
        self._wake.set()

    def drain(self, timeout: float = DRAIN_TIMEOUT_S) -> bool:
        """Wait up to ``timeout`` seconds until everything is written; True if it was."""
        deadline = time.monotonic() + timeout
        self.flush()
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

    def _emit_pending(self) -> int:
        if not self._pending:
            return 0
        data = b"".join(self._pending)
        self._pending.clear()
        self._pending_size = 0
        return self._emit(data)

    def _emit(self, data: bytes) -> int:
        """Write ``data`` now if that cannot block, else queue it behind the backlog, else
        (backlog full) drop it; returns the number of lines dropped."""
        if self._direct is not None:
            if self._queue:
                self._write_backlog()  # the producer drains too: no thread hand-off needed
            if not (self._queue or self._busy or self._dropping):
                try:
                    written = self._direct[0](data)
                except BlockingIOError:  # the reader is behind: queue it
                    written = 0
                except OSError:  # closed or broken stream: these lines cannot go anywhere
                    return self._lost(data)
                if written >= len(data):
                    return 0
                data = data[written:]  # only a socket takes part of it
        if self._dropping or self._queued + len(data) > self.capacity:
            if not self._dropping:
                self._dropping = True
                self._push(self._note("is not being read fast enough; dropping lines"))
                self._wake_writer()
            lines = data.count(b"\n") or 1
            self._episode += lines
            self.dropped += lines
            return lines
        self._push(data)
        self._wake_writer()
        return 0

    def _lost(self, data: bytes) -> int:
        lines = data.count(b"\n") or 1
        self.dropped += lines
        return lines

    def _write_backlog(self) -> None:
        """Direct path: write backlog chunks until one would block or none is left."""
        assert self._direct is not None
        while self._queue:
            chunk = self._take()
            try:
                written = self._direct[0](chunk)
            except BlockingIOError:
                written = 0
            except OSError:
                self._lost(chunk)
                continue
            if written < len(chunk):
                self._queue.appendleft(chunk[written:])
                self._queued += len(chunk) - written
                break
            self._progress()
        if not self._queue:
            self._idle.notify_all()

    def _progress(self) -> None:
        """After a write: dropping ends once the backlog is down to half its capacity."""
        if self._dropping and self._queued <= self.capacity // 2:
            self._dropping = False
            lines = "line" if self._episode == 1 else "lines"
            self._push(self._note(f"is being read again; {self._episode} {lines} dropped"))
            self._episode = 0

    def _wake_writer(self) -> None:
        if self._thread is None:
            self._start()
        self._wake.set()

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
        """The writer thread: wait for a backlog and write it. Direct path: wait (in poll) until
        the stream takes more and write without blocking; otherwise block in the write."""
        with contextlib.suppress(ValueError, OSError):  # signals are for the main thread
            signal.pthread_sigmask(signal.SIG_BLOCK, ASYNC_SIGNALS)
        while True:
            self._wake.wait(POLL_S)
            self._wake.clear()
            while True:
                chunk = None
                with self._lock:
                    if self._queue and self._direct is not None:
                        self._write_backlog()
                    elif self._queue:
                        chunk = self._take()
                        self._busy = True
                    if not self._queue and chunk is None:
                        self._busy = False
                        self._idle.notify_all()
                        if self._stop:
                            self._thread = None
                            return
                        break
                if chunk is not None:
                    self._write_all(chunk)
                    with self._lock:
                        self._busy = False
                        self._progress()
                elif self._direct is not None:
                    _wait_writable(self._direct[1])

    def _write_all(self, data: bytes) -> None:
        while data:
            try:
                written = self._write(self.fd, data)
            except BlockingIOError:  # someone else made the shared description non-blocking
                _wait_writable(self.fd)
                continue
            except OSError:  # closed or broken stream: these lines cannot be written anywhere
                with self._lock:
                    self._lost(data)
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
