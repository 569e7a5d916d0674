"""Shared fixtures: the network-namespace lab (root only), the real Kubernetes control plane
(skipped with the reason when it is not built) and the CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from egress_router.errors import ControlPlaneError
from egress_router.lab.controlplane import ControlPlane, binaries_dir
from egress_router.lab.topology import Lab
from tests.runtime.unexpected_helpers import Reports, reports_fixture

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
EGRESS_ROUTER = str(VENV_BIN / "egress-router")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.geteuid() == 0:
        return
    skip = pytest.mark.skip(reason="needs root for network namespaces")
    for item in items:
        if "lab" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    """A fresh blog topology in uniquely named namespaces, removed afterwards."""
    with Lab(workdir=tmp_path / "lab") as built:
        yield built


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    """A real etcd + kube-apiserver + kube-controller-manager on loopback, our CRDs installed.

    Started once per session (about 10-30 s), stopped by PID at the end. Skipped, with the
    reason, when scripts/control-plane could not build the binaries (no Go toolchain).
    """
    try:
        bins = binaries_dir()
    except ControlPlaneError as exc:
        pytest.skip(f"no Kubernetes control plane: {exc}")
    plane = ControlPlane(
        workdir=tmp_path_factory.mktemp("control-plane"),
        bin_dir=bins,
        crd_dir=ROOT / "deploy" / "crds",
    )
    with plane:
        yield plane


@pytest.fixture(scope="session")
def kube_api(control_plane: ControlPlane) -> Iterator[Any]:
    """A ``kubernetes`` client (``ApiClient``) logged in as cluster admin."""
    from kubernetes import config

    client = config.new_client_from_config(config_file=str(control_plane.kubeconfig("admin")))
    with client:
        yield client


@pytest.fixture
def kube_namespace(kube_api: Any) -> Iterator[str]:
    """A fresh namespace for one test, deleted afterwards (the controller-manager empties it)."""
    from kubernetes import client

    core = client.CoreV1Api(kube_api)
    name = f"t-{uuid.uuid4().hex[:10]}"
    core.create_namespace({"metadata": {"name": name}})
    yield name
    core.delete_namespace(name)


def cli(
    *args: str,
    env: dict[str, str] | None = None,
    namespace: str | None = None,
    timeout: float = 60.0,
) -> subprocess.CompletedProcess[str]:
    """Run the installed ``egress-router`` console script (optionally inside a namespace)."""
    argv = [EGRESS_ROUTER, *args]
    if namespace:
        argv = ["ip", "netns", "exec", namespace, *argv]
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("EGRESS_")}
    full_env.update(env or {})
    return subprocess.run(argv, capture_output=True, text=True, env=full_env, timeout=timeout)


LAB_SOURCE = "198.19.123.99/24"
LAB_GATEWAY = "198.19.123.1"


def setup_router(
    lab: Lab,
    mode: str = "init",
    destination: str | None = None,
    source: str = LAB_SOURCE,
    gateway: str = LAB_GATEWAY,
    extra_env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``egress-router setup`` in the lab's router pod and assert it succeeded.

    ``mode`` init/legacy need ``destination``; http-proxy/dns-proxy configure the macvlan,
    the routes and ip_forward only (the proxy fixtures call this before starting a proxy).
    """
    env = {"EGRESS_SOURCE": source, "EGRESS_GATEWAY": gateway, "EGRESS_ROUTER_MODE": mode}
    if destination is not None:
        env["EGRESS_DESTINATION"] = destination
    env.update(extra_env or {})
    result = cli("setup", env=env, namespace=lab.ns("router"))
    assert result.returncode == 0, f"setup failed ({result.returncode}): {result.stderr}"
    return result


@pytest.fixture
def reports(monkeypatch: pytest.MonkeyPatch) -> Iterator[Reports]:
    """Unexpected errors reported during the test (``runtime.unexpected``): lines and counter."""
    yield from reports_fixture(monkeypatch)
