"""TTL clamps, retry back-off and pattern matching of DNS-named rules."""

from __future__ import annotations

import pytest

from egress_router.firewall.model.dnsrules import DnsSettings, matching

S = DnsSettings()


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
