"""Decoding the JSON and YAML documents we read (policies, CRs, the CNI config) within bounds.

Owns: the size, nesting-depth and alias-expansion bounds, enforced while the text is decoded
(before a bomb can cost time or memory), and the duplicate-key rule (a key given twice in one
object or mapping is an error naming it, at every level, as kubectl's decoder does).
Must not: know what a document means (callers validate fields) or do any I/O.

Why each bound:
  * ``MAX_CHARS``: the largest legitimate input is a policy with 8,000 rules (well under
    2 MiB); 4 MiB leaves room and caps the decoder's memory and time.
  * ``MAX_DEPTH``: Kubernetes objects nest about ten levels; Python's decoders recurse per
    level, so 1,000-deep JSON or 3,000-deep YAML would end in ``RecursionError``.
  * ``MAX_NODES``: YAML aliases share one decoded object, so a "billion laughs" document is
    small in memory until something walks it (validation, an error message's ``repr``). We
    count every node as it would be if aliases were expanded, so any walk of the result is
    bounded too. 8,000 rules with ports are about 120,000 nodes.

Errors are ``DocumentError`` (a ``ValueError``) with a one-line message, the line number when
known; callers wrap it into their ``PolicyError`` / ``CniError`` with the file or field.
"""

from __future__ import annotations

import json
import re
from typing import Any

import yaml
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node

MAX_CHARS = 4 * 1024 * 1024
MAX_DEPTH = 64
MAX_NODES = 500_000
_MERGE_TAG = "tag:yaml.org,2002:merge"
# Strings (with escapes) and the four bracket characters: the only JSON tokens depth needs.
# A string match never fails (an unterminated one runs to the end), so the scan is linear.
_JSON_NESTING = re.compile(r'"(?:[^"\\]++|\\.?)*+(?:"|\Z)|[\[\]{}]', re.DOTALL)


class DocumentError(ValueError):
    """A document is not valid JSON/YAML or exceeds a bound; the message is one line."""


def _short(text: object, limit: int = 60) -> str:
    shown = repr(text) if not isinstance(text, str) else repr(text[: limit + 1])
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."


def _reason(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    if "Exceeds the limit" in text and "digits" in text:
        return "a number has more digits than allowed (4300)"
    return text[:200]


def _check_size(text: str) -> None:
    if len(text) > MAX_CHARS:
        raise DocumentError(f"the document is larger than {MAX_CHARS} characters")


# -- JSON ------------------------------------------------------------------------------------


def _json_depth(text: str) -> None:
    depth = 0
    for match in _JSON_NESTING.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                line = text.count("\n", 0, match.start()) + 1
                raise DocumentError(f"line {line}: nested deeper than {MAX_DEPTH} levels")
        elif token in "]}":
            depth -= 1


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise DocumentError(f"duplicate key {_short(key)}")
        out[key] = value
    return out


def _no_constant(name: str) -> Any:
    raise DocumentError(f"{name} is not a JSON number")


def load_json(text: str) -> Any:
    """One JSON value; duplicate keys, ``NaN``/``Infinity`` and the bounds are errors."""
    _check_size(text)
    _json_depth(text)
    try:
        return json.loads(text, object_pairs_hook=_pairs, parse_constant=_no_constant)
    except DocumentError:
        raise
    except RecursionError:  # the pre-scan makes this unreachable; kept as a last line
        raise DocumentError(f"nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:  # JSONDecodeError, or an integer beyond Python's digit limit
        raise DocumentError(_reason(exc)) from None


# -- YAML ------------------------------------------------------------------------------------


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader, counting depth and expanded nodes as it composes."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self._depth = 0
        self._nodes = 0  # nodes so far, aliases counted at their expanded size
        self._sizes: dict[str, int] = {}  # anchor -> expanded size of its node
        self._open: set[str] = set()  # anchors whose node is still being composed

    def _count(self, n: int, line: int) -> None:
        self._nodes += n
        if self._nodes > MAX_NODES:
            raise DocumentError(
                f"line {line}: the document expands to more than {MAX_NODES} nodes"
                " (aliases are counted at their expanded size)"
            )

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        line = event.start_mark.line + 1
        if isinstance(event, AliasEvent):
            alias = str(event.anchor)
            if alias in self._open:
                raise DocumentError(f"line {line}: alias *{alias} refers to itself")
            self._count(self._sizes.get(alias, 1), line)
            aliased = super().compose_node(parent, index)
            assert aliased is not None
            return aliased
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise DocumentError(f"line {line}: nested deeper than {MAX_DEPTH} levels")
        anchor: str | None = getattr(event, "anchor", None)
        start = self._nodes
        self._count(1, line)
        if anchor is not None:
            self._open.add(anchor)
        node = super().compose_node(parent, index)
        assert node is not None
        if anchor is not None:
            self._open.discard(anchor)
            self._sizes[anchor] = self._nodes - start
        self._depth -= 1
        return node

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG:
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
            except TypeError:
                raise DocumentError(
                    f"line {key_node.start_mark.line + 1}: a mapping key must be a scalar"
                ) from None
            if duplicate:
                raise DocumentError(
                    f"line {key_node.start_mark.line + 1}: duplicate key {_short(key)}"
                )
            seen.add(key)
        return super().construct_mapping(node, deep)


def load_yaml_all(text: str) -> list[Any]:
    """Every document of a YAML stream (empty documents dropped), within the bounds."""
    _check_size(text)
    try:
        loader = _BoundedLoader(text)  # the reader refuses control characters right here
    except yaml.YAMLError as exc:
        raise DocumentError(_reason(exc)) from None
    try:
        docs = []
        while loader.check_data():  # type: ignore[no-untyped-call]
            doc = loader.get_data()
            if doc is not None:
                docs.append(doc)
        return docs
    except DocumentError:
        raise
    except RecursionError:  # the depth bound makes this unreachable; kept as a last line
        raise DocumentError(f"nested deeper than {MAX_DEPTH} levels") from None
    except (yaml.YAMLError, ValueError, TypeError, OverflowError) as exc:
        # ValueError: an int beyond Python's digit limit, a timestamp like 2001-02-30.
        raise DocumentError(_reason(exc)) from None
    finally:
        loader.dispose()


def load_any(text: str) -> list[Any]:
    """JSON when the text starts with ``{`` or ``[`` (one document), YAML otherwise."""
    if text.lstrip(" \t\r\n").startswith(("{", "[")):
        return [load_json(text)]
    return load_yaml_all(text)
