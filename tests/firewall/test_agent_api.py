"""`egress-router firewall agent --node NAME` end to end: the real API server, the agent inside the
lab's node namespace logged in with exactly the RBAC of deploy/firewall-agent.yaml, Pod objects
whose status.podIPs are the lab's pod namespaces, policies created through the API, and traffic
checked for real with curl through the real kernel."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from egress_router.lab import procs
from egress_router.lab.controlplane import ControlPlane
from egress_router.lab.firewall import add_pod
from egress_router.lab.servers import Nginx
from egress_router.lab.topology import Lab
from tests.conftest import EGRESS_ROUTER

from .helpers import CLIENT, CLIENT2, allow, deny, eventually, reach
from .kube_helpers import (
    EF,
    ENP,
    ApiBridge,
    create_namespace,
    create_pod,
    create_policy,
    delete_pod,
    delete_policy,
    get_status,
    install_agent_rbac,
    replace_rules,
    until,
    warning_events,
)

pytestmark = [pytest.mark.lab, pytest.mark.kube, pytest.mark.timeout(300)]

WEB = ["203.0.113.25", "203.0.113.26", "203.0.113.27"]
APPLIED = "EgressFirewall Rules applied"
NOT_APPLIED = "EgressFirewall Rules not correctly applied"


@pytest.fixture
def fwlab(tmp_path: Path) -> Iterator[Lab]:
    with Lab(workdir=tmp_path / "lab", web_firewall=False, extra_roles=("client2",)) as lab:
        add_pod(lab, "client2", CLIENT2)
        Nginx(lab, "web", [f"{ip}:80" for ip in WEB]).start()
        yield lab


def start_api_agent(lab: Lab, kubeconfig: Path, node: str) -> procs.Background:
    argv = [
        EGRESS_ROUTER,
        "firewall",
        "agent",
        "--node",
        node,
        "--kubeconfig",
        str(kubeconfig),
        "--cluster-cidr=198.18.0.0/24",
    ]
    agent = lab.spawn("node", argv, name="fw-agent")
    assert procs.wait_for(lambda: "applied:" in agent.output() or not agent.alive(), 60), (
        agent.output()
    )
    assert agent.alive(), agent.output()
    return agent


def table(lab: Lab) -> str:
    return str(lab.exec("node", ["nft", "list", "table", "inet", "egress_firewall"]).stdout)


def test_policies_and_pods_from_the_api_filter_real_traffic(
    fwlab: Lab, control_plane: ControlPlane, kube_api: Any, tmp_path: Path
) -> None:
    lab = fwlab
    install_agent_rbac(kube_api)
    suffix = uuid.uuid4().hex[:8]
    node, ns_a, ns_b = f"node-{suffix}", f"a-{suffix}", f"b-{suffix}"
    create_namespace(kube_api, ns_a)
    create_namespace(kube_api, ns_b)
    create_pod(kube_api, ns_a, "client", node, CLIENT)
    create_pod(kube_api, ns_b, "client2", node, CLIENT2)
    create_pod(kube_api, ns_a, "elsewhere", "another-node", "198.18.0.9")
    assert reach(lab, "client", WEB[0])

    with ApiBridge(control_plane, tmp_path, netns=lab.ns("node")) as bridge:
        kubeconfig = bridge.kubeconfig("agent", tmp_path / "agent.kubeconfig")
        agent = start_api_agent(lab, kubeconfig, node)

        # a policy created through the API filters the namespace's pod, and only it
        create_policy(kube_api, EF, ns_a, "default", [allow(f"{WEB[1]}/32"), deny("0.0.0.0/0")])
        assert eventually(lambda: not reach(lab, "client", WEB[0], timeout=1), 15)
        assert reach(lab, "client", WEB[1])
        assert reach(lab, "client2", WEB[0])  # namespace b has no policy
        status = until(lambda: get_status(kube_api, EF, ns_a, "default"), 15, "EF status")
        assert status == {"messages": [f"{node}: {APPLIED}"], "status": APPLIED}

        # a second policy in the namespace is refused on itself; the first stays in force
        create_policy(kube_api, ENP, ns_a, "second", [deny(f"{WEB[2]}/32")])
        refused = until(lambda: get_status(kube_api, ENP, ns_a, "second"), 15, "ENP status")
        assert refused["status"] == NOT_APPLIED
        assert refused["messages"] == [
            f"{node}: {NOT_APPLIED}: only one policy per namespace is allowed: "
            f"EgressFirewall default is in force in {ns_a}"
        ]
        assert not reach(lab, "client", WEB[0], timeout=1)
        assert reach(lab, "client", WEB[1])
        # ... and a Warning event on it says why (the agent's RBAC allows creating events)
        refusal = (
            "Warning",
            "PolicyRefused",
            f"{node}: {NOT_APPLIED}: only one policy per namespace is allowed: "
            f"EgressFirewall default is in force in {ns_a}",
        )
        assert until(lambda: warning_events(kube_api, ns_a, "second"), 15, "event") == [refusal]

        # the policy changed through the API
        replace_rules(kube_api, EF, ns_a, "default", [deny(f"{WEB[1]}/32")])
        assert eventually(lambda: not reach(lab, "client", WEB[1], timeout=1), 15)
        assert reach(lab, "client", WEB[0])

        # the pod removed: its address is no longer filtered; added again: filtered again
        delete_pod(kube_api, ns_a, "client")
        assert eventually(lambda: reach(lab, "client", WEB[1], timeout=1), 15)
        create_pod(kube_api, ns_a, "client", node, CLIENT)
        assert eventually(lambda: not reach(lab, "client", WEB[1], timeout=1), 15)
        # reconciled several times since: still the one event (not one per reconcile)
        assert warning_events(kube_api, ns_a, "second") == [refusal]

        # the API server cut off: the last rules stay in force, the agent retries with back-off
        bridge.cut()
        assert eventually(lambda: "retrying in" in agent.output(), 30), agent.output()
        delete_policy(kube_api, EF, ns_a, "default")  # happens while the agent cannot see it
        assert not reach(lab, "client", WEB[1], timeout=1)
        # back: the agent lists again, the EF is gone and the second policy takes over
        bridge.restore()
        assert eventually(lambda: reach(lab, "client", WEB[1], timeout=1), 60), agent.output()
        assert eventually(lambda: not reach(lab, "client", WEB[2], timeout=1), 15)
        until(
            lambda: get_status(kube_api, ENP, ns_a, "second").get("status") == APPLIED,
            15,
            "the second policy applied",
        )
        assert "connected again" in agent.output()

        agent.stop()
        assert agent.popen.returncode == 0, agent.output()
        assert "Traceback" not in agent.output(), agent.output()
        # stopped: the rules stay in the kernel
        assert WEB[2] in table(lab)
        assert not reach(lab, "client", WEB[2], timeout=1)


def test_agent_started_without_api_server_keeps_previous_rules_and_reports_bad_policy(
    fwlab: Lab, control_plane: ControlPlane, kube_api: Any, tmp_path: Path
) -> None:
    lab = fwlab
    install_agent_rbac(kube_api)
    suffix = uuid.uuid4().hex[:8]
    node, ns = f"node-{suffix}", f"c-{suffix}"
    create_namespace(kube_api, ns)
    create_pod(kube_api, ns, "client", node, CLIENT)
    # rules a previous agent left in the kernel
    previous = tmp_path / "previous.json"
    previous.write_text(
        '{"kind": "EgressFirewall", "apiVersion": "k8s.ovn.org/v1", "metadata": {"name": '
        '"default", "namespace": "old"}, "spec": {"egress": [{"type": "Deny", "to": '
        f'{{"cidrSelector": "{WEB[0]}/32"}}}}]}}}}'
    )
    applied = lab.exec(
        "node",
        [EGRESS_ROUTER, "firewall", "apply", f"--pods=old={CLIENT}/32", str(previous)],
    )
    assert applied.returncode == 0, applied.stderr
    assert not reach(lab, "client", WEB[0], timeout=1)

    with ApiBridge(control_plane, tmp_path, netns=lab.ns("node")) as bridge:
        kubeconfig = bridge.kubeconfig("agent", tmp_path / "agent.kubeconfig")
        bridge.cut()
        argv = [EGRESS_ROUTER, "firewall", "agent", "--node", node, "--kubeconfig", str(kubeconfig)]
        agent = lab.spawn("node", argv, name="fw-agent")
        assert eventually(lambda: "retrying in" in agent.output(), 30), agent.output()
        # nothing listed yet: the previous agent's rules stay in force
        assert not reach(lab, "client", WEB[0], timeout=1)
        assert "applied:" not in agent.output()

        bridge.restore()
        assert eventually(lambda: "applied:" in agent.output(), 60), agent.output()
        assert reach(lab, "client", WEB[0])  # the API server has no policy for the pod

        # a policy the CRD accepts but this agent cannot enforce: said in its status
        node_rule = {"type": "Deny", "to": {"nodeSelector": {"matchLabels": {"a": "b"}}}}
        create_policy(kube_api, EF, ns, "default", [node_rule])
        status = until(lambda: get_status(kube_api, EF, ns, "default"), 15, "EF status")
        assert status["status"] == NOT_APPLIED
        (message,) = status["messages"]
        assert message.startswith(f"{node}: {NOT_APPLIED}: ")
        assert "nodeSelector is not supported by this agent" in message
        assert message.endswith("; no rules applied")
        assert reach(lab, "client", WEB[0])
        events = until(lambda: warning_events(kube_api, ns, "default"), 15, "event")
        assert events == [("Warning", "PolicyInvalid", message)]

        agent.stop()
        assert agent.popen.returncode == 0, agent.output()
        assert "Traceback" not in agent.output(), agent.output()
