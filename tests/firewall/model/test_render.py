"""The nft JSON for the document's example: the table layout, and set updates."""

from __future__ import annotations

from egress_router.firewall.model.decide import parse_node
from egress_router.firewall.model.plan import compile_plan
from egress_router.firewall.model.policy import index_by_namespace, parse_text
from egress_router.firewall.model.render import build, learn_commands
from tests.reference_examples import EGRESS_NETWORK_POLICY


def rules_of(cmds, chain):
    return [
        c["add"]["rule"]["expr"]
        for c in cmds
        if "rule" in c.get("add", {}) and c["add"]["rule"]["chain"] == chain
    ]


def test_example_layout():
    policies = index_by_namespace(parse_text(EGRESS_NETWORK_POLICY, "ex.json", "myproj"))
    plan = compile_plan(policies, parse_node(["myproj=198.18.0.3/32"], ["198.18.0.0/24"]))
    dset = plan.sets_for("myproj", "www.foo.com")[0].name
    cmds = build(plan, {dset: [("203.0.113.26", 7.2)]})
    forward = rules_of(cmds, "forward")
    assert forward[0][0]["match"]["right"] == ["established", "related"]  # replies first
    assert forward[1][0]["match"]["right"] == "@exempt_v4"
    assert forward[2][0]["vmap"]["data"] == "@sources_v4"
    chain = rules_of(cmds, "ns_myproj")
    assert [
        e[0].get("vmap", e[0].get("match", {})).get("data") or e[0]["match"]["right"] for e in chain
    ] == [
        "@ns_myproj_m0v4",
        "@" + dset,
        "@" + dset.replace("v4", "v6"),
        "@ns_myproj_m3v4",
    ]
    elements = [c["add"]["element"] for c in cmds if "element" in c.get("add", {})]
    assert {"elem": {"val": "203.0.113.26", "timeout": 8}} in next(
        e["elem"] for e in elements if e["name"] == dset
    )
    last_map = next(e for e in elements if e["name"] == "ns_myproj_m3v4")
    assert last_map["elem"] == [
        [{"range": ["0.0.0.0", "255.255.255.255"]}, {"goto": {"target": "deny"}}]
    ]


def test_learn_is_add_delete_add():
    cmds = learn_commands("s", [("203.0.113.9", 3)])
    assert [next(iter(c)) for c in cmds] == ["add", "delete", "add"]
    assert learn_commands("s", []) == []


def test_addresses_resolved_once_have_no_timeout():
    from egress_router.firewall.model.render import elements

    assert elements([("203.0.113.9", float("inf")), ("203.0.113.8", 2.2)]) == [
        "203.0.113.9",
        {"elem": {"val": "203.0.113.8", "timeout": 3}},
    ]
