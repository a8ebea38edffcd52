"""Segmentation masks (NIfTI, DICOM SEG, RTSTRUCT) -> volumes on the grid of an ingested image.

A NIfTI mask is accepted when its voxel grid is the image's grid up to axis order and flips
(any orientation a converter may have written). Its affine (RAS) is compared with the
image's geometry (LPS) and the voxels are permuted into the image's ``(z, y, x)`` order.
Each nonzero label becomes one ROI in the ``rois`` table.

Any other file is read as DICOM: a SEG or an RTSTRUCT (see :mod:`radgen.ingestion.masks_dicom`)
lies on the series it references (``--series`` overrides), which must be in the catalog.
Each segment or ROI becomes its own mask (label 1, named by SegmentLabel or ROIName), since
structures may overlap. A mask's id derives from the series, the file's SHA-256 and the
segment / ROI number, so ingesting the same file again adds nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator, Mapping, Sequence
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
from radgen.ingestion.deid import Deidentifier
from radgen.ingestion.dicom import Quarantined, find_files
from radgen.ingestion.ingest_dicom import quarantine_rows
from radgen.ingestion.masks_dicom import (
    ImageGrid,
    MaskPart,
    mask_parts,
    read_mask_dataset,
    referenced_instances,
    referenced_series,
)
from radgen.platform import tables
from radgen.platform.runs import LineageInput, Run
from radgen.platform.storage import Root, file_sha256
from radgen.platform.volumes import affine_lps, open_volume, write_volume

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

    Returns a view of `data` (no copy: a label volume of a large series is large), or None
    when the moved mask does not cover the image exactly.
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
    return zyx


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
    # Label volumes are large (1 byte per voxel of a 1 GB series is 0.5 GB): no full-size
    # temporaries, and the narrowest type that holds the labels.
    if data.dtype.kind == "f":
        if not (np.isfinite(data).all() and (np.mod(data, 1) == 0).all()):
            raise InputError(path, "mask values must be whole label numbers")
    elif data.dtype.kind not in "iub":
        raise InputError(path, f"mask values must be label numbers, not {data.dtype}")
    lo, hi = (int(data.min()), int(data.max())) if data.size else (0, 0)
    if lo < 0 or hi > 65535:
        raise InputError(path, f"labels must lie in 1..65535 (found {lo}..{hi})")
    narrow = np.uint8 if hi < 256 else np.uint16
    return data.astype(narrow, copy=False), np.asarray(img.affine, dtype=float)


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
    mask_id: str,
    labels: npt.NDArray[Any],
    series: dict[str, Any],
    path: str,
    sha: str,
    run_id: str,
    names: Mapping[int, str] | None = None,
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
                "name": (names or {}).get(label, f"label {label}"),
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


def _mask_id(series_uid: str, sha: str, number: int | None) -> str:
    """Identity of a mask: the file's content on the image it lies on (plus the segment/ROI)."""
    key = series_uid + sha if number is None else f"{series_uid}{sha}:{number}"
    return f"m-{hashlib.sha256(key.encode()).hexdigest()[:16]}"


def _nifti_parts(
    path: str, candidates: list[dict[str, Any]], series_uid: str | None
) -> tuple[dict[str, Any], Iterator[MaskPart]]:
    data, affine = _load_nifti(path)
    series, labels = _place(path, data, affine, candidates, series_uid)
    if not np.any(labels):
        raise InputError(path, "empty ROI: the mask has no nonzero voxel")
    return series, iter([MaskPart(labels)])


def _series_of_instances(root: Root, deid: Deidentifier, sop_uids: Sequence[str]) -> list[str]:
    if not sop_uids or not tables.table_exists(root, "instances"):
        return []
    frame = tables.read_table(root, "instances", columns=["sop_uid", "series_uid"]).to_pandas()
    wanted = set(sop_uids) | {deid.uid(u) for u in sop_uids}
    return list(dict.fromkeys(frame.loc[frame["sop_uid"].isin(wanted), "series_uid"]))


def _resolve_series(
    path: str, ds: Any, root: Root, deid: Deidentifier, by_uid: Mapping[str, Any]
) -> str:
    """Catalog UID of the series a SEG / RTSTRUCT references.

    The file names the original UIDs; a de-identified catalog stores their keyed
    replacements (:meth:`Deidentifier.uid`), so both are looked up.
    """
    named = referenced_series(ds)
    if named:
        found = [u if u in by_uid else deid.uid(u) for u in named]
    else:  # no series named: the series of the instances the frames / contours derive from
        found = _series_of_instances(root, deid, referenced_instances(ds))
        if not found:
            raise InputError(path, f"{ds.Modality} references no series; pass --series")
    known = list(dict.fromkeys(u for u in found if u in by_uid))
    if not known:
        raise InputError(
            path,
            f"references series {', '.join(named or found)}, which is not in the catalog; "
            "ingest the image first",
        )
    if len(known) > 1:
        raise InputError(path, f"references {len(known)} series of the catalog; pass --series")
    return known[0]


def _image_grid(
    root: Root, deid: Deidentifier, series: dict[str, Any], sources: Sequence[str]
) -> ImageGrid:
    """The grid of `series`, its slices keyed by the SOP UIDs the mask file uses."""
    attrs = open_volume(root, series["zarr_path"], name="image").attrs
    stored = [str(u) for u in attrs.get("sop_instance_uids", [])]
    frames = [int(f) for f in attrs.get("frame_numbers", [1] * len(stored))]
    slices = {(sop, frame): k for k, (sop, frame) in enumerate(zip(stored, frames, strict=True))}
    by_sop: dict[str, list[tuple[int, int]]] = {}
    for (sop, frame), k in slices.items():
        by_sop.setdefault(sop, []).append((frame, k))
    for original in sources:
        for frame, k in by_sop.get(deid.uid(original), []):
            slices[(original, frame)] = k
    shape, spacing = series["shape"], series["spacing"]
    return ImageGrid(
        series_uid=series["series_uid"],
        shape=(int(shape[0]), int(shape[1]), int(shape[2])),
        spacing=(float(spacing[0]), float(spacing[1]), float(spacing[2])),
        affine=affine_lps(series),
        slices=slices,
    )


def _dicom_parts(
    path: str,
    root: Root,
    deid: Deidentifier,
    candidates: list[dict[str, Any]],
    series_uid: str | None,
) -> tuple[dict[str, Any], Iterator[MaskPart]]:
    ds = read_mask_dataset(path)
    by_uid = {c["series_uid"]: c for c in candidates}
    if series_uid is not None and series_uid not in by_uid:
        raise InputError(path, f"series {series_uid} is not in the catalog")
    series = by_uid[series_uid or _resolve_series(path, ds, root, deid, by_uid)]
    grid = _image_grid(root, deid, series, referenced_instances(ds))
    return series, mask_parts(ds, grid)


def _store(
    run: Run, mask_id: str, part: MaskPart, series: dict[str, Any], path: str, sha: str
) -> list[dict[str, Any]]:
    """Write one mask volume; its ``rois`` rows."""
    labels = part.labels
    assert labels is not None
    dtype = np.uint8 if labels.max() < 256 else np.uint16
    attrs: dict[str, Any] = {
        "series_uid": series["series_uid"],
        "spacing": list(series["spacing"]),
        "origin": list(series["origin"]),
        "direction": series["direction"],
        "source_path": path,
        "file_sha256": sha,
        "run_id": run.run_id,
    }
    if part.number is not None:
        attrs.update(number=part.number, name=part.name)
    write_volume(
        run.root,
        f"masks/{mask_id}.zarr",
        labels.astype(dtype, copy=False),
        name="mask",
        attrs=attrs,
    )
    names = {} if part.name is None else {1: part.name}
    return _roi_rows(mask_id, labels, series, path, sha, run.run_id, names)


def _file_masks(
    run: Run,
    source: str,
    path: str,
    sha: str,
    deid: Deidentifier,
    candidates: list[dict[str, Any]],
    series_uid: str | None,
    known: set[str],
) -> tuple[dict[str, Any], list[dict[str, Any]], int, list[str]]:
    """Read one mask file (`source`) and write its masks not in `known`, recorded as `path`.

    Returns the series, the new ``rois`` rows, how many masks were already known and the
    problems of single segments / ROIs. Raises InputError when the whole file is unusable
    (volumes it wrote before the error are orphans that no row names; a rerun replaces them).
    """
    if source.endswith((".nii", ".nii.gz")):
        series, parts = _nifti_parts(source, candidates, series_uid)
    else:
        series, parts = _dicom_parts(source, run.root, deid, candidates, series_uid)
    rows: list[dict[str, Any]] = []
    problems: list[str] = []
    n_known = 0
    for part in parts:
        if part.problem is not None:
            problems.append(part.problem)
            continue
        mask_id = _mask_id(series["series_uid"], sha, part.number)
        if mask_id in known:
            n_known += 1
            continue
        rows += _store(run, mask_id, part, series, path, sha)
    return series, rows, n_known, problems


def ingest_masks(
    run: Run, paths: Sequence[str | Path], *, series_uid: str | None = None
) -> MaskReport:
    """Ingest NIfTI, DICOM SEG and RTSTRUCT masks onto the grids of ingested series.

    Parameters
    ----------
    run : Run
        The open run.
    paths : sequence of path-like
        Mask files or folders of them. ``.nii`` / ``.nii.gz`` files are NIfTI; any other
        file is read as DICOM (Modality SEG or RTSTRUCT; other files are quarantined).
    series_uid : str, optional
        Image the masks belong to. When omitted, a NIfTI mask is matched to the one
        ingested series with its exact voxel grid, and a DICOM mask lies on the series it
        references.

    Returns
    -------
    MaskReport

    Raises
    ------
    InputError
        Nothing could be ingested (the message names the first reasons).
    """
    files = find_files(paths)
    if not files:
        raise InputError(", ".join(str(p) for p in paths), "no files found")
    candidates = _series_rows(run)
    deid = Deidentifier.for_root(run.root)
    if series_uid is not None:  # the catalog's UID, or the original one of a de-identified series
        keyed = deid.uid(series_uid)
        if keyed in {c["series_uid"] for c in candidates}:
            series_uid = keyed
    known = set()
    if tables.table_exists(run.root, "rois"):
        known = set(
            tables.read_table(run.root, "rois", columns=["mask_id"]).column("mask_id").to_pylist()
        )
    # Paths often name the patient (PACS exports, "<patient>_tumour.nii.gz"): what is stored
    # carries the subject's pseudonym instead, like the image's own rows.
    subjects = {c["subject_id"] for c in candidates if c["subject_id"]}
    run.params = json.loads(deid.redact_ids(json.dumps(dict(run.params)), subjects))
    report = MaskReport()
    rows: list[dict[str, Any]] = []
    lineage: list[LineageInput] = []
    n_files = 0
    for source in files:
        sha = file_sha256(source)
        path = deid.redact_ids(source, subjects)
        try:
            series, new, n_known, problems = _file_masks(
                run, source, path, sha, deid, candidates, series_uid, known
            )
        except InputError as err:
            reason = deid.redact_ids(err.reason, subjects)
            report.quarantined.append(Quarantined(path, reason, series_uid, sha))
            continue
        known.update(r["mask_id"] for r in new)
        if problems:
            reason = "; ".join(problems)
            report.quarantined.append(Quarantined(path, reason, series["series_uid"], sha))
        if new:
            n_files += 1
            rows += new
            report.rois.extend(
                {k: r[k] for k in ("roi_id", "series_uid", "name", "n_voxels", "volume_ml")}
                for r in new
            )
            lineage += [
                LineageInput("file", path, sha),
                LineageInput("series", series["series_uid"]),
            ]
        elif n_known:
            report.unchanged.append(path)
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
    run.message = f"{len(rows)} ROIs from {n_files} files, {len(report.quarantined)} quarantined"
    return report
