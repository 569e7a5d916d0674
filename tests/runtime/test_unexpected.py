"""runtime.unexpected: one report per exception (line, traceback, counter), the loop handler."""

from __future__ import annotations

import asyncio
from typing import Any

from egress_router.runtime import unexpected


def _boom() -> None:
    raise RuntimeError("injected fault")


def test_an_exception_is_reported_once_however_many_layers_see_it(reports: Any) -> None:
    try:
        _boom()
    except RuntimeError as exc:
        assert unexpected.report("http-proxy", "a test", exc)
        assert not unexpected.report("http-proxy", "a test, again", exc)
    reports.assert_one("http-proxy", "RuntimeError: injected fault")
    assert "in _boom" in reports.lines[0]


def test_the_loop_handler_reports_callbacks_and_failed_tasks(reports: Any) -> None:
    async def body() -> None:
        loop = asyncio.get_running_loop()
        unexpected.install(loop, "dns-proxy")
        loop.call_soon(_boom)
        task = loop.create_task(asyncio.sleep(0))
        task.add_done_callback(unexpected.task_done("dns-proxy", "a task"))
        failing = loop.create_task(asyncio.to_thread(_boom))
        failing.add_done_callback(unexpected.task_done("dns-proxy", "a task"))
        await asyncio.sleep(0.2)
        loop.call_exception_handler({"message": "no exception here"})

    asyncio.run(body())
    reported = [line for line in reports.lines if "unexpected error" in line]
    assert len(reported) == 2, reports.lines
    assert reported[0].startswith("egress-router dns-proxy: unexpected error in the event loop (")
    assert reported[1].startswith("egress-router dns-proxy: unexpected error in a task")
    assert reports.lines[-1] == "egress-router dns-proxy: no exception here"
    assert reports.count("dns-proxy") == 2.0
