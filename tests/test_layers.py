"""The import graph of egress_router: no cycle, no import hidden to dodge one, contracts enforced.

The graph is grimp's (the library import-linter runs on), built with the imports inside function
bodies and ``if TYPE_CHECKING:`` blocks included: a lazy import still couples two modules, so it
counts like any other. Lazy imports are allowed (the commands keep the CLI fast that way); an
import that would close a cycle if it were at the top of the module is not.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "src" / "egress_router"

# Modules whose imports of each other may form a cycle, and why. Keep it short; an entry that is
# no longer needed fails ``test_the_allow_list_is_still_needed``.
CYCLE_ALLOWED: dict[frozenset[str], str] = {
    # (empty: the HTTP proxy's Protocols, dialer, splicer and worker formed one until the
    # exchange-core rewrite, issue 9 item 3; they now reach each other through contracts.py)
}


def _graph() -> grimp.ImportGraph:
    return grimp.build_graph("egress_router", exclude_type_checking_imports=False, cache_dir=None)


def _allowed(importer: str, imported: str) -> bool:
    return any(importer in group and imported in group for group in CYCLE_ALLOWED)


def _edges(graph: grimp.ImportGraph) -> dict[str, set[str]]:
    return {
        m: {i for i in graph.find_modules_directly_imported_by(m) if not _allowed(m, i)}
        for m in graph.modules
        if m.startswith("egress_router")
    }


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(edges):
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in edges:
                    continue
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_import_graph_has_no_cycle() -> None:
    assert _cycles(_edges(_graph())) == []


def test_the_allow_list_is_still_needed() -> None:
    graph = _graph()
    full = {
        m: set(graph.find_modules_directly_imported_by(m))
        for m in graph.modules
        if m.startswith("egress_router")
    }
    cycles = [set(c) for c in _cycles(full)]
    for group, reason in CYCLE_ALLOWED.items():
        assert any(c & group for c in cycles), f"no cycle left in {sorted(group)} ({reason})"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _hidden_imports(tree: ast.Module) -> Iterator[tuple[int, list[str]]]:
    """(line, imported names) of every import in a function body or a TYPE_CHECKING block."""

    def visit(node: ast.AST, hidden: bool) -> Iterator[tuple[int, list[str]]]:
        for child in ast.iter_child_nodes(node):
            inner = hidden or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                for stmt in child.body:
                    yield from visit(ast.Module(body=[stmt], type_ignores=[]), True)
                for stmt in child.orelse:
                    yield from visit(ast.Module(body=[stmt], type_ignores=[]), hidden)
                continue
            if hidden and isinstance(child, ast.Import):
                yield child.lineno, [a.name for a in child.names]
            elif hidden and isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                yield (
                    child.lineno,
                    [f"{child.module}.{a.name}" for a in child.names] + [child.module],
                )
            yield from visit(child, inner)

    yield from visit(tree, False)


def test_no_import_hides_in_a_function_or_type_checking_block_to_dodge_a_cycle() -> None:
    """Each hidden import, if it were at the top of its module, would not close a cycle."""
    graph = _graph()
    dodging = []
    for path in sorted(PACKAGE.rglob("*.py")):
        importer = _module_name(path)
        for line, names in _hidden_imports(ast.parse(path.read_text(), str(path))):
            for name in names:
                if not name.startswith("egress_router.") or name not in graph.modules:
                    continue
                if _allowed(importer, name) or name == importer:
                    continue
                if graph.chain_exists(importer=name, imported=importer):
                    where = path.relative_to(ROOT)
                    dodging.append(f"{where}:{line}: {name} imports {importer} back")
                break  # ``from pkg import module``: the module is the target, not the package
    assert dodging == []


def test_the_hidden_import_scan_sees_lazy_and_type_checking_imports() -> None:
    tree = ast.parse(
        "from typing import TYPE_CHECKING\n"
        "import egress_router.errors\n"
        "if TYPE_CHECKING:\n"
        "    from egress_router.kernel import netlink\n"
        "def f():\n"
        "    import egress_router.common.values\n"
    )
    assert list(_hidden_imports(tree)) == [
        (4, ["egress_router.kernel.netlink", "egress_router.kernel"]),
        (6, ["egress_router.common.values"]),
    ]


# A deliberately added violation of each kind makes import-linter fail.
VIOLATIONS = [
    ("common/values.py", "import asyncio", "Models and common do no I/O"),
    ("redirect/model/env.py", "import socket", "Models and common do no I/O"),
    ("firewall/model/plan.py", "from egress_router.kernel import nftables", "Models and common"),
    ("dns_proxy/model/nft.py", "from egress_router.dns_proxy import relay", "Models and common"),
    ("kernel/sysctl.py", "from egress_router.runtime import metrics", "Layers"),
    ("common/lines.py", "from egress_router import kernel", "Layers"),
    ("redirect/apply.py", "from egress_router.firewall import agent", "Features are independent"),
    ("redirect/report.py", "from egress_router.cni import plugin", "Features are independent"),
    ("operator/model.py", "import kopf", "Models and common do no I/O"),
    ("operator/model.py", "from egress_router.kube import client", "Models and common"),
    ("kube/client.py", "from egress_router.operator import handlers", "Layers"),
    ("lab/controlplane.py", "import kubernetes", "Only egress_router.kube imports"),
    ("operator/handlers.py", "from egress_router.lab import controlplane", "Features are"),
    ("firewall/agent.py", "import dns.resolver", "Only runtime.resolver imports dnspython"),
    ("dns_proxy/service.py", "import dns.message", "Only runtime.resolver imports dnspython"),
    ("runtime/metrics.py", "import dns.asyncresolver", "Only runtime.resolver imports dnspython"),
]


@pytest.mark.parametrize(("module", "line", "contract"), VIOLATIONS)
def test_a_deliberate_violation_breaks_a_contract(
    tmp_path: Path, module: str, line: str, contract: str
) -> None:
    shutil.copytree(PACKAGE, tmp_path / "egress_router", ignore=shutil.ignore_patterns("*.pyc"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / "egress_router" / module
    target.write_text(target.read_text() + f"\n{line}  # noqa\n")
    lint = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run(
        [str(lint), "--no-cache"],
        cwd=tmp_path,
        env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0, result.stdout
    broken = [ln for ln in result.stdout.splitlines() if " BROKEN" in ln]
    assert any(contract in ln for ln in broken), result.stdout


def test_the_real_tree_keeps_every_contract() -> None:
    lint = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run(
        [str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout
