"""Pure builders shared by every nftables planner (no I/O: the adapter sends what they build).

Owns: the JSON command type and the prefix that makes a whole-table replacement one atomic
transaction.
Must not: run nft (``egress_router.kernel.nftables`` does).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Command = dict[str, Any]


def replace_table(family: str, name: str) -> list[Command]:
    """Commands that empty ``family name`` whether or not it exists (prefix of a replacement).

    ``add table`` is a no-op on an existing table, so the following ``delete`` never fails;
    together with the re-creation that the caller appends, the whole swap is one transaction,
    and alone they remove the table idempotently.
    """
    table = {"family": family, "name": name}
    return [{"add": {"table": dict(table)}}, {"delete": {"table": dict(table)}}]


MAX_COMMENT = 128  # the kernel's limit on a rule comment, in bytes


@dataclass(frozen=True)
class Table:
    """Builders for the objects of one table: every command names the table's family and name."""

    family: str
    name: str

    def replace(self) -> list[Command]:
        """The atomic-swap prefix for this table (see ``replace_table``)."""
        return replace_table(self.family, self.name)

    def create(self) -> Command:
        return {"add": {"table": {"family": self.family, "name": self.name}}}

    def add(self, kind: str, **fields: Any) -> Command:
        """``add <kind>`` (chain, rule, set, map, element) in this table."""
        return {"add": {kind: {"family": self.family, "table": self.name, **fields}}}

    def base_chain(self, name: str, type_: str, hook: str, prio: int) -> Command:
        """A chain on a netfilter hook with policy accept (our rules decide, not the policy)."""
        return self.add("chain", name=name, type=type_, hook=hook, prio=prio, policy="accept")

    def rule(self, chain: str, *expr: Command, comment: str | None = None) -> Command:
        extra = {"comment": comment[:MAX_COMMENT]} if comment else {}
        return self.add("rule", chain=chain, expr=list(expr), **extra)


def match_meta(key: str, value: Any, op: str = "==") -> Command:
    """``meta <key> <op> <value>`` (iifname, oifname, l4proto, ...)."""
    return {"match": {"op": op, "left": {"meta": {"key": key}}, "right": value}}
