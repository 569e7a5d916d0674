"""``lab.interrupts`` in one process: signals are flags, raised only where it is safe, and
never acted on by a forked copy of the owner (the faults of issue 8 item 9, one by one)."""

from __future__ import annotations

import os
import signal
import time

import pytest

from egress_router.lab import interrupts
from egress_router.lab.topology import Lab


def test_a_signal_outside_a_wait_is_only_recorded() -> None:
    with interrupts.owned():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0)  # the handler has run by now, and raised nothing
        assert interrupts.received() == signal.SIGTERM
        with pytest.raises(interrupts.Interrupted):
            interrupts.checkpoint()


def test_a_signal_during_a_wait_ends_it_at_once() -> None:
    with interrupts.owned():
        started = time.monotonic()
        with pytest.raises(interrupts.Interrupted), interrupts.interruptible():
            signal.setitimer(signal.ITIMER_REAL, 0.1)
            previous = signal.signal(signal.SIGALRM, lambda *_: os.kill(os.getpid(), 2))
            try:
                time.sleep(5)
            finally:
                signal.signal(signal.SIGALRM, previous)
        assert time.monotonic() - started < 2


def test_teardown_is_not_interrupted() -> None:
    with interrupts.owned(), interrupts.tearing_down():
        os.kill(os.getpid(), signal.SIGINT)
        with interrupts.interruptible():
            time.sleep(0.05)
        interrupts.checkpoint()  # recorded, not raised: teardown runs to its end
        assert interrupts.received() == signal.SIGINT


def test_handlers_are_restored_and_inactive_outside() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with interrupts.owned():
        pass
    assert signal.getsignal(signal.SIGTERM) == before
    assert interrupts.received() is None
    interrupts.checkpoint()  # a no-op outside owned()


def test_a_forked_helper_ignores_the_group_signal_and_never_tears_down() -> None:
    """As pyroute2's helpers are forked: the signal sent to the group must not make the child
    raise (it would run the owner's ``except``/``finally`` and tear the lab down)."""
    lab = Lab(lab_id="unitfk")  # never built: down() would only remove its (absent) files
    with interrupts.owned():
        pid = os.fork()
        if pid == 0:  # the helper
            code = 0
            try:
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.05)
                interrupts.checkpoint()
                lab.down = lambda: os._exit(3)  # type: ignore[method-assign]
                Lab.down(lab)  # not the owner: returns at once
            except BaseException:
                code = 2
            os._exit(code)
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
