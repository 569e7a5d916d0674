"""Interrupted demos: N runs of ``egress-router lab demo``, each signalled at a random moment
while its lab exists (SIGINT and SIGTERM, to the process and to its process group, in turn).

Each must exit 130 within 5 s of the signal and leave nothing behind: no namespace of its lab,
no /etc/netns entry, no state file or work directory, no process (one still carrying the run's
tag in its environment, or living in one of the lab's namespaces). A run whose demo ended
before its moment came is run again with half the delay (it interrupted nothing).

``--parts`` (the default) cycles the runs through the tour's parts (``--only MODE``), each
signalled at a random moment of that part's own lifetime, so 200 runs cover every step of the
tour in about 20 minutes; ``--whole`` interrupts the whole tour (a run is then about 30 s).
Each window of random moments is measured first by one uninterrupted run.

    .venv/bin/python bench/interrupts.py [--runs 200] [--whole] [--seed N] [--logs DIR]
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from egress_router.lab.demo import MODES
from egress_router.lab.trials import Trial, lab_namespaces, random_plan, run_trials

EGRESS_ROUTER = str(Path(sys.executable).parent / "egress-router")


def measure_window(command: list[str]) -> float:
    """Seconds from the lab's first namespace to the demo's exit, uninterrupted."""
    lab_id = secrets.token_hex(3)
    env = {k: v for k, v in os.environ.items() if not k.startswith("EGRESS_")}
    proc = subprocess.Popen(
        [*command, "--lab-id", lab_id],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )
    while not lab_namespaces(lab_id) and proc.poll() is None:
        time.sleep(0.002)
    appeared = time.monotonic()
    code = proc.wait(timeout=600)
    if code != 0:
        sys.exit(f"{' '.join(command[1:])} failed uninterrupted (exit {code}); fix that first")
    return time.monotonic() - appeared


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--whole", action="store_true", help="interrupt the whole tour")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--logs", type=Path, default=None, help="keep each run's output here")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("needs root (network namespaces)")
    base = [EGRESS_ROUTER, "lab", "demo"]
    commands = [base] if args.whole else [[*base, "--only", mode] for mode in MODES]
    windows = []
    for command in commands:
        window = measure_window(command)
        windows.append((command, window))
        print(f"{' '.join(command[1:])}: lab lives {window:.1f} s uninterrupted", flush=True)
    logdir = args.logs or Path(tempfile.mkdtemp(prefix="er-interrupts-"))
    logdir.mkdir(parents=True, exist_ok=True)

    def report(index: int, trial: Trial) -> None:
        mark = "ok  " if trial.ok else "FAIL"
        print(f"{index + 1:4d} {mark} {trial.describe()}", flush=True)

    started = time.monotonic()
    trials = run_trials(random_plan(args.runs, windows, args.seed), logdir=logdir, report=report)
    exits = [t.exit_s for t in trials if t.sent]
    in_budget = sum(t.sent and t.exit_code == 130 and t.exit_s <= 5.0 for t in trials)
    existed = sum(t.lab_existed for t in trials)
    with_leftovers = [t for t in trials if t.leftovers]
    print(
        f"\n{len(trials)} runs in {time.monotonic() - started:.0f} s; lab existed when signalled:"
        f" {existed}/{len(trials)}; exited 130 within 5 s: {in_budget}/{len(trials)}; "
        f"runs with leftovers: {len(with_leftovers)}"
    )
    if exits:
        print(
            f"exit time after the signal: median {statistics.median(exits):.2f} s, "
            f"max {max(exits):.2f} s"
        )
    print(f"logs: {logdir}")
    return 0 if all(t.ok for t in trials) else 1


if __name__ == "__main__":
    sys.exit(main())
