"""Parsing ``conntrack -E`` event lines (the kernel path's per-connection debug log)."""

from __future__ import annotations

from egress_router.kernel.conntrack import Flow, parse_entry, parse_event

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


def test_listing_lines() -> None:
    listed = (
        "tcp      6 431999 ESTABLISHED src=198.18.0.3 dst=198.18.0.2 sport=48004 dport=8080"
        " src=203.0.113.26 dst=198.19.123.99 sport=80 dport=48004 [ASSURED] mark=0 use=1"
    )
    assert parse_entry(listed) == Flow("198.18.0.3", 48004, "198.18.0.2", 8080, "203.0.113.26", 80)
    assert parse_entry("conntrack v1.4.7 (conntrack-tools): 1 flow entries") is None
