"""The kernel's switch with nobody left to withdraw: the whole active instance frozen (its
guard too, as a frozen pod's cgroup would be). The frozen namespace keeps the address, but its
kernel stops answering ARP for it at the renew deadline, so once the standby has taken over
only the new holder's MAC answers on the wire; thawed, the old one withdraws and stays standby."""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path

import pytest

from egress_router.lab import procs
from egress_router.lab.topology import Lab
from tests.failover.test_failover_lab import ROLES, has_address, holder, lab2, last_status, start

__all__ = ["lab2"]
pytestmark = pytest.mark.lab


def children(pid: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def mac(lab: Lab, name: str) -> str:
    out = lab.exec(ROLES[name], ["ip", "-o", "link", "show", "dev", "macvlan0"]).stdout
    found = re.search(r"link/ether ([0-9a-f:]{17})", out)
    assert found is not None, out
    return found.group(1)


def arp_answers(lab: Lab) -> set[str]:
    """The MACs answering three ARP requests for the reserved address, from the gateway."""
    out = lab.exec("gw", ["arping", "-c", "3", "-w", "2", "-I", "lan0", "198.19.123.99"]).stdout
    return {m.lower() for m in re.findall(r"\[([0-9A-Fa-f:]{17})\]", out)}


def fence_drops(lab: Lab, name: str) -> int:
    out = lab.exec(ROLES[name], ["nft", "list", "table", "arp", "egress_router_fence"]).stdout
    found = re.search(r"counter packets (\d+)", out)
    return int(found.group(1)) if found else -1


def test_a_frozen_pod_goes_silent_before_the_standby_speaks(lab2: Lab, tmp_path: Path) -> None:
    lease = tmp_path / "lease.json"
    r1 = start(lab2, "r1", lease)
    assert procs.wait_for(lambda: holder(lease) == "r1" and has_address(lab2, "r1"), 20), (
        r1.output()
    )
    assert arp_answers(lab2) == {mac(lab2, "r1")}
    r2 = start(lab2, "r2", lease)
    assert procs.wait_for(lambda: " is standby " in last_status(r2), 20), r2.output()

    frozen = [r1.pid, *children(r1.pid)]
    for pid in frozen:  # the instance and its guard: nobody can withdraw
        os.kill(pid, signal.SIGSTOP)
    try:
        assert procs.wait_for(lambda: " is active " in last_status(r2), 10), r2.output()
        assert has_address(lab2, "r1")  # still there in the frozen namespace ...
        assert arp_answers(lab2) == {mac(lab2, "r2")}  # ... but only the new holder speaks
        assert fence_drops(lab2, "r1") >= 1  # the broadcast request; the rest go to r2
    finally:
        for pid in frozen:
            os.kill(pid, signal.SIGCONT)
    assert procs.wait_for(lambda: " is standby " in last_status(r1), 10), r1.output()
    assert not has_address(lab2, "r1")
    assert " is active " in last_status(r2) and holder(lease) == "r2"
