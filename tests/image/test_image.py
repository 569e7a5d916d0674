"""The image itself: what it is made of (labels), what it leaves out, how its entrypoint picks
the role and the user, and that its `podman save` archive loads into another store."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest

from egress_router.lab.podman import ULIMITS

pytestmark = [pytest.mark.lab, pytest.mark.image, pytest.mark.timeout(600)]

RUN = ["podman", "run", "--rm", "--network", "none", *(f"--ulimit={u}" for u in ULIMITS)]


def labels(image: str) -> dict[str, str]:
    out = subprocess.run(
        ["podman", "image", "inspect", image], capture_output=True, text=True, check=True
    )
    info: list[dict[str, Any]] = json.loads(out.stdout)
    return dict(info[0]["Labels"])


def sh(image: str, script: str, *options: str) -> subprocess.CompletedProcess[str]:
    argv = [*RUN, *options, "--entrypoint", "/bin/sh", image, "-c", script]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120)


def test_labels_record_the_suite_and_every_package_version(image: str) -> None:
    found = labels(image)
    assert found["io.egress-router.debian.suite"] == "bookworm"
    debian = dict(p.split("=", 1) for p in found["io.egress-router.debian.packages"].split())
    for package in ("python3", "nftables", "conntrack", "iproute2", "libc6"):
        assert debian.get(package), package
    python = dict(p.split("==", 1) for p in found["io.egress-router.python.packages"].split())
    assert python["egress_router"] and python["pyroute2"] == "0.9.7"
    # the label is the truth: the image's dpkg database lists the same versions
    listed = sh(image, "dpkg-query -W -f '${Package}=${Version} '").stdout.split()
    assert dict(p.split("=", 1) for p in listed) == debian


def test_no_compiler_no_pip_no_package_lists(image: str) -> None:
    script = (
        "for t in gcc cc c++ make ld pip pip3; do command -v $t && exit 1; done; "
        "ls /opt/egress-router/bin/ | grep -i pip && exit 1; "
        "ls /var/lib/apt/lists | grep -v -x -e lock -e partial && exit 1; "
        "egress-router --help >/dev/null"
    )
    result = sh(image, script)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("env", "caps", "want_uid", "want_caps"),
    [
        # the router setup stays root (it needs NET_ADMIN and NET_RAW)
        ({}, [], "0", None),
        # the HTTP proxy: uid 10001, no capability (NET_BIND_SERVICE only below port 1024)
        ({"EGRESS_HTTP_PROXY_DESTINATION": "*"}, [], "10001", 0),
        (
            {"EGRESS_HTTP_PROXY_DESTINATION": "*", "EGRESS_HTTP_PROXY_LISTEN_PORT": "80"},
            [],
            "10001",
            1 << 10,
        ),
        # started unprivileged, or with every capability dropped: run as started
        ({"EGRESS_HTTP_PROXY_DESTINATION": "*"}, ["--user=10001"], "10001", 0),
        ({"EGRESS_HTTP_PROXY_DESTINATION": "*"}, ["--cap-drop=ALL"], "0", 0),
        # the DNS proxy: NET_ADMIN kept only when the container has it (the kernel path)
        ({"EGRESS_DNS_PROXY_DESTINATION": "80 203.0.113.25"}, [], "10001", 1 << 10),
        (
            {"EGRESS_DNS_PROXY_DESTINATION": "80 203.0.113.25"},
            ["--cap-add=NET_ADMIN"],
            "10001",
            (1 << 10) | (1 << 12),
        ),
    ],
)
def test_entrypoint_drops_the_proxies_to_an_unprivileged_user(
    image: str, env: dict[str, str], caps: list[str], want_uid: str, want_caps: int | None
) -> None:
    # The entrypoint's role choice and privilege drop, with the role's command replaced by a
    # report: egress-router is shadowed by a script printing uid, effective caps and forwarding.
    report = (
        "mkdir -p /tmp/bin && printf '%s\\n' '#!/bin/sh' "
        "'echo $(id -u) $(sed -n s/^CapEff:.//p /proc/self/status) "
        "${EGRESS_DNS_PROXY_FORWARDING:-unset} $*' >/tmp/bin/egress-router && "
        "chmod +x /tmp/bin/egress-router && PATH=/tmp/bin:$PATH "
        "exec /usr/local/bin/egress-router-entrypoint"
    )
    options = [*caps, *(f"--env={k}={v}" for k, v in env.items())]
    result = sh(image, report, *options)
    assert result.returncode == 0, result.stderr
    uid, capeff, forwarding, *command = result.stdout.split()
    assert uid == want_uid
    if want_caps is not None:
        assert int(capeff, 16) == want_caps
    if "EGRESS_DNS_PROXY_DESTINATION" in env:
        assert command == ["dns-proxy"]
        assert forwarding == ("unset" if "--cap-add=NET_ADMIN" in caps else "relay")
    elif env:
        assert command == ["http-proxy"]
    else:
        assert command == ["setup"]


def test_saved_archive_loads_into_another_store(image: str) -> None:
    with tempfile.TemporaryDirectory(prefix="erload-") as tmp:
        archive = Path(tmp) / "egress-router.tar"
        subprocess.run(
            ["podman", "save", "--quiet", "--format", "docker-archive", "-o", str(archive), image],
            check=True,
            timeout=300,
        )
        storage = Path(tmp) / "storage.conf"
        storage.write_text(
            f'[storage]\ndriver = "overlay"\ngraphroot = "{tmp}/graph"\nrunroot = "{tmp}/run"\n'
        )
        env = {**os.environ, "CONTAINERS_STORAGE_CONF": str(storage)}
        subprocess.run(
            ["podman", "load", "--quiet", "-i", str(archive)], check=True, env=env, timeout=300
        )
        loaded = subprocess.run(
            ["podman", "image", "inspect", "--format", "{{.Labels}}", image],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        assert "io.egress-router.debian.suite:bookworm" in loaded.stdout
        subprocess.run(["podman", "rmi", "--all", "--force"], env=env, capture_output=True)
