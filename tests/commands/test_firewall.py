"""``firewall run --dns-listen/--dns-upstream ADDR[:PORT]``: the shared endpoint reading, port 53
by default, one line naming the flag (called directly: no agent is started)."""

from __future__ import annotations

import pytest

from egress_router.commands.firewall import _hostport
from egress_router.errors import VariableError


@pytest.mark.parametrize(
    ("text", "endpoint"),
    [
        ("198.18.0.1", ("198.18.0.1", 53)),
        ("198.18.0.1:5353", ("198.18.0.1", 5353)),
        ("[2001:db8::53]:5353", ("2001:db8::53", 5353)),
        ("[2001:db8::53]", ("2001:db8::53", 53)),
        ("2001:db8::53", ("2001:db8::53", 53)),  # unbracketed IPv6: the address alone
    ],
)
def test_accepted(text: str, endpoint: tuple[str, int]) -> None:
    assert _hostport("--dns-listen", text, 53) == endpoint


@pytest.mark.parametrize(
    "text",
    ["", "dns.example", "198.18.0.1:0", "198.18.0.1:٥٣", "[2001:db8::53]x", "[::1",
     "198.18.0.1:53\n", "[fe80::1%eth0]:53", "[198.18.0.1]:53"],
)  # fmt: skip
def test_refused_naming_the_flag(text: str) -> None:
    with pytest.raises(VariableError) as info:
        _hostport("--dns-upstream", text, 53)
    assert str(info.value).startswith("--dns-upstream: ")
    assert "(expected ADDR[:PORT])" in str(info.value)
