"""NIfTI masks onto image grids, whatever axis order and flips the converter chose."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from distributed import Client

from radgen.demo import write_ct_series
from radgen.ingestion.ingest_dicom import ingest_dicom
from radgen.ingestion.masks import ingest_masks
from radgen.platform.catalog import Catalog

SPACING = (2.0, 0.7, 0.9)
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    with Client(processes=False, n_workers=1, threads_per_worker=1, dashboard_address=":0") as c:
        yield c


@pytest.fixture
def series(tmp_path: Path, client: Client) -> tuple[Catalog, str, np.ndarray, np.ndarray]:
    catalog = Catalog.init(str(tmp_path / "cat"))
    vol = np.zeros((5, 6, 7))
    uid, _, affine = write_ct_series(tmp_path / "img", vol, spacing=SPACING)
    with catalog.run("ingest dicom", {}) as run:
        ingest_dicom(run, [tmp_path / "img"], client)
    mask = np.zeros((5, 6, 7), dtype=np.uint8)  # (z, y, x)
    mask[1:4, 2:5, 1:3] = 1
    mask[4, 0, 6] = 2
    return catalog, uid, mask, affine


def _save(path: Path, xyz: np.ndarray, ras: np.ndarray) -> Path:
    nib.save(nib.Nifti1Image(xyz.astype(np.uint8), ras), str(path))
    return path


def test_mask_in_converter_orientation_lands_on_the_image_grid(series, tmp_path: Path) -> None:
    catalog, uid, mask, affine = series
    # the usual (x, y, z) NIfTI layout with a RAS affine
    path = _save(tmp_path / "m.nii.gz", np.transpose(mask, (2, 1, 0)), LPS_TO_RAS @ affine)
    with catalog.run("ingest masks", {}) as run:
        report = ingest_masks(run, [path], series_uid=uid)
    rois = {r["roi_id"].split(":")[1]: r for r in report.rois}
    assert rois["1"]["n_voxels"] == 18
    assert rois["2"]["n_voxels"] == 1
    assert rois["1"]["volume_ml"] == pytest.approx(18 * 2.0 * 0.7 * 0.9 / 1000)
    mask_id = report.rois[0]["roi_id"].split(":")[0]
    np.testing.assert_array_equal(catalog.mask(mask_id).values, mask)
    row = catalog.sql("select bbox, n_components from rois where label = 1").iloc[0]
    assert list(row["bbox"]) == [1, 4, 2, 5, 1, 3]
    assert row["n_components"] == 1


def test_flipped_and_permuted_nifti_is_matched_by_geometry_alone(series, tmp_path: Path) -> None:
    catalog, _, mask, affine = series
    # store voxels as (y, x, z) with the y axis reversed, and an affine that says so
    data = np.transpose(mask, (1, 2, 0))[::-1]
    ny = mask.shape[1]
    index_map = np.zeros((4, 4))
    index_map[0, 1] = 1  # image x <- file axis 1
    index_map[1, 0] = -1  # image y <- (ny - 1) - file axis 0
    index_map[1, 3] = ny - 1
    index_map[2, 2] = 1  # image z <- file axis 2
    index_map[3, 3] = 1
    path = _save(tmp_path / "odd.nii.gz", data, LPS_TO_RAS @ affine @ index_map)
    with catalog.run("ingest masks", {}) as run:
        report = ingest_masks(run, [path])  # no --series: matched by grid
    mask_id = report.rois[0]["roi_id"].split(":")[0]
    np.testing.assert_array_equal(catalog.mask(mask_id).values, mask)


def test_wrong_grid_and_empty_masks_are_quarantined(series, tmp_path: Path) -> None:
    catalog, uid, mask, affine = series
    shifted = affine.copy()
    shifted[:3, 3] += [0.35, 0.0, 0.0]  # half a voxel off
    off = _save(tmp_path / "off.nii.gz", np.transpose(mask, (2, 1, 0)), LPS_TO_RAS @ shifted)
    empty = _save(tmp_path / "empty.nii.gz", np.zeros((7, 6, 5)), LPS_TO_RAS @ affine)
    good = _save(tmp_path / "good.nii.gz", np.transpose(mask, (2, 1, 0)), LPS_TO_RAS @ affine)
    with catalog.run("ingest masks", {}) as run:
        report = ingest_masks(run, [off, empty, good], series_uid=uid)
    reasons = {Path(q.path).name: q.reason for q in report.quarantined}
    assert "not on the voxel grid" in reasons["off.nii.gz"]
    assert "empty ROI" in reasons["empty.nii.gz"]
    assert len(report.rois) == 2
    assert set(catalog.sql("select path from quarantine")["path"].map(lambda p: Path(p).name)) == {
        "off.nii.gz",
        "empty.nii.gz",
    }
