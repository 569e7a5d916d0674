"""``egress-router lab demo``: passes end to end, and cleans up when interrupted."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import time

import pytest

from egress_router.kernel.netlink import list_netns
from egress_router.lab.topology import STATE_DIR
from tests.conftest import EGRESS_ROUTER

pytestmark = pytest.mark.lab


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EGRESS_")}
    env["COLUMNS"] = "100"
    return env


def _leftovers(lab_id: str) -> list[str]:
    return [ns for ns in list_netns() if ns.startswith(f"er{lab_id}-")]


def test_demo_passes_and_removes_its_lab() -> None:
    lab_id = secrets.token_hex(3)
    result = subprocess.run(
        [EGRESS_ROUTER, "lab", "demo", "--lab-id", lab_id],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "5/5 checks held" in result.stdout
    assert "You came from 198.19.123.99" in result.stdout
    assert _leftovers(lab_id) == []
    assert not (STATE_DIR / lab_id).exists()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.parametrize("delay", [0.0, 0.15, 0.3])
def test_interrupted_demo_tears_down(sig: signal.Signals, delay: float) -> None:
    lab_id = secrets.token_hex(3)
    proc = subprocess.Popen(
        [EGRESS_ROUTER, "lab", "demo", "--lab-id", lab_id],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=_env(),
    )
    try:
        deadline = time.monotonic() + 20
        while not _leftovers(lab_id) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(delay)
        proc.send_signal(sig)
        code = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert code in (0, 130)  # 0 only if the demo had already finished
    assert _leftovers(lab_id) == []
    assert not (STATE_DIR / lab_id).exists()
