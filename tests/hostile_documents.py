"""Hostile policy and CR documents (issue 8, items 5 and 7), shared by the parser, CLI and lab
tests: each is a name, the file text and a phrase the one-line rejection must contain."""

from __future__ import annotations

import json

HEAD = {"kind": "EgressFirewall", "apiVersion": "k8s.ovn.org/v1"}
META = {"name": "default", "namespace": "myproj"}


def _laughs(use: str) -> str:
    """A billion laughs (10 levels of 10 aliases: 10^10 strings once expanded) used at ``use``."""
    lines = ["x0: &x0 ['lol', 'lol', 'lol', 'lol', 'lol', 'lol', 'lol', 'lol', 'lol', 'lol']"]
    for level in range(1, 10):
        refs = ", ".join([f"*x{level - 1}"] * 10)
        lines.append(f"x{level}: &x{level} [{refs}]")
    body = "\n".join(f"  {line}" for line in lines)
    rule = {
        "type": "  - type: *x9\n    to: {cidrSelector: 1.2.3.0/24}",
        "cidr": "  - type: Deny\n    to:\n      cidrSelector: *x9",
    }[use]
    return (
        "kind: EgressFirewall\napiVersion: k8s.ovn.org/v1\n"
        "metadata: {name: default, namespace: myproj}\n"
        f"anchors:\n{body}\nspec:\n  egress:\n{rule}\n"
    )


def _policy_json(**spec_override: object) -> str:
    return json.dumps({**HEAD, "metadata": META, **spec_override})


def _dup_spec_json() -> str:
    deny_all = '{"egress": [{"type": "Deny", "to": {"cidrSelector": "0.0.0.0/0"}}]}'
    return (
        '{"kind": "EgressFirewall", "apiVersion": "k8s.ovn.org/v1", '
        '"metadata": {"name": "default", "namespace": "myproj"}, '
        f'"spec": {deny_all}, "spec": {{"egress": []}}}}'
    )


# name -> (text, phrase in the error)
POLICY_BOMBS: dict[str, tuple[str, str]] = {
    "deep-json-1000": (
        '{"kind": "EgressFirewall", "spec": ' + "[" * 1000 + "]" * 1000 + "}",
        "nested deeper than 64 levels",
    ),
    "deep-json-objects": ('{"a": ' * 1000 + "1" + "}" * 1000, "nested deeper than 64 levels"),
    "deep-yaml-3000": ("kind: " + "[" * 3000 + "]" * 3000 + "\n", "nested deeper than 64 levels"),
    "deep-yaml-block": ("- " * 3000 + "x\n", "nested deeper than 64 levels"),
    "laughs-in-type": (_laughs("type"), "expands to more than"),
    "laughs-in-cidrSelector": (_laughs("cidr"), "expands to more than"),
    "self-alias": ("kind: &k [*k]\n", "refers to itself"),
    "kind-as-list": (
        _policy_json(kind=["EgressFirewall"], spec={"egress": []}),
        "kind: must be EgressNetworkPolicy or EgressFirewall, got ['EgressFirewall']",
    ),
    "duplicate-spec-json": (_dup_spec_json(), "duplicate key 'spec'"),
    "duplicate-type-yaml": (
        "kind: EgressFirewall\napiVersion: k8s.ovn.org/v1\n"
        "metadata: {name: default, namespace: myproj}\n"
        "spec:\n  egress:\n  - type: Deny\n    type: Allow\n"
        "    to: {cidrSelector: 0.0.0.0/0}\n",
        "line 7: duplicate key 'type'",
    ),
    "duplicate-deep-json": (
        _policy_json(spec={"egress": []})[:-1]
        + ', "x": {"to": {"cidrSelector": 1, "cidrSelector": 2}}}',
        "duplicate key 'cidrSelector'",
    ),
    "huge-int": ('{"kind": ' + "9" * 5000 + "}", "more digits than allowed"),
    "nan": ('{"kind": NaN}', "NaN is not a JSON number"),
    "oversized": ("# " + "x" * (4 * 1024 * 1024) + "\n", "larger than"),
}


def cr_bombs() -> dict[str, tuple[str, str]]:
    """EgressRouter CR variants of the bombs (the CR parser reads the same decoder)."""
    laughs = _laughs("type").replace("kind: EgressFirewall", "kind: EgressRouter")
    return {
        "deep-yaml-3000": POLICY_BOMBS["deep-yaml-3000"],
        "deep-json-1000": POLICY_BOMBS["deep-json-1000"],
        "laughs": (laughs, "expands to more than"),
        "duplicate-key": (
            "apiVersion: network.operator.openshift.io/v1\nkind: EgressRouter\n"
            "kind: EgressRouter\n",
            "line 3: duplicate key 'kind'",
        ),
        "kind-as-list": (
            "apiVersion: network.operator.openshift.io/v1\nkind: [EgressRouter]\n",
            "must be network.operator.openshift.io/v1/EgressRouter, got",
        ),
    }
