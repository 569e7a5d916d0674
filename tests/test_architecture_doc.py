"""docs/architecture.md names every package and module of src/egress_router."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "src" / "egress_router"
DOC = (ROOT / "docs" / "architecture.md").read_text()


def test_every_package_is_named() -> None:
    packages = [p.parent.relative_to(SOURCE) for p in SOURCE.rglob("__init__.py")]
    missing = [f"{p}/" for p in packages if str(p) != "." and f"{p.name}/" not in DOC]
    assert not missing, f"docs/architecture.md does not name: {missing}"


def test_every_module_is_named() -> None:
    modules = [p.relative_to(SOURCE) for p in SOURCE.rglob("*.py") if p.name != "__init__.py"]
    missing = [str(m) for m in modules if m.name not in DOC]
    assert not missing, f"docs/architecture.md does not name: {missing}"
