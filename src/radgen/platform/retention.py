"""Retention: delete old table files, never those of a version a published dataset pinned.

Every commit leaves the files of earlier versions in place, so time travel works; they are
reclaimed only by ``radgen tables vacuum``. A file is deleted when the current version does
not use it, no dataset-pinned version uses it, and it has been unreferenced for longer than
the retention period (default a week), so a write in progress is never touched.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from radgen.platform import index, tables
from radgen.platform.runs import Run

__all__ = ["DEFAULT_RETENTION_HOURS", "pinned_versions", "vacuum"]

#: A week: long enough for any run in progress to have committed or failed.
DEFAULT_RETENTION_HOURS = 168


def pinned_versions(run: Run) -> dict[str, set[int]]:
    """Table versions pinned by published datasets, per table."""
    pins: dict[str, set[int]] = defaultdict(set)
    if tables.table_exists(run.root, "datasets"):
        for rec in tables.read_table(run.root, "datasets", columns=["table_versions"]).to_pylist():
            for table, version in json.loads(rec["table_versions"] or "{}").items():
                pins[table].add(int(version))
    return dict(pins)


def vacuum(
    run: Run,
    *,
    retention_hours: int = DEFAULT_RETENTION_HOURS,
    names: Sequence[str] | None = None,
    dry_run: bool = False,
) -> list[dict[str, Any]]:
    """Vacuum `names` (default every table); see the module docstring.

    Returns
    -------
    list of dict
        Per table: ``table``, ``removed`` (names of files in the table folder),
        ``kept_versions`` (pinned by datasets) and ``dry_run``.
    """
    pins = pinned_versions(run)
    report: list[dict[str, Any]] = []
    touched: list[str] = []
    n_removed = 0
    for name in names or tables.list_tables(run.root):
        removed = tables.vacuum_table(
            run.root,
            name,
            retention_hours=retention_hours,
            keep_versions=sorted(pins.get(name, ())),
            dry_run=dry_run,
            metadata=run.commit_metadata(None),
        )
        report.append(
            {
                "table": name,
                "removed": removed,
                "kept_versions": sorted(pins.get(name, ())),
                "dry_run": dry_run,
            }
        )
        n_removed += len(removed)
        if not dry_run:
            touched.append(name)
    if touched:
        index.refresh(run.root, touched)  # the vacuum commits moved the version numbers
    n = sum(len(r["removed"]) for r in report)
    run.message = (
        f"{'would remove' if dry_run else 'removed'} {n} file(s) from {len(report)} table(s)"
    )
    return report
