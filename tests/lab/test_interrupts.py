"""Interrupted tours at random moments: out within 5 s, nothing left behind.

Each run is signalled only while its lab's namespaces exist (asserted), with SIGINT and
SIGTERM, to the demo process and to its process group (which also reaches pyroute2's forked
helpers: before the fix they ran the teardown themselves). The runs cycle through the tour's
parts (``--only MODE``), each at a random moment of that part, so every step of the longer
tour is covered in a few minutes; ``bench/interrupts.py`` runs 200 (or ``--whole`` tours).
"""

from __future__ import annotations

import pytest

from egress_router.lab.demo import MODES
from egress_router.lab.trials import random_plan, run_trials
from tests.conftest import EGRESS_ROUTER

pytestmark = [pytest.mark.lab, pytest.mark.slow]

RUNS = 24  # four signal kinds x six parts
# How long each part's lab lives on a quiet machine, seconds (the window of random moments).
WINDOWS = {
    "redirect": 7.0,
    "http-proxy": 4.0,
    "dns-proxy": 5.0,
    "firewall": 5.0,
    "cni": 3.0,
    "image": 4.0,
}


@pytest.mark.timeout(1200)
def test_interrupted_tours_exit_fast_and_leave_nothing() -> None:
    commands = [([EGRESS_ROUTER, "lab", "demo", "--only", mode], WINDOWS[mode]) for mode in MODES]
    trials = run_trials(random_plan(RUNS, commands))
    assert all(t.lab_existed for t in trials), "a run was not interrupted while its lab existed"
    failed = [t.describe() for t in trials if not t.ok]
    assert failed == [], "\n".join(failed)
