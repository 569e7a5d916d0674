"""What every part of the tour shares: the lab, the report, and the ways to drive a pod.

Owns: ``Tour`` (the lab, the console, the checks of each part, background programs, clean-up
hooks run when a part ends or before the lab goes down), ``Part`` (a named, described step
list) and the small drivers the parts use (run ``egress-router`` in a namespace, curl from a
pod, the lab's DNS server and web server, started once and shared).
Must not: configure a router, proxy or firewall itself: the parts run the installed commands,
as a pod spec or a node would. Nothing here raises from a signal handler (``lab.interrupts``).
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from egress_router.lab import interrupts, procs
from egress_router.lab.dns import DnsServer
from egress_router.lab.servers import Nginx
from egress_router.lab.topology import ADDR, Lab

EGRESS_ROUTER = str(Path(sys.executable).parent / "egress-router")
EGRESS_ROUTER_CNI = str(Path(sys.executable).parent / "egress-router-cni")
ROUTER = str(ADDR.router_pod_ip)
SOURCE = str(ADDR.egress_source)
S25, S26, S27 = (str(ip) for ip in ADDR.server_ips)
# Every server address and port a part talks to; /server answers "ADDR:PORT CLIENT".
WEB_LISTEN = (f"{S25}:80", f"{S26}:80", f"{S27}:80", f"{S27}:9000")
# The lab's one DNS server (dnsmasq in the node): every name any part resolves.
RECORDS: dict[str, list[str]] = {
    "web.test": [S25],
    "www.example.com": [S25],
    "moving.example": [S25],
    "www.foo.test": [S26],
}
READY_S = 15.0  # a command that is not ready in 15 s has failed


@dataclass(frozen=True)
class Check:
    """One claim of the tour and whether it held."""

    part: str
    claim: str
    ok: bool
    evidence: str


@dataclass(frozen=True)
class Part:
    """One mode of the tour: ``run`` adds its checks; ``proves`` is said when all held."""

    name: str
    title: str
    proves: str
    run: Callable[[Tour], None]


@dataclass
class Tour:
    """The lab of one tour and everything the parts add to it."""

    lab: Lab
    console: Console
    checks: list[Check] = field(default_factory=list)
    part: str = ""
    # run before the lab goes down, also when interrupted (what removing the lab leaves)
    cleanups: list[Callable[[], None]] = field(default_factory=list)
    # run when the current part ends, not when interrupted (the lab goes away then anyway)
    after_part: list[Callable[[], None]] = field(default_factory=list)
    _dns: DnsServer | None = None
    _web: Nginx | None = None

    # -- report ------------------------------------------------------------------------------

    def step(self, title: str) -> None:
        interrupts.checkpoint()
        self.console.print(f"\n[bold cyan]▶ {title}[/]")

    def note(self, text: str) -> None:
        self.console.print(f"  [dim]{text}[/]")

    def show_env(self, env: Mapping[str, str]) -> None:
        for key, value in env.items():
            self.console.print(f"  [dim]{key}=[/]{value.replace(chr(10), chr(92) + 'n')}")

    def check(self, claim: str, ok: bool, evidence: str) -> bool:
        interrupts.checkpoint()
        self.checks.append(Check(self.part, claim, ok, evidence))
        mark = "[green]✔[/]" if ok else "[red]✘[/]"
        self.console.print(f"  {mark} {claim}\n    [dim]{evidence}[/]")
        return ok

    # -- driving pods ------------------------------------------------------------------------

    def run(
        self,
        role: str,
        argv: Sequence[str],
        env: Mapping[str, str] | None = None,
        timeout: float = 30.0,
        input: str | None = None,
        keep_mounts: bool = False,
    ) -> Any:
        """A command to completion in ``role``'s namespace (interruptible)."""
        return self.lab.exec(
            role, list(argv), env=dict(env or {}), timeout=timeout, input=input,
            keep_mounts=keep_mounts,
        )  # fmt: skip

    def cli(self, role: str, *args: str, env: Mapping[str, str] | None = None) -> Any:
        """``egress-router ARGS`` in ``role``'s namespace, as a pod's container runs it."""
        return self.run(role, [EGRESS_ROUTER, *args], env=env)

    def spawn(
        self,
        role: str,
        argv: Sequence[str],
        name: str,
        env: Mapping[str, str] | None = None,
        keep_mounts: bool = False,
    ) -> procs.Background:
        return self.lab.spawn(
            role, list(argv), name=name, env=dict(env or {}), keep_mounts=keep_mounts
        )

    def start(
        self, role: str, args: Sequence[str], name: str, ready: str, env: Mapping[str, str]
    ) -> procs.Background:
        """Start ``egress-router ARGS`` in the background; wait for ``ready`` in its output."""
        proc = self.spawn(role, [EGRESS_ROUTER, *args], name, env)
        procs.wait_for(lambda: ready in proc.output() or not proc.alive(), READY_S, 0.05)
        return proc

    def curl(self, *args: str, role: str = "client", timeout: float = 3.0) -> tuple[int, str, str]:
        """(curl exit status, stdout, stderr) of ``curl -sS ARGS`` from ``role``."""
        proc = self.run(role, ["curl", "-sS", "-m", str(timeout), *args], timeout=timeout + 5)
        return proc.returncode, proc.stdout.strip(), proc.stderr.strip()

    def setup(self, mode: str, destination: str | None = None) -> Any:
        """``egress-router setup`` once in the router pod (the init container's job)."""
        env = {
            "EGRESS_SOURCE": f"{SOURCE}/24",
            "EGRESS_GATEWAY": str(ADDR.gateway_ip),
            "EGRESS_ROUTER_MODE": mode,
        }
        if destination is not None:
            env["EGRESS_DESTINATION"] = destination
        return self.cli("router", "setup", env=env)

    def reset_router(self) -> None:
        """Between parts: nothing of the previous mode stays in the router pod's ruleset."""
        self.run("router", ["nft", "flush", "ruleset"])

    def forget_neighbours(self) -> None:
        """The gateway forgets which MAC had the reserved IP (it moves between pods)."""
        self.run("gw", ["ip", "neigh", "flush", "all"])

    # -- shared servers ----------------------------------------------------------------------

    def web(self) -> Nginx:
        """The external web server (started on first use)."""
        if self._web is None:
            self._web = Nginx(self.lab, "web", list(WEB_LISTEN)).start()
        return self._web

    def dns(self) -> DnsServer:
        """The lab's DNS server (dnsmasq in the node), used by every pod (started on first use)."""
        if self._dns is None:
            self._dns = DnsServer(self.lab, RECORDS, ttl=1).start()
            self._dns.use_from("node", "router", "client")
        return self._dns

    def served(self, port: int, host: str = ROUTER) -> str:
        """Which server ADDR:PORT answered a request to ``host:port``, and from which source."""
        status, body, err = self.curl(f"http://{host}:{port}/server")
        return body if status == 0 else f"curl exit {status}: {err}"


def have(program: str) -> bool:
    return shutil.which(program) is not None
