"""The report: JSON for tools carries everything; the exit status follows the verdict."""

from __future__ import annotations

import io
import json

from rich.console import Console

from egress_router.diagnose.model.verdict import diagnose
from egress_router.diagnose.report import EXIT_HEALTHY, EXIT_PROBLEM, as_json, exit_status, render
from tests.diagnose.model.test_verdict import EXPECTED, HEALTHY, no_arp


def test_json_document() -> None:
    doc = json.loads(as_json(EXPECTED, HEALTHY, diagnose(EXPECTED, HEALTHY)))
    assert doc["verdict"]["cause"] == "ok" and doc["exit_code"] == EXIT_HEALTHY
    assert doc["expected"]["source"] == "198.19.123.99/24"
    assert doc["observed"]["routes"][0] == {
        "dst": None,
        "gateway": "198.19.123.1",
        "device": "macvlan0",
    }
    assert {f["check"] for f in doc["findings"]} >= {"interface", "route", "arp", "connect"}


def test_text_ends_with_the_verdict_and_the_status_says_problem() -> None:
    broken = diagnose(EXPECTED, no_arp(HEALTHY))
    out = io.StringIO()
    render(Console(file=out, width=200), EXPECTED, no_arp(HEALTHY), broken, where="here")
    assert out.getvalue().strip().splitlines()[-1].startswith("verdict: gateway not answering ARP")
    assert exit_status(broken) == EXIT_PROBLEM
