"""DICOM series assembly: geometry sorting, rescale, quarantine reasons.

The expected volume is the array the series was written from (radgen.demo.write_ct_series
stores round((value - intercept) / slope), so the expected values are recomputed from the
written slopes and intercepts); pydicom is the independent reader in the cross-check.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from distributed import Client

from radgen.cli import main
from radgen.demo import SCANNERS, write_ct_series
from radgen.ingestion.deid import Deidentifier
from radgen.ingestion.dicom import DicomHeader, assemble_series, read_headers
from radgen.ingestion.ingest_dicom import ingest_dicom
from radgen.platform.catalog import Catalog

SPACING = (2.5, 0.8, 0.8)


def _volume(seed: int = 0, shape: tuple[int, int, int] = (6, 10, 12)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(-1000, 2000, shape).astype(float)


def _ingest(catalog: Catalog, client: Client, *paths: Path) -> dict[str, object]:
    with catalog.run("ingest dicom", {"paths": [str(p) for p in paths]}) as run:
        return ingest_dicom(run, list(paths), client).to_json()


def test_volume_matches_the_written_array_whatever_the_file_order(
    catalog: Catalog, client: Client, tmp_path: Path
) -> None:
    truth = _volume()
    uid, paths, _ = write_ct_series(tmp_path / "in", truth, spacing=SPACING)
    report = _ingest(catalog, client, tmp_path / "in")
    assert report["series"][0]["shape"] == [6, 10, 12]  # type: ignore[index]
    image = catalog.image(uid)
    np.testing.assert_array_equal(image.values, truth)
    assert image.attrs["spacing"] == pytest.approx(list(SPACING))
    assert image.dims == ("z", "y", "x")
    # coordinates in mm: z increases with the slice index by the slice spacing
    np.testing.assert_allclose(np.diff(image["z"].values), SPACING[0])
    # cross-check with pydicom: slice k of the volume is the file written k-th
    ds = pydicom.dcmread(paths[3])
    np.testing.assert_array_equal(
        image.values[3], ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    )
    sops = catalog.sql(
        f"select sop_uid from instances where series_uid = '{catalog.series_uid(uid)}' "
        "order by slice_index"
    )
    deid = Deidentifier.for_root(catalog.root)  # de-identified by default: keyed UIDs
    assert sops["sop_uid"].tolist() == [deid.uid(pydicom.dcmread(p).SOPInstanceUID) for p in paths]


def test_oblique_series_is_sorted_along_its_normal(
    catalog: Catalog, client: Client, tmp_path: Path
) -> None:
    angle = np.deg2rad(25)
    orientation = (1.0, 0.0, 0.0, 0.0, float(np.cos(angle)), float(np.sin(angle)))
    truth = _volume(1)
    uid, _, _ = write_ct_series(tmp_path / "obl", truth, spacing=SPACING, orientation=orientation)
    _ingest(catalog, client, tmp_path / "obl")
    image = catalog.image(uid)
    np.testing.assert_array_equal(image.values, truth)
    normal = np.cross(orientation[:3], orientation[3:])
    np.testing.assert_allclose(np.asarray(image.attrs["direction"])[:, 2], normal, atol=1e-9)
    assert image.attrs["spacing"][0] == pytest.approx(SPACING[0])


def test_per_slice_rescale_is_applied_slice_by_slice(
    catalog: Catalog, client: Client, tmp_path: Path
) -> None:
    truth = _volume(2)
    slopes = np.array([1.0, 0.5, 2.0, 1.0, 0.25, 1.5])
    intercepts = np.array([-1024.0, -1000.0, -1100.0, -1024.0, -1001.5, -1050.0])
    uid, _, _ = write_ct_series(
        tmp_path / "pet", truth, spacing=SPACING, slopes=slopes, intercepts=intercepts
    )
    _ingest(catalog, client, tmp_path / "pet")
    got = catalog.image(uid).values
    stored = np.round((truth - intercepts[:, None, None]) / slopes[:, None, None])
    expected = stored * slopes[:, None, None] + intercepts[:, None, None]
    assert got.dtype == np.float32  # non-integer rescale needs floats
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def _series_headers(folder: Path) -> list[DicomHeader]:
    read = read_headers([str(p) for p in sorted(folder.glob("*.dcm"))])
    return [h for h in read if isinstance(h, DicomHeader)]


def test_identical_duplicate_slice_is_kept_once(catalog: Catalog, tmp_path: Path) -> None:
    _, paths, _ = write_ct_series(tmp_path / "dup", _volume(3), spacing=SPACING)
    shutil.copy(paths[2], tmp_path / "dup" / "copy-of-slice-2.dcm")
    headers = _series_headers(tmp_path / "dup")
    # the copy has the same SOP Instance UID; the series keeps one slice per position
    result = assemble_series(headers, catalog.root.url, run_id="r-test")
    assert result.series_row is not None
    assert result.series_row["n_instances"] == 6


def test_duplicate_position_with_different_pixels_is_quarantined(
    catalog: Catalog, tmp_path: Path
) -> None:
    _, paths, _ = write_ct_series(tmp_path / "dup2", _volume(4), spacing=SPACING)
    ds = pydicom.dcmread(paths[2])
    ds.SOPInstanceUID = ds.SOPInstanceUID.rsplit(".", 1)[0] + ".9"
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    arr = ds.pixel_array.copy()
    arr[0, 0] += 7
    ds.PixelData = arr.tobytes()
    ds.save_as(tmp_path / "dup2" / "conflict.dcm")
    result = assemble_series(_series_headers(tmp_path / "dup2"), catalog.root.url, run_id="r-test")
    assert result.series_row is None
    assert "duplicate position" in result.quarantined[0].reason
    assert "conflict.dcm" in result.quarantined[0].reason


def test_missing_slice_is_quarantined_as_uneven_spacing(catalog: Catalog, tmp_path: Path) -> None:
    _, paths, _ = write_ct_series(tmp_path / "gap", _volume(5), spacing=SPACING)
    paths[3].unlink()
    result = assemble_series(_series_headers(tmp_path / "gap"), catalog.root.url, run_id="r-test")
    assert result.series_row is None
    assert "uneven slice spacing" in result.quarantined[0].reason


def test_bad_files_go_to_quarantine_and_good_series_still_land(
    catalog: Catalog, client: Client, tmp_path: Path
) -> None:
    uid, _, _ = write_ct_series(tmp_path / "mix" / "good", _volume(6), spacing=SPACING)
    (tmp_path / "mix" / "notes.txt").write_text("not a dicom file")
    _, bad_paths, _ = write_ct_series(
        tmp_path / "mix" / "broken", _volume(7), spacing=SPACING, seed=9
    )
    raw = bad_paths[2].read_bytes()
    bad_paths[2].write_bytes(raw[: len(raw) - 100])  # truncated pixel data
    report = _ingest(catalog, client, tmp_path / "mix")
    assert [s["series_uid"] for s in report["series"]] == [catalog.series_uid(uid)]  # type: ignore[index]
    reasons = {Path(q["path"]).name: q["reason"] for q in report["quarantined"]}  # type: ignore[union-attr]
    assert "not DICOM" in reasons["notes.txt"]
    assert any("truncated" in r or "pixel" in r for name, r in reasons.items() if name == "broken")
    stored = catalog.sql("select path, reason from quarantine")
    assert len(stored) == 2


def test_reingesting_the_same_files_changes_nothing(
    catalog: Catalog, client: Client, tmp_path: Path
) -> None:
    uid, _, _ = write_ct_series(tmp_path / "again", _volume(8), spacing=SPACING)
    _ingest(catalog, client, tmp_path / "again")
    versions = catalog.list_tables().set_index("table")["version"].to_dict()
    report = _ingest(catalog, client, tmp_path / "again")
    assert report["unchanged"] == [catalog.series_uid(uid)]
    after = catalog.list_tables().set_index("table")["version"].to_dict()
    changed = {t for t in versions if versions[t] != after[t]}
    assert changed <= {"runs", "quality_results"}  # only the bookkeeping of the rerun itself


def test_two_series_in_one_folder_are_separated(
    catalog: Catalog, client: Client, tmp_path: Path
) -> None:
    a, _, _ = write_ct_series(tmp_path / "both", _volume(9), spacing=SPACING, seed=1)
    b, _, _ = write_ct_series(tmp_path / "both", _volume(10, (4, 10, 12)), spacing=SPACING, seed=2)
    report = _ingest(catalog, client, tmp_path / "both")
    shapes = {s["series_uid"]: s["shape"] for s in report["series"]}  # type: ignore[index]
    assert shapes == {catalog.series_uid(a): [6, 10, 12], catalog.series_uid(b): [4, 10, 12]}


def test_scanner_batch_fields_are_configurable(
    catalog: Catalog, client: Client, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two kernels of one scanner: two batches by default, one when the kernel is left out."""
    sharp = dataclasses.replace(SCANNERS[0], model="SOMATOM Force", kernel="Br64")
    soft = dataclasses.replace(sharp, kernel="Br40")
    write_ct_series(tmp_path / "a", _volume(11), spacing=SPACING, scanner=sharp, seed=1)
    write_ct_series(tmp_path / "b", _volume(12), spacing=SPACING, scanner=soft, seed=2)
    _ingest(catalog, client, tmp_path / "a", tmp_path / "b")
    assert catalog.sql("select count(distinct scanner_batch) as n from series")["n"][0] == 2
    other = Catalog.init(str(tmp_path / "other"))
    (tmp_path / "other" / "config").mkdir(exist_ok=True)
    (tmp_path / "other" / "config" / "radgen.yaml").write_text(
        "scanner_batch_fields: [modality, manufacturer, manufacturer_model_name]\n"
    )
    _ingest(other, client, tmp_path / "a", tmp_path / "b")
    batches = other.sql("select scanner_batch, label, defined_by from scanner_batches")
    assert batches[["label", "defined_by"]].to_dict("records") == [
        {"label": "CT | SIEMENS | SOMATOM Force",
         "defined_by": "modality,manufacturer,manufacturer_model_name"}
    ]  # fmt: skip
    assert other.sql("select distinct scanner_batch from series")["scanner_batch"].tolist() == [
        batches["scanner_batch"][0]
    ]
    bad = ["ingest", "dicom", str(tmp_path / "a"), "--catalog", str(tmp_path / "other")]
    assert main([*bad, "--batch-fields", "modality,colour"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("ConfigError: scanner batch fields: colour: choose from modality,")
