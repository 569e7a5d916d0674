"""Interrupted-demo trials: start ``egress-router lab demo``, signal it while its lab exists,
time its exit and list whatever it left behind.

Owns: one trial (start, wait for the lab, signal at a random moment, wait, inspect) and the
leftover census: the lab's namespaces and /etc/netns entries, its state file and work
directory, any process still carrying the trial's tag in its environment (every child of the
demo inherits it) or still living in one of the lab's namespaces.
Must not: signal anything but the demo it started (by PID or the process group it created),
or remove anything: a leftover is reported, not cleaned (other labs on this machine are not
ours to touch). Used by the interrupt tests and ``bench/interrupts.py``.
"""

from __future__ import annotations

import contextlib
import os
import random
import secrets
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from egress_router.lab.topology import STATE_DIR

NETNS_DIR = Path("/run/netns")
TAG_VARIABLE = "ERLAB_TRIAL_TAG"
EXIT_BUDGET_S = 5.0  # the promise: out within 5 s of the signal
HARD_WAIT_S = 30.0  # past this the demo is killed and the trial fails


@dataclass
class Trial:
    """The outcome of one interrupted demo."""

    lab_id: str
    signum: int
    to_group: bool
    delay: float
    lab_existed: bool = False  # namespaces of the lab present right before the signal
    sent: bool = False  # False: the demo ended before a moment with its lab came
    exit_code: int | None = None
    exit_s: float = 0.0
    leftovers: list[str] = field(default_factory=list)
    command: str = ""

    @property
    def ok(self) -> bool:
        return (
            self.sent
            and self.lab_existed
            and self.exit_code == 130
            and self.exit_s <= EXIT_BUDGET_S
            and not self.leftovers
        )

    def describe(self) -> str:
        target = "group" if self.to_group else "process"
        return (
            f"{self.command}: {signal.Signals(self.signum).name} to {target} "
            f"at +{self.delay:.2f} s: "
            f"lab existed={self.lab_existed}, exit {self.exit_code} in {self.exit_s:.2f} s, "
            f"leftovers={self.leftovers or 'none'}"
        )


def lab_namespaces(lab_id: str) -> list[str]:
    try:
        names = os.listdir(NETNS_DIR)
    except FileNotFoundError:
        return []
    return sorted(n for n in names if n.startswith(f"er{lab_id}-"))


def _namespace_inodes(names: Sequence[str]) -> set[int]:
    inodes = set()
    for name in names:
        with contextlib.suppress(OSError):
            inodes.add(os.stat(NETNS_DIR / name).st_ino)
    return inodes


def _processes_left(tag: str, inodes: set[int]) -> list[str]:
    needle = f"{TAG_VARIABLE}={tag}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            environ = Path(f"/proc/{entry}/environ").read_bytes()
            netns = os.stat(f"/proc/{entry}/ns/net").st_ino
            comm = Path(f"/proc/{entry}/comm").read_text().strip()
        except OSError:
            continue  # gone meanwhile, or a kernel thread
        if needle in environ.split(b"\0") or netns in inodes:
            found.append(f"process {entry} ({comm})")
    return found


def leftovers(lab_id: str, tag: str, inodes: set[int]) -> list[str]:
    """Everything of lab ``lab_id`` / trial ``tag`` that still exists."""
    left = [f"namespace {n}" for n in lab_namespaces(lab_id)]
    with contextlib.suppress(FileNotFoundError):
        left += [
            f"/etc/netns/{n}" for n in os.listdir("/etc/netns") if n.startswith(f"er{lab_id}-")
        ]
    for path in (STATE_DIR / f"{lab_id}.json", STATE_DIR / lab_id):
        if path.exists():
            left.append(str(path))
    return left + _processes_left(tag, inodes)


def run_trial(
    command: Sequence[str],
    *,
    signum: int,
    to_group: bool,
    delay: float,
    log: Path | None = None,
    appear_timeout: float = 60.0,
) -> Trial:
    """Run ``command --lab-id ID``; ``delay`` s after its lab appears, signal it when a lab
    namespace exists (waiting for one if the demo is between labs), then inspect."""
    lab_id = secrets.token_hex(3)
    tag = secrets.token_hex(8)
    trial = Trial(lab_id=lab_id, signum=signum, to_group=to_group, delay=delay)
    env = {k: v for k, v in os.environ.items() if not k.startswith("EGRESS_")}
    env[TAG_VARIABLE] = tag
    env.setdefault("COLUMNS", "100")
    out = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [*command, "--lab-id", lab_id],
        stdout=out,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=env,
        start_new_session=True,  # its own group: a group signal reaches the demo, not us
    )
    inodes: set[int] = set()
    try:
        deadline = time.monotonic() + appear_timeout
        while not lab_namespaces(lab_id) and proc.poll() is None:
            if time.monotonic() > deadline:
                break
            time.sleep(0.002)
        time.sleep(delay)
        while proc.poll() is None:
            present = lab_namespaces(lab_id)
            if present:
                inodes = _namespace_inodes(present)
                trial.lab_existed = True
                if to_group:
                    os.killpg(proc.pid, signum)
                else:
                    os.kill(proc.pid, signum)
                trial.sent = True
                break
            time.sleep(0.002)
        sent_at = time.monotonic()
        try:
            trial.exit_code = proc.wait(timeout=HARD_WAIT_S)
        except subprocess.TimeoutExpired:
            trial.leftovers.append(f"demo still running after {HARD_WAIT_S:g} s")
        trial.exit_s = time.monotonic() - sent_at
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if log and out is not subprocess.DEVNULL:
            out.close()  # type: ignore[union-attr]
    time.sleep(0.05)  # a killed grandchild may need a moment to vanish from /proc
    trial.leftovers += leftovers(lab_id, tag, inodes)
    return trial


@dataclass(frozen=True)
class Shot:
    """One planned trial: which demo, which signal, to whom, how long after its lab appears."""

    command: tuple[str, ...]
    signum: int
    to_group: bool
    delay: float


def random_plan(
    count: int, commands: Sequence[tuple[Sequence[str], float]], seed: int | None = None
) -> list[Shot]:
    """``count`` shots: the four signal kinds in turn, the commands in turn (each with its
    window of random moments, seconds), delays uniform in the window."""
    rng = random.Random(seed)
    kinds = [(s, g) for s in (signal.SIGINT, signal.SIGTERM) for g in (False, True)]
    shots = []
    for i in range(count):
        command, window = commands[i % len(commands)]
        signum, to_group = kinds[i % 4]
        shots.append(Shot(tuple(command), signum, to_group, rng.uniform(0.0, window)))
    return shots


def run_trials(
    plan: Sequence[Shot],
    *,
    logdir: Path | None = None,
    retries: int = 5,
    report: Callable[[int, Trial], None] | None = None,
) -> list[Trial]:
    """One trial per shot. A trial whose demo ended before its moment came (so nothing was
    interrupted) is run again with half the delay, up to ``retries`` times."""
    done = []
    for index, shot in enumerate(plan):
        delay = shot.delay
        for _ in range(retries + 1):
            log = logdir / f"trial-{index:03d}.log" if logdir else None
            trial = run_trial(
                shot.command, signum=shot.signum, to_group=shot.to_group, delay=delay, log=log
            )
            if trial.sent:
                break
            delay /= 2
        trial.command = " ".join(shot.command[1:])
        done.append(trial)
        if report is not None:
            report(index, trial)
    return done
