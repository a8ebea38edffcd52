"""Features of every ROI in the catalog, computed on the Dask cluster.

One task per ROI reads only the ROI's bounding box of the image and mask from Zarr, grown by
the margin its filters need (:func:`radgen.features.extract.roi_region`), so memory stays
bounded by the largest ROI, never the cohort. The coordinator joins the results
with the scanner metadata of each series and commits one version of ``features_<name>``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd
from distributed import Client, as_completed

from radgen.errors import ConfigError, InputError, NotFoundError, RadgenError
from radgen.features.extract import expected_columns, extract, feature_columns, roi_region
from radgen.features.settings import Settings
from radgen.platform import tables
from radgen.platform.runs import LineageInput, Run, param_hash
from radgen.platform.storage import Root
from radgen.platform.volumes import read_region, volume_shape
from radgen.schemas.tables import FEATURE_TABLE_BASE, SCANNER_COLUMNS

__all__ = [
    "CHUNKED_MIN_VOXELS",
    "FeatureReport",
    "chunked_min_voxels",
    "compute_features",
    "roi_features",
]

log = logging.getLogger(__name__)

#: Regions of at least this many voxels go through the chunked path (ibsi convention): below
#: it the in-memory path is as fast and its memory (about 60 B per region voxel) is small.
CHUNKED_MIN_VOXELS = 16_000_000


@dataclass
class FeatureReport:
    """What a feature computation committed."""

    table: str
    version: int | None
    n_rois: int
    n_features: int
    failed: list[dict[str, str]]
    unchanged: bool = False  # identical to the current version: nothing was committed
    n_chunked: int = 0  # ROIs computed slab by slab (radgen.features.chunked)

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` document."""
        return {
            "table": self.table,
            "version": self.version,
            "unchanged": self.unchanged,
            "rois": self.n_rois,
            "chunked_rois": self.n_chunked,
            "features": self.n_features,
            "failed": self.failed,
        }


def roi_features(
    root_url: str,
    roi: Mapping[str, Any],
    settings: Mapping[str, Any],
) -> dict[str, Any]:
    """Features of one ROI, reading only its bounding box (runs on a Dask worker).

    Parameters
    ----------
    root_url : str
        Catalog root.
    roi : mapping
        Row of ``rois`` joined with ``series`` (``zarr_path``, ``mask_path``, ``label``,
        ``bbox``, ``spacing``).
    settings : mapping
        Validated settings as a dict.

    Returns
    -------
    dict
        ``{"roi_id": ..., "features": {...}}`` or ``{"roi_id": ..., "error": reason}``.
    """
    root = Root.from_string(root_url)
    cfg = Settings.model_validate(settings)
    cfg = cfg.model_copy(
        update={"setting": cfg.setting.model_copy(update={"label": int(roi["label"])})}
    )
    try:
        spacing = [float(s) for s in roi["spacing"]]
        shape = volume_shape(root, roi["zarr_path"], name="image")
        region = roi_region(cfg, [int(b) for b in roi["bbox"]], shape, spacing)
        values = _chunked(root, roi, region, spacing, cfg)
        chunked = values is not None
        if values is None:
            image = read_region(root, roi["zarr_path"], name="image", bbox=region)
            mask = read_region(root, roi["mask_path"], name="mask", bbox=region)
            values = extract(image, mask, spacing, cfg)
    except RadgenError as err:
        return {"roi_id": roi["roi_id"], "error": f"{err.path}: {err.reason}"}
    return {"roi_id": roi["roi_id"], "features": feature_columns(values, cfg), "chunked": chunked}


def chunked_min_voxels() -> int:
    """Region size (voxels) from which a ROI goes through the chunked path.

    :data:`CHUNKED_MIN_VOXELS`, or the environment variable ``RADGEN_CHUNKED_MIN_VOXELS``.
    """
    raw = os.environ.get("RADGEN_CHUNKED_MIN_VOXELS")
    if raw is None:
        return CHUNKED_MIN_VOXELS
    try:
        return max(int(raw), 0)
    except ValueError as err:
        raise ConfigError("RADGEN_CHUNKED_MIN_VOXELS", f"expected an integer, got {raw!r}") from err


def _chunked(
    root: Root, roi: Mapping[str, Any], region: list[int], spacing: list[float], cfg: Settings
) -> dict[str, float] | None:
    """Features of a large region through :func:`radgen.features.chunked.extract_chunked`.

    Ibsi convention: z-slabs of the Zarr arrays, never the float region whole. None when the
    region is small or the settings need the in-memory path (e.g. resampling).
    """
    z0, z1, y0, y1, x0, x1 = region
    if cfg.convention != "ibsi" or (z1 - z0) * (y1 - y0) * (x1 - x0) < chunked_min_voxels():
        return None
    from radgen.features.chunked import extract_chunked, open_roi_arrays

    image, mask = open_roi_arrays(root, roi["zarr_path"], roi["mask_path"])
    box = (slice(z0, z1), slice(y0, y1), slice(x0, x1))
    try:
        # one slab in flight per worker: the cluster already runs ROIs in parallel
        return extract_chunked(image[box], mask[box], spacing, cfg, slab=32, scheduler="sync")
    except ConfigError as err:
        log.info("%s: in-memory path (%s)", roi["roi_id"], err.reason)
        return None


def _roi_frame(root: Root) -> pd.DataFrame:
    for name in ("rois", "series"):
        if not tables.table_exists(root, name) or tables.table_rows(root, name) == 0:
            raise NotFoundError(
                name, "no rows yet; ingest images and masks before computing features"
            )
    rois = tables.read_table(root, "rois").to_pandas()
    series_cols = [
        "series_uid",
        "zarr_path",
        "spacing",
        "scanner_batch",
        *[f.name for f in SCANNER_COLUMNS],
    ]
    present = set(tables.table_schema(root, "series").names)
    series = tables.read_table(
        root, "series", columns=[c for c in [*series_cols, "acquired_at"] if c in present]
    ).to_pandas()
    if "acquired_at" not in series:  # series ingested before acquisition times were kept
        series["acquired_at"] = pd.NaT
    return rois.merge(series, on="series_uid", how="inner", validate="many_to_one")


def compute_features(
    run: Run,
    client: Client,
    settings: Settings,
    *,
    name: str = "radiomics",
    where: str | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> FeatureReport:
    """Compute features for every ROI and commit them as a new version of ``features_<name>``.

    Parameters
    ----------
    run : Run
        The open run.
    client : distributed.Client
        Where the per-ROI tasks run.
    settings : Settings
        Extraction settings.
    name : str
        Feature set name; the table is ``features_<name>``.
    where : str, optional
        SQL condition on ``rois`` joined with ``series`` (``series.modality = 'CT' AND
        rois.volume_ml > 1``); only matching ROIs are computed.
    progress : callable, optional
        ``progress(stage, done, total)``.

    Returns
    -------
    FeatureReport

    Raises
    ------
    InputError
        No ROI could be computed.
    """
    table = f"features_{name}"
    rois = _roi_frame(run.root)
    if where:
        chosen = _where(run.root, where)
        rois = rois[rois["roi_id"].isin(chosen)]
        if rois.empty:
            raise NotFoundError("--where", f"no ROI matches: {where}")
    params = settings.as_params()
    records = rois[["roi_id", "zarr_path", "mask_path", "label", "bbox", "spacing"]].to_dict(
        "records"
    )
    futures = client.map(
        roi_features, [run.root.url] * len(records), records, [params] * len(records), pure=False
    )
    results = []
    for done, future in enumerate(as_completed(futures), start=1):
        results.append(future.result())
        if progress is not None:
            progress("rois", done, len(futures))
    failed = [{"roi_id": r["roi_id"], "reason": r["error"]} for r in results if "error" in r]
    good = {r["roi_id"]: r["features"] for r in results if "features" in r}
    if not good:
        raise InputError(
            table,
            "no ROI could be computed: "
            + "; ".join(f"{f['roi_id']}: {f['reason']}" for f in failed[:3]),
        )
    for f in failed:
        log.warning("%s: %s", f["roi_id"], f["reason"])
    base_cols = FEATURE_TABLE_BASE.names
    base = (
        rois[rois["roi_id"].isin(list(good))][base_cols]
        .sort_values("roi_id")
        .reset_index(drop=True)
    )
    feats = pd.DataFrame([good[r] for r in base["roi_id"]])
    frame = pd.concat([base, feats], axis=1)
    frame["feature_set_version"] = f"{run.code_version}:{param_hash(params)}"
    frame["run_id"] = run.run_id
    lineage = _lineage(run.root, base)
    version = run.commit(
        table,
        frame,
        suite="features",
        mode="overwrite",
        lineage=lineage,
        suite_context={"expected_columns": expected_columns(settings)},
    )
    unchanged = version is None  # identical to the current version: nothing was committed
    if version is None:
        version = tables.table_version(run.root, table)
    run.message = f"{table}: {len(frame)} ROIs x {feats.shape[1]} features" + (
        " (unchanged)" if unchanged else ""
    )
    n_chunked = sum(1 for r in results if r.get("chunked"))
    return FeatureReport(
        table, version, len(frame), int(feats.shape[1]), failed, unchanged, n_chunked
    )


def _where(root: Root, condition: str) -> set[str]:
    """ROI ids that satisfy a SQL condition over ``rois JOIN series``."""
    import duckdb

    from radgen.platform import index

    query = f"SELECT rois.roi_id FROM rois JOIN series USING (series_uid) WHERE {condition}"
    try:
        statements = duckdb.extract_statements(query)
    except duckdb.Error as err:
        raise InputError("--where", f"not valid SQL: {' '.join(str(err).split())}") from err
    if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
        raise InputError("--where", "expected one condition, e.g. series.modality = 'CT'")
    with index.connect(root, read_only=True) as con:
        try:
            rows = con.sql(query).fetchall()
        except duckdb.Error as err:
            raise InputError("--where", " ".join(str(err).split())) from err
    return {str(r[0]) for r in rows}


def _lineage(root: Root, base: pd.DataFrame) -> list[LineageInput]:
    uids = sorted(set(base["series_uid"]))
    inputs = [LineageInput("series", uid) for uid in uids]
    rois = tables.read_table(root, "rois", columns=["roi_id", "mask_id", "file_sha256"]).to_pandas()
    used = rois[rois["roi_id"].isin(set(base["roi_id"]))].drop_duplicates("mask_id")
    inputs += [
        LineageInput("mask", m, sha)
        for m, sha in zip(used["mask_id"], used["file_sha256"], strict=True)
    ]
    inst = tables.read_table(
        root, "instances", columns=["sop_uid", "series_uid", "file_sha256"]
    ).to_pandas()
    inst = inst[inst["series_uid"].isin(uids)]
    inputs += [
        LineageInput("sop_instance", u, s)
        for u, s in zip(inst["sop_uid"], inst["file_sha256"], strict=True)
    ]
    for name in ("series", "rois", "instances"):
        inputs.append(LineageInput("table", f"{name}@{tables.table_version(root, name)}"))
    return inputs
