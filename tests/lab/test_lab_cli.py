"""``egress-router lab up|status|down`` across separate processes."""

from __future__ import annotations

import pytest

from egress_router.kernel.netlink import list_netns
from tests.conftest import cli

pytestmark = pytest.mark.lab


def test_up_status_down() -> None:
    up = cli("lab", "up")
    assert up.returncode == 0, up.stderr
    lab_id = up.stdout.split()[0]
    try:
        assert {f"er{lab_id}-{role}" for role in ("node", "router", "client", "gw", "web")} <= set(
            list_netns()
        )
        status = cli("lab", "status")
        assert f"{lab_id}: 5/5 namespaces present" in status.stdout
        # the lab built by `up` is usable from another process: the router can be set up in it
        ns = f"er{lab_id}-router"
        env = {
            "EGRESS_SOURCE": "198.19.123.99/24",
            "EGRESS_GATEWAY": "198.19.123.1",
            "EGRESS_ROUTER_MODE": "init",
            "EGRESS_DESTINATION": "203.0.113.25",
        }
        assert cli("setup", env=env, namespace=ns).returncode == 0
    finally:
        down = cli("lab", "down", lab_id)
    assert down.returncode == 0, down.stderr
    assert f"removed lab {lab_id}" in down.stdout
    assert not [ns for ns in list_netns() if ns.startswith(f"er{lab_id}-")]
    assert lab_id not in cli("lab", "status").stdout
