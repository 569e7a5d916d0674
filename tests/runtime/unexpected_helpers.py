"""What ``runtime.unexpected`` reported during a test: the stderr lines and the real counter."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from egress_router.runtime import logsink, unexpected
from egress_router.runtime.metrics import LogMetrics, new_registry


class _Sink:
    def __init__(self, lines: list[str]) -> None:
        self.lines = lines

    def line(self, text: str, *, lazy: bool = False) -> None:
        self.lines.append(text)


class Reports:
    """stderr lines written through the log sink, and the metrics counter they went to."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.registry = new_registry()
        self.metrics = LogMetrics(self.registry)

    def count(self, component: str) -> float:
        value = self.registry.get_sample_value(
            "egress_router_unexpected_errors_total", {"component": component}
        )
        return value or 0.0

    def assert_one(self, component: str, error: str) -> None:
        """Exactly one report, with its traceback, counted once under ``component``."""
        reports = [line for line in self.lines if "unexpected error" in line]
        assert len(reports) == 1, self.lines
        head, _, trace = reports[0].partition("\n")
        assert head.startswith(f"egress-router {component}: unexpected error in "), head
        assert head.endswith(error), head
        assert trace.startswith("Traceback (most recent call last):"), trace
        assert trace.rstrip().endswith(error), trace
        assert self.count(component) == 1.0


def reports_fixture(monkeypatch: pytest.MonkeyPatch) -> Iterator[Reports]:
    reports = Reports()
    monkeypatch.setattr(logsink, "stderr", lambda: _Sink(reports.lines))
    try:
        yield reports
    finally:
        unexpected.observe(None)
        logsink.observe(None)
