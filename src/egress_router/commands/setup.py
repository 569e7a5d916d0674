"""CLI front end for `setup` (filled in by its feature)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this command group to the main application."""
