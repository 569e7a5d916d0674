"""The process's log sinks (no root): forks, installed sys.stdout/sys.stderr, draining at
exit with a deadline, the metrics counter of dropped lines."""

from __future__ import annotations

import os
import sys
import time

import pytest

from egress_router.runtime import logsink
from egress_router.runtime.logsink import LogSink
from tests.runtime.pipes import fill, read_until


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


def test_drain_all_gives_up_at_the_deadline_and_once_per_process(pipe: tuple[int, int]) -> None:
    r, w = pipe
    fill(w)
    sink = LogSink(w, "stdout")
    logsink._sinks[w] = sink
    saved = logsink._drain_budget[0]
    logsink._drain_budget[0] = 0.6
    try:
        sink.line("stuck")
        started = time.monotonic()
        assert not logsink.drain_all(0.3)
        assert 0.25 < time.monotonic() - started < 1.5
        started = time.monotonic()
        assert not logsink.drain_all(5.0)  # what is left of the budget, not 5 s
        assert time.monotonic() - started < 1.2
        started = time.monotonic()
        assert not logsink.drain_all(5.0)  # spent: installed() then atexit cost one wait
        assert time.monotonic() - started < 0.2
    finally:
        logsink._drain_budget[0] = saved
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
