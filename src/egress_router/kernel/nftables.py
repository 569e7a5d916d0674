"""nftables through its JSON interface (``nft -j``): the only module that runs ``nft``.

Owns: sending a batch of JSON commands as ONE atomic transaction, checking a batch without
applying it, reading tables back as JSON, and reading the elements of a table's sets (with
their timeouts and time left): the one reader of ``nft -j`` set listings.
Must not: decide what the rules are (the features' ``model`` planners build the command lists).

A batch given to ``nft -j -f -`` is committed by the kernel as a single transaction: either
every command takes effect or none does, so a failed reload keeps the last good ruleset.
The process runs in the caller's network namespace (use ``ip netns exec`` or setns first).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from egress_router.common.nft import Command
from egress_router.common.nft import replace_table as replace_table_commands
from egress_router.errors import DataplaneError

__all__ = [
    "Command",
    "SetElement",
    "apply",
    "batch",
    "check",
    "delete_table",
    "list_sets",
    "list_table",
    "list_table_text",
    "list_tables",
    "read_set_elements",
    "replace_table_commands",
]

_GUARDED_SIGNALS = {signal.SIGTERM, signal.SIGINT}
NFT_TIMEOUT_S = 60.0  # a 10,000-element batch takes well under a second; 60 s means a hang


def _nft_binary() -> str:
    path = shutil.which("nft") or next(
        (p for p in ("/usr/sbin/nft", "/sbin/nft") if os.path.exists(p)), None
    )
    if path is None:
        raise DataplaneError("nft not found: install the nftables package")
    return path


def _run(args: Sequence[str], stdin: str | None = None) -> str:
    # A SIGTERM/SIGINT sent to our process group (Ctrl-C, a supervisor stopping us) must not
    # kill nft between the kernel's commit and its exit, which would report a transaction that
    # took effect as a failure. nft gets its own session, and the signals stay blocked while it
    # runs (so one arriving between fork and exec cannot reach it either); our own handlers
    # run as soon as nft has exited.
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, _GUARDED_SIGNALS)
    try:
        proc = subprocess.run(
            [_nft_binary(), *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=NFT_TIMEOUT_S,
            check=False,
            start_new_session=True,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DataplaneError(f"nft failed to run: {exc}") from exc
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
    if proc.returncode != 0:
        detail = " ".join(proc.stderr.split())[:500] or f"exit status {proc.returncode}"
        raise DataplaneError(f"nftables refused the ruleset: {detail}")
    return proc.stdout


def batch(commands: Sequence[Command]) -> str:
    """The JSON document for a list of commands (what ``apply`` sends)."""
    return json.dumps({"nftables": list(commands)}, separators=(",", ":"))


def apply(commands: Sequence[Command]) -> None:
    """Apply ``commands`` in one atomic transaction, or raise and change nothing."""
    if commands:
        _run(["-j", "-f", "-"], batch(commands))


def check(commands: Sequence[Command]) -> None:
    """Ask the kernel whether ``commands`` would apply, without applying them (``nft -c``)."""
    if commands:
        _run(["-c", "-j", "-f", "-"], batch(commands))


def list_table(family: str, name: str) -> list[dict[str, Any]] | None:
    """The objects of one table as ``nft -j`` lists them, or None if the table does not exist."""
    try:
        out = _run(["-j", "list", "table", family, name])
    except DataplaneError as exc:
        if "No such file or directory" in str(exc):
            return None
        raise
    items: list[dict[str, Any]] = json.loads(out).get("nftables", [])
    return [item for item in items if "metainfo" not in item]


def list_table_text(family: str, name: str) -> str | None:
    """One table as ``nft list`` prints it (with counters), or None if it does not exist."""
    try:
        return _run(["list", "table", family, name])
    except DataplaneError as exc:
        if "No such file or directory" in str(exc):
            return None
        raise


def list_tables() -> list[tuple[str, str]]:
    """(family, name) of every table in this network namespace."""
    items = json.loads(_run(["-j", "list", "tables"])).get("nftables", [])
    return [(t["table"]["family"], t["table"]["name"]) for t in items if "table" in t]


def delete_table(family: str, name: str) -> None:
    """Remove our table if present (idempotent)."""
    apply(replace_table_commands(family, name))


@dataclass(frozen=True)
class SetElement:
    """One element of a set as the kernel lists it.

    ``key`` is nft's text form of the value: ``203.0.113.5``, ``203.0.113.0/28`` (a prefix),
    ``198.18.0.1-198.18.0.9`` (a range), ``203.0.113.5 . 80`` (a concatenation).
    ``timeout`` is the element's own timeout and ``expires`` the seconds it has left; None when
    the kernel lists none (an element without ``expires`` stays until it is deleted).
    """

    key: str
    timeout: float | None = None
    expires: float | None = None


def _key(value: Any) -> str | None:
    """nft's text form of one listed value, or None for a shape this reader does not know."""
    if isinstance(value, bool):  # JSON true/false: not a value a set of ours holds
        return None
    if isinstance(value, str | int):
        return str(value)
    if isinstance(value, dict):
        if isinstance(value.get("prefix"), dict):
            addr, length = value["prefix"].get("addr"), value["prefix"].get("len")
            if isinstance(addr, str) and isinstance(length, int):
                return f"{addr}/{length}"
        elif isinstance(value.get("range"), list) and len(value["range"]) == 2:
            low, high = (_key(v) for v in value["range"])
            if low is not None and high is not None:
                return f"{low}-{high}"
        elif isinstance(value.get("concat"), list) and value["concat"]:
            parts = [_key(v) for v in value["concat"]]
            if all(p is not None for p in parts):
                return " . ".join(str(p) for p in parts)
    return None


def _seconds(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return float(value)
    return None


def _element(item: Any) -> SetElement | None:
    if isinstance(item, dict) and isinstance(item.get("elem"), dict):  # with timeout, counter…
        inner = item["elem"]
        key = _key(inner.get("val"))
        if key is None:
            return None
        return SetElement(key, _seconds(inner.get("timeout")), _seconds(inner.get("expires")))
    key = _key(item)
    return None if key is None else SetElement(key)


def read_set_elements(items: Iterable[Any]) -> dict[str, tuple[SetElement, ...]]:
    """Set name -> its elements, from the objects ``list_table`` returns (maps are skipped).

    Shapes the kernel lists: a bare value (``"203.0.113.6"``, ``80``), ``{"prefix": …}``,
    ``{"range": […]}``, ``{"concat": […]}``, and any of these wrapped in ``{"elem": {"val": …,
    "timeout": s, "expires": s, "counter": …, "comment": …}}``. An element of another shape is
    left out rather than guessed at.
    """
    out: dict[str, tuple[SetElement, ...]] = {}
    for item in items:
        body = item.get("set") if isinstance(item, dict) else None
        if not isinstance(body, dict) or not isinstance(body.get("name"), str):
            continue
        listed = body.get("elem", [])
        elements = (_element(e) for e in (listed if isinstance(listed, list) else []))
        out[body["name"]] = tuple(e for e in elements if e is not None)
    return out


def list_sets(family: str, table: str) -> dict[str, tuple[SetElement, ...]] | None:
    """The sets of one table with their elements, or None if the table does not exist."""
    items = list_table(family, table)
    return None if items is None else read_set_elements(items)
