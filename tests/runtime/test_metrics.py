"""The metrics adapter without a network: listen grammar, bounded labels, what each update
records, multi-process mode (files in a private directory, removed afterwards)."""

from __future__ import annotations

import os

import pytest
from prometheus_client.registry import CollectorRegistry

from egress_router.runtime import metrics as m


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("198.18.0.2:9100", ("198.18.0.2", 9100)),
        (" 0.0.0.0:1 ", ("0.0.0.0", 1)),
        ("[2001:db8::1]:65535", ("2001:db8::1", 65535)),
    ],
)
def test_listen_accepted(text: str, expected: tuple[str, int]) -> None:
    assert m.parse_listen(text) == expected


@pytest.mark.parametrize(
    "text", ["", "9100", ":9100", "198.18.0.2", "198.18.0.2:", "198.18.0.2:0", "1.2.3.4:70000",
             "metrics.local:9100", "198.18.0.2:9x", "[::1]",
             "::1:9100"],  # IPv6 with a port needs brackets: ::1:9100 is itself an address
)  # fmt: skip
def test_listen_refused(text: str) -> None:
    with pytest.raises(ValueError):
        m.parse_listen(text)


def value(registry: CollectorRegistry, metric: str, /, **labels: str) -> float | None:
    return registry.get_sample_value(metric, labels)


def test_http_exchange_updates() -> None:
    reg = CollectorRegistry()
    h = m.HttpProxyMetrics(reg)
    h.exchange("GET", 200, "rule 2: *", 0, 41, 0.002, False)
    h.exchange("GET", 403, "rule 1: !*.example.com", 0, 0, 0.001, False)
    h.exchange("CONNECT", 200, "rule 2: *", 500, 700, 3.0, True)
    h.exchange("GET", 502, "rule 2: *", 0, 0, 0.01, False)
    h.exchange("", 400, "none", 0, 0, 0.0, False)
    h.sample(7, 1)
    total = "egress_router_http_requests_total"
    assert value(reg, total, method="GET", status="200", rule="rule 2: *") == 1
    assert value(reg, total, method="-", status="400", rule="none") == 1
    assert value(reg, "egress_router_http_denied_total", rule="rule 1: !*.example.com") == 1
    assert value(reg, "egress_router_http_upstream_errors_total", status="502") == 1
    assert value(reg, "egress_router_http_bytes_total", direction="down", kind="request") == 41
    assert value(reg, "egress_router_http_bytes_total", direction="up", kind="tunnel") == 500
    count = "egress_router_http_request_duration_seconds_count"
    assert value(reg, count, kind="request") == 4
    assert value(reg, count, kind="tunnel") == 1
    assert value(reg, "egress_router_http_client_connections") == 7
    assert value(reg, "egress_router_http_tunnels_open") == 1


def test_http_rule_labels_are_capped() -> None:
    reg = CollectorRegistry()
    h = m.HttpProxyMetrics(reg)
    for number in range(m.RULE_LABELS_MAX + 5):
        h.exchange("GET", 200, f"rule {number}: 10.0.0.{number % 250}", 0, 0, 0.0, False)
    labels = {s.labels["rule"] for s in reg.collect() for s in s.samples if "rule" in s.labels}
    assert len(labels) == m.RULE_LABELS_MAX + 1
    assert "other" in labels


def test_dns_proxy_updates() -> None:
    reg = CollectorRegistry()
    d = m.DnsProxyMetrics(reg)
    d.lookup([80, 8080], "ok", 1000.0)
    d.lookup([100], "nxdomain", 1001.0)
    d.current({80: 2, 100: 0})
    d.fixed([81], 5.0)
    d.update(True)
    d.update(False)
    d.relay_open(80)
    d.relay_open(80)
    d.relay_closed(80, 120, False)
    d.relay_closed(80, 0, True)
    d.relay_upstream_closed(80, 900)
    resolutions = "egress_router_dns_proxy_resolutions_total"
    assert value(reg, resolutions, port="8080", outcome="ok") == 1
    assert value(reg, resolutions, port="100", outcome="nxdomain") == 1
    stamp = "egress_router_dns_proxy_last_success_timestamp_seconds"
    assert value(reg, stamp, port="80") == 1000
    assert value(reg, stamp, port="81") == 5
    assert value(reg, stamp, port="100") is None
    assert value(reg, "egress_router_dns_proxy_addresses", port="80") == 2
    updates = "egress_router_dns_proxy_forwarding_updates_total"
    assert value(reg, updates, outcome="ok") == value(reg, updates, outcome="failed") == 1
    assert value(reg, "egress_router_dns_proxy_relay_connections_total", port="80") == 2
    assert value(reg, "egress_router_dns_proxy_relay_active_connections", port="80") == 0
    assert value(reg, "egress_router_dns_proxy_relay_dial_failures_total", port="80") == 1
    relayed = "egress_router_dns_proxy_relay_bytes_total"
    assert value(reg, relayed, port="80", direction="up") == 120
    assert value(reg, relayed, port="80", direction="down") == 900


def test_firewall_updates() -> None:
    reg = CollectorRegistry()
    f = m.FirewallMetrics(reg)
    f.applied(True, 0.02, 2, 5)
    f.applied(False, 0.0, 0, 0)
    assert value(reg, "egress_router_firewall_policies") == 2
    assert value(reg, "egress_router_firewall_rules") == 5  # a failed reload changes nothing
    assert value(reg, "egress_router_firewall_reloads_total", outcome="failed") == 1
    assert value(reg, "egress_router_firewall_apply_duration_seconds_count") == 1
    learned = "egress_router_firewall_learned_addresses"
    f.learned_counts({("a", "x.test"): 3, ("b", "y.test"): 1}, replace=False)
    f.learned_counts({("a", "x.test"): 4}, replace=False)
    assert value(reg, learned, namespace="a", name="x.test") == 4
    f.learned_counts({("a", "x.test"): 4}, replace=True)  # y.test left the policies
    assert value(reg, learned, namespace="b", name="y.test") is None
    f.lookup(True)
    f.lookup(False)
    f.query(True, 0.003)
    f.query(False, None)
    assert value(reg, "egress_router_firewall_dns_lookups_total", outcome="error") == 1
    assert value(reg, "egress_router_firewall_dns_proxy_queries_total", outcome="servfail") == 1
    assert value(reg, "egress_router_firewall_dns_proxy_hold_seconds_count") == 1


def test_multiprocess_mode_writes_a_private_directory_and_removes_it() -> None:
    from prometheus_client.multiprocess import MultiProcessCollector

    path = m.enable_multiprocess()
    try:
        assert os.environ[m.MULTIPROC_ENV] == path
        h = m.HttpProxyMetrics()  # not registered: the collector reads the files
        h.exchange("GET", 200, "rule 1: *", 0, 10, 0.001, False)
        h.sample(3, 0)
        assert any(name.endswith(".db") for name in os.listdir(path))
        reg = CollectorRegistry()
        MultiProcessCollector(reg)  # type: ignore[no-untyped-call]
        total = "egress_router_http_requests_total"
        assert value(reg, total, method="GET", status="200", rule="rule 1: *") == 1
        assert value(reg, "egress_router_http_client_connections") == 3
        m.process_exited(os.getpid())  # live gauges of a dead worker leave the sums
        assert value(reg, "egress_router_http_client_connections") is None
    finally:
        m.disable_multiprocess(path)
    assert m.MULTIPROC_ENV not in os.environ
    assert not os.path.exists(path)
    single = CollectorRegistry()
    m.HttpProxyMetrics(single).sample(1, 0)  # back to ordinary in-memory values
    assert value(single, "egress_router_http_client_connections") == 1
