"""Orphans of interrupted runs and their removal (``radgen catalog gc``).

Every write puts files in place first and commits the catalog row or Delta version that
names them last, so a killed run never leaves a partial version; it can leave files that
nothing names:

- staging files and folders called ``.tmp-*`` (volumes, dataset versions, small files
  written before their rename);
- Delta data files that no commit of their table ever added (written before a commit that
  never came) and abandoned commit temp files in ``_delta_log``;
- image, mask and matrix volumes that no row of ``series``, ``rois`` or ``omics_matrices``
  (in any version) names: object stores have no rename, so volumes are written in place;
- dataset version folders without their manifest (written last);
- harmonization reports of a version its table never reached.

:func:`collect_garbage` removes exactly those, never a file that a committed version of a
table, a row or a manifest references. Files younger than ``older_than`` are left alone: they
may belong to a command that is still running.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import pyarrow.parquet as pq

from radgen.errors import ConfigError, NotFoundError
from radgen.platform import tables
from radgen.platform.storage import Root

__all__ = ["GcReport", "collect_garbage", "referenced_delta_files"]

log = logging.getLogger(__name__)

#: Volume folders and the (table, column) whose rows name them.
_VOLUME_OWNERS = {
    "images": ("series", "zarr_path"),
    "masks": ("rois", "mask_path"),
    "matrices": ("omics_matrices", "path"),
}


@dataclass
class GcReport:
    """What ``radgen catalog gc`` removed (or would remove, with ``dry_run``)."""

    removed: list[dict[str, str]] = field(default_factory=list)
    n_bytes: int = 0
    dry_run: bool = False

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` document."""
        return {"removed": self.removed, "bytes": self.n_bytes, "dry_run": self.dry_run}


def referenced_delta_files(root: Root, name: str) -> set[str]:
    """Data files (paths relative to the table folder) that any commit of `name` added.

    Read from the commit files and checkpoints of ``_delta_log`` directly: a file is kept if
    any version, current or past, ever used it.
    """
    log_dir = (tables.TABLES_DIR, name, "_delta_log")
    found: set[str] = set()
    for entry in root.listdir(*log_dir):
        if entry.endswith(".json") and entry[:1].isdigit():
            for line in root.read_bytes(*log_dir, entry).decode().splitlines():
                action = json.loads(line) if line.strip() else {}
                if "add" in action:
                    found.add(unquote(action["add"]["path"]))
        elif ".checkpoint" in entry and entry.endswith(".parquet"):
            with root.open(*log_dir, entry) as fh:
                adds = pq.read_table(fh, columns=["add"]).column("add").to_pylist()
            found.update(unquote(a["path"]) for a in adds if a and a.get("path"))
    return found


def _age_seconds(info: dict[str, Any], now: dt.datetime) -> float:
    stamp = info.get("mtime", info.get("LastModified", info.get("last_modified")))
    if stamp is None:
        return float("inf")
    when = (
        stamp
        if isinstance(stamp, dt.datetime)
        else dt.datetime.fromtimestamp(float(stamp), tz=dt.UTC)
    )
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return (now - when).total_seconds()


def _named_volumes(root: Root, table: str, column: str) -> set[str]:
    """Relative volume paths named by any loadable version of `table`."""
    if not tables.table_exists(root, table):
        return set()
    named: set[str] = set()
    for version in range(tables.table_version(root, table) + 1):
        try:
            data = tables.read_table(root, table, version=version, columns=[column])
        except (NotFoundError, KeyError):  # a vacuumed version: its files are gone anyway
            continue
        named.update(str(v) for v in data.column(column).to_pylist() if v)
    return named


class _Collector:
    def __init__(self, root: Root, older_than_s: float, dry_run: bool) -> None:
        self.root = root
        self.older_than_s = older_than_s
        self.report = GcReport(dry_run=dry_run)
        self.now = dt.datetime.now(dt.UTC)

    def consider(self, rel: str, why: str) -> None:
        """Remove `rel` (a file or folder) if it is old enough."""
        target = self.root.join(rel)
        infos = [self.root.fs.info(target)]
        size = 0
        if infos[0].get("type") == "directory":
            found = self.root.fs.find(target, detail=True)
            infos = list(found.values()) or infos
            size = sum(int(i.get("size") or 0) for i in found.values())
        else:
            size = int(infos[0].get("size") or 0)
        if min(_age_seconds(i, self.now) for i in infos) < self.older_than_s:
            log.info("gc: %s is too recent to remove (%s)", rel, why)
            return
        self.report.removed.append({"path": rel, "reason": why})
        self.report.n_bytes += size
        if not self.report.dry_run:
            self.root.remove(rel)


def collect_garbage(
    root: Root, *, older_than_minutes: float = 60.0, dry_run: bool = False
) -> GcReport:
    """Remove what interrupted runs left behind (see the module docstring).

    Parameters
    ----------
    root : Root
        Catalog root.
    older_than_minutes : float, default 60
        Leave files younger than this (a running command may still commit them).
    dry_run : bool, default False
        Only report.

    Returns
    -------
    GcReport

    Raises
    ------
    ConfigError
        Negative age.
    """
    if older_than_minutes < 0:
        raise ConfigError("--older-than", f"must be >= 0 minutes (got {older_than_minutes})")
    gc = _Collector(root, older_than_minutes * 60.0, dry_run)
    for rel in root.walk_files():
        parts = rel.split("/")
        staged = next((i for i, p in enumerate(parts) if p.startswith(".tmp-")), None)
        if staged is not None:
            top = "/".join(parts[: staged + 1])
            if not any(r["path"] == top for r in gc.report.removed) and root.exists(top):
                gc.consider(top, "staging file of an interrupted write")
    for name in tables.list_tables(root):
        used = referenced_delta_files(root, name)
        for rel in root.walk_files(tables.TABLES_DIR, name):
            if rel.startswith("_delta_log/"):
                if rel.endswith(".tmp") or "/_commit_" in rel:
                    gc.consider(f"{tables.TABLES_DIR}/{name}/{rel}", "abandoned Delta commit")
            elif rel.endswith(".parquet") and rel not in used:
                gc.consider(f"{tables.TABLES_DIR}/{name}/{rel}", f"no version of {name} uses it")
    for folder, (table, column) in _VOLUME_OWNERS.items():
        named = _named_volumes(root, table, column)
        for entry in root.listdir(folder):
            rel = f"{folder}/{entry}"
            if entry.endswith(".zarr") and rel not in named:
                gc.consider(rel, f"no {table} row names this volume")
    for name in root.listdir("datasets"):
        for version in root.listdir("datasets", name):
            if version.isdigit() and not root.exists("datasets", name, version, "manifest.json"):
                gc.consider(f"datasets/{name}/{version}", "dataset version without its manifest")
    for table in root.listdir("reports", "harmonize"):
        latest = tables.table_version(root, table) if tables.table_exists(root, table) else -1
        for version in root.listdir("reports", "harmonize", table):
            if version.isdigit() and int(version) > latest:
                gc.consider(
                    f"reports/harmonize/{table}/{version}", f"{table} never reached this version"
                )
    return gc.report
