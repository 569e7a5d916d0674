"""``egress-router http-proxy`` as a user runs it: unit-test table, one-line errors, exit 1."""

from __future__ import annotations

import pytest

from tests.conftest import cli
from tests.reference_examples import HTTP_PROXY

VAR = "EGRESS_HTTP_PROXY_DESTINATION"


def test_unit_test_mode_prints_the_rule_table() -> None:
    result = cli("http-proxy", env={VAR: HTTP_PROXY, "EGRESS_HTTP_PROXY_MODE": "unit-test"})
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.splitlines() == [
        "rule  line  action  kind     destination",
        "   1     1  deny    domain   example.com and its subdomains",
        "   2     2  deny    network  192.168.1.0/24",
        "   3     3  allow   any      everything else",
        "default: allow (final *)",
    ]


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, f"{VAR}: is not set or empty"),
        ({VAR: ""}, f"{VAR}: is not set or empty"),
        ({VAR: "", "EGRESS_HTTP_PROXY_MODE": "unit-test"}, f"{VAR}: is not set or empty"),
        ({VAR: "# c\r\nfoo bar\r\n"}, f"{VAR} line 2: one destination per line 'foo bar'"),
        ({VAR: "*\nexample.com"}, f"{VAR} line 1: the wildcard '*' must be the last rule"),
        ({VAR: "10.0.0.0/33"}, f"{VAR} line 1: the prefix length must be 0-32 '10.0.0.0/33'"),
        ({VAR: "!!x"}, f"{VAR} line 1: only one '!' is allowed '!!x'"),
        ({VAR: "*", "EGRESS_HTTP_PROXY_LISTEN_PORT": "0"}, "EGRESS_HTTP_PROXY_LISTEN_PORT: a port"),
        ({VAR: "*", "EGRESS_HTTP_PROXY_LISTEN_PORT": "http"}, "EGRESS_HTTP_PROXY_LISTEN_PORT:"),
        (
            {VAR: "*", "EGRESS_HTTP_PROXY_LISTEN_ADDRESS": "0.0.0.0"},
            "EGRESS_HTTP_PROXY_LISTEN_ADDRESS: refusing to listen on every address",
        ),
        (
            {VAR: "*", "EGRESS_HTTP_PROXY_LISTEN_ADDRESS": "::"},
            "EGRESS_HTTP_PROXY_LISTEN_ADDRESS: refusing to listen on every address",
        ),
        (
            {VAR: "*", "EGRESS_HTTP_PROXY_LISTEN_ADDRESS": "egress-1"},
            "EGRESS_HTTP_PROXY_LISTEN_ADDRESS: not an IP address 'egress-1'",
        ),
        (
            {VAR: "*", "EGRESS_HTTP_PROXY_CONNECT_PORTS": "443,70000"},
            "EGRESS_HTTP_PROXY_CONNECT_PORTS: a port must be in the range 1 to 65535 '70000'",
        ),
        (
            {VAR: "*", "EGRESS_HTTP_PROXY_CONNECT_PORTS": "9000-8000"},
            "EGRESS_HTTP_PROXY_CONNECT_PORTS: range runs backwards '9000-8000'",
        ),
        ({VAR: "*", "EGRESS_HTTP_PROXY_WORKERS": "0"}, "EGRESS_HTTP_PROXY_WORKERS: must be"),
        ({VAR: "*", "EGRESS_HTTP_PROXY_WORKERS": "2.5"}, "EGRESS_HTTP_PROXY_WORKERS: not a"),
        (
            {VAR: "*", "EGRESS_HTTP_PROXY_WORKERS": "17"},
            "EGRESS_HTTP_PROXY_WORKERS: must be 1 to 16",
        ),
        (
            {VAR: "*", "EGRESS_HTTP_PROXY_ACCESS_LOG": "none"},
            "EGRESS_HTTP_PROXY_ACCESS_LOG: expected",
        ),
        (
            {VAR: "*", "EGRESS_ROUTER_CLUSTER_INTERFACE": "eth*"},
            "EGRESS_ROUTER_CLUSTER_INTERFACE: invalid interface name",
        ),
        (
            {VAR: "*", "EGRESS_ROUTER_MACVLAN_INTERFACE": "a/b"},
            "EGRESS_ROUTER_MACVLAN_INTERFACE: invalid interface name",
        ),
        ({VAR: "*", "EGRESS_HTTP_PROXY_ACCESS_LOG": "maybe"}, "EGRESS_HTTP_PROXY_ACCESS_LOG:"),
        ({VAR: "*", "EGRESS_HTTP_PROXY_SPLICE": "fast"}, "EGRESS_HTTP_PROXY_SPLICE: expected on"),
        ({VAR: "*", "EGRESS_HTTP_PROXY_IDLE_TIMEOUT": "-1"}, "EGRESS_HTTP_PROXY_IDLE_TIMEOUT:"),
        (
            {VAR: "*", "EGRESS_HTTP_PROXY_HEADER_TIMEOUT": "nan"},
            "EGRESS_HTTP_PROXY_HEADER_TIMEOUT: must be",
        ),
        (
            {VAR: "*", "EGRESS_ROUTER_CLUSTER_INTERFACE": "nosuch0"},
            "EGRESS_ROUTER_CLUSTER_INTERFACE: no such interface in this pod 'nosuch0'",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_1(env: dict[str, str], expected: str) -> None:
    result = cli("http-proxy", env=env)
    assert result.returncode == 1, result.stdout
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("egress-router: " + expected), lines[0]


def test_flags_win_over_variables() -> None:
    result = cli(
        "http-proxy",
        "--listen-address",
        "0.0.0.0",
        env={VAR: "*", "EGRESS_HTTP_PROXY_LISTEN_ADDRESS": "198.18.0.2"},
    )
    assert result.returncode == 1
    assert "refusing to listen on every address" in result.stderr
