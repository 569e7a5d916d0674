"""``egress-router cni render``: the CR file in, the operator's objects out as YAML."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from tests.cni.model.test_egressrouter import CANONICAL, EXPECTED_CONFIG
from tests.conftest import cli


def test_render_prints_nad_and_deployment(tmp_path: Path) -> None:
    cr = tmp_path / "cr.yaml"
    cr.write_text(CANONICAL)
    result = cli("cni", "render", str(cr), "--release-version", "4.99.0")
    assert result.returncode == 0, result.stderr
    nad, deployment = yaml.safe_load_all(result.stdout)
    assert nad["kind"] == "NetworkAttachmentDefinition"
    assert json.loads(nad["spec"]["config"]) == EXPECTED_CONFIG
    assert nad["metadata"]["annotations"]["release.openshift.io/version"] == "4.99.0"
    assert deployment["metadata"]["name"] == "egress-router-cni-deployment"
    assert deployment["spec"]["template"]["metadata"]["labels"] == {"app": "egress-router-cni"}


def test_render_rejects_bad_cr_in_one_line(tmp_path: Path) -> None:
    cr = tmp_path / "cr.yaml"
    cr.write_text(CANONICAL.replace("port: 80,", "port: 0,"))
    result = cli("cni", "render", str(cr))
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == (
        f"egress-router: {cr}, spec.redirect.redirectRules[0].port: "
        "must be an integer 1-65535, got 0\n"
    )
    missing = cli("cni", "render", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 1
    assert missing.stderr.startswith("egress-router: ") and "cannot read" in missing.stderr
