"""Coordinator of ``radgen ingest dicom``: fan out to Dask workers, then one commit.

Workers read headers in batches and assemble one series each, writing its Zarr volume under
a temporary name. The coordinator then validates and commits the rows in an order that makes
a rerun after a crash finish the job: ``instances``, ``scanner_batches``, ``quarantine``, and
``series`` last (a series row is the marker that its volume and instances are complete).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from distributed import Client, as_completed

from radgen.errors import InputError
from radgen.ingestion.dicom import (
    DicomHeader,
    Quarantined,
    SeriesResult,
    assemble_series,
    find_files,
    group_by_series,
    read_headers,
    scanner_batch,
)
from radgen.platform import tables
from radgen.platform.runs import LineageInput, Run
from radgen.platform.storage import Root

__all__ = ["IngestReport", "ProgressFn", "ingest_dicom", "quarantine_rows"]

log = logging.getLogger(__name__)

#: ``progress(stage, done, total)``: called as work completes.
ProgressFn = Callable[[str, int, int], None]

_HEADER_BATCH = 128


@dataclass
class IngestReport:
    """What one ingest run did; ``to_json()`` is the CLI's ``--json`` output."""

    series: list[dict[str, Any]] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    quarantined: list[Quarantined] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` document."""
        return {
            "series": self.series,
            "unchanged": self.unchanged,
            "quarantined": [{"path": q.path, "reason": q.reason} for q in self.quarantined],
        }


def quarantine_rows(items: Sequence[Quarantined], *, kind: str, run_id: str) -> pd.DataFrame:
    """Rows for the ``quarantine`` table."""
    now = pd.Timestamp.now(tz="UTC")
    return pd.DataFrame(
        [
            {
                "path": q.path,
                "run_id": run_id,
                "kind": kind,
                "series_uid": q.series_uid,
                "reason": q.reason,
                "file_sha256": q.file_sha256,
                "quarantined_at": now,
            }
            for q in items
        ],
        columns=["path", "run_id", "kind", "series_uid", "reason", "file_sha256", "quarantined_at"],
    )


def _content_hash(headers: Sequence[DicomHeader]) -> str:
    return hashlib.sha256("".join(sorted(h.sha256 for h in headers)).encode()).hexdigest()


def _existing_series(root: Root) -> dict[str, str]:
    if not tables.table_exists(root, "series"):
        return {}
    frame = tables.read_table(root, "series", columns=["series_uid", "content_hash"]).to_pandas()
    return dict(zip(frame["series_uid"], frame["content_hash"], strict=True))


def _gather(
    client: Client, futures: list[Any], stage: str, progress: ProgressFn | None
) -> list[Any]:
    results: list[Any] = []
    for done, future in enumerate(as_completed(futures), start=1):
        results.append(future.result())
        if progress is not None:
            progress(stage, done, len(futures))
    return results


def ingest_dicom(
    run: Run,
    paths: Sequence[str | Path],
    client: Client,
    *,
    progress: ProgressFn | None = None,
) -> IngestReport:
    """Ingest every DICOM series found under `paths` into the catalog of `run`.

    Parameters
    ----------
    run : Run
        The open run; its root is the catalog.
    paths : sequence of path-like
        Files or folders (searched recursively).
    client : distributed.Client
        Where header reading and series assembly run.
    progress : callable, optional
        ``progress(stage, done, total)``.

    Returns
    -------
    IngestReport

    Raises
    ------
    InputError
        A path does not exist, or nothing could be ingested (the message names the first
        reasons).
    """
    root = run.root
    files = find_files(paths)
    if not files:
        raise InputError(", ".join(str(p) for p in paths), "no files found")
    log.info("reading %d file headers", len(files))
    batches = [files[i : i + _HEADER_BATCH] for i in range(0, len(files), _HEADER_BATCH)]
    header_futures = client.map(read_headers, batches, pure=False)
    read = [
        item for batch in _gather(client, header_futures, "headers", progress) for item in batch
    ]
    headers = [h for h in read if isinstance(h, DicomHeader)]
    report = IngestReport(quarantined=[q for q in read if isinstance(q, Quarantined)])

    existing = _existing_series(root)
    todo: list[list[DicomHeader]] = []
    for uid, group in group_by_series(headers).items():
        known = existing.get(uid)
        if known is None:
            todo.append(group)
        elif known == _content_hash(group):
            report.unchanged.append(uid)
        else:
            report.quarantined.append(
                Quarantined(
                    str(Path(group[0].path).parent),
                    "series already in the catalog with different content; not replaced",
                    uid,
                )
            )

    series_futures = client.map(
        assemble_series, todo, root_url=root.url, run_id=run.run_id, pure=False
    )
    results: list[SeriesResult] = _gather(client, series_futures, "series", progress)
    done = [r for r in results if r.series_row is not None]
    for r in results:
        report.quarantined.extend(r.quarantined)

    if report.quarantined:
        run.commit(
            "quarantine",
            quarantine_rows(report.quarantined, kind="dicom", run_id=run.run_id),
            suite="quarantine",
        )
    if not done:
        if report.unchanged:
            run.message = f"{len(report.unchanged)} series already in the catalog, unchanged"
            return report
        reasons = "; ".join(f"{q.path}: {q.reason}" for q in report.quarantined[:3])
        raise InputError(
            ", ".join(str(p) for p in paths),
            f"nothing ingested; {len(report.quarantined)} quarantined ({reasons})",
        )

    stats = pd.DataFrame([r.image_stats for r in done])
    run.validate("images", stats, target="images")
    series = pd.DataFrame([r.series_row for r in done])
    instances = pd.DataFrame([row for r in done for row in r.instance_rows])
    sop_inputs = [
        LineageInput("sop_instance", row["sop_uid"], row["file_sha256"])
        for r in done
        for row in r.instance_rows
    ]
    run.commit("instances", instances, suite="dicom")
    run.commit("scanner_batches", _batch_rows(series, run.run_id), suite="dicom")
    run.commit("series", series, suite="dicom", lineage=sop_inputs)
    for row in series.to_dict("records"):
        report.series.append(
            {
                "series_uid": row["series_uid"],
                "n_instances": int(row["n_instances"]),
                "shape": [int(v) for v in row["shape"]],
                "spacing": [float(v) for v in row["spacing"]],
                "modality": row["modality"],
                "scanner_batch": row["scanner_batch"],
            }
        )
    run.message = f"{len(done)} series ingested, {len(report.quarantined)} quarantined"
    return report


def _batch_rows(series: pd.DataFrame, run_id: str) -> pd.DataFrame:
    rows = []
    for record in series.to_dict("records"):
        batch, label = scanner_batch(record)
        rows.append(
            {
                "scanner_batch": batch,
                "label": label,
                "modality": record["modality"],
                "manufacturer": record["manufacturer"],
                "manufacturer_model_name": record["manufacturer_model_name"],
                "convolution_kernel": record["convolution_kernel"],
                "kvp": record["kvp"],
                "magnetic_field_strength": record["magnetic_field_strength"],
                "run_id": run_id,
            }
        )
    return pd.DataFrame(rows).drop_duplicates("scanner_batch")
