"""The nftables adapter: atomic batches, and no transaction lost to a signal aimed at us."""

from __future__ import annotations

import json
import sys
import uuid

import pytest

from egress_router.kernel import nftables
from egress_router.kernel.netlink import create_netns, remove_netns
from egress_router.lab import procs

pytestmark = pytest.mark.lab

# A child in its own process group applies small batches; the parent signals that group at
# random moments, as a supervisor stopping us (or Ctrl-C) would. Before nft got its own session
# and blocked signals, most trials reported a transaction that had taken effect as a failure.
SIGNALLED_APPLY = r"""
import os, random, signal, sys, time
from egress_router.kernel import nftables
cmds = nftables.replace_table_commands("ip", "er_sig") + [
    {"add": {"table": {"family": "ip", "name": "er_sig"}}}
]
failures = 0
# Installed before forking, so each child has it from its first instruction: one installed in
# the child after setsid() left a window in which a slow child died of the signal itself.
signal.signal(signal.SIGTERM, lambda *a: None)
for trial in range(int(sys.argv[1])):
    pid = os.fork()
    if pid == 0:
        os.setsid()
        code = 0
        for _ in range(3):
            try:
                nftables.apply(cmds)
            except Exception as exc:
                print(exc, file=sys.stderr)
                code = 1
        os._exit(code)
    time.sleep(random.uniform(0.0, 0.03))
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    _, status = os.waitpid(pid, 0)
    failures += os.waitstatus_to_exitcode(status)
print(failures)
"""


@pytest.fixture
def namespace():
    name = f"ernft{uuid.uuid4().hex[:8]}"
    create_netns(name)
    try:
        yield name
    finally:
        remove_netns(name)


def test_a_signal_to_our_process_group_never_fails_a_transaction(namespace: str) -> None:
    result = procs.run(namespace, [sys.executable, "-c", SIGNALLED_APPLY, "30"], timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "0", result.stderr


def test_a_refused_batch_changes_nothing(namespace: str) -> None:
    good = [
        *nftables.replace_table_commands("ip", "er_t"),
        {"add": {"table": {"family": "ip", "name": "er_t"}}},
        {"add": {"set": {"family": "ip", "table": "er_t", "name": "s", "type": "ipv4_addr"}}},
    ]
    bad = [
        *nftables.replace_table_commands("ip", "er_t"),
        {"add": {"table": {"family": "ip", "name": "er_t"}}},
        {"add": {"set": {"family": "ip", "table": "er_t", "name": "other", "type": "ipv4_addr"}}},
        {"add": {"element": {"family": "ip", "table": "er_t", "name": "s", "elem": ["1.2.3.4"]}}},
    ]
    listing = [sys.executable, "-c", "import json,sys\n" + _LIST]
    procs.run(
        namespace, [sys.executable, "-c", _APPLY, nftables.batch(good)], timeout=30, check=True
    )
    before = procs.run(namespace, listing, timeout=30, check=True).stdout
    refused = procs.run(namespace, [sys.executable, "-c", _APPLY, nftables.batch(bad)], timeout=30)
    assert refused.returncode != 0
    assert procs.run(namespace, listing, timeout=30, check=True).stdout == before


_APPLY = """
import json, sys
from egress_router.kernel import nftables
nftables.apply(json.loads(sys.argv[1])["nftables"])
"""
_LIST = """
from egress_router.kernel import nftables
print(json.dumps(nftables.list_table("ip", "er_t")))
"""


_SETS = r"""
import json, subprocess
from dataclasses import asdict
from egress_router.kernel import nftables
script = '''
add table inet er_sets
add set inet er_sets s4 { type ipv4_addr; flags timeout; }
add element inet er_sets s4 { 203.0.113.5 timeout 30s, 203.0.113.6 }
add set inet er_sets iv { type ipv4_addr; flags interval; }
add element inet er_sets iv { 203.0.113.0/28, 198.18.0.1-198.18.0.9, 198.18.1.1 }
add set inet er_sets c { type ipv4_addr . inet_service; flags timeout; }
add element inet er_sets c { 203.0.113.5 . 80 timeout 1h, 203.0.113.6 . 443 }
add set inet er_sets d { type ipv4_addr; timeout 1m; }
add element inet er_sets d { 203.0.113.7 }
add set inet er_sets v6 { type ipv6_addr; flags interval,timeout; }
add element inet er_sets v6 { 2001:db8::/64 timeout 20s, 2001:db8:1::1 }
add map inet er_sets m { type ipv4_addr : verdict; flags interval; }
add element inet er_sets m { 203.0.113.0/24 : accept }
'''
subprocess.run(["nft", "-f", "-"], input=script, text=True, check=True)
sets = nftables.list_sets("inet", "er_sets")
print(json.dumps({n: [asdict(e) for e in es] for n, es in sets.items()}))
print(json.dumps(nftables.list_sets("inet", "er_absent")))
"""


def test_set_elements_read_back_from_the_kernel(namespace: str) -> None:
    result = procs.run(namespace, [sys.executable, "-c", _SETS], timeout=30, check=True)
    listed, absent = result.stdout.splitlines()
    assert absent == "null"  # no such table
    sets = json.loads(listed)
    assert set(sets) == {"s4", "iv", "c", "d", "v6"}  # the map is not a set

    def keys(name: str) -> set[str]:
        return {e["key"] for e in sets[name]}

    assert keys("iv") == {"203.0.113.0/28", "198.18.0.1-198.18.0.9", "198.18.1.1"}
    assert keys("c") == {"203.0.113.5 . 80", "203.0.113.6 . 443"}
    assert keys("v6") == {"2001:db8::/64", "2001:db8:1::1"}
    by_key = {e["key"]: e for name in sets for e in sets[name]}
    assert by_key["203.0.113.5"]["timeout"] == 30 and 0 < by_key["203.0.113.5"]["expires"] <= 30
    assert by_key["203.0.113.6"] == {"key": "203.0.113.6", "timeout": None, "expires": None}
    assert by_key["203.0.113.7"]["timeout"] is None and 0 < by_key["203.0.113.7"]["expires"] <= 60
    assert by_key["2001:db8::/64"]["timeout"] == 20
    assert by_key["203.0.113.5 . 80"]["timeout"] == 3600
