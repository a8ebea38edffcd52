"""``radgen analyze``: radiogenomic analyses over catalog tables, written as tables or reports."""

from __future__ import annotations

import typer

__all__ = ["analyze_app"]

analyze_app = typer.Typer(
    help="Link imaging features with genomics: CCF, associations, mechanistic links, maps.",
    no_args_is_help=True,
)
