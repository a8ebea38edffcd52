"""Segmentation masks (NIfTI) -> label volumes on the grid of an ingested image.

A NIfTI mask is accepted when its voxel grid is the image's grid up to axis order and flips
(any orientation a converter may have written). Its affine (RAS) is compared with the
image's geometry (LPS) and the voxels are permuted into the image's ``(z, y, x)`` order.
Each nonzero label becomes one ROI in the ``rois`` table.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import numpy.typing as npt
import pandas as pd
from nibabel.filebasedimages import ImageFileError
from scipy import ndimage

from radgen.errors import InputError
from radgen.ingestion.dicom import Quarantined, find_files
from radgen.ingestion.ingest_dicom import quarantine_rows
from radgen.platform import tables
from radgen.platform.runs import LineageInput, Run
from radgen.platform.storage import file_sha256
from radgen.platform.volumes import affine_lps, write_volume

__all__ = ["MaskReport", "grid_transform", "ingest_masks", "to_image_grid"]

log = logging.getLogger(__name__)

_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
_GRID_TOLERANCE = 1e-3


@dataclass
class MaskReport:
    """What one mask ingest did; ``to_json()`` is the CLI's ``--json`` output."""

    rois: list[dict[str, Any]] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    quarantined: list[Quarantined] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` document."""
        return {
            "rois": self.rois,
            "unchanged": self.unchanged,
            "quarantined": [{"path": q.path, "reason": q.reason} for q in self.quarantined],
        }


def grid_transform(
    mask_affine: npt.NDArray[np.float64], image_attrs: dict[str, Any]
) -> npt.NDArray[np.float64] | None:
    """Matrix mapping mask voxel indices to image indices ``(x, y, z)``, if the grids agree.

    Parameters
    ----------
    mask_affine : ndarray of shape (4, 4)
        NIfTI affine (voxel -> RAS mm).
    image_attrs : dict
        ``spacing``, ``origin`` and ``direction`` of the image (see :mod:`radgen.platform.volumes`).

    Returns
    -------
    ndarray of shape (4, 4) or None
        An integer signed-permutation transform, or None when the mask is not on the grid.
    """
    image_ras = _LPS_TO_RAS @ affine_lps(image_attrs)
    m = np.linalg.inv(image_ras) @ np.asarray(mask_affine, dtype=float)
    rounded: npt.NDArray[np.float64] = np.round(m)
    if np.max(np.abs(m - rounded)) > _GRID_TOLERANCE:
        return None
    rot = rounded[:3, :3]
    if not (np.all(np.abs(rot).sum(axis=0) == 1) and np.all(np.abs(rot).sum(axis=1) == 1)):
        return None
    return rounded


def to_image_grid(
    data: npt.NDArray[Any], transform: npt.NDArray[np.float64], image_shape: Sequence[int]
) -> npt.NDArray[Any] | None:
    """Resample-free move of NIfTI voxels ``[i, j, k]`` onto the image array ``[z, y, x]``.

    Returns None when the moved mask does not cover the image exactly.
    """
    rot = transform[:3, :3].astype(int)
    shift = transform[:3, 3].astype(int)
    # Output axis a (x, y, z) takes input axis src[a], flipped when the sign is negative.
    src = [int(np.nonzero(rot[a])[0][0]) for a in range(3)]
    moved = np.transpose(data, src)
    for a in range(3):
        if rot[a, src[a]] < 0:
            moved = np.flip(moved, axis=a)
            start = shift[a] - (moved.shape[a] - 1)
        else:
            start = shift[a]
        if start != 0:
            return None
    zyx = np.transpose(moved, (2, 1, 0))
    if tuple(zyx.shape) != tuple(int(s) for s in image_shape):
        return None
    return np.ascontiguousarray(zyx)


def _load_nifti(path: str) -> tuple[npt.NDArray[Any], npt.NDArray[np.float64]]:
    try:
        img = nib.load(path)
        data = np.asanyarray(img.dataobj)
    except (ImageFileError, OSError, EOFError, ValueError) as err:
        raise InputError(path, f"not a readable NIfTI mask: {err}") from err
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise InputError(path, f"mask must be 3-D, got shape {data.shape}")
    if not np.all(np.isfinite(data)) or not np.all(np.equal(np.mod(data, 1), 0)):
        raise InputError(path, "mask values must be whole label numbers")
    return data.astype(np.int64), np.asarray(img.affine, dtype=float)


def _series_rows(run: Run) -> list[dict[str, Any]]:
    if not tables.table_exists(run.root, "series"):
        return []
    cols = ["series_uid", "subject_id", "shape", "spacing", "origin", "direction", "zarr_path"]
    frame = tables.read_table(run.root, "series", columns=cols).to_pandas()
    rows = []
    for rec in frame.to_dict("records"):
        rec["direction"] = np.asarray(rec["direction"], dtype=float).reshape(3, 3).tolist()
        rows.append(rec)
    return rows


def _place(
    path: str,
    data: npt.NDArray[Any],
    affine: npt.NDArray[np.float64],
    candidates: list[dict[str, Any]],
    series_uid: str | None,
) -> tuple[dict[str, Any], npt.NDArray[Any]]:
    if series_uid is not None:
        chosen = [c for c in candidates if c["series_uid"] == series_uid]
        if not chosen:
            raise InputError(path, f"series {series_uid} is not in the catalog")
        candidates = chosen
    placed = []
    for cand in candidates:
        transform = grid_transform(affine, cand)
        if transform is None:
            continue
        moved = to_image_grid(data, transform, cand["shape"])
        if moved is not None:
            placed.append((cand, moved))
    if len(placed) == 1:
        return placed[0]
    if series_uid is not None:
        raise InputError(
            path, f"not on the voxel grid of series {series_uid} (affine or shape differ)"
        )
    if not placed:
        raise InputError(
            path, "no ingested series has this voxel grid; ingest the image or pass --series"
        )
    raise InputError(path, f"matches the grid of {len(placed)} series; pass --series")


def _roi_rows(
    mask_id: str, labels: npt.NDArray[Any], series: dict[str, Any], path: str, sha: str, run_id: str
) -> list[dict[str, Any]]:
    spacing = np.asarray(series["spacing"], dtype=float)
    voxel_mm3 = float(np.prod(spacing))
    rows = []
    objects = ndimage.find_objects(labels)
    structure = np.ones((3, 3, 3), dtype=bool)
    for label, box in enumerate(objects, start=1):
        if box is None:
            continue
        roi = labels[box] == label
        n = int(roi.sum())
        _, n_components = ndimage.label(roi, structure=structure)
        rows.append(
            {
                "roi_id": f"{mask_id}:{label}",
                "mask_id": mask_id,
                "series_uid": series["series_uid"],
                "subject_id": series["subject_id"],
                "label": label,
                "name": f"label {label}",
                "n_voxels": n,
                "volume_ml": n * voxel_mm3 / 1000.0,
                "n_components": int(n_components),
                "bbox": [v for s in box for v in (int(s.start), int(s.stop))],
                "mask_path": f"masks/{mask_id}.zarr",
                "source_path": path,
                "file_sha256": sha,
                "run_id": run_id,
            }
        )
    return rows


def ingest_masks(
    run: Run, paths: Sequence[str | Path], *, series_uid: str | None = None
) -> MaskReport:
    """Ingest NIfTI masks onto the grids of ingested series.

    Parameters
    ----------
    run : Run
        The open run.
    paths : sequence of path-like
        NIfTI files or folders of them.
    series_uid : str, optional
        Image the masks belong to; when omitted each mask is matched to the one ingested
        series with its exact voxel grid.

    Returns
    -------
    MaskReport

    Raises
    ------
    InputError
        Nothing could be ingested (the message names the first reasons).
    """
    files = [f for f in find_files(paths) if f.endswith((".nii", ".nii.gz"))]
    if not files:
        raise InputError(", ".join(str(p) for p in paths), "no NIfTI files (.nii, .nii.gz) found")
    candidates = _series_rows(run)
    known = set()
    if tables.table_exists(run.root, "rois"):
        known = set(
            tables.read_table(run.root, "rois", columns=["mask_id"]).column("mask_id").to_pylist()
        )
    report = MaskReport()
    rows: list[dict[str, Any]] = []
    lineage: list[LineageInput] = []
    for path in files:
        sha = file_sha256(path)
        try:
            data, affine = _load_nifti(path)
            series, labels = _place(path, data, affine, candidates, series_uid)
            if not np.any(labels):
                raise InputError(path, "empty ROI: the mask has no nonzero voxel")
            if labels.min() < 0 or labels.max() > 65535:
                raise InputError(path, "labels must lie in 1..65535")
        except InputError as err:
            report.quarantined.append(Quarantined(path, err.reason, series_uid, sha))
            continue
        # identity: the file's content on the image it lies on; the same mask twice is one mask
        mask_id = f"m-{hashlib.sha256((series['series_uid'] + sha).encode()).hexdigest()[:16]}"
        if mask_id in known:
            report.unchanged.append(path)
            continue
        known.add(mask_id)
        dtype = np.uint8 if labels.max() < 256 else np.uint16
        attrs = {
            "series_uid": series["series_uid"],
            "spacing": list(series["spacing"]),
            "origin": list(series["origin"]),
            "direction": series["direction"],
            "source_path": path,
            "file_sha256": sha,
            "run_id": run.run_id,
        }
        write_volume(
            run.root, f"masks/{mask_id}.zarr", labels.astype(dtype), name="mask", attrs=attrs
        )
        new = _roi_rows(mask_id, labels, series, path, sha, run.run_id)
        rows.extend(new)
        report.rois.extend(
            {k: r[k] for k in ("roi_id", "series_uid", "n_voxels", "volume_ml")} for r in new
        )
        lineage += [LineageInput("file", path, sha), LineageInput("series", series["series_uid"])]
    if report.quarantined:
        run.commit(
            "quarantine",
            quarantine_rows(report.quarantined, kind="mask", run_id=run.run_id),
            suite="quarantine",
        )
    if not rows:
        if report.unchanged:
            run.message = f"{len(report.unchanged)} masks already in the catalog, unchanged"
            return report
        reasons = "; ".join(f"{q.path}: {q.reason}" for q in report.quarantined[:3])
        raise InputError(", ".join(str(p) for p in paths), f"no mask ingested ({reasons})")
    run.commit("rois", pd.DataFrame(rows), suite="masks", lineage=lineage)
    run.message = f"{len(rows)} ROIs from {len(files) - len(report.quarantined) - len(report.unchanged)} masks"
    return report
