"""The lab's control plane: the build script without Go, the reasons when binaries are missing,
`lab up --kubernetes` / `lab down` across processes (only our PIDs stopped)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from egress_router.errors import ControlPlaneError
from egress_router.lab import controlplane
from tests.conftest import ROOT, cli


def test_script_without_go_says_so_in_one_line_and_succeeds(tmp_path: Path) -> None:
    env = {
        "PATH": "/usr/bin:/bin",  # no /usr/local/go/bin
        "EGRESS_ROUTER_CONTROL_PLANE_CACHE": str(tmp_path / "cache"),
        "HOME": str(tmp_path),
    }
    proc = subprocess.run(
        [str(ROOT / "scripts" / "control-plane")], capture_output=True, text=True, env=env
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "control-plane: no Go toolchain (go not on PATH): the Kubernetes tests will be skipped"
    ]


def test_missing_binaries_give_the_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(controlplane.BIN_ENV, str(tmp_path))
    monkeypatch.setattr(controlplane.shutil, "which", lambda name: "/usr/local/go/bin/go")
    with pytest.raises(ControlPlaneError, match=r"not built in .*run scripts/control-plane"):
        controlplane.binaries_dir()
    monkeypatch.setattr(controlplane.shutil, "which", lambda name: None)
    with pytest.raises(ControlPlaneError, match="no Go toolchain"):
        controlplane.binaries_dir()


@pytest.mark.lab
def test_lab_up_kubernetes_without_binaries_builds_nothing(tmp_path: Path) -> None:
    env = {controlplane.BIN_ENV: str(tmp_path), "PATH": os.environ["PATH"]}
    proc = cli("lab", "up", "--kubernetes", env=env)
    assert proc.returncode != 0
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "not built" in proc.stderr or "no Go toolchain" in proc.stderr
    assert proc.stdout == ""  # refused before building: no lab id printed


@pytest.mark.lab
@pytest.mark.slow
def test_lab_up_kubernetes_then_down() -> None:
    try:
        bins = controlplane.binaries_dir()
    except ControlPlaneError as exc:
        pytest.skip(f"no Kubernetes control plane: {exc}")
    up = cli("lab", "up", "--kubernetes", env={controlplane.BIN_ENV: str(bins)}, timeout=300)
    assert up.returncode == 0, up.stderr
    lab_id = up.stdout.split()[0]
    try:
        kubeconfig = next(
            line.split()[1] for line in up.stdout.splitlines() if "kubeconfig" in line
        )
        from kubernetes import client, config

        with config.new_client_from_config(config_file=kubeconfig) as api:
            crds = client.ApiextensionsV1Api(api).list_custom_resource_definition()
            names = {crd.metadata.name for crd in crds.items}
        assert "egressrouters.network.operator.openshift.io" in names
        pids = controlplane.ControlPlane.load(Path(kubeconfig).parent / "state.json").pids.values()
        assert all(Path(f"/proc/{pid}").exists() for pid in pids)
    finally:
        down = cli("lab", "down", lab_id)
    assert down.returncode == 0, down.stderr
    assert not [pid for pid in pids if Path(f"/proc/{pid}").exists()]
