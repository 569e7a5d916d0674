"""Pipe helpers for the log sink tests: filling a pipe, reading one with a deadline."""

from __future__ import annotations

import fcntl
import os
import select
import time
from collections.abc import Callable


def fill(fd: int) -> int:
    """Fill a pipe until a write would block, as a reader that stopped long ago leaves it."""
    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    fcntl.fcntl(fd, fcntl.F_SETFL, flags | os.O_NONBLOCK)
    total = 0
    try:
        while True:
            total += os.write(fd, b"x" * 4096)
    except BlockingIOError:
        pass
    finally:
        fcntl.fcntl(fd, fcntl.F_SETFL, flags)
    return total


def read_until(fd: int, predicate: Callable[[bytes], bool], timeout: float = 10.0) -> bytes:
    out = b""
    deadline = time.monotonic() + timeout
    while not predicate(out) and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            out += chunk
    return out
