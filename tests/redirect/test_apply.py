"""The applier's order: a kernel refusal of the ruleset happens before any netlink change."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from egress_router.errors import DataplaneError
from egress_router.kernel.netlink import Link
from egress_router.redirect import apply
from egress_router.redirect.model.env import parse_router_env

ENV = parse_router_env(
    {
        "EGRESS_SOURCE": "198.19.123.99/24",
        "EGRESS_GATEWAY": "198.19.123.1",
        "EGRESS_ROUTER_MODE": "init",
        "EGRESS_DESTINATION": "80 tcp 203.0.113.25",
    }
)


class FakeNetlink:
    """Records every call; reports a fresh pod."""

    calls: ClassVar[list[str]] = []

    def __init__(self, namespace: str | None = None) -> None:
        pass

    def __enter__(self) -> FakeNetlink:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def require_link(self, name: str) -> Link:
        return Link(
            index=2 if name == "eth0" else 3,
            name=name,
            kind=None,
            mac="02:00:00:00:00:01",
            up=False,
            mtu=1500,
        )

    def links(self) -> list[Link]:
        return [self.require_link("eth0"), self.require_link("macvlan0")]

    def routes(self, version: int = 4) -> list[Any]:
        return []

    def dad_states(self, name: str) -> dict[Any, str]:
        return {}

    def addresses(self, name: str) -> list[Any]:
        return []

    def __getattr__(self, name: str) -> Any:
        def record(*args: object, **kwargs: object) -> None:
            FakeNetlink.calls.append(name)

        return record


def test_refused_ruleset_changes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    FakeNetlink.calls = []
    applied: list[object] = []

    def refuse(commands: object) -> None:
        raise DataplaneError("nftables refused the ruleset: test")

    monkeypatch.setattr(apply, "Netlink", FakeNetlink)
    monkeypatch.setattr(apply.nftables, "list_table", lambda family, name: None)
    monkeypatch.setattr(apply.nftables, "check", refuse)
    monkeypatch.setattr(apply.nftables, "apply", applied.append)
    monkeypatch.setattr(apply.sysctl, "read", lambda key: "0")
    monkeypatch.setattr(apply.sysctl, "write", lambda key, value: applied.append(key))
    monkeypatch.setattr(apply.arp, "announce", lambda *a, **k: applied.append("arp"))
    with pytest.raises(DataplaneError, match="refused"):
        apply.configure(ENV)
    assert FakeNetlink.calls == [] and applied == []


def test_accepted_ruleset_is_applied_after_the_network(monkeypatch: pytest.MonkeyPatch) -> None:
    FakeNetlink.calls = []
    events: list[str] = []
    monkeypatch.setattr(apply, "Netlink", FakeNetlink)
    monkeypatch.setattr(apply.nftables, "list_table", lambda family, name: None)
    monkeypatch.setattr(apply.nftables, "check", lambda commands: events.append("check"))
    monkeypatch.setattr(
        apply.nftables, "apply", lambda commands: events.append(f"apply {len(FakeNetlink.calls)}")
    )
    monkeypatch.setattr(apply.sysctl, "read", lambda key: "0")
    monkeypatch.setattr(apply.sysctl, "write", lambda key, value: events.append("sysctl"))
    monkeypatch.setattr(apply.arp, "announce", lambda *a, **k: events.append("arp"))
    outcome = apply.configure(ENV)
    assert FakeNetlink.calls == ["add_address", "set_up", "add_route", "add_route"]
    assert events == ["check", "sysctl", "apply 4", "arp"]
    assert outcome.ruleset_replaced
