"""Running programs inside a lab network namespace, and stopping exactly those we started.

Owns: ``ip netns exec`` invocations (one-shot and background), their logs and their PIDs.
Must not: signal any process it did not start (we stop by PID/process group we created).

Every child gets its own session (process group), so a Ctrl-C or SIGTERM sent to the demo's
process group reaches the demo alone, which then stops its children itself. Waiting for a
child is an ``interrupts.interruptible()`` block: an interrupted wait kills that child's group.
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
from egress_router.lab import interrupts

IP = "/usr/sbin/ip" if os.path.exists("/usr/sbin/ip") else "ip"


def netns_argv(namespace: str, argv: Sequence[str], keep_mounts: bool = False) -> list[str]:
    """``argv`` wrapped so it runs in ``namespace`` (also binds /etc/netns/NS/resolv.conf).

    ``keep_mounts``: enter only the network namespace (``nsenter --net``), keeping the
    machine's /sys: ``ip netns exec`` mounts a fresh sysfs without the cgroup hierarchy,
    which container engines need.
    """
    if keep_mounts:
        return ["nsenter", f"--net=/run/netns/{namespace}", *argv]
    return [IP, "netns", "exec", namespace, *argv]


def run(
    namespace: str,
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    timeout: float = 60.0,
    check: bool = False,
    input: str | None = None,
    keep_mounts: bool = False,
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` to completion in ``namespace``; output captured as text."""
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    with subprocess.Popen(
        netns_argv(namespace, argv, keep_mounts),
        stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=full_env,
        start_new_session=True,
    ) as child:
        try:
            with interrupts.interruptible():
                stdout, stderr = child.communicate(input, timeout=timeout)
        except BaseException:
            _kill_group(child)
            raise
    proc = subprocess.CompletedProcess(child.args, child.returncode, stdout, stderr)
    if check and proc.returncode != 0:
        raise DataplaneError(
            f"{' '.join(argv)} in {namespace} exited {proc.returncode}: {proc.stderr.strip()}"
        )
    return proc


def _kill_group(child: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, signal.SIGKILL)
    child.wait()


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

    def send(self, sig: int) -> None:
        """Signal the process group we created (if the process has not been reaped)."""
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, sig)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 5.0) -> int | None:
        """Signal the process group we created; escalate to SIGKILL after ``timeout``."""
        self.send(sig)
        return self.reap(time.monotonic() + timeout)

    def reap(self, deadline: float) -> int | None:
        """Wait until ``deadline`` (monotonic), then SIGKILL the group and wait for it."""
        if self.popen.poll() is None:
            try:
                with interrupts.interruptible():
                    self.popen.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.send(signal.SIGKILL)
                self.popen.wait()
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
        keep_mounts: bool = False,
    ) -> Background:
        full_env = dict(os.environ)
        if env:
            full_env.update(env)
        log = self.workdir / f"{name}.log"
        with open(log, "wb") as out:
            popen = subprocess.Popen(
                netns_argv(namespace, argv, keep_mounts),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=full_env,
                start_new_session=True,
            )
        bg = Background(namespace=namespace, argv=list(argv), log=log, popen=popen)
        self.started.append(bg)
        return bg

    def stop_all(self, timeout: float = 2.0) -> None:
        """SIGTERM every group at once, SIGKILL what is left after ``timeout``; idempotent."""
        for bg in reversed(self.started):
            bg.send(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for bg in reversed(self.started):
            bg.reap(deadline)
        self.started.clear()


def wait_for(predicate: object, timeout: float = 10.0, interval: float = 0.05) -> bool:
    """Poll ``predicate()`` until it is true or ``timeout`` seconds pass."""
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        interrupts.checkpoint()
        if predicate():
            return True
        with interrupts.interruptible():
            time.sleep(interval)
    return bool(predicate())
