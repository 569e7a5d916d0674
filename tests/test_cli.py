"""The top-level command line: usage errors are one clean message and status 2, no traceback."""

from __future__ import annotations

import pytest

from tests.conftest import cli


@pytest.mark.parametrize(
    "args",
    [
        ("setup", "--bogus"),
        ("nosuch",),
        ("firewall", "explain"),
        ("lab", "down", "--no-such-flag"),
    ],
)
def test_usage_errors_exit_2_without_traceback(args: tuple[str, ...]) -> None:
    result = cli(*args)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "Error:" in result.stderr


def test_help_lists_every_command() -> None:
    result = cli("--help")
    assert result.returncode == 0
    for command in ("setup", "http-proxy", "dns-proxy", "firewall", "lab"):
        assert command in result.stdout
