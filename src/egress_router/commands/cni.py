"""CLI front end for ``egress-router cni``: render an EgressRouter CR as the operator would.

Owns: the ``cni render`` command (read the CR file, print the NAD and Deployment as YAML).
Must not: validate or render itself (``cni.model.egressrouter``), or talk to a cluster.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer

cni_app = typer.Typer(
    help="The OpenShift 4 egress-router CNI: render EgressRouter resources.",
    no_args_is_help=True,
)


def _dump(docs: list[dict[str, Any]]) -> str:
    import yaml

    class Dumper(yaml.SafeDumper):
        pass

    def text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
        style = "|" if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    Dumper.add_representer(str, text)
    return yaml.dump_all(docs, Dumper=Dumper, sort_keys=False, default_flow_style=False)


@cni_app.command("render")
def render(
    path: Annotated[Path, typer.Argument(help="EgressRouter CR (YAML or JSON)")],
    release_version: Annotated[
        str | None, typer.Option(help="release.openshift.io/version (default: $RELEASE_VERSION)")
    ] = None,
    image: Annotated[
        str | None, typer.Option(help="Pod image (default: $EGRESS_ROUTER_CNI_IMAGE)")
    ] = None,
) -> int:
    """Print the NetworkAttachmentDefinition and Deployment the CR renders to (YAML)."""
    from egress_router.cni.model import egressrouter
    from egress_router.common.documents import MAX_CHARS, DocumentError, load_any
    from egress_router.errors import ConfigError

    try:
        with path.open(encoding="utf-8") as stream:
            text = stream.read(MAX_CHARS + 1)  # one past the bound is refused as too large
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: cannot read: not UTF-8") from None
    try:
        docs = load_any(text)
    except DocumentError as exc:
        raise ConfigError(f"{path}: not valid YAML or JSON: {exc}") from None
    if len(docs) != 1:
        raise ConfigError(f"{path}: expected one EgressRouter document, got {len(docs)}")
    doc = docs[0]
    router = egressrouter.parse_egressrouter(doc, source=str(path))
    docs = egressrouter.render(
        router,
        release=release_version
        if release_version is not None
        else os.environ.get("RELEASE_VERSION", ""),
        image=image or os.environ.get("EGRESS_ROUTER_CNI_IMAGE") or egressrouter.DEFAULT_IMAGE,
    )
    typer.echo(_dump(docs), nl=False)
    return 0


def register(app: typer.Typer) -> None:
    """Add this command group to the main application."""
    app.add_typer(cni_app, name="cni")
