"""Unexpected exceptions (bugs): reported once with their traceback, counted, survived.

Owns: the one report of an exception no code expected (``report``): a line saying which
component and what it was doing, followed by the traceback, written to stderr through the
non-blocking log sink (``runtime.logsink``: a stalled reader costs lines, never service), and
the count told to whoever ``observe``\\s it (the ``egress_router_unexpected_errors_total``
counter of ``runtime.metrics`` when metrics are on); an event-loop exception handler
(``install``) that reports what escaped a Protocol callback or a task nobody awaited.
Must not: decide what fails. The caller ends the connection, answer or task the exception
belongs to and keeps the process serving; expected failures (``OSError``, our
``EgressRouterError`` tree, a library's documented errors) are handled where they happen and
never come here.

An exception is reported at most once, however many layers see it (a catch-all in a task and
then the loop's handler): ``report`` marks it.
"""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import Callable
from typing import Any

from egress_router.runtime import logsink

Counter = Callable[[str], None]  # component -> one more unexpected error

_MARK = "_egress_router_reported"
_counter: list[Counter | None] = [None]


def observe(counter: Counter | None) -> None:
    """Tell ``counter(component)`` about every reported exception (the metrics counter)."""
    _counter[0] = counter


def report(component: str, what: str, exc: BaseException) -> bool:
    """Log ``exc`` with its traceback once and count it; False if it was reported before.

    ``component`` is a metric label (a fixed word: ``http-proxy``, ``dns-proxy``,
    ``firewall``), ``what`` says what failed (``connection from 198.18.0.9:41000``)."""
    if getattr(exc, _MARK, False):
        return False
    setattr(exc, _MARK, True)  # every exception has a __dict__ (BaseException's)
    trace = "".join(traceback.format_exception(exc)).rstrip("\n")
    logsink.stderr().line(
        f"egress-router {component}: unexpected error in {what}, it was ended "
        f"(the process keeps serving): {type(exc).__name__}: {exc}\n{trace}"
    )
    counter = _counter[0]
    if counter is not None:
        counter(component)
    return True


def install(loop: asyncio.AbstractEventLoop, component: str) -> None:
    """Report what reaches ``loop``'s exception handler (a Protocol callback that raised: its
    transport is already closed by the loop; a task that failed with nobody awaiting it)."""

    def handler(_loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        message = str(context.get("message") or "a callback").rstrip(".")
        if isinstance(exc, BaseException):
            report(component, f"the event loop ({message})", exc)
        else:
            logsink.stderr().line(f"egress-router {component}: {message}")

    loop.set_exception_handler(handler)


def task_done(component: str, what: str) -> Callable[[asyncio.Task[Any]], None]:
    """A done-callback for a task: reports the exception it ended with (not a cancellation)."""

    def done(task: asyncio.Task[Any]) -> None:
        if not task.cancelled():
            exc = task.exception()  # retrieved: the loop will not complain of it again
            if exc is not None:
                report(component, what, exc)

    return done
