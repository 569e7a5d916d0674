"""nftables through its JSON interface (``nft -j``): the only module that runs ``nft``.

Owns: sending a batch of JSON commands as ONE atomic transaction, checking a batch without
applying it, and reading tables back as JSON.
Must not: decide what the rules are (the features' ``model`` planners build the command lists).

A batch given to ``nft -j -f -`` is committed by the kernel as a single transaction: either
every command takes effect or none does, so a failed reload keeps the last good ruleset.
The process runs in the caller's network namespace (use ``ip netns exec`` or setns first).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import shutil
import signal
import subprocess
from collections.abc import Sequence
from typing import Any

from egress_router.common.nft import Command
from egress_router.common.nft import replace_table as replace_table_commands
from egress_router.errors import DataplaneError

__all__ = [
    "Command",
    "apply",
    "batch",
    "check",
    "delete_table",
    "list_table",
    "list_table_text",
    "list_tables",
    "replace_table_commands",
    "run_text",
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


class _Library:
    """libnftables in this process: a command costs a netlink round trip, not a fork and an
    exec of nft (a process renewing a timeout ten times a second, ``failover.loop``)."""

    def __init__(self) -> None:
        name = ctypes.util.find_library("nftables") or "libnftables.so.1"
        lib = ctypes.CDLL(name)
        lib.nft_ctx_new.restype = ctypes.c_void_p
        lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
        lib.nft_ctx_buffer_output.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_buffer_error.argtypes = [ctypes.c_void_p]
        lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        lib.nft_run_cmd_from_buffer.restype = ctypes.c_int
        lib.nft_ctx_get_error_buffer.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_get_error_buffer.restype = ctypes.c_char_p
        self.lib = lib
        self.ctx = lib.nft_ctx_new(0)
        if not self.ctx:
            raise OSError("nft_ctx_new failed")
        lib.nft_ctx_buffer_output(self.ctx)
        lib.nft_ctx_buffer_error(self.ctx)

    def run(self, text: str) -> None:
        rc = self.lib.nft_run_cmd_from_buffer(self.ctx, text.encode())
        if rc != 0:
            error = (self.lib.nft_ctx_get_error_buffer(self.ctx) or b"").decode(errors="replace")
            detail = " ".join(error.split())[:500] or f"status {rc}"
            raise DataplaneError(f"nftables refused the commands: {detail}")


_library: _Library | None = None
_library_missing = False


def run_text(text: str) -> None:
    """Run nft commands written as nft text (one transaction), in process through libnftables
    when it loads, else through ``nft -f -``. For small, frequent updates: set elements."""
    global _library, _library_missing
    if _library is None and not _library_missing:
        try:
            _library = _Library()
        except (OSError, AttributeError):
            _library_missing = True
    if _library is not None:
        _library.run(text)
    else:
        _run(["-f", "-"], text)
