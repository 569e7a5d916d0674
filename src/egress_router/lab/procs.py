"""Running programs inside a lab network namespace, and stopping exactly those we started.

Owns: ``ip netns exec`` invocations (one-shot and background), their logs and their PIDs.
Must not: signal any process it did not start (we stop by PID/process group we created).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from egress_router.errors import DataplaneError

IP = "/usr/sbin/ip" if os.path.exists("/usr/sbin/ip") else "ip"


def netns_argv(namespace: str, argv: Sequence[str]) -> list[str]:
    """``argv`` wrapped so it runs in ``namespace`` (also binds /etc/netns/NS/resolv.conf)."""
    return [IP, "netns", "exec", namespace, *argv]


def run(
    namespace: str,
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    timeout: float = 60.0,
    check: bool = False,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` to completion in ``namespace``; output captured as text."""
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    proc = subprocess.run(
        netns_argv(namespace, argv),
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        check=False,
        input=input,
    )
    if check and proc.returncode != 0:
        raise DataplaneError(
            f"{' '.join(argv)} in {namespace} exited {proc.returncode}: {proc.stderr.strip()}"
        )
    return proc


@dataclass
class Background:
    """A program started in the background in a namespace; its output goes to ``log``."""

    namespace: str
    argv: list[str]
    log: Path
    popen: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def output(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 5.0) -> int | None:
        """Signal the process group we created; escalate to SIGKILL after ``timeout``."""
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, sig)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout=timeout)
        return self.popen.returncode


@dataclass
class ProcessGroup:
    """Every background program of one lab, so teardown can stop them all (and only them)."""

    workdir: Path
    started: list[Background] = field(default_factory=list)

    def spawn(
        self,
        namespace: str,
        argv: Sequence[str],
        *,
        name: str,
        env: Mapping[str, str] | None = None,
    ) -> Background:
        full_env = dict(os.environ)
        if env:
            full_env.update(env)
        log = self.workdir / f"{name}.log"
        with open(log, "wb") as out:
            popen = subprocess.Popen(
                netns_argv(namespace, argv),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=full_env,
                start_new_session=True,
            )
        bg = Background(namespace=namespace, argv=list(argv), log=log, popen=popen)
        self.started.append(bg)
        return bg

    def stop_all(self) -> None:
        for bg in reversed(self.started):
            bg.stop()
        self.started.clear()


def wait_for(predicate: object, timeout: float = 10.0, interval: float = 0.05) -> bool:
    """Poll ``predicate()`` until it is true or ``timeout`` seconds pass."""
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())
