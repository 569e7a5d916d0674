"""A tiny evaluator of the nft JSON our renderer emits (test helper, not product code).

It understands exactly the subset ``firewall.model.render`` uses, so a property test can hold
the rendered commands themselves (not just the plan) to the first-match reference.
"""

from __future__ import annotations

import ipaddress
from typing import Any


class Ruleset:
    def __init__(self, commands: list[dict[str, Any]]) -> None:
        self.chains: dict[str, list[list[dict[str, Any]]]] = {}
        self.sets: dict[str, list[Any]] = {}
        for command in commands:
            if "add" not in command:
                continue
            ((kind, body),) = command["add"].items()
            if kind == "chain":
                self.chains.setdefault(body["name"], [])
            elif kind in ("set", "map"):
                self.sets.setdefault(body["name"], [])
            elif kind == "element":
                self.sets[body["name"]] += body["elem"]
            elif kind == "rule":
                self.chains[body["chain"]].append(body["expr"])

    @staticmethod
    def _covers(key: Any, addr: Any) -> bool:
        if isinstance(key, dict) and "elem" in key:
            key = key["elem"]["val"]
        if isinstance(key, str):
            return ipaddress.ip_address(key) == addr
        if "prefix" in key:
            net = ipaddress.ip_network(f"{key['prefix']['addr']}/{key['prefix']['len']}")
            return addr.version == net.version and addr in net
        lo, hi = (ipaddress.ip_address(x) for x in key["range"])
        return addr.version == lo.version and lo <= addr <= hi

    def _value(self, left: dict[str, Any], pkt: dict[str, Any]) -> Any:
        if "payload" in left:
            p = left["payload"]
            if p["protocol"] == "th":
                return pkt["port"]
            want = 4 if p["protocol"] == "ip" else 6
            return pkt[p["field"]] if pkt["dst"].version == want else None
        if "meta" in left:
            return pkt["proto"]
        return "new"  # ct state of a first packet

    def _match(self, m: dict[str, Any], pkt: dict[str, Any]) -> bool:
        value = self._value(m["left"], pkt)
        if value is None:
            return False
        right = m["right"]
        if isinstance(right, list):
            return value in right
        if isinstance(right, str) and right.startswith("@"):
            return any(self._covers(e, value) for e in self.sets[right[1:]])
        if isinstance(right, dict) and "set" in right:
            return value in right["set"]
        if isinstance(right, dict) and "prefix" in right:
            return self._covers(right, value)
        if isinstance(value, str):
            return bool(value == right)
        if isinstance(right, int):
            return bool(value == right)
        return self._covers(right, value)

    def _chain(self, name: str, pkt: dict[str, Any]) -> bool | None:
        for expr in self.chains[name]:
            verdict: Any = None
            for stmt in expr:
                if "match" in stmt:
                    if not self._match(stmt["match"], pkt):
                        break
                elif "vmap" in stmt:
                    key = self._value(stmt["vmap"]["key"], pkt)
                    hit = None
                    if key is not None:
                        hit = next(
                            (
                                v
                                for k, v in self.sets[stmt["vmap"]["data"][1:]]
                                if self._covers(k, key)
                            ),
                            None,
                        )
                    if hit is None:
                        break
                    verdict = hit
                elif "counter" in stmt:
                    continue
                elif "reject" in stmt:
                    return False
                else:
                    verdict = stmt
            if verdict is None:
                continue
            if "accept" in verdict:
                return True
            if "goto" in verdict:
                return self._chain(verdict["goto"]["target"], pkt)
            if "jump" in verdict:
                result = self._chain(verdict["jump"]["target"], pkt)
                if result is not None:
                    return result
        return None

    def accepts(self, src: Any, dst: Any, proto: str, port: int | None) -> bool:
        pkt = {"saddr": src, "daddr": dst, "dst": dst, "proto": proto, "port": port}
        result = self._chain("forward", pkt)
        return True if result is None else result
