"""Linux interface names: the one rule every variable, flag and CNI field naming one is held to.

Owns: what an interface name is. The kernel's rule (``dev_valid_name`` in net/core/dev.c):
not empty, shorter than ``IFNAMSIZ`` (16 bytes with the terminating NUL, so at most 15), not
``.`` or ``..``, no ``/``, ``:`` or blank. Ours is that rule over printable ASCII only, and
without ``*`` and ``\\``: nftables reads a trailing ``*`` in ``iifname``/``oifname`` as a
wildcard (``eth*`` matches every ``eth`` interface) and ``\\`` as its escape, so a name with
them would widen the rules it is put in. Every name any document shows (``eth0``, ``net1``,
``macvlan0``, ``ens3.100``, ``br-ex``) passes.
Must not: know where a name came from beyond what it is told: ``interface_variable`` words
the error of an environment variable; other callers (CNI fields and codes) wrap the
``ValueError`` into their own error and keep their own trimming and defaults.
"""

from __future__ import annotations

from egress_router.errors import VariableError

IFNAMSIZ = 16  # the kernel's buffer for a name, including the terminating NUL
MAX_INTERFACE_NAME = IFNAMSIZ - 1
#: What an interface name may be, for "expected ..." texts.
INTERFACE_NAME_RULE = (
    f"1-{MAX_INTERFACE_NAME} printable ASCII characters without blanks, '/', ':', '*' or '\\',"
    " not '.' or '..'"
)
_REFUSED = frozenset("/:*\\")


def check_interface_name(text: str) -> str:
    """``text`` when it is an interface name, else ``ValueError`` saying what is wrong."""
    if not text:
        raise ValueError("an interface name cannot be empty")
    if len(text) > MAX_INTERFACE_NAME:  # checked first: never walk a megabyte below
        raise ValueError(f"an interface name is at most {MAX_INTERFACE_NAME} characters")
    for ch in text:
        if not " " < ch < "\x7f":
            raise ValueError(
                "an interface name is printable ASCII without blanks"
                f" (character U+{ord(ch):04X} is not allowed)"
            )
        if ch in _REFUSED:
            raise ValueError(f"character {ch!r} is not allowed in an interface name")
    if text in (".", ".."):
        raise ValueError(f"{text!r} is not an interface name")
    return text


def is_interface_name(text: str) -> bool:
    """True when ``check_interface_name`` accepts ``text``."""
    try:
        check_interface_name(text)
    except ValueError:
        return False
    return True


def interface_variable(variable: str, text: str) -> str:
    """``text`` when it is an interface name, else the ``VariableError`` naming ``variable``."""
    try:
        return check_interface_name(text)
    except ValueError as exc:
        raise VariableError(
            variable, f"invalid interface name ({exc})", text=text, expected=INTERFACE_NAME_RULE
        ) from None
