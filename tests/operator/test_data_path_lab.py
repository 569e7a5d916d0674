"""The data path from a resource (issue 10, item 5): an EgressRouter applied to the real API
server, the NetworkAttachmentDefinition the operator made for it handed byte for byte to our CNI
plugin the way Multus hands it over on a node, and a client's traffic through the configured pod
arriving at the lab's web server from the router's reserved address (the only one it admits)."""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from egress_router.kernel.netlink import netns_path
from egress_router.lab.ipv6 import enable_ipv6
from egress_router.lab.servers import Nginx
from egress_router.lab.topology import Lab
from tests.cni.helpers import CONTAINER, CONTAINER_IP, PLUGIN, attach_cluster_side, container_state
from tests.operator.helpers import (
    GROUP,
    PLURAL,
    VERSION,
    condition,
    create_router,
    custom,
    eventually,
    get_router,
    owned,
)

# The session control plane may start inside this test (20-90 s on a busy machine).
pytestmark = [pytest.mark.lab, pytest.mark.kube, pytest.mark.timeout(300)]

NAME = "web-egress"
# The lab's addressing: the reserved address on the node's external LAN (the web server's
# firewall admits only 198.19.123.99), the LAN's gateway, the web server behind it.
ROUTER = """\
apiVersion: network.operator.openshift.io/v1
kind: EgressRouter
spec:
  networkInterface:
    macvlan:
      mode: Bridge
      master: ext0
  addresses:
  - ip: 198.19.123.99/24
    gateway: 198.19.123.1
  mode: Redirect
  redirect:
    redirectRules:
    - {destinationIP: 203.0.113.25, port: 8080, targetPort: 80, protocol: TCP}
    - {destinationIP: 203.0.113.26, port: 5353, protocol: UDP}
"""
NETWORKS = "k8s.v1.cni.cncf.io/networks"
SELECTOR = "network.operator.openshift.io/egress-router"  # the label naming a pod's router


@pytest.fixture
def cni_lab(tmp_path: Path) -> Iterator[Lab]:
    with Lab(workdir=tmp_path / "lab", extra_roles=(CONTAINER,)) as built:
        attach_cluster_side(built)
        yield built


HOST_LOG = Path("/tmp/egress-router-log")  # the log_file the operator writes into the NAD


def multus_invokes(
    lab: Lab, command: str, config: str, pod: Any, private_tmp: Path
) -> subprocess.CompletedProcess[str]:
    """Run ``egress-router-cni`` on the node as Multus delegates to it (through libcni).

    The environment is exactly the CNI_* set (no EGRESS_* variables), the pod's identity in
    CNI_ARGS, the config on stdin. The NAD's config names ``/tmp/egress-router-log``; the plugin
    runs in a private mount namespace where that one file is ``private_tmp/egress-router-log``
    bound over it, so the log lands in the test's directory instead of the host's /tmp (the only
    liberty taken). Only the file is bound, never /tmp itself: the checkout and its virtual
    environment may live under /tmp (CI clones there).
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CNI_", "EGRESS_"))}
    env.update(
        {
            "CNI_COMMAND": command,
            "CNI_CONTAINERID": pod.metadata.uid.replace("-", ""),
            "CNI_NETNS": netns_path(lab.ns(CONTAINER)),
            "CNI_IFNAME": "net1",
            "CNI_PATH": "/opt/cni/bin:/opt/multus/bin",
            "CNI_ARGS": ";".join(
                [
                    "IgnoreUnknown=true",
                    f"K8S_POD_NAMESPACE={pod.metadata.namespace}",
                    f"K8S_POD_NAME={pod.metadata.name}",
                    f"K8S_POD_INFRA_CONTAINER_ID={pod.metadata.uid.replace('-', '')}",
                    f"K8S_POD_UID={pod.metadata.uid}",
                ]
            ),
        }
    )
    private_log = private_tmp / "egress-router-log"
    private_log.touch()
    created = not HOST_LOG.exists()
    if created:
        HOST_LOG.touch()  # a bind mount needs its target; removed again below
    script = 'mount --bind "$0" "$1" && exec ip netns exec "$2" "$3"'
    argv = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script]
    argv += [str(private_log), str(HOST_LOG), lab.ns("node"), PLUGIN]
    try:
        return subprocess.run(
            argv, input=config, capture_output=True, text=True, env=env, timeout=60
        )
    finally:
        if created and HOST_LOG.stat().st_size == 0:
            HOST_LOG.unlink(missing_ok=True)


def curl(lab: Lab, url: str) -> subprocess.CompletedProcess[str]:
    result: subprocess.CompletedProcess[str] = lab.exec("client", ["curl", "-sS", "-m", "10", url])
    return result


def made_by_operator(kube_api: Any, ns: str, name: str) -> dict[str, Any]:
    """The router's NAD, Deployment and Service, once the operator has made all three."""
    made: dict[str, Any] = eventually(
        lambda: (o := owned(kube_api, ns, name)) and len(o) == 3 and o,
        90,
        "NAD, Deployment and Service made by the operator",
    )
    return made


def router_pod(core: Any, ns: str, name: str) -> Any:
    """The pod the controller-manager made from the router's Deployment (no kubelet runs it)."""
    selector = f"{SELECTOR}={name}"
    return eventually(
        lambda: next(iter(core.list_namespaced_pod(ns, label_selector=selector).items), None),
        120,
        "the router pod object created from the Deployment",
    )


def ready_then_available(
    kube_api: Any, core: Any, ns: str, name: str, pod: Any, pod_ips: list[str]
) -> Any:
    """Report the pod ready with ``pod_ips``, as the kubelet would once its sandbox is up (no
    kubelet runs here); the controller-manager counts it, and the operator marks the router
    Available. Returns the router then, with Degraded checked False."""
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    status = {
        "phase": "Running",
        "podIP": pod_ips[0],
        "podIPs": [{"ip": ip} for ip in pod_ips],
        "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": now}],
    }
    core.patch_namespaced_pod_status(pod.metadata.name, ns, {"status": status})
    router = eventually(
        lambda: (
            (r := get_router(kube_api, ns, name))
            and (c := condition(r, "Available"))
            and c["status"] == "True"
            and r
        ),
        120,
        f"the router {name} Available",
    )
    assert condition(router, "Degraded")["status"] == "False"
    return router


def multus_deletes(
    lab: Lab, config_text: str, result: dict[str, Any], pod: Any, private_tmp: Path
) -> None:
    """DEL as libcni sends it for a 0.4.0 config (the cached ADD result as prevResult); the
    interface and our tables are gone."""
    deleting = json.dumps({**json.loads(config_text), "prevResult": result})
    gone = multus_invokes(lab, "DEL", deleting, pod, private_tmp)
    assert (gone.returncode, gone.stdout) == (0, ""), gone.stderr
    after = container_state(lab)
    assert not any(link["ifname"] == "net1" for link in after["links"])
    assert "egress_router" not in after["ruleset"]


def test_router_resource_to_traffic_from_the_reserved_address(
    kube_api: Any, kube_namespace: str, operator: None, cni_lab: Lab, tmp_path: Path
) -> None:
    from kubernetes import client

    ns = kube_namespace
    create_router(kube_api, ns, NAME, ROUTER)
    made = made_by_operator(kube_api, ns, NAME)
    nad = made["NetworkAttachmentDefinition"]
    config_text = nad["spec"]["config"]
    assert json.loads(config_text) == {
        "cniVersion": "0.4.0",
        "type": "egress-router",
        "name": NAME,
        "ip": {
            "addresses": ["198.19.123.99/24"],
            "destinations": ["8080 TCP 203.0.113.25 80", "5353 UDP 203.0.113.26"],
            "gateway": "198.19.123.1",
        },
        "log_file": "/tmp/egress-router-log",
        "log_level": "debug",
        "interfaceArgs": {"mode": "bridge", "master": "ext0"},
    }

    # The Deployment's pods ask Multus for that NAD (same namespace, by name), with the default
    # route via the router's gateway; the controller-manager made the pod (no kubelet runs it).
    template = made["Deployment"]["spec"]["template"]["metadata"]["annotations"]
    wanted = [{"name": nad["metadata"]["name"], "default-route": ["198.19.123.1"]}]
    assert json.loads(template[NETWORKS]) == wanted
    core = client.CoreV1Api(kube_api)
    pod = router_pod(core, ns, NAME)
    assert json.loads(pod.metadata.annotations[NETWORKS]) == wanted

    # Before the plugin runs: nothing answers on the pod's port, and the web server refuses the
    # client's own way out (the node masquerades it to 198.19.123.10).
    web = Nginx(cni_lab, "web", ["203.0.113.25:80"]).start()
    assert curl(cni_lab, f"http://{CONTAINER_IP}:8080/ip").returncode != 0
    direct = curl(cni_lab, "http://203.0.113.25/ip")
    assert direct.returncode == 7, direct  # refused at once (ICMP host-prohibited), no timeout
    assert web.client_addresses() == []

    private_tmp = tmp_path / "node-tmp"
    private_tmp.mkdir()
    added = multus_invokes(cni_lab, "ADD", config_text, pod, private_tmp)
    assert added.returncode == 0, added.stdout + added.stderr
    result = json.loads(added.stdout)
    assert result["interfaces"][0]["name"] == "net1"
    assert result["interfaces"][0]["sandbox"] == netns_path(cni_lab.ns(CONTAINER))
    assert result["ips"] == [
        {"version": "4", "interface": 0, "address": "198.19.123.99/24", "gateway": "198.19.123.1"}
    ]
    log = (private_tmp / "egress-router-log").read_text()
    assert "Called CNI ADD" in log
    assert "Added nftables rule: iif eth0 tcp dport 8080 dnat to 203.0.113.25:80" in log

    through = curl(cni_lab, f"http://{CONTAINER_IP}:8080/ip")
    assert through.returncode == 0, through.stderr
    assert "198.19.123.99" in through.stdout
    assert web.client_addresses() == ["198.19.123.99"]

    # DEL as libcni sends it for a 0.4.0 config: the cached ADD result as prevResult.
    multus_deletes(cni_lab, config_text, result, pod, private_tmp)
    assert curl(cni_lab, f"http://{CONTAINER_IP}:8080/ip").returncode != 0
    assert web.client_addresses() == ["198.19.123.99"]

    # Deleting the router through the API: the garbage collector removes what it owned.
    custom(kube_api).delete_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, NAME)
    eventually(lambda: not owned(kube_api, ns, NAME), 120, "NAD, Deployment, Service collected")
    eventually(
        lambda: not core.list_namespaced_pod(ns, label_selector=f"{SELECTOR}={NAME}").items,
        120,
        "the router pod collected",
    )


TWO_NAME = "two-egress"
# Two reserved addresses (the web server's firewall admits both), one gateway.
TWO_ROUTER = """\
apiVersion: network.operator.openshift.io/v1
kind: EgressRouter
spec:
  networkInterface:
    macvlan:
      mode: Bridge
      master: ext0
  addresses:
  - ip: 198.19.123.99/24
    gateway: 198.19.123.1
  - ip: 198.19.123.100/24
    gateway: 198.19.123.1
  mode: Redirect
  redirect:
    redirectRules:
    - {destinationIP: 203.0.113.25, port: 8080, targetPort: 80, protocol: TCP}
    - {destinationIP: 203.0.113.26, port: 8081, targetPort: 80, protocol: TCP}
    - {destinationIP: 203.0.113.27, port: 8082, targetPort: 80, protocol: TCP}
"""
CLIENT_SOURCES = [f"198.18.0.{i}" for i in range(30, 36)]


def test_two_address_router_from_the_api_serves_from_both_and_goes_available(
    kube_api: Any, kube_namespace: str, operator: None, cni_lab: Lab, tmp_path: Path
) -> None:
    from kubernetes import client

    ns = kube_namespace
    create_router(kube_api, ns, TWO_NAME, TWO_ROUTER)
    made = made_by_operator(kube_api, ns, TWO_NAME)
    config_text = made["NetworkAttachmentDefinition"]["spec"]["config"]
    ip = json.loads(config_text)["ip"]
    assert ip["addresses"] == ["198.19.123.99/24", "198.19.123.100/24"]
    assert (ip["gateway"], ip["gateways"]) == ("198.19.123.1", ["198.19.123.1"] * 2)
    template = made["Deployment"]["spec"]["template"]["metadata"]["annotations"]
    assert json.loads(template[NETWORKS]) == [{"name": TWO_NAME, "default-route": ["198.19.123.1"]}]
    core = client.CoreV1Api(kube_api)
    pod = router_pod(core, ns, TWO_NAME)

    private_tmp = tmp_path / "node-tmp"
    private_tmp.mkdir()
    added = multus_invokes(cni_lab, "ADD", config_text, pod, private_tmp)
    assert added.returncode == 0, added.stdout + added.stderr
    result = json.loads(added.stdout)
    assert [entry["address"] for entry in result["ips"]] == ip["addresses"]

    # Flows from several clients to three servers: each pair keeps one address, both are used.
    for source in CLIENT_SOURCES:
        cni_lab.exec("client", ["ip", "addr", "add", f"{source}/24", "dev", "eth0"], check=True)
    cni_lab.set_web_firewall(["198.19.123.99", "198.19.123.100"])
    Nginx(cni_lab, "web", ["203.0.113.25:80", "203.0.113.26:80", "203.0.113.27:80"]).start()
    arrived = set()
    for source in CLIENT_SOURCES:
        for port in (8080, 8081, 8082):
            argv = ["curl", "-sS", "-m", "10", "--interface", source]
            proc = cni_lab.exec("client", [*argv, f"http://{CONTAINER_IP}:{port}/ip"])
            assert proc.returncode == 0, proc.stderr
            arrived.add(proc.stdout.strip())
    assert arrived == {"198.19.123.99", "198.19.123.100"}

    ready_then_available(kube_api, core, ns, TWO_NAME, pod, [CONTAINER_IP])

    multus_deletes(cni_lab, config_text, result, pod, private_tmp)


# -- IPv6 and dual stack: the same path from a resource -----------------------------------------

CONTAINER_IP6 = "2001:db8:c::4"  # the router pod's cluster-side IPv6 address (lab.ipv6)
V6_ROUTER = """\
apiVersion: network.operator.openshift.io/v1
kind: EgressRouter
spec:
  networkInterface:
    macvlan: {mode: Bridge, master: ext0}
  addresses:
  - {ip: "2001:db8:1::99/64", gateway: "2001:db8:1::1"}
  mode: Redirect
  redirect:
    redirectRules:
    - {destinationIP: "2001:db8:2::25", port: 8080, targetPort: 80, protocol: TCP}
"""
# One port for both families: the family the client comes over picks the destination.
DUAL_ROUTER = """\
apiVersion: network.operator.openshift.io/v1
kind: EgressRouter
spec:
  networkInterface:
    macvlan: {mode: Bridge, master: ext0}
  addresses:
  - {ip: 198.19.123.99/24, gateway: 198.19.123.1}
  - {ip: "2001:db8:1::99/64", gateway: "2001:db8:1::1"}
  mode: Redirect
  redirect:
    redirectRules:
    - {destinationIP: 203.0.113.25, port: 8080, targetPort: 80, protocol: TCP}
    - {destinationIP: "2001:db8:2::25", port: 8080, targetPort: 80, protocol: TCP}
"""
V6_CASES = [
    pytest.param(
        "v6-egress",
        V6_ROUTER,
        {
            "addresses": ["2001:db8:1::99/64"],
            "destinations": ["8080 TCP 2001:db8:2::25 80"],
            "gateway": "2001:db8:1::1",
        },
        [(f"http://[{CONTAINER_IP6}]:8080/ip", "2001:db8:1::99")],
        id="ipv6",
    ),
    pytest.param(
        "dual-egress",
        DUAL_ROUTER,
        {
            "addresses": ["198.19.123.99/24", "2001:db8:1::99/64"],
            "destinations": ["8080 TCP 203.0.113.25 80", "8080 TCP 2001:db8:2::25 80"],
            "gateway": "198.19.123.1",
            "gateways": ["198.19.123.1", "2001:db8:1::1"],
        },
        [
            (f"http://{CONTAINER_IP}:8080/ip", "198.19.123.99"),
            (f"http://[{CONTAINER_IP6}]:8080/ip", "2001:db8:1::99"),
        ],
        id="dual-stack",
    ),
]


@pytest.fixture
def dual_lab(cni_lab: Lab) -> Lab:
    """The lab with its IPv6 side (2001:db8::/32) beside the IPv4 one."""
    enable_ipv6(cni_lab, {CONTAINER: ipaddress.IPv6Address(CONTAINER_IP6)})
    return cni_lab


@pytest.mark.parametrize(("name", "text", "ip", "flows"), V6_CASES)
def test_ipv6_router_from_the_api_serves_from_its_reserved_address_and_goes_available(
    kube_api: Any,
    kube_namespace: str,
    operator: None,
    dual_lab: Lab,
    tmp_path: Path,
    name: str,
    text: str,
    ip: dict[str, Any],
    flows: list[tuple[str, str]],
) -> None:
    from kubernetes import client

    ns = kube_namespace
    create_router(kube_api, ns, name, text)
    made = made_by_operator(kube_api, ns, name)
    config_text = made["NetworkAttachmentDefinition"]["spec"]["config"]
    assert json.loads(config_text)["ip"] == ip
    # One default route per family present, through that family's gateway.
    gateways = ip.get("gateways", [ip["gateway"]])
    template = made["Deployment"]["spec"]["template"]["metadata"]["annotations"]
    assert json.loads(template[NETWORKS]) == [{"name": name, "default-route": gateways}]
    core = client.CoreV1Api(kube_api)
    pod = router_pod(core, ns, name)
    assert json.loads(pod.metadata.annotations[NETWORKS])[0]["default-route"] == gateways
    service = made["Service"]["spec"]  # (the client's snake_case dict)
    assert [p["port"] for p in service["ports"]] == [8080]  # once, for both families
    # IPv6 rules: both families asked for; this cluster's service range is IPv4 only
    assert (service["ip_family_policy"], service["ip_families"]) == ("PreferDualStack", ["IPv4"])

    web = Nginx(dual_lab, "web", ["203.0.113.25:80", "[2001:db8:2::25]:80"]).start()
    for url, _source in flows:  # nothing answers on the pod's ports before the plugin runs
        assert curl(dual_lab, url).returncode != 0

    private_tmp = tmp_path / "node-tmp"
    private_tmp.mkdir()
    added = multus_invokes(dual_lab, "ADD", config_text, pod, private_tmp)
    assert added.returncode == 0, added.stdout + added.stderr
    result = json.loads(added.stdout)
    assert result["ips"] == [
        {"version": str(ipaddress.ip_interface(address).version), "interface": 0}
        | {"address": address, "gateway": gateway}
        for address, gateway in zip(ip["addresses"], gateways, strict=True)
    ]
    log = (private_tmp / "egress-router-log").read_text()
    assert "dnat to [2001:db8:2::25]:80" in log

    for url, source in flows:
        through = curl(dual_lab, url)
        assert through.returncode == 0, through.stderr
        assert through.stdout.strip() == source
    assert web.client_addresses() == [source for _url, source in flows]

    # the pod ready with both of its cluster addresses
    ready_then_available(kube_api, core, ns, name, pod, [CONTAINER_IP, CONTAINER_IP6])

    multus_deletes(dual_lab, config_text, result, pod, private_tmp)
    for url, _source in flows:
        assert curl(dual_lab, url).returncode != 0
