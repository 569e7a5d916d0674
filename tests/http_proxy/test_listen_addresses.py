"""The proxy's listen addresses: alias spellings are unmapped before the checks and the bind."""

from __future__ import annotations

import pytest

from egress_router.errors import VariableError
from egress_router.http_proxy.model.settings import parse_listen

VAR = "EGRESS_HTTP_PROXY_LISTEN_ADDRESS"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("::ffff:198.18.0.2", ("198.18.0.2",)),  # bound as the IPv4 address it is
        ("[::ffff:127.0.0.1], 198.18.0.2", ("127.0.0.1", "198.18.0.2")),
        ("2001:db8::1", ("2001:db8::1",)),
    ],
)
def test_listen_addresses_are_unmapped(value: str, expected: tuple[str, ...]) -> None:
    assert parse_listen(value, VAR) == expected


@pytest.mark.parametrize("value", ["0.0.0.0", "::", "::ffff:0.0.0.0", "[::ffff:0:0]"])
def test_every_spelling_of_the_unspecified_address_is_refused(value: str) -> None:
    with pytest.raises(VariableError, match="refusing to listen on every address"):
        parse_listen(value, VAR)
