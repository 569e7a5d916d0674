"""One stream's log writer on real pipes (no root): never blocks, drops and counts when full,
notes the start and the end of dropping, whole lines per write, a description of its own."""

from __future__ import annotations

import fcntl
import os
import re
import time

import pytest

from egress_router.runtime import logwriter
from egress_router.runtime.logwriter import LogSink
from tests.runtime.pipes import fill, read_until

STOP_NOTE = re.compile(r"egress-router: log: (\w+) is being read again; (\d+) lines? dropped")
START_NOTE = "is not being read fast enough; dropping lines"


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
    direct = logwriter.nonblocking_writer(w)
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
        assert len(chunk) <= logwriter.PIPE_BUF or chunk.count(b"\n") == 1


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
