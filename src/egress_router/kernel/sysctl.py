"""Per-namespace sysctls (``/proc/sys/net/...``): the only module that writes them.

Owns: reading and writing network sysctls of the caller's network namespace.
Must not: touch non-network sysctls (those are not namespaced and would change the host).
"""

from __future__ import annotations

from pathlib import Path

from egress_router.errors import DataplaneError

_ROOT = Path("/proc/sys")


def _path(key: str) -> Path:
    if not key.startswith("net."):
        raise DataplaneError(f"refusing to touch non-network sysctl {key}")
    return _ROOT / key.replace(".", "/")


def read(key: str) -> str:
    try:
        return _path(key).read_text().strip()
    except OSError as exc:
        raise DataplaneError(f"cannot read sysctl {key}: {exc}") from exc


def write(key: str, value: str) -> bool:
    """Set ``key`` to ``value``; returns True when it changed."""
    if read(key) == value:
        return False
    try:
        _path(key).write_text(value)
    except OSError as exc:
        raise DataplaneError(f"cannot set sysctl {key}={value}: {exc}") from exc
    return True
