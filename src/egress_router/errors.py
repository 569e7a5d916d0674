"""The error tree of egress-router: every failure we expect has a class here.

Owns: the exception hierarchy and the one-line rendering used by the CLI.
Must not: import anything else from the package, or do I/O.

    EgressRouterError                 base; anything else escaping is a bug
    ├── ConfigError                   bad user input (variable, file, flag)
    │   ├── VariableError             an environment variable, optionally a line of it
    │   └── PolicyError               a policy document (file, namespace, rule index, field)
    ├── DataplaneError                the kernel refused (netlink, nftables, sysctl, raw sockets)
    ├── ControlPlaneError             the lab's etcd/kube-apiserver is missing or would not start
    ├── ResolveError                  a DNS lookup failed (name, reason)
    ├── ProtocolError                 a peer spoke bad HTTP/TCP; carries the status to answer with
    └── Denied                        a policy decision said no; carries the rule that decided it

Configuration errors render as one line that names the variable or field, the line number
and the offending text, so an operator can fix the input without reading code.
"""

from __future__ import annotations

import json
from typing import Any

EXIT_OK = 0
EXIT_CONFIG = 1  # bad input: the reference images die with status 1 too
EXIT_DATAPLANE = 2  # the kernel refused what we asked
EXIT_USAGE = 2  # command-line misuse (typer/click also uses 2)


class EgressRouterError(Exception):
    """Base of every error we raise on purpose."""

    exit_code: int = EXIT_CONFIG

    def one_line(self) -> str:
        """The message as one safe line: every non-printable character escaped, length bounded."""
        return escape(str(self), MAX_LINE)


MAX_LINE = 2000  # characters of one error line: enough for any real message, never a flood
MAX_VALUE = 80  # characters of an offending value quoted inside a message
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape_char(ch: str) -> str:
    if ch in _NAMED:
        return _NAMED[ch]
    if ch.isprintable():
        return ch
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def escape(text: str, limit: int = MAX_LINE) -> str:
    """``text`` with control, format, separator and other non-printable characters escaped
    (``\\x1b``, ``\\u2028``), cut to ``limit`` characters with ``...``.

    Error lines reach terminals and logs: a raw ESC could rewrite the screen, a raw line
    separator could forge a log line.
    """
    if len(text) > limit * 4:  # never escape megabytes to keep a few hundred characters
        text = text[: limit * 4]
    out = "".join(_escape_char(ch) if not ch.isprintable() else ch for ch in text)
    return out if len(out) <= limit else out[: limit - 3] + "..."


def brief(value: Any, limit: int = MAX_VALUE, *, as_json: bool = False) -> str:
    """A short, safe rendering of a decoded value for an error message, without ever walking
    more of it than ``limit`` characters need (a YAML alias graph may expand to gigabytes).

    Strings are quoted as Python does (``'Allow'``), or as JSON with ``as_json``; lists and
    mappings show their first items and then ``...``; other values use ``repr`` (or JSON).
    """
    quote = json.dumps if as_json else repr
    parts: list[str] = []
    budget = [limit + 1]

    def put(text: str) -> bool:
        parts.append(text)
        budget[0] -= len(text)
        return budget[0] > 0

    def walk(item: Any, depth: int) -> bool:
        if depth > 20:
            return put("...")
        if isinstance(item, str):
            return put(quote(item[: limit + 1]))
        if isinstance(item, dict):
            if not put("{"):
                return False
            for i, (key, val) in enumerate(item.items()):
                if (i and not put(", ")) or not walk(key, depth + 1) or not put(": "):
                    return False
                if not walk(val, depth + 1):
                    return False
            return put("}")
        if isinstance(item, (list, tuple)):
            if not put("["):
                return False
            for i, val in enumerate(item):
                if (i and not put(", ")) or not walk(val, depth + 1):
                    return False
            return put("]")
        try:
            scalar = isinstance(item, (bool, int, float)) or item is None
            text = json.dumps(item) if as_json and scalar else repr(item)
        except ValueError:  # an int beyond Python's digit limit
            text = f"<{type(item).__name__}>"
        return put(text[: limit + 1])

    walk(value, 0)
    return escape("".join(parts), limit)


class ConfigError(EgressRouterError):
    """User input is invalid; nothing has been applied."""


class VariableError(ConfigError):
    """An environment variable (or the file standing in for it) is invalid.

    ``variable`` is the variable's name, ``line`` the 1-based line number inside a multi-line
    value (None for single-line values), ``text`` the offending text and ``expected`` what
    would have been accepted.
    """

    def __init__(
        self,
        variable: str,
        message: str,
        *,
        line: int | None = None,
        text: str | None = None,
        expected: str | None = None,
    ) -> None:
        self.variable = variable
        self.line = line
        self.text = text
        self.expected = expected
        self.message = message
        where = variable if line is None else f"{variable} line {line}"
        parts = [f"{where}: {message}"]
        if text is not None:
            parts.append(f"'{text}'")
        if expected:
            parts.append(f"(expected {expected})")
        super().__init__(" ".join(parts))


class PolicyError(ConfigError):
    """A policy document is invalid: names file, namespace, rule index and field."""

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        namespace: str | None = None,
        rule: int | None = None,
        field: str | None = None,
    ) -> None:
        self.source = source
        self.namespace = namespace
        self.rule = rule
        self.field = field
        self.message = message
        where = []
        if source:
            where.append(source)
        if namespace:
            where.append(f"namespace {namespace}")
        if rule is not None:
            where.append(f"rule {rule}")
        if field:
            where.append(field)
        prefix = ": ".join([", ".join(where)]) + ": " if where else ""
        super().__init__(prefix + message)


class DataplaneError(EgressRouterError):
    """The kernel (netlink, nftables, sysctl, raw sockets) refused an operation."""

    exit_code = EXIT_DATAPLANE


class ControlPlaneError(EgressRouterError):
    """The lab's Kubernetes control plane is not built, would not start or refused a request."""

    exit_code = EXIT_DATAPLANE


class ResolveError(EgressRouterError):
    """A DNS lookup failed."""

    exit_code = EXIT_DATAPLANE

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self.reason = reason
        super().__init__(f"cannot resolve {name}: {reason}")


class ProtocolError(EgressRouterError):
    """A peer sent something we cannot accept; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        self.status = status
        super().__init__(message)


class Denied(EgressRouterError):
    """A policy decision refused a destination; ``rule`` describes the deciding rule."""

    def __init__(self, target: str, rule: str) -> None:
        self.target = target
        self.rule = rule
        super().__init__(f"{target} denied by {rule}")
