"""Where a table version came from: its run, code version, parameters, suite and inputs."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

import pyarrow.compute as pc

from radgen.errors import NotFoundError
from radgen.platform import tables
from radgen.platform.storage import Root

__all__ = ["trace"]

#: Commit-info keys Delta and radgen's run record already report elsewhere.
_DELTA_KEYS = {
    "timestamp", "operation", "operationParameters", "operationMetrics", "engineInfo",
    "clientVersion", "version", "readVersion", "isBlindAppend", "suite", "userMetadata",
}  # fmt: skip


def _commit_info(root: Root, name: str, version: int) -> dict[str, Any]:
    for entry in tables.table_history(root, name):
        if int(entry.get("version", -1)) == version:
            return entry
    raise NotFoundError(f"{name}@{version}", "no such version")


def trace(root: Root, name: str, version: int | None = None) -> dict[str, Any]:
    """Lineage of one version of table `name`.

    Parameters
    ----------
    root : Root
        Catalog root.
    name : str
        Table name.
    version : int, optional
        Version; current when None.

    Returns
    -------
    dict
        ``table``, ``version``, ``run`` (id, command, status, code version, parameter hash,
        parameters), ``suite`` (status recorded with the commit and the failed checks of that
        run), ``annotations`` (other commit metadata, e.g. the harmonization method) and
        ``inputs`` grouped by kind (each a list of ``{"id", "sha256"}``) and ``used_by``
        (see :func:`downstream`).
    """
    current = tables.table_version(root, name)
    version = current if version is None else version
    info = _commit_info(root, name, version)
    run_id = info.get("run_id")
    run: dict[str, Any] = {
        "run_id": run_id,
        "command": info.get("command"),
        "code_version": info.get("code_version"),
        "param_hash": info.get("param_hash"),
    }
    if run_id and tables.table_exists(root, "runs"):
        runs = tables.read_table(root, "runs").to_pandas()
        hit = runs[runs["run_id"] == run_id]
        if not hit.empty:
            rec = hit.iloc[0]
            run.update(
                status=rec["status"],
                params=json.loads(rec["params_json"]),
                started_at=str(rec["started_at"]),
                message=rec["message"],
            )
    failed: list[dict[str, Any]] = []
    checked: list[dict[str, Any]] = []
    if tables.table_exists(root, "quality_results"):
        qr = tables.read_table(root, "quality_results").to_pandas()
        if run_id:
            mine = qr[(qr["run_id"] == run_id) & (qr["target"] == name) & (~qr["success"])]
            failed = mine[["suite", "expectation", "column", "severity"]].to_dict("records")
        # every suite run that checked this version: at its commit and by later `radgen validate`
        of_version = qr[(qr["target"] == name) & (qr["table_version"] == version)]
        for (rid, suite, suite_version), part in of_version.groupby(
            ["run_id", "suite", "suite_version"], dropna=False
        ):
            checked.append(
                {
                    "run_id": rid,
                    "suite": suite,
                    "suite_version": suite_version,
                    "checks": len(part),
                    "failed": int((~part["success"].astype(bool)).sum()),
                    "evaluated_at": str(part["evaluated_at"].max()),
                }
            )
    inputs: dict[str, list[dict[str, Any]]] = defaultdict(list)
    if tables.table_exists(root, "lineage"):
        lin = tables.read_table(root, "lineage")
        mine = lin.filter(
            pc.and_(pc.equal(lin["output_table"], name), pc.equal(lin["output_version"], version))
        )
        for rec in mine.to_pylist():
            inputs[rec["input_kind"]].append({"id": rec["input_id"], "sha256": rec["input_sha256"]})
    return {
        "table": name,
        "version": version,
        "current_version": current,
        "used_by": downstream(root, name, version),
        "committed_at": info.get("timestamp"),
        "run": run,
        "suite": {"status": info.get("suite"), "failed": failed, "results": checked},
        "annotations": {k: v for k, v in info.items() if k not in _DELTA_KEYS and k not in run},
        "inputs": dict(inputs),
    }


def downstream(root: Root, name: str, version: int) -> dict[str, list[str]]:
    """Who uses version `version` of table `name`.

    Returns
    -------
    dict
        ``datasets``: ``NAME@VERSION`` of every published dataset that pinned this table
        version; ``tables``: ``TABLE@VERSION`` of every table version computed from it.
    """
    pinned: list[str] = []
    if tables.table_exists(root, "datasets"):
        for rec in tables.read_table(root, "datasets").to_pylist():
            if json.loads(rec["table_versions"] or "{}").get(name) == version:
                pinned.append(f"{rec['name']}@{rec['version']}")
    derived: list[str] = []
    if tables.table_exists(root, "lineage"):
        lin = tables.read_table(root, "lineage")
        uses = lin.filter(
            pc.and_(
                pc.equal(lin["input_kind"], "table"), pc.equal(lin["input_id"], f"{name}@{version}")
            )
        )
        derived = sorted(
            {
                f"{r['output_table']}@{r['output_version']}"
                for r in uses.to_pylist()
                if r["output_table"] != "datasets"  # the bookkeeping table: listed as datasets
            }
        )
    return {"datasets": sorted(set(pinned)), "tables": derived}


def trace_dataset(root: Root, name: str, version: int | None = None) -> dict[str, Any]:
    """Lineage of a published dataset version: its query and the lineage of each pinned table.

    Raises
    ------
    NotFoundError
        No such dataset (version).
    """
    from radgen.platform.datasets import DatasetRef, dataset_manifest

    manifest, manifest_sha = dataset_manifest(root, DatasetRef(name, version))
    return {
        "dataset": f"{manifest['name']}@{manifest['version']}",
        "sql": manifest["sql"],
        "manifest_sha256": manifest_sha,
        "n_rows": manifest["n_rows"],
        "run_id": manifest.get("run_id"),
        "code_version": manifest.get("code_version"),
        "suite": manifest.get("suite"),
        "tables": [trace(root, t, int(v)) for t, v in sorted(manifest["table_versions"].items())],
    }
