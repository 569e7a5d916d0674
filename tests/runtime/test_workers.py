"""The worker supervisor: workers start only after the parent's ``after_fork`` finished; how
many workers a configured count means."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from egress_router.errors import VariableError
from egress_router.runtime import logsink, workers
from egress_router.runtime.workers import supervise


@pytest.fixture(autouse=True)
def _keep_handlers() -> Iterator[None]:
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


def test_workers_start_after_after_fork_returned(tmp_path: Path) -> None:
    ready = tmp_path / "metrics-listening"

    def after_fork() -> None:
        time.sleep(0.3)  # a slow start of the parent's endpoint
        ready.write_text("yes")

    def work(index: int) -> None:
        (tmp_path / f"worker{index}").write_text("saw ready" if ready.exists() else "too early")

    status = supervise(2, work, name="test", after_fork=after_fork)
    assert status == 1  # the workers ended on their own, not on a signal
    assert [(tmp_path / f"worker{i}").read_text() for i in range(2)] == ["saw ready"] * 2


def test_a_failing_after_fork_stops_workers_before_they_work(tmp_path: Path) -> None:
    def after_fork() -> None:
        raise OSError("cannot serve metrics")

    def work(index: int) -> None:
        (tmp_path / f"worker{index}").write_text("worked")

    with pytest.raises(OSError, match="cannot serve metrics"):
        supervise(2, work, name="test", after_fork=after_fork)
    assert list(tmp_path.iterdir()) == []


class _FileSink:
    def __init__(self, path: Path) -> None:
        self.path = path

    def line(self, text: str) -> None:
        with self.path.open("a") as out:
            out.write(text + "\n")


@pytest.mark.parametrize(
    ("error", "traceback"),
    [(VariableError("EGRESS_X", "is bad"), False), (RuntimeError("a bug"), True)],
)
def test_a_failed_worker_says_why_in_one_line_and_a_bug_shows_its_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: Exception, traceback: bool
) -> None:
    log = tmp_path / "stderr"
    monkeypatch.setattr(logsink, "stderr", lambda: _FileSink(log))  # the child's too

    def work(index: int) -> None:
        raise error

    assert supervise(1, work, name="test") == 1
    text = log.read_text()
    assert text.startswith(f"egress-router: test worker 0 failed: {error}\n"), text
    assert ("Traceback (most recent call last):" in text) is traceback, text


def test_cpus_is_the_affinity_mask() -> None:
    import os

    assert workers.cpus() == len(os.sched_getaffinity(0)) >= 1


@pytest.mark.parametrize(
    ("configured", "per_cpu_max", "cpus", "count"),
    [
        (3, 4, 8, 3),  # a configured count is taken as it is
        (16, 4, 1, 16),
        (0, 4, 8, 4),  # 0: one per CPU, at most per_cpu_max (the HTTP proxy: 4)
        (0, 4, 2, 2),
        (0, 16, 64, 16),  # the DNS proxy's relay: 16
        (0, 16, 1, 1),
    ],
)
def test_count(
    monkeypatch: pytest.MonkeyPatch, configured: int, per_cpu_max: int, cpus: int, count: int
) -> None:
    monkeypatch.setattr(workers, "cpus", lambda: cpus)
    assert workers.count(configured, per_cpu_max=per_cpu_max) == count
