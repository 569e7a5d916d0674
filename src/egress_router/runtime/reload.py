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
from dataclasses import dataclass

POLL_INTERVAL_S = 1.0  # how often a watched file is checked: a change applies within ~1 s

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


@dataclass
class FileWatch:
    """One watched file: ``changed()`` is True once per new version of it (by stat)."""

    path: str
    last: Signature = None

    def __post_init__(self) -> None:
        self.last = signature(self.path)

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
