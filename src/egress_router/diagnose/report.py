"""How ``diagnose`` shows what it found: a table and a verdict line for people, JSON for tools.

Owns: the text layout (rich table of findings, the interfaces and routes seen, our table with
its counters when asked) and the JSON document (``expected``, ``observed``, ``findings``,
``verdict``, ``exit_code``); and the exit status of a diagnosis.
Must not: observe or decide anything.
"""

from __future__ import annotations

import dataclasses
import enum
import ipaddress
import json
from typing import Any

from rich.console import Console
from rich.table import Table

from egress_router.diagnose.model.observations import Expected, Observed
from egress_router.diagnose.model.verdict import Diagnosis, Status

EXIT_HEALTHY = 0  # no check failed (warnings allowed)
EXIT_PROBLEM = 3  # a check failed: the verdict names the likely cause
# (1: bad EGRESS_* input, 2: the namespace could not be observed, as for every command)

_STYLE = {Status.OK: "green", Status.WARN: "yellow", Status.FAIL: "bold red"}


def exit_status(diagnosis: Diagnosis) -> int:
    return EXIT_HEALTHY if diagnosis.healthy else EXIT_PROBLEM


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, ipaddress.IPv4Address | ipaddress.IPv4Interface | ipaddress.IPv4Network):
        return str(value)
    return value


def as_json(expected: Expected, observed: Observed, diagnosis: Diagnosis) -> str:
    document = {
        "verdict": {"cause": diagnosis.cause.value, "summary": diagnosis.summary},
        "exit_code": exit_status(diagnosis),
        "findings": _plain(diagnosis.findings),
        "expected": _plain(expected),
        "observed": _plain(observed),
    }
    return json.dumps(document, indent=2, sort_keys=False) + "\n"


def render(
    console: Console,
    expected: Expected,
    observed: Observed,
    diagnosis: Diagnosis,
    *,
    where: str,
    verbose: bool = False,
) -> None:
    """Print for people: what was compared, each check, then the one-line verdict."""
    e = expected
    console.print(
        f"[bold]egress-router diagnose[/] {where}: mode {e.mode}, source {e.source}, "
        f"gateway {e.gateway}, {e.macvlan} / {e.cluster}, {len(e.targets)} destination(s)"
    )
    table = Table(show_header=True, header_style="bold", expand=False)
    table.add_column("check")
    table.add_column("")
    table.add_column("finding", overflow="fold")
    for f in diagnosis.findings:
        table.add_row(f.check, f"[{_STYLE[f.status]}]{f.status.value}[/]", f.message)
    console.print(table)
    if verbose:
        console.print("[bold]routes[/]")
        for r in observed.routes:
            console.print(f"  {r}")
        if observed.conntrack:
            console.print("[bold]conntrack[/] (tracked connections per destination)")
            for dst, n in observed.conntrack.items():
                console.print(f"  {dst}: {n}")
        if observed.ruleset is not None and observed.ruleset.text:
            console.print(f"[bold]table ip {observed.ruleset.table}[/] (with counters)")
            console.print(
                observed.ruleset.text.rstrip(), markup=False, highlight=False, soft_wrap=True
            )
    style = "bold green" if diagnosis.healthy else "bold red"
    console.print(f"[{style}]verdict:[/] {diagnosis.summary}", highlight=False)
