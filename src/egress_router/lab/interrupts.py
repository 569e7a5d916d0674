"""Ctrl-C and SIGTERM in a process that owns a lab (the demo): a flag, raised only where safe.

Owns: the SIGINT/SIGTERM handlers of the lab's owning process, the owner's PID, and the only
places where an interrupt surfaces as ``Interrupted``: ``checkpoint()`` (between steps, in
polling loops) and inside ``interruptible()`` blocks (waiting for a child process, sleeping).
Must not: raise from a handler while library code runs. An exception raised inside pyroute2's
asyncio datagram callback is swallowed by the event loop and the netlink reply is lost; one
raised inside logging's fork hooks (pyroute2 forks helpers) is printed and dropped. So the
handler only records the signal, unless the main thread is inside ``interruptible()``.

A signal sent to the process group also reaches pyroute2's forked helpers, which inherit these
handlers: there the handler does nothing but restore the default action (the helper finishes
its short job, or dies of a second signal) and never tears anything down. Only the owner does.
Outside ``owned()`` (tests using ``Lab`` directly) everything here is a no-op.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType

SIGNALS = (signal.SIGINT, signal.SIGTERM)
EXIT_INTERRUPTED = 130  # as a shell reports a Ctrl-C'd command; also used for SIGTERM


class Interrupted(BaseException):
    """A SIGINT or SIGTERM reached the lab's owner: tear the lab down and exit 130.

    A ``BaseException`` so that ``except Exception`` in code it unwinds through cannot eat it.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@dataclass
class _State:
    owner: int | None = None
    received: int | None = None
    depth: int = 0  # > 0 inside interruptible(): the handler may raise
    tearing_down: bool = False  # nothing raises once teardown has begun


_state = _State()


def _is_owner() -> bool:
    return _state.owner is not None and os.getpid() == _state.owner


def _handler(signum: int, frame: FrameType | None) -> None:
    if not _is_owner():
        # A forked helper (pyroute2's) that inherited us: it must not act on the owner's
        # behalf. Its parent reaps it; a second signal now has the default action.
        signal.signal(signum, signal.SIG_DFL)
        return
    if _state.received is None:
        _state.received = signum
    if _state.depth > 0 and not _state.tearing_down:
        raise Interrupted(signum)


@contextmanager
def owned() -> Iterator[None]:
    """Handle SIGINT/SIGTERM for the calling process (the lab's owner) while the block runs."""
    previous: dict[int, Callable[[int, FrameType | None], object] | int | None] = {}
    _state.owner, _state.received, _state.depth, _state.tearing_down = os.getpid(), None, 0, False
    for one in SIGNALS:
        previous[one] = signal.signal(one, _handler)
    try:
        yield
    finally:
        if _is_owner():
            for signum, handler in previous.items():
                signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
            _state.owner = None


def received() -> int | None:
    """The first signal the owner received (None if none, or outside ``owned()``)."""
    return _state.received if _is_owner() else None


def checkpoint() -> None:
    """Raise ``Interrupted`` here if a signal arrived and teardown has not begun."""
    if _is_owner() and _state.received is not None and not _state.tearing_down:
        raise Interrupted(_state.received)


@contextmanager
def interruptible() -> Iterator[None]:
    """A block of our own code (a wait, a sleep) where the handler may raise at once."""
    checkpoint()
    _state.depth += 1
    try:
        yield
    finally:
        _state.depth -= 1


@contextmanager
def tearing_down() -> Iterator[None]:
    """From here on signals are only recorded: teardown runs to its end."""
    before = _state.tearing_down
    _state.tearing_down = True
    try:
        yield
    finally:
        _state.tearing_down = before
