"""The adaptation of the documents' YAML changes image names and site addresses, nothing else."""

from __future__ import annotations

import pytest
import yaml

from egress_router.lab.podman import IMAGE, PAUSE_IMAGE, pod_spec
from tests.image import documents

PODS = {
    "legacy": documents.LEGACY,
    "init": documents.INIT,
    "multi": documents.CONFIGMAP + "---\n" + documents.MULTI_FROM_CONFIGMAP,
    "http-proxy": documents.HTTP_PROXY,
    "dns-proxy": documents.DNS_PROXY,
    "deploy/redirect.yaml": (documents.DEPLOY / "redirect.yaml").read_text(),
    "deploy/http-proxy.yaml": (documents.DEPLOY / "http-proxy.yaml").read_text(),
    "deploy/dns-proxy.yaml": (documents.DEPLOY / "dns-proxy.yaml").read_text(),
}


@pytest.mark.parametrize("name", PODS)
def test_only_images_and_site_addresses_change(name: str) -> None:
    original = PODS[name]
    adapted, changes = documents.adapt(original, IMAGE, PAUSE_IMAGE)
    mapping = documents.SITE_TO_LAB
    assert documents.strip_changes(adapted, mapping) == documents.strip_changes(original, mapping)
    images = {c["image"] for d in yaml.safe_load_all(adapted) if d and d["kind"] == "Pod"
              for g in ("initContainers", "containers") for c in d["spec"].get(g, [])}  # fmt: skip
    assert images <= {IMAGE, PAUSE_IMAGE}
    assert all(" -> " in c for c in changes)


def test_configmap_feeds_the_destination() -> None:
    adapted, _ = documents.adapt(PODS["multi"], IMAGE, PAUSE_IMAGE)
    pod = pod_spec(adapted)
    (init,) = pod.init
    env = dict(init.env)
    assert env["EGRESS_DESTINATION"].startswith('# Egress routes for Project "Test", version 3\n')
    assert env["EGRESS_SOURCE"] == "198.19.123.99/24"
    assert init.privileged
