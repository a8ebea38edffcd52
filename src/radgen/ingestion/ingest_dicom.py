"""Coordinator of ``radgen ingest dicom``: fan out to Dask workers, then one commit.

Workers read headers in batches and assemble one series each, writing its Zarr volume under
a temporary name. The coordinator then validates and commits the rows in an order that makes
a rerun after a crash finish the job: ``instances``, ``scanner_batches``, ``quarantine``, and
``series`` last (a series row is the marker that its volume and instances are complete).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from distributed import Client, as_completed

from radgen.errors import InputError, ValidationFailed
from radgen.ingestion import dicom
from radgen.ingestion.deid import Deidentifier
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
from radgen.platform.config import load_config
from radgen.platform.runs import LineageInput, Run
from radgen.platform.storage import Root

__all__ = ["IngestReport", "ProgressFn", "ingest_dicom", "quarantine_rows"]

log = logging.getLogger(__name__)

#: Quarantine reason of a localizer (scout) image.
LOCALIZER_REASON = "localizer (scout) image: not part of a volume"

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
    deidentify: bool = True,
    batch_fields: Sequence[str] | None = None,
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
    deidentify : bool, default True
        Apply :mod:`radgen.ingestion.deid` (pseudonymous subject ids, keyed UIDs, shifted
        dates, identifying values removed from paths and descriptions); the run's recorded
        parameters are redacted the same way.
    batch_fields : sequence of str, optional
        Fields that define a scanner batch; default ``scanner_batch_fields`` of the catalog
        config, else :data:`radgen.ingestion.dicom.BATCH_FIELDS`.
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
    ValidationFailed
        A suite refused the series (named after the input paths, then the suite's table);
        nothing is committed and no volume is left behind.
    """
    root = run.root
    fields = dicom.batch_fields(
        batch_fields if batch_fields is not None else load_config(root).get("scanner_batch_fields")
    )
    deid = Deidentifier.for_root(root) if deidentify else None
    files = find_files(paths)
    if not files:
        raise InputError(", ".join(str(p) for p in paths), "no files found")
    log.info("reading %d file headers", len(files))
    # a few batches per worker, so a single series' headers are read on every core
    n_workers = max(1, len(client.scheduler_info().get("workers", {})))
    size = max(8, min(_HEADER_BATCH, -(-len(files) // (2 * n_workers))))
    batches = [files[i : i + size] for i in range(0, len(files), size)]
    header_futures = client.map(read_headers, batches, pure=False)
    read = [
        item for batch in _gather(client, header_futures, "headers", progress) for item in batch
    ]
    headers = [h for h in read if isinstance(h, DicomHeader) and not h.localizer]
    report = IngestReport(quarantined=[q for q in read if isinstance(q, Quarantined)])
    report.quarantined += [
        Quarantined(h.path, LOCALIZER_REASON, h.series_uid, h.sha256)
        for h in read
        if isinstance(h, DicomHeader) and h.localizer
    ]
    phi = sorted({v for h in read if isinstance(h, DicomHeader) for v in h.phi})

    def catalog_uid(uid: str) -> str:
        return uid if deid is None else deid.uid(uid)

    existing = _existing_series(root)
    todo: list[list[DicomHeader]] = []
    for uid, group in group_by_series(headers).items():
        known = existing.get(catalog_uid(uid))
        if known is None:
            todo.append(group)
        elif known == _content_hash(group):
            report.unchanged.append(catalog_uid(uid))
        else:
            report.quarantined.append(
                Quarantined(
                    str(Path(group[0].path).parent),
                    "series already in the catalog with different content; not replaced",
                    uid,
                )
            )

    series_futures = client.map(
        assemble_series,
        todo,
        root_url=root.url,
        run_id=run.run_id,
        deid=deid,
        batch_fields=fields,
        pure=False,
    )
    results: list[SeriesResult] = _gather(client, series_futures, "series", progress)
    done = [r for r in results if r.series_row is not None]
    if deid is not None:  # file-level entries and the recorded parameters carry no PHI
        report.quarantined = [_redacted(q, deid, phi) for q in report.quarantined]
        run.params = json.loads(deid.redact(json.dumps(dict(run.params)), phi))
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
            ", ".join(str(p) for p in run.params.get("paths", paths)),
            f"nothing ingested; {len(report.quarantined)} quarantined ({reasons})",
        )

    try:
        _commit_series(run, done, fields, report)
    except BaseException as err:  # refused: no volume is left without its series row
        committed = _existing_series(root)  # never remove a volume whose row did land
        for row in (r.series_row for r in done if r.series_row is not None):
            if row["series_uid"] not in committed:
                with contextlib.suppress(OSError):
                    root.remove(row["zarr_path"])
        if isinstance(err, ValidationFailed):  # one line naming the input, then the suite
            where = ", ".join(str(p) for p in run.params.get("paths", paths))
            raise ValidationFailed(where, f"{err.path}: {err.reason}") from err
        raise
    run.message = f"{len(done)} series ingested, {len(report.quarantined)} quarantined"
    return report


def _commit_series(
    run: Run, done: Sequence[SeriesResult], fields: Sequence[str], report: IngestReport
) -> None:
    """Validate the assembled series and commit their rows (series last)."""
    stats = pd.DataFrame([r.image_stats for r in done])
    run.validate("images", stats, target="images")
    series = pd.DataFrame([r.series_row for r in done])
    instances = pd.DataFrame([row for r in done for row in r.instance_rows])
    sop_inputs = [
        LineageInput("sop_instance", row["sop_uid"], row["file_sha256"])
        for r in done
        for row in r.instance_rows
        if row["frame_number"] == 1
    ]
    run.commit("instances", instances, suite="dicom")
    run.commit("scanner_batches", _batch_rows(series, fields, run.run_id), suite="dicom")
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


def _batch_rows(series: pd.DataFrame, fields: Sequence[str], run_id: str) -> pd.DataFrame:
    rows = []
    for record in series.to_dict("records"):
        batch, label = scanner_batch(record, fields)
        rows.append(
            {
                "scanner_batch": batch,
                "label": label,
                "defined_by": ",".join(fields),
                **{k: record.get(k) for k in dicom.BATCH_FIELDS},  # the table's scanner columns
                "run_id": run_id,
            }
        )
    return pd.DataFrame(rows).drop_duplicates("scanner_batch")


def _redacted(item: Quarantined, deid: Deidentifier, phi: Sequence[str]) -> Quarantined:
    return Quarantined(
        deid.redact(item.path, phi),
        deid.redact(item.reason, phi),
        None if item.series_uid is None else deid.uid(item.series_uid),
        item.file_sha256,
    )
