"""The nftables adapter: atomic batches, and no transaction lost to a signal aimed at us."""

from __future__ import annotations

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
