"""The lab itself: built entirely in namespaces, the server admits only the reserved IP."""

from __future__ import annotations

import pytest

from egress_router.kernel.netlink import list_netns
from egress_router.lab.servers import Nginx
from egress_router.lab.topology import ADDR, Lab

pytestmark = pytest.mark.lab


def test_up_and_down_leave_nothing(tmp_path):
    lab = Lab(workdir=tmp_path / "lab").up()
    try:
        assert set(lab.namespaces) <= set(list_netns())
        assert lab.macvlan_mac() is not None
    finally:
        lab.down()
    assert not set(lab.namespaces) & set(list_netns())


def test_server_rejects_client_directly(lab):
    Nginx(lab, "web", [f"{ADDR.server_ip}:80"]).start()
    direct = lab.exec("client", ["curl", "-sS", "-m", "5", f"http://{ADDR.server_ip}/"])
    assert direct.returncode == 7, direct.stderr  # connect refused: "No route to host"
    assert "Failed to connect" in direct.stderr
