"""Pure builders shared by every nftables planner (no I/O: the adapter sends what they build).

Owns: the JSON command type and the prefix that makes a whole-table replacement one atomic
transaction.
Must not: run nft (``egress_router.dataplane.nftables`` does).
"""

from __future__ import annotations

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
