"""Interrupted demos at random moments: out within 5 s, nothing left behind.

Each run is signalled only while its lab's namespaces exist (asserted), with SIGINT and
SIGTERM, to the demo process and to its process group (which also reaches pyroute2's forked
helpers and, before the fix, made them run the teardown). ``bench/interrupts.py`` runs 200.
"""

from __future__ import annotations

import pytest

from egress_router.lab.trials import random_plan, run_trials
from tests.conftest import EGRESS_ROUTER

pytestmark = [pytest.mark.lab, pytest.mark.slow]

RUNS = 20
WINDOW_S = 2.0  # the redirect demo's lab lives about 2 s on a quiet machine


@pytest.mark.timeout(900)
def test_interrupted_demos_exit_fast_and_leave_nothing() -> None:
    trials = run_trials([EGRESS_ROUTER, "lab", "demo"], random_plan(RUNS, WINDOW_S))
    failed = [t.describe() for t in trials if not t.ok]
    assert all(t.lab_existed for t in trials), "a run was not interrupted while its lab existed"
    assert failed == [], "\n".join(failed)
