"""The firewall's timing of DNS-named rules (TTL clamps, lifetimes, retry back-off: the shared
schedule with the firewall's settings) and pattern matching."""

from __future__ import annotations

import pytest

from egress_router.firewall.model.dnsrules import dns_settings, matching

S = dns_settings()  # the documented defaults


@pytest.mark.parametrize(
    ("ttl", "refresh", "lifetime"),
    [
        (0, 5, 10),  # zero TTL must not make a query loop
        (1, 5, 10),
        (29, 29, 34),
        (30, 30, 35),
        (31, 31, 36),
        (1800, 1800, 1805),
        (86400, 1800, 1805),
    ],
)
def test_ttl_clamps(ttl, refresh, lifetime):
    assert S.refresh_after(ttl) == refresh
    assert S.lifetime(ttl) == lifetime


@pytest.mark.parametrize(
    ("failures", "delay"),
    [(1, 5), (10, 5), (11, 10), (12, 20), (13, 40), (14, 80), (15, 120), (1000, 120)],
)
def test_retry_backoff_is_bounded(failures, delay):
    assert S.retry_after(failures) == delay


def test_matching_uses_the_whole_cname_chain():
    patterns = ["www.foo.com", "*.cdn.net", "other.org"]
    assert matching(patterns, ["www.foo.com", "edge1.cdn.net"]) == ["www.foo.com", "*.cdn.net"]
    assert matching(patterns, ["x.y.cdn.net"]) == []


def test_the_firewall_settings_keep_and_follow():
    custom = dns_settings(ttl_floor=2, ttl_ceiling=60, grace=1, retry_first=3, retry_max=9)
    assert (custom.ttl_min_s, custom.ttl_max_s, custom.grace_s) == (2, 60, 1)
    assert (custom.retry_base_s, custom.retry_cap_s, custom.retry_steady) == (3, 9, 10)
    assert not custom.believe_negative  # NXDOMAIN keeps the last good addresses
    assert not custom.peers_only  # every answered address goes into the set
