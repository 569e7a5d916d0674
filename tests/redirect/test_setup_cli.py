"""``egress-router setup`` without a lab: unit-test mode, error lines, the destination file."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import cli
from tests.reference_examples import REDIRECT_MULTI

BASE = {
    "EGRESS_SOURCE": "192.168.12.99/24",
    "EGRESS_GATEWAY": "192.168.12.1",
    "EGRESS_ROUTER_MODE": "unit-test",
}
GOLDEN = Path(__file__).parent / "model" / "golden"


def test_unit_test_mode_prints_the_golden_plan() -> None:
    result = cli("setup", env={**BASE, "EGRESS_DESTINATION": REDIRECT_MULTI})
    assert result.returncode == 0, result.stderr
    assert result.stdout == (GOLDEN / "unit_test_multi.txt").read_text()


@pytest.mark.parametrize(
    ("env", "line"),
    [
        (
            {"EGRESS_SOURCE": "1.2.3"},
            "egress-router: EGRESS_SOURCE: unspecified or invalid '1.2.3' (expected an IPv4 "
            "address such as 192.168.12.99 or 192.168.12.99/24)",
        ),
        (
            {"EGRESS_ROUTER_MODE": "redirect"},
            "egress-router: EGRESS_ROUTER_MODE: Unrecognized EGRESS_ROUTER_MODE 'redirect' "
            "(expected legacy, init, http-proxy, dns-proxy, unit-test)",
        ),
        (
            {"EGRESS_DESTINATION": "80 tcp 10.4.5.6\n80 tcp 10.4.5.7"},
            "egress-router: EGRESS_DESTINATION line 2: localport 80 is already used, must be "
            "unique for each destination (tcp 80 first used on line 1)",
        ),
        (
            {"EGRESS_DESTINATION": "800000 tcp 10.4.5.6"},
            "egress-router: EGRESS_DESTINATION line 1: Invalid port: 800000, must be in the "
            "range 1 to 65535 (local port in '800000 tcp 10.4.5.6')",
        ),
        (
            {"EGRESS_DESTINATION": "10.1.2.3\n81 tcp 10.4.5.6"},
            "egress-router: EGRESS_DESTINATION line 2: fallback IP must be the last line "
            "(fallback on line 1, then '81 tcp 10.4.5.6')",
        ),
    ],
)
def test_errors_are_one_exact_line(env: dict[str, str], line: str) -> None:
    result = cli("setup", env={**BASE, "EGRESS_DESTINATION": "10.1.2.3", **env})
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == line + "\n"


def test_destination_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "destination"
    path.write_text(REDIRECT_MULTI)
    by_variable = cli("setup", env={**BASE, "EGRESS_DESTINATION_FILE": str(path)})
    by_flag = cli("setup", "--destination-file", str(path), env=BASE)
    expected = (GOLDEN / "unit_test_multi.txt").read_text()
    assert by_variable.stdout == by_flag.stdout == expected


def test_destination_file_larger_than_a_variable_can_be(tmp_path: Path) -> None:
    path = tmp_path / "destination"
    path.write_text("".join(f"{port} tcp 203.0.113.26\n" for port in range(10_000, 20_000)))
    result = cli("setup", env={**BASE, "EGRESS_DESTINATION_FILE": str(path)})
    assert result.returncode == 0, result.stderr
    assert "19999 : 203.0.113.26" in result.stdout


@pytest.mark.parametrize(
    ("env", "phrase"),
    [
        ({"EGRESS_DESTINATION_FILE": "/nonexistent/x"}, "EGRESS_DESTINATION_FILE: cannot read"),
        (
            {"EGRESS_DESTINATION_FILE": "/etc/hostname", "EGRESS_DESTINATION": "10.1.2.3"},
            "not both",
        ),
    ],
)
def test_destination_file_errors(env: dict[str, str], phrase: str) -> None:
    result = cli("setup", env={**BASE, **env})
    assert result.returncode == 1 and phrase in result.stderr
    assert len(result.stderr.splitlines()) == 1
