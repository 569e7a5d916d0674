"""Splitting multi-line configuration values (environment variables, ConfigMap files) into lines.

Owns: the common line rules of every ``EGRESS_*`` grammar.
Must not: interpret the fields of a line (each grammar does that).

Rules, compatible with the reference images and fixing their defects:
  * lines are numbered from 1 as the user sees them (blank and comment lines count);
  * CRLF and a final line without newline are accepted (the reference failed on CR);
  * leading/trailing blanks (spaces, tabs) are trimmed;
  * a line whose first non-blank character is ``#`` is a comment; ``#`` preceded by a blank
    starts a trailing comment (the reference rejected those lines);
  * fields are separated by runs of spaces or tabs.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Line:
    """One meaningful line: its 1-based number, its trimmed text and its fields."""

    number: int
    text: str
    fields: tuple[str, ...]


def _strip_comment(text: str) -> str:
    if text.startswith("#"):
        return ""
    for i, ch in enumerate(text):
        if ch == "#" and i > 0 and text[i - 1] in " \t":
            return text[:i].rstrip(" \t")
    return text


def meaningful_lines(value: str) -> Iterator[Line]:
    """Yield the non-blank, non-comment lines of ``value`` with their line numbers."""
    for number, raw in enumerate(value.splitlines(), start=1):
        text = _strip_comment(raw.strip(" \t\r\n\v\f"))
        if not text:
            continue
        yield Line(number=number, text=text, fields=tuple(text.split()))
