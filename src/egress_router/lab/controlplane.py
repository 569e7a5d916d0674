"""A real Kubernetes control plane on loopback: etcd, kube-apiserver, kube-controller-manager.

Owns: finding the binaries ``scripts/control-plane`` built, making a working directory with a
self-signed CA and serving certificate (openssl), service-account signing keys and a static token
file, starting the three programs on free loopback ports (each in its own session so a signal to
ours never reaches them), waiting for ``/readyz``, installing the CRDs of ``deploy/crds`` by
server-side apply, and stopping exactly the processes it started. Used by the test fixture and by
``egress-router lab up --kubernetes`` (which leaves it running and saves its state as JSON).
Must not: listen on anything but 127.0.0.1, signal a process it did not start (a PID from a state
file is only signalled while its command line still names our working directory), or talk to
the API beyond starting up (the operator and the tests bring their own client).

There is no kubelet and no scheduler: Pods never run. The controller-manager gives garbage
collection (owner references), namespace deletion and Deployment -> ReplicaSet.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from egress_router.errors import ControlPlaneError
from egress_router.lab.kubecerts import USERS, free_port, kubeconfig_text, make_credentials

CACHE_ENV = "EGRESS_ROUTER_CONTROL_PLANE_CACHE"
BIN_ENV = "EGRESS_ROUTER_CONTROL_PLANE_BIN"
DEFAULT_CACHE = Path("/var/cache/egress-router/control-plane")
PROGRAMS = ("etcd", "kube-apiserver", "kube-controller-manager")
# Bookkeeping only: the API server allocates Service IPs from it; no interface or route uses it.
SERVICE_CIDR = "198.19.254.0/24"
READY_TIMEOUT = 180.0  # seconds; a cold apiserver on a loaded 2-core machine takes 20-60 s


def binaries_dir() -> Path:
    """Where the built binaries are; raises ``ControlPlaneError`` saying why they are not there."""
    explicit = os.environ.get(BIN_ENV)
    directory = (
        Path(explicit)
        if explicit
        else Path(os.environ.get(CACHE_ENV, str(DEFAULT_CACHE))) / "current" / "bin"
    )
    missing = [p for p in PROGRAMS if not os.access(directory / p, os.X_OK)]
    if not missing:
        return directory
    if shutil.which("go") is None:
        raise ControlPlaneError(
            "no Go toolchain (go not on PATH), so scripts/control-plane could not build "
            "etcd, kube-apiserver and kube-controller-manager"
        )
    raise ControlPlaneError(
        f"{', '.join(missing)} not built in {directory}: run scripts/control-plane"
    )


@dataclass
class ControlPlane:
    """One control plane in ``workdir``; ``start()`` then ``stop()`` (or use ``with``)."""

    workdir: Path
    bin_dir: Path | None = None
    crd_dir: Path | None = None
    ports: dict[str, int] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    pids: dict[str, int] = field(default_factory=dict)
    _procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict, repr=False)

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.ports['apiserver']}"

    @property
    def ca_file(self) -> Path:
        return self.workdir / "ca.crt"

    def kubeconfig(self, role: str = "admin") -> Path:
        """The kubeconfig file for ``role`` (admin, operator, agent, failover)."""
        return self.workdir / f"{role}.kubeconfig"

    def start(self, timeout: float = READY_TIMEOUT) -> ControlPlane:
        """Create credentials, start the three programs, wait until ready, install the CRDs."""
        bins = self.bin_dir or binaries_dir()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.tokens = make_credentials(self.workdir)
        for name in ("etcd", "etcd_peer", "apiserver"):
            self.ports[name] = free_port()
        for role, token in self.tokens.items():
            text = kubeconfig_text(self.server, self.ca_file, token, USERS[role][0])
            self.kubeconfig(role).write_text(text)
            self.kubeconfig(role).chmod(0o600)
        try:
            self._spawn("etcd", [str(bins / "etcd"), *self._etcd_args()])
            self._spawn("kube-apiserver", [str(bins / "kube-apiserver"), *self._apiserver_args()])
            self.wait_ready(timeout)
            self._spawn(
                "kube-controller-manager",
                [str(bins / "kube-controller-manager"), *self._controller_manager_args()],
            )
            if self.crd_dir is not None:
                self.install_crds(self.crd_dir, timeout=timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _etcd_args(self) -> list[str]:
        client = f"http://127.0.0.1:{self.ports['etcd']}"
        peer = f"http://127.0.0.1:{self.ports['etcd_peer']}"
        return [
            "--name=lab",
            f"--data-dir={self.workdir / 'etcd'}",
            f"--listen-client-urls={client}",
            f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=lab={peer}",
            "--unsafe-no-fsync",  # throw-away data: no fsync keeps it fast on a busy disk
            "--log-level=warn",
        ]

    def _apiserver_args(self) -> list[str]:
        w = self.workdir
        return [
            f"--etcd-servers=http://127.0.0.1:{self.ports['etcd']}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={self.ports['apiserver']}",
            f"--cert-dir={w / 'certs'}",
            f"--tls-cert-file={w / 'apiserver.crt'}",
            f"--tls-private-key-file={w / 'apiserver.key'}",
            f"--client-ca-file={w / 'ca.crt'}",
            f"--token-auth-file={w / 'tokens.csv'}",
            "--service-account-issuer=https://kubernetes.default.svc",
            f"--service-account-key-file={w / 'sa.pub'}",
            f"--service-account-signing-key-file={w / 'sa.key'}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--authorization-mode=RBAC",
            "--allow-privileged=true",
            "--endpoint-reconciler-type=none",  # no kubelet: no endpoints for "kubernetes"
            # No kubelet either to mint tokens for pods; the tests create Pod objects directly.
            "--disable-admission-plugins=ServiceAccount",
            "--profiling=false",
        ]

    def _controller_manager_args(self) -> list[str]:
        w = self.workdir
        return [
            f"--kubeconfig={self.kubeconfig('admin')}",
            "--leader-elect=false",
            "--secure-port=0",
            f"--service-account-private-key-file={w / 'sa.key'}",
            f"--root-ca-file={w / 'ca.crt'}",
            "--concurrent-gc-syncs=5",
            "--profiling=false",
        ]

    def _spawn(self, name: str, argv: list[str]) -> None:
        log = open(self.workdir / f"{name}.log", "ab")  # noqa: SIM115 - the child owns it
        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                start_new_session=True,
            )
        except OSError as exc:
            raise ControlPlaneError(f"cannot start {name}: {exc}") from exc
        finally:
            log.close()
        self._procs[name] = proc
        self.pids[name] = proc.pid

    def log_tail(self, name: str, lines: int = 15) -> str:
        try:
            text = (self.workdir / f"{name}.log").read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        content_type: str = "application/json",
        timeout: float = 10.0,
    ) -> tuple[int, bytes]:
        """One HTTPS request as admin; returns (status, body), HTTP errors included."""
        context = ssl.create_default_context(cafile=str(self.ca_file))
        req = urllib.request.Request(self.server + path, data=body, method=method)
        req.add_header("Authorization", f"Bearer {self.tokens['admin']}")
        if body is not None:
            req.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(req, context=context, timeout=timeout) as resp:
                return int(resp.status), bytes(resp.read())
        except urllib.error.HTTPError as exc:
            return int(exc.code), exc.read()

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        """Poll ``/readyz`` until it answers 200; fail early if a program exits."""
        deadline = time.monotonic() + timeout
        while True:
            for name, proc in self._procs.items():
                if proc.poll() is not None:
                    raise ControlPlaneError(
                        f"{name} exited with status {proc.returncode}:\n{self.log_tail(name)}"
                    )
            with contextlib.suppress(OSError):
                status, _ = self.request("GET", "/readyz", timeout=5.0)
                if status == 200:
                    return
            if time.monotonic() > deadline:
                raise ControlPlaneError(
                    f"kube-apiserver not ready after {timeout:.0f} s:\n"
                    f"{self.log_tail('kube-apiserver')}"
                )
            time.sleep(0.25)

    def apply(self, document: dict[str, Any], path: str) -> None:
        """Server-side apply of one object at its resource ``path`` (field manager: lab)."""
        body = json.dumps(document).encode()
        status, answer = self.request(
            "PATCH",
            f"{path}?fieldManager=egress-router-lab&force=true",
            body,
            "application/apply-patch+yaml",
        )
        if status >= 300:
            raise ControlPlaneError(f"apply {path}: HTTP {status}: {answer[:500]!r}")

    def install_crds(self, crd_dir: Path, timeout: float = 60.0) -> list[str]:
        """Apply every CRD file of ``crd_dir`` and wait until each is Established."""
        import yaml

        names = []
        for file in sorted(crd_dir.glob("*.yaml")):
            for doc in yaml.safe_load_all(file.read_text()):
                if not doc:
                    continue
                name = doc["metadata"]["name"]
                base = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
                self.apply(doc, f"{base}/{name}")
                names.append(name)
        deadline = time.monotonic() + timeout
        for name in names:
            while not self._established(name):
                if time.monotonic() > deadline:
                    raise ControlPlaneError(f"CRD {name} not Established after {timeout:.0f} s")
                time.sleep(0.1)
        return names

    def _established(self, name: str) -> bool:
        status, body = self.request(
            "GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}"
        )
        if status != 200:
            return False
        conditions = json.loads(body).get("status", {}).get("conditions", [])
        return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop what we started (controller-manager, apiserver, etcd), by PID, then SIGKILL."""
        for name in reversed(PROGRAMS):
            pid = self.pids.get(name)
            if pid is None or not self._ours(pid):
                continue
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGTERM)
            if not self._wait_gone(name, pid, timeout):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
                self._wait_gone(name, pid, timeout)
        self.pids.clear()
        self._procs.clear()

    def _ours(self, pid: int) -> bool:
        """Still the process we started: a live child, or a command line naming our workdir."""
        proc = self._procs.get(next((n for n, p in self.pids.items() if p == pid), ""))
        if proc is not None:
            return proc.poll() is None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return False
        return str(self.workdir).encode() in cmdline

    def _wait_gone(self, name: str, pid: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        proc = self._procs.get(name)
        while time.monotonic() < deadline:
            if proc is not None:
                if proc.poll() is not None:
                    return True
            elif not Path(f"/proc/{pid}").exists():
                return True
            time.sleep(0.05)
        return False

    def save(self, path: Path) -> None:
        """Write what ``load`` needs to stop it from another process (``lab down``)."""
        data = {"workdir": str(self.workdir), "ports": self.ports, "pids": self.pids}
        path.write_text(json.dumps(data) + "\n")

    @classmethod
    def load(cls, path: Path) -> ControlPlane:
        data = json.loads(path.read_text())
        plane = cls(workdir=Path(data["workdir"]), ports=dict(data["ports"]))
        plane.pids = {str(k): int(v) for k, v in data["pids"].items()}
        return plane

    def __enter__(self) -> ControlPlane:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def repo_crds() -> Path | None:
    """deploy/crds of the source tree this package runs from, if there is one."""
    candidate = Path(__file__).resolve().parents[3] / "deploy" / "crds"
    return candidate if candidate.is_dir() else None


def start_for_lab(labdir: Path) -> ControlPlane:
    """Start a control plane in ``labdir/kubernetes`` and save its state there for ``lab down``."""
    plane = ControlPlane(workdir=labdir / "kubernetes", crd_dir=repo_crds())
    plane.start()
    plane.save(labdir / "kubernetes" / "state.json")
    return plane


def stop_for_lab(labdir: Path) -> None:
    """Stop the control plane ``start_for_lab`` left in ``labdir``, if any (by saved PID)."""
    state = labdir / "kubernetes" / "state.json"
    if state.exists():
        ControlPlane.load(state).stop()
        state.unlink()
