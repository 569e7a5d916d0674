"""``egress-router dns-proxy`` as a user runs it: unit-test plan, one-line errors, exit 1."""

from __future__ import annotations

import pytest

from tests.conftest import cli
from tests.reference_examples import DNS_PROXY


def test_unit_test_mode_prints_the_plan_without_lookups() -> None:
    result = cli(
        "dns-proxy",
        env={
            "EGRESS_DNS_PROXY_DESTINATION": DNS_PROXY,
            "EGRESS_DNS_PROXY_DEBUG": "1",
            "EGRESS_DNS_PROXY_MODE": "unit-test",
        },
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert lines[0].startswith("dns-proxy plan: forwarding=kernel cluster-interface=eth0")
    assert lines[1:] == [
        "  line 2: port 80 -> 203.0.113.25:80 (address)",
        "  line 3: port 100 -> example.com:100 (name, resolved at run time)",
        "  line 4: port 8080 -> 203.0.113.26:80 (address)",
        "  line 5: port 8443 -> foobar.com:443 (name, resolved at run time)",
    ]


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "EGRESS_DNS_PROXY_DESTINATION: Must specify EGRESS_DNS_PROXY_DESTINATION"),
        (
            {"EGRESS_DNS_PROXY_DESTINATION": ""},
            "EGRESS_DNS_PROXY_DESTINATION: Must specify EGRESS_DNS_PROXY_DESTINATION",
        ),
        (
            {"EGRESS_DNS_PROXY_DESTINATION": "# c\n8080 invalid\r\n"},
            "EGRESS_DNS_PROXY_DESTINATION line 2: Bad destination '8080 invalid'",
        ),
        (
            {"EGRESS_DNS_PROXY_DESTINATION": "99999 1.2.3.4"},
            "EGRESS_DNS_PROXY_DESTINATION line 1: Invalid port: 99999, must be in the range"
            " 1 to 65535 '99999 1.2.3.4'",
        ),
        (
            {"EGRESS_DNS_PROXY_DESTINATION": "80 1.2.3.4\n80 example.com"},
            "EGRESS_DNS_PROXY_DESTINATION line 2: Proxy port 80 already used, must be unique"
            " for each destination",
        ),
        (
            {"EGRESS_DNS_PROXY_DESTINATION": "80 1.2.3.4", "EGRESS_DNS_PROXY_FORWARDING": "x"},
            "EGRESS_DNS_PROXY_FORWARDING: unrecognised forwarding 'x'",
        ),
    ],
)
def test_bad_input_one_line_exit_1(env: dict[str, str], expected: str) -> None:
    result = cli("dns-proxy", env={**env, "EGRESS_DNS_PROXY_MODE": "unit-test"})
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("egress-router: " + expected), result.stderr
