"""The operator as a separate process for the operator's API tests (one per test module)."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from egress_router.lab.controlplane import ControlPlane
from tests.conftest import EGRESS_ROUTER
from tests.deploy.helpers import DEPLOY, apply, documents


@pytest.fixture(scope="module")
def operator(control_plane: ControlPlane, kube_api: Any, tmp_path_factory: Any) -> Iterator[None]:
    """`egress-router operator` as a separate process, logged in as its ServiceAccount."""
    from kubernetes.client.rest import ApiException

    for doc in documents(DEPLOY / "operator.yaml"):
        if doc["kind"] in ("Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding"):
            try:
                apply(kube_api, doc, "egress-router")
            except ApiException as exc:  # pragma: no cover - shown when RBAC is refused
                raise AssertionError(exc.body) from exc
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EGRESS_", "KUBE"))}
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [EGRESS_ROUTER, "operator", "--kubeconfig", str(control_plane.kubeconfig("operator"))],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    try:
        yield
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        text = log.read_text(errors="replace")
        assert "Traceback" not in text, text[-3000:]
