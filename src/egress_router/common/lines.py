"""Splitting multi-line configuration values (environment variables, ConfigMap files) into lines.

Owns: the common line rules of every ``EGRESS_*`` grammar, and which characters may appear in
such a value at all.
Must not: interpret the fields of a line (each grammar does that).

Rules, compatible with the reference images and fixing their defects:
  * a line ends at LF or CRLF, nowhere else: ``str.splitlines`` would also break at VT, FF,
    FS/GS/RS, NEL, U+2028 and U+2029, which turned a comment into a live rule;
  * any other control, format, separator or unassigned character (VT, FF, ESC, NUL, a lone CR,
    NEL, NBSP, U+3000, U+2028, a zero-width or bidi character...) is an error naming the
    variable and the line, in comments too: what an operator's terminal shows must be what we
    parse;
  * lines are numbered from 1 as the user sees them (blank and comment lines count);
  * CRLF and a final line without newline are accepted (the reference failed on CR);
  * leading/trailing blanks (spaces, tabs) are trimmed;
  * a line whose first non-blank character is ``#`` is a comment; ``#`` preceded by a blank
    starts a trailing comment (the reference rejected those lines);
  * fields are separated by runs of spaces or tabs, and by nothing else.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass

from egress_router.errors import VariableError

_BLANKS = re.compile(r"[ \t]+")
# Names for the characters people actually meet (unicodedata has no names for controls).
_CHAR_NAMES = {
    "\x00": "NUL",
    "\x0b": "vertical tab",
    "\x0c": "form feed",
    "\r": "carriage return not followed by a line feed",
    "\x1b": "escape",
    "\x1c": "file separator",
    "\x1d": "group separator",
    "\x1e": "record separator",
    "\x1f": "unit separator",
    "\x7f": "delete",
    "\x85": "next line",
    "\xa0": "no-break space",
    "\u2028": "line separator",
    "\u2029": "paragraph separator",
    "\u3000": "ideographic space",
    "\ufeff": "byte order mark",
}
RULES = "lines end at LF or CRLF, fields are separated by spaces or tabs"


@dataclass(frozen=True)
class Line:
    """One meaningful line: its 1-based number, its trimmed text and its fields."""

    number: int
    text: str
    fields: tuple[str, ...]


def describe_char(ch: str) -> str:
    """``U+000C (form feed)``: how an error names a character that is not allowed."""
    name = _CHAR_NAMES.get(ch) or unicodedata.name(ch, "").lower() or "control character"
    return f"U+{ord(ch):04X} ({name})"


def bad_char(text: str) -> str | None:
    """The first character of ``text`` (one line) that may not appear in a value, or None."""
    if text.isprintable() or text.replace("\t", " ").isprintable():
        return None  # the common case, decided in C; the loop below only names the culprit
    for ch in text:
        if ch != "\t" and not ch.isprintable():
            return ch
    return None


def split_lines(value: str, variable: str) -> Iterator[tuple[int, str]]:
    """``(number, raw line)`` for every line of ``value`` (LF or CRLF ends a line).

    Raises ``VariableError`` naming ``variable`` and the line for any character other than
    printable ones and tabs (see the module docstring).
    """
    for number, raw in enumerate(value.split("\n"), start=1):
        if raw.endswith("\r"):
            raw = raw[:-1]
        ch = bad_char(raw)
        if ch is not None:
            raise VariableError(
                variable,
                f"character {describe_char(ch)} is not allowed ({RULES})",
                line=number,
                text=raw,
            )
        yield number, raw


def split_fields(text: str) -> tuple[str, ...]:
    """The fields of one trimmed line, separated by runs of spaces or tabs only."""
    return tuple(_BLANKS.split(text)) if text else ()


def _strip_comment(text: str) -> str:
    if "#" not in text:
        return text
    if text.startswith("#"):
        return ""
    for i, ch in enumerate(text):
        if ch == "#" and i > 0 and text[i - 1] in " \t":
            return text[:i].rstrip(" \t")
    return text


def meaningful_lines(value: str, variable: str) -> Iterator[Line]:
    """Yield the non-blank, non-comment lines of ``value`` with their line numbers."""
    for number, raw in split_lines(value, variable):
        text = _strip_comment(raw.strip(" \t"))
        if not text:
            continue
        yield Line(number=number, text=text, fields=split_fields(text))
