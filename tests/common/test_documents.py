"""The bounded JSON/YAML decoder: bounds hold while decoding, duplicate keys at every level are
errors naming the key, and every bomb of ``tests.hostile_documents`` is one ``PolicyError``."""

from __future__ import annotations

import pytest

from egress_router.common.documents import (
    MAX_DEPTH,
    MAX_NODES,
    DocumentError,
    load_any,
    load_json,
    load_yaml_all,
)
from egress_router.errors import PolicyError
from egress_router.firewall.model.policy import parse_text
from tests.hostile_documents import POLICY_BOMBS


@pytest.mark.parametrize("name", sorted(POLICY_BOMBS))
def test_each_bomb_is_one_policy_error(name: str) -> None:
    text, phrase = POLICY_BOMBS[name]
    with pytest.raises(PolicyError) as info:
        parse_text(text, "p.yaml")
    line = info.value.one_line()
    assert phrase in line
    assert line.startswith("p.yaml")
    assert len(line) < 400


@pytest.mark.parametrize(
    "text",
    [
        '{"a": {"b": 1, "b": 2}}',
        '[{"a": 1}, {"k": [{"z": 1, "z": 1}]}]',
        "a:\n  b: 1\n  b: 2\n",
        "- a: 1\n- k:\n  - {z: 1, z: 1}\n",
        "? a\n: 1\n? a\n: 2\n",
        "1: x\n0x1: y\n",  # the same key once decoded
    ],
)
def test_duplicate_keys_at_every_level_are_errors(text: str) -> None:
    with pytest.raises(DocumentError, match=r"duplicate key "):
        load_any(text)


def test_merge_keys_may_be_overridden() -> None:
    docs = load_yaml_all("base: &b {a: 1, c: 2}\nuse:\n  <<: *b\n  a: 3\n")
    assert docs[0]["use"] == {"a": 3, "c": 2}


def test_depth_up_to_the_bound_is_accepted() -> None:
    assert load_json("[" * MAX_DEPTH + "]" * MAX_DEPTH) is not None
    assert load_yaml_all("[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1))
    with pytest.raises(DocumentError, match="deeper"):
        load_json("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1))


def test_brackets_inside_json_strings_do_not_count_as_depth() -> None:
    assert load_json('{"a": "' + "[" * 500 + '\\"{{"}') == {"a": "[" * 500 + '"{{'}


def test_alias_expansion_is_counted_not_only_aliases() -> None:
    ten = ", ".join(["*a"] * 10)
    fine = "a: &a [1, 2, 3]\nb: [" + ten + "]\n"
    assert len(load_yaml_all(fine)[0]["b"]) == 10
    levels = ["l0: &l0 [" + ", ".join(["x"] * 100) + "]"]
    for i in range(1, 4):
        levels.append(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 100) + "]")
    with pytest.raises(DocumentError, match=f"more than {MAX_NODES} nodes"):
        load_yaml_all("\n".join(levels))


@pytest.mark.parametrize(
    ("text", "phrase"),
    [
        ("a: !!python/object:os.system x", "could not determine a constructor"),
        ("a: 2001-02-30", "day is out of range"),
        ("\x1b[2J", "special characters are not allowed"),
        ('{"a": Infinity}', "Infinity is not a JSON number"),
        ("{", "Expecting property name"),
        ("a: *nope", "undefined alias"),
    ],
)
def test_other_decode_failures_are_document_errors(text: str, phrase: str) -> None:
    with pytest.raises(DocumentError, match=phrase):
        load_any(text)


@pytest.mark.parametrize(
    ("doc", "field", "phrase"),
    [
        ({"kind": ["EgressFirewall"]}, "kind", "got ['EgressFirewall']"),
        ({"kind": {"a": 1}}, "kind", "got {'a': 1}"),
        ({"apiVersion": ["k8s.ovn.org/v1"]}, "apiVersion", "got ['k8s.ovn.org/v1']"),
        ({"metadata": ["x"]}, "metadata", "must be an object"),
        ({"metadata": {"name": ["default"]}}, "metadata.name", "non-empty string"),
        ({"metadata": {"name": "default", "namespace": {"a": 1}}}, "metadata.namespace", "not a"),
        ({"spec": ["egress"]}, "spec", "must be an object"),
        ({"spec": {"egress": {"type": "Deny"}}}, "spec.egress", "must be a list"),
        (
            {"rule": {"type": ["Deny"], "to": {"cidrSelector": "1.2.3.0/24"}}},
            "type",
            "got ['Deny']",
        ),
        ({"rule": {"type": "Deny", "to": ["x"]}}, "to", "must be an object"),
        (
            {"rule": {"type": "Deny", "to": {"cidrSelector": ["1.2.3.0/24"]}}},
            "cidrSelector",
            "CIDR",
        ),
        ({"rule": {"type": "Deny", "to": {"dnsName": 5}}}, "dnsName", "got 5"),
        (
            {"rule": {"type": "Deny", "to": {"cidrSelector": "1.2.3.0/24"}, "ports": {"a": 1}}},
            "ports",
            "list",
        ),
        (
            {
                "rule": {
                    "type": "Deny",
                    "to": {"cidrSelector": "1.2.3.0/24"},
                    "ports": [{"protocol": ["TCP"]}],
                }
            },
            "protocol",
            "got ['TCP']",
        ),
        (
            {
                "rule": {
                    "type": "Deny",
                    "to": {"cidrSelector": "1.2.3.0/24"},
                    "ports": [{"protocol": "TCP", "port": "80"}],
                }
            },
            "port",
            "got '80'",
        ),
    ],
)
def test_wrong_types_are_one_line_naming_the_field(doc: dict, field: str, phrase: str) -> None:
    from egress_router.firewall.model.policy import parse_object

    base: dict = {
        "kind": "EgressFirewall",
        "apiVersion": "k8s.ovn.org/v1",
        "metadata": {"name": "default", "namespace": "myproj"},
        "spec": {"egress": []},
    }
    rule = doc.pop("rule", None)
    base.update(doc)
    if rule is not None:
        base["spec"] = {"egress": [rule]}
    with pytest.raises(PolicyError) as info:
        parse_object(base, "p.json")
    assert field in (info.value.field or "")
    assert phrase in info.value.one_line()


def test_a_huge_string_is_never_copied_whole_into_the_message() -> None:
    big = "x" * 1_000_000
    text = (
        '{"kind": "EgressFirewall", "apiVersion": "k8s.ovn.org/v1", "metadata": '
        '{"name": "default", "namespace": "myproj"}, "spec": {"egress": '
        f'[{{"type": "{big}", "to": {{"cidrSelector": "1.2.3.0/24"}}}}]}}}}'
    )
    with pytest.raises(PolicyError) as info:
        parse_text(text, "p.json")
    assert len(str(info.value)) < 300
