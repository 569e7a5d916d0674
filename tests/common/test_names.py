"""common.names: the one interface-name rule (the kernel's, printable ASCII, no nft wildcard)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from egress_router.common.names import (
    INTERFACE_NAME_RULE,
    MAX_INTERFACE_NAME,
    check_interface_name,
    is_interface_name,
)


@pytest.mark.parametrize(
    "name",
    [
        "eth0",  # every name a document shows
        "net1",
        "macvlan0",
        "ens3",
        "ens3.100",
        "br-ex",
        "ext0",
        "cbr0",
        "x",
        "a" * 15,  # IFNAMSIZ - 1
        "eth0@x",  # the kernel allows any printable character but / and :
        "veth_1+2",
        "...",  # only "." and ".." are refused
    ],
)
def test_names_accepted(name: str) -> None:
    assert check_interface_name(name) == name and is_interface_name(name)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("", "cannot be empty"),
        ("a" * 16, "at most 15"),
        ("a" * 100_000, "at most 15"),  # overlong: refused before any walk
        (".", "not an interface name"),
        ("..", "not an interface name"),
        ("a/b", "'/'"),
        ("eth0:1", "':'"),  # an alias label, not a name
        ("eth*", "'*'"),  # nft would read it as a wildcard: iifname "eth*" matches eth0, eth1
        ("eth\\*", "'\\\\'"),
        ("eth 0", "U+0020"),
        ("eth\t0", "U+0009"),
        ("eth0\n", "U+000A"),  # line breaks
        ("eth0\r", "U+000D"),
        ("\x00", "U+0000"),
        ("eth\x7f", "U+007F"),
        ("eth\u00a00", "U+00A0"),  # NBSP: the kernel's isspace() refuses its byte too
        ("ethé", "U+00E9"),
        ("eth\u0661", "U+0661"),  # an Arabic-Indic digit
        ("\u2028", "U+2028"),
    ],
)
def test_names_refused(name: str, reason: str) -> None:
    with pytest.raises(ValueError, match="interface name") as info:
        check_interface_name(name)
    assert reason in str(info.value)
    assert not is_interface_name(name)


def test_the_rule_text_says_the_limit() -> None:
    assert f"1-{MAX_INTERFACE_NAME}" in INTERFACE_NAME_RULE


@given(st.text(max_size=20))
def test_any_text_is_a_name_or_a_value_error(text: str) -> None:
    try:
        check_interface_name(text)
    except ValueError:
        return
    raw = text.encode()
    # never looser than the kernel's dev_valid_name
    assert 0 < len(raw) < 16 and text not in (".", "..")
    assert not any(b in b"/: \t\n\v\f\r\xa0" for b in raw)


def test_interface_variable_names_the_variable_and_the_rule() -> None:
    from egress_router.common.names import interface_variable
    from egress_router.errors import VariableError

    assert interface_variable("EGRESS_ROUTER_MACVLAN_INTERFACE", "net1") == "net1"
    with pytest.raises(VariableError) as err:
        interface_variable("EGRESS_ROUTER_MACVLAN_INTERFACE", "a b")
    line = err.value.one_line()
    assert line.startswith("EGRESS_ROUTER_MACVLAN_INTERFACE") and "invalid interface name" in line
