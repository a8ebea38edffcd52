"""Omics kinds, in a module with no imports so the CLI can list them without loading pandas."""

from __future__ import annotations

__all__ = ["KINDS"]

#: Every ``--kind`` of ``radgen ingest omics``, in the order the help lists them.
KINDS: tuple[str, ...] = (
    "mutations",
    "cna-segments",
    "cna-gene",
    "expression",
    "rsem",
    "methylation",
    "clinical",
    "subjects",
)
