"""The failover metrics: role, transitions and the time of the last one."""

from __future__ import annotations

from prometheus_client.registry import CollectorRegistry

from egress_router.runtime.metrics import FailoverMetrics


def test_role_and_transitions() -> None:
    registry = CollectorRegistry()
    m = FailoverMetrics(registry)
    m.role(False, 0)
    assert registry.get_sample_value("egress_router_failover_active") == 0
    assert (
        registry.get_sample_value("egress_router_failover_last_transition_timestamp_seconds") == 0
    )
    m.role(True, 1)
    assert registry.get_sample_value("egress_router_failover_active") == 1
    assert registry.get_sample_value("egress_router_failover_transitions") == 1
    stamp = registry.get_sample_value("egress_router_failover_last_transition_timestamp_seconds")
    assert stamp is not None and stamp > 1e9
