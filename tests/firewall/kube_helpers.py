"""Helpers of the API-fed agent tests: the agent's RBAC from deploy/, a cuttable path to the
API server (socat through a UNIX socket, so an agent inside a lab namespace reaches the API
server on the host's loopback at the same 127.0.0.1 address its certificate names), pods."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from egress_router.lab.controlplane import ControlPlane
from egress_router.lab.kubecerts import free_port, kubeconfig_text
from egress_router.lab.procs import netns_argv
from tests.deploy.helpers import DEPLOY, apply, documents

RBAC_KINDS = ("Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding")


def until(probe: Callable[[], Any], timeout: float = 30.0, what: str = "") -> Any:
    """Poll ``probe`` until it returns something truthy, and return that (generous timeouts:
    the machine is shared)."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        assert time.monotonic() < deadline, f"not within {timeout:.0f} s: {what}"
        time.sleep(0.05)


def install_agent_rbac(api: Any) -> None:
    """Exactly the agent's permissions of deploy/firewall-agent.yaml (its ServiceAccount user)."""
    for doc in documents(DEPLOY / "firewall-agent.yaml"):
        if doc["kind"] in RBAC_KINDS:
            apply(api, doc, "egress-router")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


class ApiBridge:
    """127.0.0.1:``port`` (in ``netns``, or on the host when None) -> the API server.

    ``cut()`` kills both socat processes (and so every open connection); ``restore()``
    starts them again. Only processes this object started are ever signalled.
    """

    def __init__(self, plane: ControlPlane, workdir: Path, netns: str | None = None) -> None:
        self.plane, self.netns = plane, netns
        self.socket = workdir / f"api-{os.getpid()}-{id(self)}.sock"
        self.port = plane.ports["apiserver"] if netns else free_port()
        self.procs: list[subprocess.Popen[bytes]] = []

    def kubeconfig(self, role: str, path: Path) -> Path:
        server = f"https://127.0.0.1:{self.port}"
        path.write_text(kubeconfig_text(server, self.plane.ca_file, self.plane.tokens[role], role))
        path.chmod(0o600)
        return path

    def restore(self) -> None:
        self.socket.unlink(missing_ok=True)
        upstream = f"TCP:127.0.0.1:{self.plane.ports['apiserver']}"
        self.procs.append(self._spawn(["socat", f"UNIX-LISTEN:{self.socket},fork", upstream]))
        deadline = time.monotonic() + 10
        while not self.socket.exists():
            assert time.monotonic() < deadline, "socat did not create its socket"
            time.sleep(0.05)
        listen = f"TCP-LISTEN:{self.port},bind=127.0.0.1,fork,reuseaddr"
        argv = ["socat", listen, f"UNIX-CONNECT:{self.socket}"]
        self.procs.append(self._spawn(netns_argv(self.netns, argv) if self.netns else argv))
        deadline = time.monotonic() + 10
        while not self._listening():
            assert time.monotonic() < deadline, "socat did not listen"
            time.sleep(0.05)

    def _listening(self) -> bool:
        if self.netns is None:
            with socket.socket() as sock:
                return sock.connect_ex(("127.0.0.1", self.port)) == 0
        probe = ["bash", "-c", f"exec 3<>/dev/tcp/127.0.0.1/{self.port}"]
        return subprocess.run(netns_argv(self.netns, probe), capture_output=True).returncode == 0

    @staticmethod
    def _spawn(argv: list[str]) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def cut(self) -> None:
        for proc in self.procs:
            _stop(proc)
        self.procs.clear()

    def __enter__(self) -> ApiBridge:
        self.restore()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cut()
        self.socket.unlink(missing_ok=True)


def create_pod(api: Any, namespace: str, name: str, node: str, *ips: str) -> None:
    """A Pod object scheduled on ``node`` whose status says it runs with ``ips`` (no kubelet)."""
    from kubernetes import client

    core = client.CoreV1Api(api)
    core.create_namespaced_pod(
        namespace,
        {
            "metadata": {"name": name},
            "spec": {
                "nodeName": node,
                "containers": [{"name": "c", "image": "registry.invalid/none"}],
            },
        },
    )
    status = {"phase": "Running", "podIP": ips[0], "podIPs": [{"ip": ip} for ip in ips]}
    core.patch_namespaced_pod_status(name, namespace, {"status": status})


def delete_pod(api: Any, namespace: str, name: str) -> None:
    from kubernetes import client

    client.CoreV1Api(api).delete_namespaced_pod(name, namespace, grace_period_seconds=0)


def create_namespace(api: Any, name: str) -> None:
    from kubernetes import client

    client.CoreV1Api(api).create_namespace({"metadata": {"name": name}})


EF = ("k8s.ovn.org", "v1", "egressfirewalls", "EgressFirewall")
ENP = ("network.openshift.io", "v1", "egressnetworkpolicies", "EgressNetworkPolicy")


def create_policy(
    api: Any, which: tuple[str, str, str, str], namespace: str, name: str, rules: list[Any]
) -> None:
    from kubernetes import client

    group, version, plural, kind = which
    body = {
        "apiVersion": f"{group}/{version}",
        "kind": kind,
        "metadata": {"name": name},
        "spec": {"egress": rules},
    }
    client.CustomObjectsApi(api).create_namespaced_custom_object(
        group, version, namespace, plural, body
    )


def replace_rules(
    api: Any, which: tuple[str, str, str, str], namespace: str, name: str, rules: list[Any]
) -> None:
    from kubernetes import client

    group, version, plural, _ = which
    client.CustomObjectsApi(api).patch_namespaced_custom_object(
        group, version, namespace, plural, name, {"spec": {"egress": rules}}
    )


def delete_policy(api: Any, which: tuple[str, str, str, str], namespace: str, name: str) -> None:
    from kubernetes import client

    group, version, plural, _ = which
    client.CustomObjectsApi(api).delete_namespaced_custom_object(
        group, version, namespace, plural, name
    )


def get_status(
    api: Any, which: tuple[str, str, str, str], namespace: str, name: str
) -> dict[str, Any]:
    from kubernetes import client

    group, version, plural, _ = which
    obj = client.CustomObjectsApi(api).get_namespaced_custom_object(
        group, version, namespace, plural, name
    )
    return dict(obj.get("status") or {})


def warning_events(api: Any, namespace: str, name: str) -> list[tuple[str, str, str]]:
    """(type, reason, message) of the core/v1 Events about the object ``name``."""
    from kubernetes import client

    found = client.CoreV1Api(api).list_namespaced_event(
        namespace, field_selector=f"involvedObject.name={name}"
    )
    return [(e.type, e.reason, e.message) for e in found.items]
