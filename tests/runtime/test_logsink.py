"""The log sink on real pipes (no root): never blocks, drops and counts when full, notes the
start and the end of dropping, whole lines per write, survives forks, drains with a deadline."""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import select
import sys
import time
from collections.abc import Iterator

import pytest

from egress_router.runtime import logsink
from egress_router.runtime.logsink import LogSink

STOP_NOTE = re.compile(r"egress-router: log: (\w+) is being read again; (\d+) lines? dropped")
START_NOTE = "is not being read fast enough; dropping lines"


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    r, w = os.pipe()
    yield r, w
    for fd in (r, w):
        with contextlib.suppress(OSError):
            os.close(fd)


def fill(fd: int) -> int:
    """Fill a pipe until a write would block, as a reader that stopped long ago leaves it."""
    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    fcntl.fcntl(fd, fcntl.F_SETFL, flags | os.O_NONBLOCK)
    total = 0
    try:
        while True:
            total += os.write(fd, b"x" * 4096)
    except BlockingIOError:
        pass
    finally:
        fcntl.fcntl(fd, fcntl.F_SETFL, flags)
    return total


def read_until(fd: int, predicate, timeout: float = 10.0) -> bytes:  # type: ignore[no-untyped-def]
    out = b""
    deadline = time.monotonic() + timeout
    while not predicate(out) and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            out += chunk
    return out


def test_lines_arrive_in_order_on_a_read_pipe(pipe: tuple[int, int]) -> None:
    r, w = pipe
    sink = LogSink(w, "stdout")
    for i in range(2000):
        sink.line(f"line {i}")
    out = read_until(r, lambda b: b.count(b"\n") >= 2000)
    assert out.decode().splitlines() == [f"line {i}" for i in range(2000)]
    assert sink.drain(5) and sink.dropped == 0


@pytest.mark.parametrize("path", ["direct", "thread"])
def test_a_full_pipe_never_blocks_the_caller_and_drops_are_counted_and_noted(
    pipe: tuple[int, int], path: str
) -> None:
    r, w = pipe
    fill(w)
    seen: list[tuple[str, int]] = []
    # "thread": no description of our own (e.g. /proc refused): the writer thread blocks
    write = os.write if path == "thread" else None
    sink = LogSink(w, "stdout", capacity=16 * 1024, write=write)
    sink.observer = lambda stream, n: seen.append((stream, n))
    started = time.monotonic()
    for i in range(20_000):
        sink.line(f"request {i:06d} " + "x" * 40)
    assert time.monotonic() - started < 5.0  # 20,000 lines, the reader stalled the whole time
    assert sink.dropping
    assert sink.dropped > 19_000
    assert sum(n for _, n in seen) == sink.dropped and {s for s, _ in seen} == {"stdout"}
    assert not sink.drain(0.2)  # the deadline holds while the reader is away

    out = read_until(r, lambda b: STOP_NOTE.search(b.decode(errors="replace")) is not None)
    text = out.decode(errors="replace")
    match = STOP_NOTE.search(text)
    assert match is not None, text[-500:]
    assert START_NOTE in text and text.index(START_NOTE) < match.start()
    assert int(match.group(2)) == sink.dropped
    kept = re.findall(r"request (\d+) ", text)
    assert len(kept) + sink.dropped == 20_000
    assert kept == sorted(kept)  # what is kept is in order and whole
    assert not sink.dropping

    # once read again, lines flow again and nothing more is dropped
    sink.line("after")
    assert b"after\n" in read_until(r, lambda b: b"after\n" in b)
    assert int(match.group(2)) == sink.dropped


def test_our_own_description_leaves_the_shared_one_blocking(pipe: tuple[int, int]) -> None:
    _, w = pipe
    direct = logsink.nonblocking_writer(w)
    assert direct is not None
    write, private = direct
    assert private != w
    assert fcntl.fcntl(private, fcntl.F_GETFL) & os.O_NONBLOCK
    assert not fcntl.fcntl(w, fcntl.F_GETFL) & os.O_NONBLOCK  # what other processes share
    fill(w)
    with pytest.raises(BlockingIOError):
        write(b"would block\n")
    os.close(private)


def test_every_write_is_whole_lines_of_at_most_pipe_buf() -> None:
    writes: list[bytes] = []

    def record(fd: int, data: bytes) -> int:
        writes.append(bytes(data))
        return len(data)

    sink = LogSink(99, "stdout", write=record, capacity=1 << 22)  # room for all: none dropped
    lines = [f"{i} " + "y" * (i % 300) + "\n" for i in range(3000)] + ["z" * 9000 + "\n"]
    for text in lines:
        sink.line(text, lazy=True)
    assert sink.drain(5)
    assert b"".join(writes).decode() == "".join(lines)
    for chunk in writes:
        assert chunk.endswith(b"\n")
        assert len(chunk) <= logsink.PIPE_BUF or chunk.count(b"\n") == 1


def test_lazy_lines_wait_for_a_batch_or_a_flush(pipe: tuple[int, int]) -> None:
    r, w = pipe
    sink = LogSink(w, "stdout")
    sink.line("lazy one", lazy=True)
    assert read_until(r, lambda b: b != b"", timeout=0.3) == b""  # held back
    sink.flush()
    assert read_until(r, lambda b: b"lazy one\n" in b, timeout=2) == b"lazy one\n"
    for i in range(100):  # ~1.2 KB, then ~4.8 KB: one write when BATCH_BYTES wait
        sink.line(f"batch {i:3d}", lazy=True)
    assert read_until(r, lambda b: b"batch" in b, timeout=0.3) == b""
    for i in range(100, 400):
        sink.line(f"batch {i:3d}", lazy=True)
    out = read_until(r, lambda b: b.count(b"\n") >= 300, timeout=2)
    assert 300 <= out.count(b"\n") < 400 and out.startswith(b"batch   0\n")
    sink.flush()
    out += read_until(r, lambda b: b"batch 399\n" in b, timeout=2)
    assert out.decode().splitlines() == [f"batch {i:3d}" for i in range(400)]


def test_a_description_made_non_blocking_by_someone_else_loses_nothing(
    pipe: tuple[int, int],
) -> None:
    r, w = pipe
    fill(w)
    flags = fcntl.fcntl(w, fcntl.F_GETFL)
    fcntl.fcntl(w, fcntl.F_SETFL, flags | os.O_NONBLOCK)  # EAGAIN instead of blocking
    sink = LogSink(w, "stdout")
    for i in range(100):
        sink.line(f"n{i}")
    time.sleep(0.2)
    out = read_until(r, lambda b: b"n99\n" in b)
    assert all(f"n{i}\n".encode() in out for i in range(100))
    assert sink.dropped == 0


def test_a_broken_stream_counts_the_lines_and_raises_nothing(pipe: tuple[int, int]) -> None:
    r, w = pipe
    os.close(r)  # EPIPE from now on
    sink = LogSink(w, "stderr")
    for i in range(10):
        sink.line(f"gone {i}")
    assert sink.drain(5)
    assert sink.dropped == 10


def test_a_forked_child_starts_empty_and_the_parent_keeps_its_lines(
    pipe: tuple[int, int],
) -> None:
    r, w = pipe
    fill(w)
    sink = LogSink(w, "stdout")
    logsink._sinks[w] = sink  # registered like stdout/stderr, so the fork hooks see it
    try:
        sink.line("parent before fork")  # the writer is blocked on the full pipe
        pid = os.fork()
        if pid == 0:  # pragma: no cover - child
            code = 0
            try:
                if sink._queue or sink.dropped:
                    code = 3
                sink.line("child line")
                code = code or (0 if sink.drain(10) else 4)
            finally:
                os._exit(code)
        out = read_until(r, lambda b: b"child line\n" in b and b"before fork\n" in b)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        out += read_until(r, lambda b: False, timeout=0.3)
        assert out.count(b"parent before fork\n") == 1
        assert out.count(b"child line\n") == 1
    finally:
        del logsink._sinks[w]
        sink.drain(2)


def test_installed_streams_feed_the_sinks_and_are_restored(
    capfd: pytest.CaptureFixture[str],
) -> None:
    before = sys.stdout, sys.stderr
    with logsink.installed():
        print("to stdout", "in parts", flush=True)
        sys.stdout.write("no newline yet")
        sys.stdout.write(" ... now\n")
        print("to stderr", file=sys.stderr)
    assert (sys.stdout, sys.stderr) == before
    out, err = capfd.readouterr()
    assert out == "to stdout in parts\nno newline yet ... now\n"
    assert err == "to stderr\n"


def test_drain_all_gives_up_at_the_deadline(pipe: tuple[int, int]) -> None:
    r, w = pipe
    fill(w)
    sink = LogSink(w, "stdout")
    logsink._sinks[w] = sink
    try:
        sink.line("stuck")
        started = time.monotonic()
        assert not logsink.drain_all(0.3)
        assert time.monotonic() - started < 1.5
    finally:
        del logsink._sinks[w]
        read_until(r, lambda b: b"stuck\n" in b)


def test_the_metrics_counter_counts_every_dropped_line_by_stream(pipe: tuple[int, int]) -> None:
    from prometheus_client.registry import CollectorRegistry

    from egress_router.runtime.metrics import LogMetrics

    r, w = pipe
    fill(w)
    registry = CollectorRegistry()
    saved = logsink.stdout().observer, logsink.stderr().observer
    try:
        counter = LogMetrics(registry)  # registers itself with the process's sinks
        sink = LogSink(w, "stderr", capacity=4096)
        sink.observer = logsink.stderr().observer
        for i in range(5000):
            sink.line(f"line {i}")
        assert sink.dropped > 4000  # the pipe and at most ~8 KiB (queue, chunk in the writer)
        for stream, expected in (("stderr", sink.dropped), ("stdout", 0)):
            got = registry.get_sample_value(
                "egress_router_log_dropped_lines_total", {"stream": stream}
            )
            assert got == expected
        assert counter.record == logsink.stdout().observer
    finally:
        logsink.stdout().observer, logsink.stderr().observer = saved
        read_until(r, lambda b: False, timeout=0.3)
