"""Shared fixtures: the network-namespace lab (root only) and the CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from egress_router.lab.topology import Lab

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
