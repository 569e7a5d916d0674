"""``kernel.netlink``: a netlink reply that never comes is an error after the deadline."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from egress_router.errors import DataplaneError
from egress_router.kernel.netlink import Netlink


class _Silent:
    """Stands in for pyroute2's socket: every request waits for a reply that is lost."""

    async def link_lookup(self, **_: Any) -> list[int]:
        await asyncio.Event().wait()
        return []

    def close(self) -> None:
        pass


def test_a_lost_reply_is_an_error_not_a_hang() -> None:
    nl = Netlink.__new__(Netlink)
    nl.namespace, nl.timeout = "lost", 0.3
    nl._loop = asyncio.new_event_loop()
    nl._ipr = _Silent()
    started = time.monotonic()
    with pytest.raises(DataplaneError, match=r"look up eth0: no reply within 0\.3 s"):
        nl.link("eth0")
    assert time.monotonic() - started < 2
    nl.close()
