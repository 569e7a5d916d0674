"""Parsing ``conntrack -E`` event lines (the kernel path's per-connection debug log)."""

from __future__ import annotations

import os
import subprocess
import uuid

import pytest

from egress_router.kernel.conntrack import Flow, parse_entry, parse_event, subscribed
from egress_router.kernel.netlink import create_netns, remove_netns
from egress_router.lab import procs

LINE = (
    "    [NEW] tcp      6 120 SYN_SENT src=198.18.0.3 dst=198.18.0.2 sport=48004 dport=100"
    " [UNREPLIED] src=203.0.113.26 dst=198.19.123.99 sport=100 dport=48004\n"
)


def test_new_event() -> None:
    assert parse_event(LINE) == Flow("198.18.0.3", 48004, "198.18.0.2", 100, "203.0.113.26", 100)


def test_other_lines_ignored() -> None:
    assert parse_event(LINE.replace("[NEW]", "[UPDATE]")) is None
    assert parse_event("conntrack v1.4.7 (conntrack-tools): 1 flow events\n") is None
    assert parse_event("[NEW] tcp src=1.2.3.4 dst=5.6.7.8 sport=1 dport=2") is None


@pytest.mark.lab
def test_subscribed_tells_when_conntrack_listens_for_events() -> None:
    """A plain process holds no event socket; ``conntrack -E`` (in a namespace of ours) does,
    at the latest a few seconds after it started."""
    assert not subscribed(os.getpid())
    assert not subscribed(2**22 + 1)  # no such process
    name = f"erct{uuid.uuid4().hex[:8]}"
    create_netns(name)
    try:
        argv = ["ip", "netns", "exec", name, "conntrack", "-E", "-e", "NEW", "-p", "tcp"]
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            assert procs.wait_for(lambda: subscribed(proc.pid), 20)
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    finally:
        remove_netns(name)


def test_listing_lines() -> None:
    listed = (
        "tcp      6 431999 ESTABLISHED src=198.18.0.3 dst=198.18.0.2 sport=48004 dport=8080"
        " src=203.0.113.26 dst=198.19.123.99 sport=80 dport=48004 [ASSURED] mark=0 use=1"
    )
    assert parse_entry(listed) == Flow("198.18.0.3", 48004, "198.18.0.2", 8080, "203.0.113.26", 80)
    assert parse_entry("conntrack v1.4.7 (conntrack-tools): 1 flow entries") is None
