"""The operator's pure model: objects named after each router, owned by it; conditions."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from egress_router.cni.model.config import parse_config
from egress_router.errors import PolicyError
from egress_router.operator import model
from tests import reference_examples as ref


def router(text: str = ref.EGRESS_ROUTER, name: str = "r1", **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = yaml.safe_load(text)
    body["metadata"] = {"name": name, "namespace": "ns", "uid": f"uid-{name}", "generation": 3}
    body["spec"].update(spec)
    return body


def objects(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {o["kind"]: o for o in model.desired_objects(body, model.parse(body), image="img:1")}


def test_objects_are_named_after_the_router_and_owned_by_it() -> None:
    made = objects(router(name="blue"))
    assert set(made) == {"NetworkAttachmentDefinition", "Deployment", "Service"}
    for obj in made.values():
        meta = obj["metadata"]
        assert meta["name"] == "blue" and meta["namespace"] == "ns"
        assert meta["labels"] == {
            "app": "egress-router-cni",
            "network.operator.openshift.io/egress-router": "blue",
        }
        (owner,) = meta["ownerReferences"]
        assert owner["kind"] == "EgressRouter" and owner["uid"] == "uid-blue"
        assert owner["controller"] is True


def test_two_routers_in_one_namespace_do_not_collide() -> None:
    a, b = objects(router(name="a")), objects(router(name="b"))
    for kind in a:
        assert a[kind]["metadata"]["name"] != b[kind]["metadata"]["name"]
    # each Deployment and Service selects only its own router's pods
    assert a["Deployment"]["spec"]["selector"] != b["Deployment"]["spec"]["selector"]
    assert a["Service"]["spec"]["selector"] != b["Service"]["spec"]["selector"]


def test_nad_carries_every_field_and_is_valid_for_our_plugin() -> None:
    body = router(networkInterface={"macvlan": {"mode": "Private", "master": "ens3"}})
    nad = objects(body)["NetworkAttachmentDefinition"]
    config = json.loads(nad["spec"]["config"])
    assert config["name"] == "r1"
    assert config["ip"]["fallbackIP"] == "203.0.113.28"
    assert config["interfaceArgs"] == {"mode": "private", "master": "ens3"}
    parse_config(nad["spec"]["config"])  # our CNI plugin accepts what the operator renders


def test_deployment_asks_multus_for_its_own_nad() -> None:
    dep = objects(router(name="green"))["Deployment"]
    networks = json.loads(
        dep["spec"]["template"]["metadata"]["annotations"]["k8s.v1.cni.cncf.io/networks"]
    )
    assert networks == [{"name": "green", "default-route": ["192.168.12.1"]}]
    (container,) = dep["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "img:1"
    assert container["resources"] == {"requests": {"cpu": "100m"}}


def test_service_has_one_port_per_redirect_rule() -> None:
    service = objects(router())["Service"]
    assert [(p["protocol"], p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [
        ("UDP", 80, 80),
        ("TCP", 8080, 8080),
        ("TCP", 8443, 8443),
    ]


def test_no_service_without_port_rules() -> None:
    body = router(redirect={"fallbackIP": "203.0.113.28"})
    assert "Service" not in objects(body)


def test_a_router_with_two_addresses_carries_both_to_the_plugin() -> None:
    two = [
        {"ip": "192.168.12.99/24", "gateway": "192.168.12.1"},
        {"ip": "192.168.12.100/24", "gateway": "192.168.12.1"},
    ]
    made = objects(router(name="two", addresses=two))
    assert set(made) == {"NetworkAttachmentDefinition", "Deployment", "Service"}
    text = made["NetworkAttachmentDefinition"]["spec"]["config"]
    ip = json.loads(text)["ip"]
    assert ip["addresses"] == ["192.168.12.99/24", "192.168.12.100/24"]
    assert ip["gateways"] == ["192.168.12.1", "192.168.12.1"]
    assert [str(a) for a in parse_config(text).ip.addresses] == ip["addresses"]
    annotations = made["Deployment"]["spec"]["template"]["metadata"]["annotations"]
    networks = json.loads(annotations["k8s.v1.cni.cncf.io/networks"])
    assert networks == [{"name": "two", "default-route": ["192.168.12.1"]}]
    assert made["Service"] == objects(router(name="two"))["Service"]  # unchanged


def test_a_single_address_nad_is_as_before() -> None:
    ip = json.loads(objects(router())["NetworkAttachmentDefinition"]["spec"]["config"])["ip"]
    assert ip == {
        "addresses": ["192.168.12.99/24"],
        "destinations": ip["destinations"],
        "fallbackIP": "203.0.113.28",
        "gateway": "192.168.12.1",
    }


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        (
            {"addresses": [{"ip": "192.168.12.99/24", "gateway": "192.168.12.1"}] * 2},
            "spec.addresses[1].ip",  # the same address twice
        ),
        (
            {
                "addresses": [
                    {"ip": "192.168.12.99/24", "gateway": "192.168.12.1"},
                    {"ip": "192.168.12.100/24", "gateway": "192.168.12.2"},
                ]
            },
            "spec.addresses[1].gateway",  # one default route: one gateway
        ),
        (
            {"addresses": [{"ip": "2001:db8::5/64", "gateway": "2001:db8::1"}]},
            "spec.redirect.redirectRules[0].destinationIP",  # IPv4 rules, no IPv4 address
        ),
    ],
)
def test_what_the_plugin_cannot_do_is_refused_naming_the_field(
    spec: dict[str, Any], field: str
) -> None:
    with pytest.raises(PolicyError, match=field.replace("[", r"\[").replace("]", r"\]")):
        model.parse(router(**spec))


DEPLOYING = {"status": {"replicas": 1}}
RUNNING = {"status": {"replicas": 1, "availableReplicas": 1}}


@pytest.mark.parametrize(
    ("problem", "deployment", "apply_error", "expected"),
    [
        (
            "spec.x: bad",
            None,
            None,
            {"Available": "False", "Progressing": "False", "Degraded": "True"},
        ),
        (
            None,
            None,
            "HTTP 403",
            {"Available": "False", "Progressing": "False", "Degraded": "True"},
        ),
        (None, DEPLOYING, None, {"Available": "False", "Progressing": "True", "Degraded": "False"}),
        (None, RUNNING, None, {"Available": "True", "Progressing": "False", "Degraded": "False"}),
    ],
)
def test_conditions(
    problem: str | None, deployment: Any, apply_error: str | None, expected: dict[str, str]
) -> None:
    got = model.conditions_for(problem, deployment, apply_error=apply_error)
    assert {c.type: c.status for c in got} == expected
    if problem or apply_error:
        assert all((problem or apply_error) in c.message for c in got)


def test_transition_time_kept_while_status_unchanged() -> None:
    first = model.status_for(model.conditions_for(None, DEPLOYING), 1, [], "T1")
    second = model.status_for(model.conditions_for(None, RUNNING), 2, first["conditions"], "T2")
    times = {c["type"]: c["lastTransitionTime"] for c in second["conditions"]}
    assert times == {"Available": "T2", "Progressing": "T2", "Degraded": "T1"}
    assert second["observedGeneration"] == 2
    assert all(c["observedGeneration"] == 2 for c in second["conditions"])


def test_owner_name() -> None:
    obj = objects(router(name="x"))["Deployment"]
    assert model.owner_name(obj) == "x"
    assert model.owner_name({"metadata": {}}) is None


def test_a_dual_stack_router_gets_a_dual_stack_service_with_each_port_once() -> None:
    addresses = [
        {"ip": "192.168.12.99/24", "gateway": "192.168.12.1"},
        {"ip": "2001:db8:12::99/64", "gateway": "2001:db8:12::1"},
    ]
    rules = [
        {"destinationIP": "203.0.113.25", "port": 80, "protocol": "TCP"},
        {"destinationIP": "2001:db8:2::25", "port": 80, "protocol": "TCP"},
        {"destinationIP": "2001:db8:2::26", "port": 53, "protocol": "UDP"},
    ]
    made = objects(router(name="dual", addresses=addresses, redirect={"redirectRules": rules}))
    spec = made["Service"]["spec"]
    assert [(p["name"], p["port"]) for p in spec["ports"]] == [("tcp-80", 80), ("udp-53", 53)]
    assert spec["ipFamilyPolicy"] == "PreferDualStack"
    annotations = made["Deployment"]["spec"]["template"]["metadata"]["annotations"]
    networks = json.loads(annotations["k8s.v1.cni.cncf.io/networks"])
    assert networks == [{"name": "dual", "default-route": ["192.168.12.1", "2001:db8:12::1"]}]
    ip = json.loads(made["NetworkAttachmentDefinition"]["spec"]["config"])["ip"]
    assert ip["gateways"] == ["192.168.12.1", "2001:db8:12::1"]
    config = parse_config(made["NetworkAttachmentDefinition"]["spec"]["config"])
    assert [str(g) for g in config.ip.gateways] == ["192.168.12.1", "2001:db8:12::1"]
    assert "ipFamilyPolicy" not in objects(router())["Service"]["spec"]  # IPv4 rules: as before
