"""``egress-router lab demo``: the whole tour passes and cleans up; ``--only`` runs one part."""

from __future__ import annotations

import os
import secrets
import subprocess

import pytest

from egress_router.kernel.netlink import list_netns
from egress_router.lab.topology import STATE_DIR
from tests.conftest import EGRESS_ROUTER

pytestmark = pytest.mark.lab


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EGRESS_")}
    env["COLUMNS"] = "160"
    return env


def _leftovers(lab_id: str) -> list[str]:
    return [ns for ns in list_netns() if ns.startswith(f"er{lab_id}-")]


def _demo(*args: str, timeout: float = 180) -> tuple[subprocess.CompletedProcess[str], str]:
    lab_id = secrets.token_hex(3)
    result = subprocess.run(
        [EGRESS_ROUTER, "lab", "demo", "--lab-id", lab_id, *args],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=timeout,
    )
    return result, lab_id


@pytest.mark.timeout(240)
def test_the_whole_tour_passes_and_removes_its_lab() -> None:
    result, lab_id = _demo()
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    for part in ("redirect", "http-proxy", "dns-proxy", "firewall", "cni"):
        assert f"✔ {part}" in out, out
    assert "You came from 198.19.123.99" in out
    assert "denied by rule 1" in out
    assert "✘" not in out
    assert "skipped" in out or "✔ image" in out  # the image part runs when the image exists
    assert _leftovers(lab_id) == []
    assert not (STATE_DIR / lab_id).exists()
    assert not (STATE_DIR / f"{lab_id}.json").exists()


def test_only_runs_one_part() -> None:
    result, lab_id = _demo("--only", "cni")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "✔ cni" in result.stdout
    assert "✔ redirect" not in result.stdout and "Redirect mode" not in result.stdout
    assert _leftovers(lab_id) == []


def test_unknown_mode_is_one_clear_line() -> None:
    result = subprocess.run(
        [EGRESS_ROUTER, "lab", "demo", "--only", "nope"],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=30,
    )
    assert result.returncode == 2
    assert "'nope' is not one of redirect, http-proxy, dns-proxy, firewall, cni, image" in (
        result.stderr
    )
    assert "Traceback" not in result.stderr
