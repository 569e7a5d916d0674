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
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from egress_router.errors import DataplaneError
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


class PodmanError(DataplaneError):
    """A podman command failed (its stderr is in the message), or a Pod spec asks for what
    this runner does not do (as the lab's other helpers, a DataplaneError)."""


class Podman:
    """podman with its own state in a fresh directory; close() removes every pod it made."""

    def __init__(self, lab: Lab, dns_servers: Sequence[str] = ()) -> None:
        self.lab = lab
        # A short path: conmon's sockets live below it, and a path near the 108-byte limit of
        # a socket address makes every container start wait out conmon's 20 s timeout.
        self.dir = Path(tempfile.mkdtemp(prefix="erpod-"))
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

    def start_pod(self, role: str, yaml_text: str, name: str) -> None:
        """Start the Pod in ``yaml_text`` (ConfigMaps beside it feed its env) in ``role``.

        A pod without init containers is played by ``podman kube play``. podman 4.3 applies
        the pod's restart policy to init containers too (an init container that exits is
        started again, and kube play waits out its timeout, then fails), so a pod with init
        containers is run container by container with ``podman run``, with the same image,
        env, security context and command: the init containers one after another, each to exit
        0, then the others in the background, named ``POD-CONTAINER`` as kube play names them.
        """
        pod = pod_spec(yaml_text)
        if not pod.init:
            self.play(role, yaml_text, name)
            return
        self.check_namespace(role)
        for c in pod.init:
            proc = self("run", "--rm", "--network", "host", *c.run_args(pod.name), role=role,
                        check=False)  # fmt: skip
            if proc.returncode != 0:
                raise PodmanError(
                    f"init container {c.name} exited {proc.returncode}: {proc.stderr.strip()}"
                )
        for c in pod.containers:
            self("run", "--detach", "--network", "host", *c.run_args(pod.name), role=role)

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


@dataclass(frozen=True)
class Container:
    """What ``podman run`` needs of one container of a Pod spec."""

    name: str
    image: str
    env: tuple[tuple[str, str], ...]
    privileged: bool
    cap_add: tuple[str, ...]
    command: tuple[str, ...]
    args: tuple[str, ...]

    def run_args(self, pod: str) -> list[str]:
        out = ["--name", f"{pod}-{self.name}"]
        if self.privileged:
            out.append("--privileged")
        out += [f"--cap-add={cap}" for cap in self.cap_add]
        for key, value in self.env:
            out += ["--env", f"{key}={value}"]
        if self.command:
            out += ["--entrypoint", self.command[0]]
        return [*out, self.image, *self.command[1:], *self.args]


@dataclass(frozen=True)
class PodSpec:
    name: str
    init: tuple[Container, ...]
    containers: tuple[Container, ...]


def pod_spec(yaml_text: str) -> PodSpec:
    """The one Pod of ``yaml_text``, its env resolved against the ConfigMaps beside it.

    Only what the documents' pods use is accepted (env values and configMapKeyRef, privileged,
    capabilities.add, command and args); anything else is an error, never silently dropped.
    """
    docs = [d for d in yaml.safe_load_all(yaml_text) if d is not None]
    maps = {d["metadata"]["name"]: d.get("data", {}) for d in docs if d["kind"] == "ConfigMap"}
    pods = [d for d in docs if d["kind"] == "Pod"]
    if len(pods) != 1:
        raise PodmanError(f"expected one Pod, found {len(pods)}")
    spec = pods[0]["spec"]
    name = pods[0]["metadata"]["name"]
    unknown = set(spec) - {"initContainers", "containers", "nodeSelector"}
    if unknown:
        raise PodmanError(f"pod {name}: unsupported fields {sorted(unknown)}")
    return PodSpec(
        name,
        tuple(_container(c, maps) for c in spec.get("initContainers", [])),
        tuple(_container(c, maps) for c in spec["containers"]),
    )


def _container(c: dict[str, Any], maps: dict[str, dict[str, str]]) -> Container:
    # probes: the tests wait for traffic themselves (and query the health endpoint directly);
    # nothing else is ignored.
    unknown = set(c) - {"name", "image", "env", "securityContext", "command", "args"}
    unknown -= {"readinessProbe", "livenessProbe"}
    if unknown:
        raise PodmanError(f"container {c['name']}: unsupported fields {sorted(unknown)}")
    security = c.get("securityContext", {})
    return Container(
        name=c["name"],
        image=c["image"],
        env=tuple((v["name"], _env_value(v, maps)) for v in c.get("env", [])),
        privileged=bool(security.get("privileged", False)),
        cap_add=tuple(security.get("capabilities", {}).get("add", [])),
        command=tuple(c.get("command", [])),
        args=tuple(c.get("args", [])),
    )


def _env_value(var: dict[str, Any], maps: dict[str, dict[str, str]]) -> str:
    if "value" in var:
        return str(var["value"])
    ref = var.get("valueFrom", {}).get("configMapKeyRef")
    if ref is None:
        raise PodmanError(f"env {var['name']}: only value and configMapKeyRef are supported")
    try:
        return maps[ref["name"]][ref["key"]]
    except KeyError:
        raise PodmanError(f"env {var['name']}: no ConfigMap key {ref}") from None
