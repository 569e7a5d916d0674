"""Our container image run inside a lab namespace by podman (``kube play`` or ``run``).

Owns: a private podman state per use (containers, pods, their storage and locks under a work
directory; images are read from the machine's store, never written there), the engine settings
that work on these machines (runc, lowered ulimits, the lab's DNS server), and putting a pod
into a lab namespace: podman runs under ``nsenter --net`` with host networking, so every
container of a pod shares that namespace, as a pod's containers share the pod's network.
Must not: create networks, bridges or firewall rules (host networking only, and only inside a
lab namespace: ``check_namespace`` proves it before anything privileged runs), or change the
machine's image store.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from egress_router.lab.topology import Lab

IMAGE = os.environ.get("EGRESS_ROUTER_IMAGE", "localhost/egress-router:latest")
PAUSE_IMAGE = "localhost/egress-router-pause:latest"  # catatonit, made by scripts/image
MACHINE_STORE = "/var/lib/containers/storage"
NETNS_DIR = Path("/var/run/netns")
# These machines may not raise the open-files and process limits podman asks for by default.
ULIMITS = ("nofile=1024:1024", "nproc=4096:4096")


def image_present(image: str = IMAGE) -> bool:
    """Is ``image`` in the machine's podman store?"""
    if shutil.which("podman") is None:
        return False
    proc = subprocess.run(["podman", "image", "exists", image], capture_output=True, timeout=60)
    return proc.returncode == 0


class PodmanError(RuntimeError):
    """A podman command failed (its stderr is in the message)."""


class Podman:
    """podman with its own state under ``workdir``; close() removes every pod it made."""

    def __init__(self, lab: Lab, workdir: Path, dns_servers: Sequence[str] = ()) -> None:
        self.lab = lab
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        storage = self.dir / "storage.conf"
        storage.write_text(
            "[storage]\n"
            'driver = "overlay"\n'
            f'graphroot = "{self.dir / "graph"}"\n'
            f'runroot = "{self.dir / "run"}"\n'
            "[storage.options]\n"
            f'additionalimagestores = ["{MACHINE_STORE}"]\n'
        )
        engine = self.dir / "containers.conf"
        dns = ", ".join(f'"{s}"' for s in dns_servers)
        ulimits = ", ".join(f'"{u}"' for u in ULIMITS)
        engine.write_text(
            "[containers]\n"
            f"default_ulimits = [{ulimits}]\n"
            f"dns_servers = [{dns}]\n"
            "[engine]\n"
            'runtime = "runc"\n'
            f'infra_image = "{PAUSE_IMAGE}"\n'
            f'tmp_dir = "{self.dir / "tmp"}"\n'
            f'volume_path = "{self.dir / "volumes"}"\n'
            f'static_dir = "{self.dir / "graph" / "libpod"}"\n'
        )
        self.env = {
            **os.environ,
            "CONTAINERS_CONF": str(engine),
            "CONTAINERS_STORAGE_CONF": str(storage),
        }
        self._checked: set[str] = set()

    def __call__(
        self, *args: str, role: str | None = None, timeout: float = 120.0, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run ``podman ARGS`` (inside ``role``'s network namespace when given)."""
        argv = ["podman", *args]
        if role is not None:
            argv = ["nsenter", f"--net={NETNS_DIR / self.lab.ns(role)}", *argv]
        proc = subprocess.run(
            argv, capture_output=True, text=True, env=self.env, timeout=timeout, check=False
        )
        if check and proc.returncode != 0:
            raise PodmanError(f"{' '.join(args[:3])}: {proc.stderr.strip()[-2000:]}")
        return proc

    def check_namespace(self, role: str, image: str = IMAGE) -> None:
        """Prove that a host-network container started this way lands in ``role``'s namespace
        (never the machine's) before anything privileged is run like it."""
        if role in self._checked:
            return
        want = os.stat(NETNS_DIR / self.lab.ns(role)).st_ino
        probe = self(
            "run", "--rm", "--network", "host", "--entrypoint", "/bin/sh", image,
            "-c", "stat -L -c %i /proc/self/ns/net", role=role,
        )  # fmt: skip
        got = probe.stdout.strip()
        if got != str(want):
            raise PodmanError(f"a container in {self.lab.ns(role)} saw network namespace {got}")
        self._checked.add(role)

    def play(self, role: str, yaml_text: str, name: str) -> None:
        """``podman kube play`` the documents in ``yaml_text`` inside ``role``'s namespace."""
        self.check_namespace(role)
        path = self.dir / f"{name}.yaml"
        path.write_text(yaml_text)
        self("kube", "play", "--network", "host", str(path), role=role)

    def run(self, role: str, *args: str) -> None:
        """``podman run --detach --network host ARGS`` inside ``role``'s namespace."""
        self.check_namespace(role)
        self("run", "--detach", "--network", "host", *args, role=role)

    def logs(self, container: str) -> str:
        proc = self("logs", container, check=False)
        return proc.stdout + proc.stderr

    def state(self, container: str) -> str:
        proc = self("inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", container)
        return proc.stdout.strip()

    def close(self) -> None:
        """Remove every pod and container made here, then the state directory."""
        self("pod", "rm", "--force", "--all", "--time", "2", check=False)
        self("rm", "--force", "--all", "--time", "2", check=False)
        left = self("ps", "--all", "--quiet", check=False)
        if left.returncode == 0 and not left.stdout.strip():  # nothing mounted any more
            shutil.rmtree(self.dir, ignore_errors=True)
