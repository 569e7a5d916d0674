"""Shared pieces of the per-grammar fuzz tests (issue 8): hostile characters, text built from
grammar fragments, arbitrary decoded values, and the one invariant every grammar holds:
rejected with one line of our own error type, or accepted and re-rendered identically.

Budgets: each grammar's test sets its own ``max_examples`` (a few hundred), so the whole set
runs thousands of cases in well under a minute on one core."""

from __future__ import annotations

from typing import Any

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
