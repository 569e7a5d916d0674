"""Shared pieces of the per-grammar fuzz tests (issue 8): hostile characters, text built from
grammar fragments, arbitrary decoded values, and the one invariant every grammar holds:
rejected with one line of our own error type, or accepted and re-rendered identically.

Budgets: each grammar's test sets its own ``max_examples`` (a few hundred), so the whole set
runs thousands of cases in well under a minute on one core."""

from __future__ import annotations

import json
from typing import Any

import yaml
from hypothesis import strategies as st

from egress_router.errors import EgressRouterError

# Every character class the parsers must refuse or treat as plain text: line breaks Python's
# splitlines knows, other controls, Unicode blanks, format characters, non-ASCII digits.
HOSTILE = [
    "\x00", "\x0b", "\x0c", "\r", "\x1b", "\x1c", "\x1d", "\x1e", "\x1f", "\x7f", "\x85",
    "\xa0", "\u2028", "\u2029", "\u3000", "\u200b", "\u202e", "\ufeff",
    "\u0661", "\u0669", "\uff11", "\u00b2", "\u2070",
]  # fmt: skip
SEPARATORS = [" ", "\t", "  ", " \t "]
hostile_char = st.sampled_from(HOSTILE)
junk_text = st.text(max_size=12) | st.text(
    st.sampled_from([*HOSTILE, "a", "1", ".", "/"]), max_size=6
)

# Arbitrary decoded JSON/YAML values: what a document may hold where a field is expected.
junk_value: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**40), max_value=2**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | junk_text,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)


def mostly(good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any], bad_in: int = 8) -> Any:
    """``good`` most of the time, ``bad`` one time in ``bad_in``: inputs that are valid but for
    one field reach the deep checks, and valid ones reach the re-rendering."""
    # sampled_from draws near-uniformly and shrinks towards the first (good) branch.
    return st.sampled_from(range(bad_in)).flatmap(lambda i: bad if i == bad_in - 1 else good)


def line_text(
    fields: st.SearchStrategy[str], good_line: st.SearchStrategy[str], max_lines: int = 6
) -> st.SearchStrategy[str]:
    """Values of a line grammar: mostly well-formed lines (``good_line``), sometimes lines of
    random fields joined by blanks (hostile ones too), comments; lines joined by LF or CRLF,
    sometimes by a character ``splitlines`` would also break at."""
    sep = mostly(st.sampled_from(SEPARATORS), hostile_char)
    random_line = st.tuples(st.lists(fields, min_size=0, max_size=5), sep).map(
        lambda t: t[1].join(t[0])
    )
    line = mostly(good_line, random_line | random_line.map(lambda text: "# " + text), 4)
    eol = mostly(st.sampled_from(["\n", "\r\n"]), hostile_char, 12)
    return st.tuples(st.lists(line, max_size=max_lines), eol).map(lambda t: t[1].join(t[0]))


def assert_one_line(error: EgressRouterError) -> None:
    """Our error, rendered as one printable, bounded line."""
    line = error.one_line()
    assert line
    assert all(ch.isprintable() for ch in line), line
    assert len(line) <= 2000


# Address and port fragments of the line grammars: valid ones and near misses.
ipv4 = st.tuples(*[st.integers(0, 260)] * 4).map(lambda t: ".".join(map(str, t)))
good_ip = st.tuples(st.integers(1, 223), *[st.integers(0, 255)] * 3).map(
    lambda t: ".".join(map(str, t))
)
good_port = st.integers(1, 65535).map(str)
port = st.integers(0, 70000).map(str) | st.sampled_from(["080", "65535", "1", "+80", "8\u0660"])
address_like = (
    ipv4
    | st.sampled_from(["203.0.113.25", "198.19.0.99", "\uff11\uff19\uff18.19.0.99", "127.0.0.1"])
    | st.tuples(ipv4, hostile_char).map("".join)
)
blank = st.sampled_from([" ", "\t", "  "])


# -- documents --------------------------------------------------------------------------------


def either(*values: Any, valid: int = 1) -> st.SearchStrategy[Any]:
    """The first ``valid`` values most of the time, the others (tricky ones) sometimes, and
    one time in 16 anything at all: most documents are valid but for a field or two."""
    good, tricky = values[:valid], values[valid:] or values[:valid]
    return mostly(st.sampled_from(good), mostly(st.sampled_from(tricky), junk_value, 3), 6)


def or_junk(strategy: st.SearchStrategy[Any]) -> Any:
    """``strategy`` most of the time, an arbitrary value sometimes."""
    return mostly(strategy, junk_value)


@st.composite
def encoded(draw: st.DrawFn, doc: Any) -> str:
    """``doc`` as JSON or YAML text, sometimes with a hostile character or a duplicated line."""
    text = json.dumps(doc) if draw(st.booleans()) else yaml.safe_dump(doc, allow_unicode=True)
    edit = draw(st.sampled_from(["none"] * 6 + ["char", "dup"]))
    if edit == "char" and text:
        at = draw(st.integers(0, len(text) - 1))
        text = text[:at] + draw(st.sampled_from(HOSTILE)) + text[at:]
    elif edit == "dup":
        lines = text.splitlines(keepends=True)
        at = draw(st.integers(0, max(0, len(lines) - 1)))
        text = "".join(lines[: at + 1] + lines[at:])
    return text
