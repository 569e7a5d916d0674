"""The image (built by scripts/image when absent) and a private podman in the lab."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from egress_router.lab.podman import IMAGE, PAUSE_IMAGE, Podman, image_present
from egress_router.lab.topology import Lab
from tests.conftest import ROOT

BUILD_TIMEOUT = 1500.0  # a cold build (debootstrap + wheels) takes a few minutes


@pytest.fixture(scope="session")
def image() -> str:
    """Our image, built from these sources: scripts/image builds it (cached base) when it is
    missing or was built from other sources, and returns at once otherwise."""
    subprocess.run(
        [str(ROOT / "scripts" / "image"), "--if-needed"], check=True, timeout=BUILD_TIMEOUT
    )
    assert image_present(IMAGE) and image_present(PAUSE_IMAGE)
    return IMAGE


@pytest.fixture
def podman(lab: Lab, image: str) -> Iterator[Podman]:
    """podman with its own pods and state, resolving names through the lab's node DNS."""
    engine = Podman(lab, dns_servers=[str(lab.addr.node_cluster_ip)])
    try:
        yield engine
    finally:
        engine.close()
