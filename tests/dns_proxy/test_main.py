"""How many processes the DNS proxy runs."""

from __future__ import annotations

import pytest

from egress_router.dns_proxy.main import workers_for
from egress_router.dns_proxy.model.destinations import parse_settings
from egress_router.runtime.workers import cpus

BASE = {"EGRESS_DNS_PROXY_DESTINATION": "80 203.0.113.25"}


@pytest.mark.parametrize(
    ("env", "workers"),
    [
        ({}, 1),  # kernel path: one process, the kernel forwards
        ({"EGRESS_DNS_PROXY_RELAY_WORKERS": "3"}, 1),
        ({"EGRESS_DNS_PROXY_FORWARDING": "relay", "EGRESS_DNS_PROXY_RELAY_WORKERS": "3"}, 3),
        ({"EGRESS_DNS_PROXY_FORWARDING": "relay"}, min(cpus(), 16)),  # 0: one per CPU, max 16
    ],
)
def test_workers(env: dict[str, str], workers: int) -> None:
    assert workers_for(parse_settings({**BASE, **env})) == workers
