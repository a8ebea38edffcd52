"""``radgen validate``: run the suites again on what the catalog holds now.

Commits are gated when they happen; this re-checks the current versions (after an upgrade,
a manual edit, or to see the report) and records the results in ``quality_results``.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from radgen.errors import ConfigError
from radgen.ingestion.dicom import plausible_range
from radgen.platform import tables
from radgen.platform.runs import Run
from radgen.platform.volumes import open_volume
from radgen.validation.gate import ExpectationOutcome, SuiteResult, run_suite
from radgen.validation.profiles import suite_frames
from radgen.validation.suites import STAGES, Check

__all__ = ["STAGE_TABLES", "stage_of", "validate_catalog"]

log = logging.getLogger(__name__)

#: Which tables each stage's suite covers.
STAGE_TABLES: dict[str, tuple[str, ...]] = {
    "dicom": ("series", "instances", "scanner_batches"),
    "masks": ("rois",),
    "omics": (
        "mutations",
        "gene_mutation",
        "cna_segments",
        "cna_gene",
        "expression",
        "methylation",
        "clinical",
        "ccf",
    ),
    "quarantine": ("quarantine",),
}


def _image_stats(run: Run) -> pd.DataFrame:
    """Per-series array statistics, computed chunk by chunk with Dask."""
    import dask
    import dask.array as da

    series = tables.read_table(
        run.root, "series", columns=["series_uid", "modality", "zarr_path"]
    ).to_pandas()
    inst = tables.read_table(
        run.root, "instances", columns=["series_uid", "slice_index", "position"]
    ).to_pandas()
    rows = []
    for rec in series.to_dict("records"):
        img = open_volume(run.root, rec["zarr_path"], name="image").data
        finite = da.isfinite(img)
        n, n_finite, lo, hi = dask.compute(img.size, finite.sum(), img.min(), img.max())
        mine = inst[inst["series_uid"] == rec["series_uid"]].sort_values("slice_index")
        pos = np.array([np.asarray(p, dtype=float) for p in mine["position"]])
        gaps = np.linalg.norm(np.diff(pos, axis=0), axis=1) if len(pos) > 1 else np.array([1.0])
        rows.append(
            {
                "series_uid": rec["series_uid"],
                "modality": rec["modality"],
                "n_voxels": int(n),
                "n_nonfinite": int(n - n_finite),
                "min_value": float(lo),
                "max_value": float(hi),
                "spacing_cv": float(np.std(gaps) / np.mean(gaps)) if np.mean(gaps) > 0 else 1.0,
                "in_plausible_range": plausible_range(rec["modality"], float(lo), float(hi)),
            }
        )
    return pd.DataFrame(rows)


def _recorder(outcomes: list[ExpectationOutcome]) -> Callable[..., None]:
    def outcome(name: str, ok: bool, observed: object, column: str | None = None) -> None:
        check = Check(name, {"column": column} if column else {})
        outcomes.append(ExpectationOutcome(check, ok, 0 if ok else 1, [], observed))

    return outcome


def _dataset_results(run: Run) -> list[SuiteResult]:
    """Each published dataset's files against its manifest: hashes, schema, row count."""
    results: list[SuiteResult] = []
    if not tables.table_exists(run.root, "datasets"):
        return results
    for rec in tables.read_table(run.root, "datasets").to_pandas().to_dict("records"):
        target = f"dataset {rec['name']}@{rec['version']}"
        base = rec["path"]
        raw = run.root.read_bytes(base, "manifest.json")
        manifest = json.loads(raw)
        outcomes: list[ExpectationOutcome] = []
        outcome = _recorder(outcomes)

        outcome(
            "ManifestHashMatchesCatalog",
            hashlib.sha256(raw).hexdigest() == rec["manifest_sha256"],
            rec["manifest_sha256"],
        )
        n_rows = 0
        schema = None
        for entry in manifest["files"]:
            data = run.root.read_bytes(base, entry["path"])
            intact = hashlib.sha256(data).hexdigest() == entry["sha256"]
            outcome("FileHashMatchesManifest", intact, entry["path"], entry["path"])
            try:
                table = pq.read_table(io.BytesIO(data))
            except pa.ArrowInvalid as err:
                outcome("FileIsReadableParquet", False, str(err), entry["path"])
                continue
            n_rows += table.num_rows
            schema = [{"name": f.name, "type": str(f.type)} for f in table.schema]
        outcome("RowCountMatchesManifest", n_rows == manifest["n_rows"], n_rows)
        outcome("SchemaMatchesManifest", schema == manifest["schema"], None)
        results.append(
            SuiteResult(suite="datasets", target=target, n_rows=n_rows, outcomes=outcomes)
        )
    return results


def stage_of(table: str) -> str:
    """The suite (stage) that validates `table`."""
    if table.startswith("features_"):
        return "features"
    for stage, names in STAGE_TABLES.items():
        if table in names:
            return stage
    raise ConfigError(table, "no suite validates this table")


def _table_results(run: Run, stage: str, name: str, version: int | None) -> list[SuiteResult]:
    version = tables.table_version(run.root, name) if version is None else version
    frame = tables.read_table(run.root, name, version=version).to_pandas()
    previous = None
    if stage == "features" and version > 0:
        previous = tables.read_table(run.root, name, version=version - 1).to_pandas()
    results = []
    for sub_stage, data, target in suite_frames(stage, frame, name, previous=previous):
        result = run_suite(sub_stage, data, target=target)
        result.table_version = version
        results.append(result)
    return results


def validate_catalog(
    run: Run,
    stages: Sequence[str] | None = None,
    *,
    table: str | None = None,
    version: int | None = None,
    say: Callable[[str], None] | None = None,
) -> list[SuiteResult]:
    """Run suites again on stored data: every stage (default), some stages, or one table version.

    Empty tables are reported and not validated (an empty table holds nothing to check).

    Parameters
    ----------
    run : Run
        The open run; results are kept on it and written to ``quality_results``.
    stages : sequence of str, optional
        Stages to check; default all.
    table : str, optional
        Check only this table (its stage is inferred).
    version : int, optional
        With `table`: the version to check; default current.
    say : callable, optional
        Receives notes (empty tables).

    Returns
    -------
    list of SuiteResult
    """
    if version is not None and table is None:
        raise ConfigError("--version", "give --table with --version")
    if table is not None:
        results = _table_results(run, stage_of(table), table, version)
        run.suite_results.extend(results)
        return results
    chosen = (
        list(stages)
        if stages
        else [s for s in STAGES if s not in {"feature_values", "harmonization"}]
    )
    for stage in chosen:
        if stage not in STAGES:
            raise ConfigError(stage, f"no such stage; stages are {', '.join(STAGES)}")
    results = []
    for stage in chosen:
        names: Sequence[str]
        if stage == "features":
            names = [n for n in tables.list_tables(run.root) if n.startswith("features_")]
        elif stage == "images":
            if tables.table_exists(run.root, "series") and tables.table_rows(run.root, "series"):
                stats = run_suite("images", _image_stats(run), target="images")
                stats.table_version = tables.table_version(run.root, "series")
                results.append(stats)
            continue
        elif stage == "datasets":
            results.extend(_dataset_results(run))
            continue
        else:
            names = STAGE_TABLES.get(stage, ())
        for name in names:
            if not tables.table_exists(run.root, name) or tables.table_rows(run.root, name) == 0:
                if say:
                    say(f"{stage}: {name} is empty; nothing to check")
                continue
            results.extend(_table_results(run, stage, name, None))
    run.suite_results.extend(results)
    return results
