"""Applying deploy/ manifests to the test control plane (server-side apply, optionally dry-run)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
FIELD_MANAGER = "egress-router-tests"


def manifests() -> list[Path]:
    """Every YAML file under deploy/ (CRDs included)."""
    return sorted(DEPLOY.rglob("*.yaml"))


def documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def apply(api: Any, doc: dict[str, Any], namespace: str, *, dry_run: bool = False) -> Any:
    """Server-side apply of one object (namespaced ones default to ``namespace``)."""
    from kubernetes.dynamic import DynamicClient

    dyn = DynamicClient(api)
    resource = dyn.resources.get(api_version=doc["apiVersion"], kind=doc["kind"])
    kwargs: dict[str, Any] = {"field_manager": FIELD_MANAGER, "force_conflicts": True}
    if resource.namespaced:
        kwargs["namespace"] = doc["metadata"].get("namespace", namespace)
    if dry_run:
        kwargs["dry_run"] = "All"
    return resource.server_side_apply(body=doc, name=doc["metadata"]["name"], **kwargs)


def apply_file(api: Any, path: Path, namespace: str, *, dry_run: bool = False) -> list[Any]:
    return [apply(api, doc, namespace, dry_run=dry_run) for doc in documents(path)]
