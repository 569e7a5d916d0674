"""Line and character rules shared by every line-based grammar (issue 8, items 4 and 8).

Each case runs against the three destination lists (``EGRESS_DESTINATION``,
``EGRESS_HTTP_PROXY_DESTINATION``, ``EGRESS_DNS_PROXY_DESTINATION``) and the CNI entries.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from egress_router.cni.model.config import CniError
from egress_router.cni.model.config import parse_destinations as cni_destinations
from egress_router.common.lines import meaningful_lines, split_fields
from egress_router.dns_proxy.model import destinations as dns_destinations
from egress_router.errors import VariableError
from egress_router.http_proxy.model import rules as http_rules
from egress_router.redirect.model import destinations as redirect

# Every line boundary ``str.splitlines`` knows, except the two we accept (LF and CRLF).
SPLITLINES_ONLY = [
    ("\r", "lone CR"),
    ("\x0b", "VT"),
    ("\x0c", "FF"),
    ("\x1c", "FS"),
    ("\x1d", "GS"),
    ("\x1e", "RS"),
    ("\x85", "NEL"),
    ("\u2028", "LS"),
    ("\u2029", "PS"),
]


def test_the_table_covers_every_splitlines_boundary() -> None:
    # Any code point splitlines breaks on must be in the table (or be LF): nothing forgotten.
    breaking = {chr(c) for c in range(0x110000) if len(f"a{chr(c)}b".splitlines()) == 2}
    assert breaking == {sep for sep, _ in SPLITLINES_ONLY} | {"\n"}


# (variable, parse, a live rule that a split would have turned the comment into)
GRAMMARS: list[tuple[str, Callable[[str], object], str]] = [
    ("EGRESS_DESTINATION", redirect.parse_destination, "9000 tcp 203.0.113.26"),
    ("EGRESS_HTTP_PROXY_DESTINATION", http_rules.parse_destinations, "*"),
    ("EGRESS_DNS_PROXY_DESTINATION", dns_destinations.parse_destinations, "53 203.0.113.26"),
]
GOOD = {
    "EGRESS_DESTINATION": "203.0.113.25",
    "EGRESS_HTTP_PROXY_DESTINATION": "www.example.com",
    "EGRESS_DNS_PROXY_DESTINATION": "80 203.0.113.25",
}


@pytest.mark.parametrize(("sep", "label"), SPLITLINES_ONLY, ids=[s[1] for s in SPLITLINES_ONLY])
@pytest.mark.parametrize(("variable", "parse", "live"), GRAMMARS, ids=[g[0] for g in GRAMMARS])
def test_unicode_line_break_in_a_comment_is_an_error_not_a_rule(
    variable: str, parse: Callable[[str], object], live: str, sep: str, label: str
) -> None:
    value = f"{GOOD[variable]}\n# disabled:{sep}{live}\n"
    with pytest.raises(VariableError) as info:
        parse(value)
    error = info.value
    assert error.variable == variable
    assert error.line == 2
    assert "is not allowed" in error.one_line()
    assert sep not in error.one_line()  # escaped, never copied to the terminal
    assert "\n" not in error.one_line()


@pytest.mark.parametrize(("variable", "parse", "live"), GRAMMARS, ids=[g[0] for g in GRAMMARS])
@pytest.mark.parametrize("crlf", ["\n", "\r\n"])
def test_lf_and_crlf_still_end_lines(
    variable: str, parse: Callable[[str], object], live: str, crlf: str
) -> None:
    parse(f"# comment{crlf}{GOOD[variable]}{crlf}")


@pytest.mark.parametrize(
    "ch",
    [
        "\x00",
        "\x01",
        "\x1b",
        "\x1f",
        "\x7f",
        "\x9b",
        "\xa0",
        "\u3000",
        "\u200b",
        "\u202e",
        "\ufeff",
    ],
)
@pytest.mark.parametrize(("variable", "parse", "live"), GRAMMARS, ids=[g[0] for g in GRAMMARS])
def test_other_control_and_separator_characters_are_errors(
    variable: str, parse: Callable[[str], object], live: str, ch: str
) -> None:
    good = GOOD[variable]
    head, _, tail = good.partition(" ")
    value = f"# ok\n{head}{ch}{tail}" if tail else f"# ok\n{good}{ch}"
    with pytest.raises(VariableError) as info:
        parse(value)
    assert info.value.line == 2
    assert f"U+{ord(ch):04X}" in info.value.one_line()
    assert ch not in info.value.one_line()


@pytest.mark.parametrize("sep", ["\xa0", "\u3000", "\x1f", "\u2003"])
def test_only_space_and_tab_separate_fields(sep: str) -> None:
    with pytest.raises(VariableError, match="line 1: character U\\+"):
        redirect.parse_destination(f"80{sep}tcp{sep}203.0.113.25")
    assert redirect.parse_destination("80\ttcp  \t203.0.113.25").rules[0].port == 80


def test_escape_sequence_in_a_bad_value_is_escaped_in_the_message() -> None:
    with pytest.raises(VariableError) as info:
        redirect.parse_destination("80 tcp \x1b[2J\x1b[31mowned")
    line = info.value.one_line()
    assert "\x1b" not in line
    assert "\\x1b[2J" in line


def test_split_fields_and_meaningful_lines() -> None:
    assert split_fields("a \t b\tc") == ("a", "b", "c")
    lines = list(meaningful_lines("# c\r\n\r\n a  b # tail\r\nc", "V"))
    assert [(line.number, line.fields) for line in lines] == [(3, ("a", "b")), (4, ("c",))]


# -- item 8: ASCII digits, zone ids, Python's int() text ----------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "\uff11\uff19\uff18.19.0.99",  # full-width digits
        "198.19.0.\u0669\u0669",  # Arabic-Indic
        "80 tcp 198.19.0.\u0669\u0669",
        "\u0668\u0660 tcp 198.19.0.99",
        "80 tcp 198.19.0.99 \u0668\u0660",
    ],
)
def test_redirect_takes_ascii_digits_only(value: str) -> None:
    with pytest.raises(VariableError) as info:
        redirect.parse_destination(value)
    assert info.value.line == 1


@pytest.mark.parametrize(
    ("value", "phrase"),
    [
        ("\uff11\uff19\uff18.19.0.99/\u0662\u0664", "ASCII"),
        ("198.19.0.0/\u0662\u0664", "ASCII"),
        ("198.19.0.0/\u00b2", "ASCII"),
        ("fe80::1%eth0", "zone"),
        ("fe80::%eth0/64", "zone"),
        ("198.19.0.0/99999999999999999999", "prefix length must be 0-32"),
    ],
)
def test_http_rules_take_ascii_digits_and_no_zone(value: str, phrase: str) -> None:
    with pytest.raises(VariableError) as info:
        http_rules.parse_destinations(value)
    assert phrase in str(info.value)
    assert "invalid literal" not in str(info.value)


@pytest.mark.parametrize(
    "value", ["8\u0660 203.0.113.25", "80 198.19.0.\u0669\u0669", "80 203.0.113.25 \u00b2"]
)
def test_dns_proxy_takes_ascii_digits_only(value: str) -> None:
    with pytest.raises(VariableError) as info:
        dns_destinations.parse_destinations(value)
    assert "invalid literal" not in str(info.value)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("EGRESS_DNS_PROXY_TTL_MIN", "\u00b2"),
        ("EGRESS_DNS_PROXY_TTL_MAX", "\u0665"),
        ("EGRESS_DNS_PROXY_RELAY_WORKERS", "\u00b2"),
        ("EGRESS_DNS_PROXY_TTL_MIN", "9" * 5000),
        ("EGRESS_ROUTER_CLUSTER_INTERFACE", "\u0665th0"),
    ],
)
def test_dns_proxy_settings_take_ascii_digits_only(variable: str, value: str) -> None:
    env = {"EGRESS_DNS_PROXY_DESTINATION": "80 203.0.113.25", variable: value}
    with pytest.raises(VariableError) as info:
        dns_destinations.parse_settings(env)
    assert info.value.variable == variable


@pytest.mark.parametrize(
    "entry",
    [
        "80\xa0tcp 203.0.113.25",
        "80 tcp 203.0.113.25/\u00b2",
        "80 tcp 203.0.113.25\x1b",
        "\u0668\u0660 tcp 203.0.113.25",
    ],
)
def test_cni_entries_take_ascii_and_blanks_only(entry: str) -> None:
    with pytest.raises(CniError) as info:
        cni_destinations([entry])
    assert "ip.destinations[0]" in str(info.value)
    assert "invalid literal" not in str(info.value)


@pytest.mark.parametrize(
    ("variable", "value", "phrase"),
    [
        ("EGRESS_SOURCE", "192.168.12.99/\u00b2", "prefix length must be 0-32"),
        ("EGRESS_SOURCE", "192.168.12.99/\u0662\u0664", "prefix length must be 0-32"),
        ("EGRESS_SOURCE", "\uff11\uff19\uff12.168.12.99", "unspecified or invalid"),
        ("EGRESS_SOURCE", "192.168.12.99\x1c", "unspecified or invalid"),
        ("EGRESS_SOURCE", "192.168.12.99\xa0", "unspecified or invalid"),
        ("EGRESS_GATEWAY", "192.168.12.\u0661", "unspecified or invalid"),
        ("EGRESS_GATEWAY", "192.168.12.1\x85", "unspecified or invalid"),
    ],
)
def test_source_and_gateway_take_ascii_digits_only(variable: str, value: str, phrase: str) -> None:
    from egress_router.redirect.model.env import parse_router_env

    env = {
        "EGRESS_SOURCE": "192.168.12.99/24",
        "EGRESS_GATEWAY": "192.168.12.1",
        "EGRESS_DESTINATION": "203.0.113.25",
        variable: value,
    }
    with pytest.raises(VariableError) as info:
        parse_router_env(env)
    assert info.value.variable == variable
    assert phrase in str(info.value)
    assert "invalid literal" not in str(info.value)
    assert all(ch.isprintable() for ch in info.value.one_line())
