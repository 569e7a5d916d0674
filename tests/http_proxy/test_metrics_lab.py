"""Metrics of the HTTP proxy, for real: two workers (multi-process mode), requests through the
proxy from the client pod, /metrics fetched with curl inside the router pod."""

from __future__ import annotations

import re
import signal

from egress_router.lab import procs
from tests.http_proxy.conftest import ROUTER_IP, WEB, ProxyLab

PORT = 8091
METRICS = f"{ROUTER_IP}:9108"


def sample(text: str, metric: str, /, **labels: str) -> float:
    """The value of one sample (0 when absent)."""
    for line in text.splitlines():
        if line.startswith(metric + "{") or line.startswith(metric + " "):
            found = dict(re.findall(r'(\w+)="([^"]*)"', line.partition("}")[0]))
            if all(found.get(k) == v for k, v in labels.items()):
                return float(line.rsplit(" ", 1)[1])
    return 0.0


def scrape(plab: ProxyLab) -> str:
    result = plab.lab.exec(
        "router", ["curl", "-sS", "--max-time", "5", f"http://{METRICS}/metrics"]
    )
    assert result.returncode == 0, result.stderr
    return str(result.stdout)


def test_counters_move_with_allowed_and_denied_requests(plab: ProxyLab) -> None:
    proc = plab.start_proxy(
        PORT,
        "!*.example.com\n*\n",
        env={"EGRESS_HTTP_PROXY_METRICS": METRICS, "EGRESS_HTTP_PROXY_WORKERS": "2"},
    )
    # the parent serves /metrics once its workers are forked, just after "listening on"
    assert procs.wait_for(lambda: plab.lab.exec("router", ["curl", "-sS", "-o", "/dev/null",
                          f"http://{METRICS}/metrics"]).returncode == 0, 10)  # fmt: skip
    before = scrape(plab)
    assert (
        "egress_router_http_requests_total" not in before
        or sample(before, "egress_router_http_requests_total") == 0
    )
    for _ in range(3):
        assert plab.curl("-o", "/dev/null", f"http://{WEB}/small.txt", port=PORT).returncode == 0
    denied = plab.curl(
        "-o", "/dev/null", "-w", "%{http_code}", "http://www.example.com/", port=PORT
    )
    assert denied.stdout == "403"
    tunnel = plab.curl("-k", "-o", "/dev/null", "https://web.test/", port=PORT)
    assert tunnel.returncode == 0, tunnel.stderr
    text = scrape(plab)
    allowed = sample(
        text, "egress_router_http_requests_total", method="GET", status="200", rule="rule 2: *"
    )
    assert allowed == 3, text
    rule1 = "rule 1: !*.example.com"
    assert sample(text, "egress_router_http_denied_total", rule=rule1) == 1, text
    assert sample(text, "egress_router_http_requests_total", status="403", rule=rule1) == 1
    assert sample(text, "egress_router_http_requests_total", method="CONNECT", status="200") == 1
    assert sample(text, "egress_router_http_bytes_total", direction="down", kind="request") > 0
    assert sample(text, "egress_router_http_bytes_total", direction="up", kind="tunnel") > 0
    count = sample(text, "egress_router_http_request_duration_seconds_count", kind="request")
    assert count == 4
    assert "egress_router_http_client_connections" in text
    assert "egress_router_http_tunnels_open" in text
    proc.stop(signal.SIGTERM)
    plab.proxies.pop(PORT)
    # the supervisor removed its private directory
    assert procs.wait_for(lambda: not proc.alive(), 10)
    assert "egress-router-metrics-" not in plab.lab.exec("router", ["ls", "/tmp"]).stdout


def test_metrics_off_by_default(plab: ProxyLab) -> None:
    result = plab.lab.exec("router", ["curl", "-sS", "--max-time", "2", "http://198.18.0.2:9100/"])
    assert result.returncode != 0
