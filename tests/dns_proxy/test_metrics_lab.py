"""The DNS proxy's metrics, for real: both forwarding paths (the relay with two workers, i.e.
multi-process mode), /metrics fetched with curl inside the router pod."""

from __future__ import annotations

import pytest

from egress_router.lab.dns import DnsServer
from egress_router.lab.topology import Lab
from tests.dns_proxy.helpers import ROUTER, curl, eventually, router_network, start_proxy, web
from tests.http_proxy.test_metrics_lab import sample

pytestmark = pytest.mark.lab
METRICS = f"{ROUTER}:9107"
S25, S26 = "203.0.113.25", "203.0.113.26"


def scrape(lab: Lab) -> str:
    result = lab.exec("router", ["curl", "-sS", "--max-time", "5", f"http://{METRICS}/metrics"])
    assert result.returncode == 0, result.stderr
    return str(result.stdout)


@pytest.mark.parametrize("forwarding", ["kernel", "relay"])
def test_lookups_addresses_and_relayed_connections_are_counted(lab: Lab, forwarding: str) -> None:
    router_network(lab)
    dns = DnsServer(lab, {"app.example": [S26]}, ttl=30).start()
    dns.use_from("router")
    web(lab, S25)
    web(lab, S26)
    extra = {"EGRESS_DNS_PROXY_METRICS": METRICS, "EGRESS_DNS_PROXY_RELAY_WORKERS": "2"}
    start_proxy(lab, "80 app.example\n81 203.0.113.25 80\n82 missing.example\n",
                forwarding=forwarding, extra=extra)  # fmt: skip
    for port in (80, 81):
        result = curl(lab, port)
        assert result.returncode == 0, result.stderr
    text = scrape(lab)
    workers = 2 if forwarding == "relay" else 1  # each relay worker follows the names itself
    assert sample(text, "egress_router_dns_proxy_resolutions_total", port="80", outcome="ok") >= 1
    failed = sum(  # the lab's dnsmasq refuses unknown names: "error" rather than "nxdomain"
        sample(text, "egress_router_dns_proxy_resolutions_total", port="82", outcome=outcome)
        for outcome in ("nxdomain", "error")
    )
    assert failed >= workers, text
    assert sample(text, "egress_router_dns_proxy_addresses", port="80") == 1
    assert sample(text, "egress_router_dns_proxy_addresses", port="82") == 0
    assert sample(text, "egress_router_dns_proxy_last_success_timestamp_seconds", port="81") > 0
    assert sample(text, "egress_router_dns_proxy_forwarding_updates_total", outcome="ok") >= workers
    if forwarding == "kernel":
        assert "egress_router_dns_proxy_relay_connections_total{" not in text
        return
    assert sample(text, "egress_router_dns_proxy_relay_connections_total", port="80") == 1
    assert sample(text, "egress_router_dns_proxy_relay_connections_total", port="81") == 1

    def closed() -> bool:
        text = scrape(lab)
        return sample(text, "egress_router_dns_proxy_relay_active_connections", port="81") == 0

    assert eventually(closed)
    text = scrape(lab)
    up = sample(text, "egress_router_dns_proxy_relay_bytes_total", port="81", direction="up")
    down = sample(text, "egress_router_dns_proxy_relay_bytes_total", port="81", direction="down")
    assert 60 < up < 400, text  # one GET request
    assert down > up, text  # its answer with headers
