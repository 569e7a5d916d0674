"""The opt-in metrics knobs of every component: a bad value is one line naming it, exit 1."""

from __future__ import annotations

import pytest

from tests.conftest import cli


@pytest.mark.parametrize(
    ("args", "env", "named"),
    [
        (["http-proxy"], {"EGRESS_HTTP_PROXY_METRICS": "9100"}, "EGRESS_HTTP_PROXY_METRICS"),
        (["http-proxy", "--metrics", "x:1"], {}, "EGRESS_HTTP_PROXY_METRICS"),
        (["dns-proxy"], {"EGRESS_DNS_PROXY_METRICS": "1.2.3.4:0"}, "EGRESS_DNS_PROXY_METRICS"),
        (["dns-proxy", "--metrics", "1.2.3.4"], {}, "--metrics"),
        (["firewall", "run", "--metrics", "nowhere:1", "p.json"], {}, "--metrics"),
        (["firewall", "run", "p.json"], {"EGRESS_FIREWALL_METRICS": "a:b"}, "--metrics"),
    ],
)
def test_bad_metrics_listen_is_one_line(args: list[str], env: dict[str, str], named: str) -> None:
    full = {
        "EGRESS_HTTP_PROXY_DESTINATION": "*",
        "EGRESS_DNS_PROXY_DESTINATION": "80 203.0.113.25",
        "EGRESS_DNS_PROXY_MODE": "unit-test",
        **env,
    }
    result = cli(*args, env=full)
    assert result.returncode == 1, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("egress-router: ") and named in lines[0]
