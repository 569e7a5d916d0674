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

EXIT_OK = 0
EXIT_CONFIG = 1  # bad input: the reference images die with status 1 too
EXIT_DATAPLANE = 2  # the kernel refused what we asked
EXIT_USAGE = 2  # command-line misuse (typer/click also uses 2)


class EgressRouterError(Exception):
    """Base of every error we raise on purpose."""

    exit_code: int = EXIT_CONFIG

    def one_line(self) -> str:
        """The message as a single line (newlines and CRs made visible)."""
        return str(self).replace("\r", "\\r").replace("\n", "\\n")


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
