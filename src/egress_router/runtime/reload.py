"""Noticing that a configuration file changed: the poll behind reload-without-restart.

Owns: the signature of a file as the kernel sees it through every symlink (device, inode,
size, modification time), so a mounted ConfigMap's update is seen: the kubelet writes the new
files into a fresh directory and swaps the ``..data`` symlink, which gives the file a new
inode even when its size and mtime happen to match; plus the content's digest, so a touch or a
swap to identical content does not trigger a reload.
Must not: read more than the caller's bound, parse, or apply anything (each mode's command
re-reads, re-parses and re-applies through its own code, keeping the old state on failure).

Polled (not inotify): inotify does not follow the ``..data`` swap reliably and the poll is one
``stat`` per interval.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

from egress_router.errors import VariableError

POLL_INTERVAL_S = 1.0  # how often a watched file is checked: a change applies within ~1 s
MAX_FILE_BYTES = 16 * 1024 * 1024  # ~700,000 destination lines; bounds memory on a wrong path

T = TypeVar("T")
Signature = tuple[int, int, int, int] | None  # st_dev, st_ino, st_size, st_mtime_ns; None: gone


def signature(path: str) -> Signature:
    """The file's identity and version, following symlinks; None when it cannot be stat'ed."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


def digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


@dataclass(frozen=True)
class Source(Generic[T]):
    """How a running mode re-reads its configuration: ``reparse`` reads the variables (and the
    file) again and parses them (raising our errors); ``watched`` is the file to poll (None:
    SIGHUP only)."""

    reparse: Callable[[], T]
    watched: str | None = None
    interval_s: float = POLL_INTERVAL_S
    baseline: Signature = None  # the watched file's signature before its first read

    def watch(self) -> FileWatch | None:
        return FileWatch(self.watched, self.baseline) if self.watched else None


class FileWatch:
    """One watched file: ``changed()`` is True once per new version of it (by stat).

    ``baseline``: the signature taken before the configuration in force was read (so a change
    made while starting is not missed); default: now."""

    def __init__(self, path: str, baseline: Signature | Literal["now"] = "now") -> None:
        self.path = path
        self.last = signature(path) if baseline == "now" else baseline

    def changed(self) -> bool:
        now = signature(self.path)
        if now == self.last:
            return False
        self.last = now
        return now is not None  # a vanished file is not a new configuration: keep the old


@dataclass
class ReloadCounts:
    """Reloads attempted by this process, by result (reported on the health endpoint)."""

    ok: int = 0
    failed: int = 0
    last_error: str = ""

    def record(self, error: str | None) -> None:
        if error is None:
            self.ok += 1
        else:
            self.failed += 1
            self.last_error = error


def with_variable_file(
    env: Mapping[str, str],
    variable: str,
    file_variable: str,
    flag: str | None = None,
    flag_name: str = "",
) -> dict[str, str]:
    """``env`` with ``variable`` read from the file named by ``flag`` or ``file_variable`` (a
    ConfigMap mounted as a volume), if one is named. A variable is limited to 128 KiB by
    execve, about 6,000 lines; a file to ``MAX_FILE_BYTES``. Giving both is an error."""
    out = dict(env)
    name = flag_name if flag is not None else file_variable
    path = flag if flag is not None else out.get(file_variable)
    if not path:
        return out
    if out.get(variable):
        raise VariableError(name, f"give either {variable} or a destination file, not both")
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read(MAX_FILE_BYTES + 1)
    except (OSError, UnicodeDecodeError) as exc:
        raise VariableError(name, f"cannot read {path}: {exc}") from None
    if len(text) > MAX_FILE_BYTES:
        raise VariableError(name, f"{path} is larger than {MAX_FILE_BYTES} bytes")
    out[variable] = text
    return out
