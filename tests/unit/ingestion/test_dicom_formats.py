"""Real scanner output: compressed transfer syntaxes, enhanced multi-frame objects, scouts,
gantry tilt and undecodable files.

Expected voxels are the arrays the series were written from (lossless codecs must give them
back exactly), pydicom's bundled scanner files decoded by pydicom, Pillow's own decoding of a
JPEG stream, and a multi-frame object built by highdicom's legacy converter (an independent
implementation of the functional groups).
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import gdcm
import highdicom as hd
import numpy as np
import pydicom
import pytest
from distributed import Client
from PIL import Image
from pydicom.data import get_testdata_file
from pydicom.encaps import encapsulate
from pydicom.uid import (
    UID,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGLSLossless,
    RLELossless,
)

from radgen.demo import write_ct_series
from radgen.ingestion.ingest_dicom import LOCALIZER_REASON, ingest_dicom
from radgen.platform.catalog import Catalog

SPACING = (2.0, 0.7, 0.9)


def _ingest(catalog: Catalog, client: Client, *paths: Path) -> dict[str, object]:
    with catalog.run("ingest dicom", {"paths": [str(p) for p in paths]}) as run:
        return ingest_dicom(run, list(paths), client).to_json()


def _truth(seed: int, shape: tuple[int, int, int] = (5, 12, 10)) -> np.ndarray:
    return np.random.default_rng(seed).integers(-1000, 1500, shape).astype(float)


def _recompress(paths: list[Path], syntax: UID) -> None:
    for path in paths:
        ds = pydicom.dcmread(path)
        ds.compress(syntax)
        ds.save_as(path)


@pytest.mark.parametrize("syntax", [RLELossless, JPEG2000Lossless, JPEGLSLossless])
def test_lossless_codecs_give_back_the_written_volume(
    catalog: Catalog, client: Client, tmp_path: Path, syntax: UID
) -> None:
    truth = _truth(1, (4, 64, 64))  # OpenJPEG's default 6 resolution levels need >= 32 px
    uid, paths, _ = write_ct_series(tmp_path / "s", truth, spacing=SPACING)
    _recompress(paths, syntax)
    assert pydicom.dcmread(paths[0]).file_meta.TransferSyntaxUID == syntax
    _ingest(catalog, client, tmp_path / "s")
    np.testing.assert_array_equal(catalog.image(uid).values, truth)
    stored = catalog.sql("select distinct transfer_syntax from instances")
    assert stored["transfer_syntax"].tolist() == [str(syntax)]


def test_jpeg_lossless_process_14_is_decoded(
    catalog: Catalog, client: Client, tmp_path: Path
) -> None:
    truth = _truth(2)
    uid, paths, _ = write_ct_series(tmp_path / "s", truth, spacing=SPACING)
    for path in paths:  # GDCM transcodes: pydicom has no JPEG lossless encoder
        reader = gdcm.ImageReader()
        reader.SetFileName(str(path))
        assert reader.Read()
        change = gdcm.ImageChangeTransferSyntax()
        change.SetTransferSyntax(gdcm.TransferSyntax(gdcm.TransferSyntax.JPEGLosslessProcess14_1))
        change.SetInput(reader.GetImage())
        assert change.Change()
        writer = gdcm.ImageWriter()
        writer.SetFileName(str(path))
        writer.SetFile(reader.GetFile())
        writer.SetImage(change.GetOutput())
        assert writer.Write()
    assert "Process 14" in pydicom.dcmread(paths[0]).file_meta.TransferSyntaxUID.name
    _ingest(catalog, client, tmp_path / "s")
    np.testing.assert_array_equal(catalog.image(uid).values, truth)


def test_jpeg_baseline_matches_pillows_decoding(
    catalog: Catalog, client: Client, tmp_path: Path
) -> None:
    rng = np.random.default_rng(3)
    uid, paths, _ = write_ct_series(tmp_path / "s", np.zeros((4, 16, 16)), spacing=SPACING)
    expected = []
    for path in paths:
        ds = pydicom.dcmread(path)
        plane = rng.integers(0, 255, (16, 16)).astype(np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(plane, mode="L").save(buffer, format="JPEG", quality=90)
        ds.PixelData = encapsulate([buffer.getvalue()])
        ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
        ds.BitsAllocated = ds.BitsStored = 8
        ds.HighBit = 7
        ds.PixelRepresentation = 0
        ds.RescaleIntercept = -100
        ds.save_as(path, enforce_file_format=True)
        decoded = np.asarray(Image.open(io.BytesIO(buffer.getvalue())), dtype=float)
        expected.append(decoded - 100)
    _ingest(catalog, client, tmp_path / "s")
    np.testing.assert_array_equal(catalog.image(uid).values, np.stack(expected))


def test_pydicom_scanner_files_in_every_encoding_read_the_same(
    catalog: Catalog, client: Client, tmp_path: Path
) -> None:
    """MR_small (a real GE scan) stored uncompressed, big endian, RLE, JPEG 2000, JPEG-LS."""
    reference = pydicom.dcmread(get_testdata_file("MR_small.dcm", download=False))
    expected = reference.pixel_array * float(reference.get("RescaleSlope", 1)) + float(
        reference.get("RescaleIntercept", 0)
    )
    names = [
        "MR_small.dcm",
        "MR_small_bigendian.dcm",
        "MR_small_RLE.dcm",
        "MR_small_jp2klossless.dcm",
        "MR_small_jpeg_ls_lossless.dcm",
    ]
    for i, name in enumerate(names):  # one series each: give every copy its own UIDs
        ds = pydicom.dcmread(get_testdata_file(name, download=False))
        ds.SeriesInstanceUID = f"1.2.826.0.1.3680043.8.498.77.{i}"
        ds.SOPInstanceUID = f"1.2.826.0.1.3680043.8.498.78.{i}"
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        (tmp_path / "mr").mkdir(exist_ok=True)
        ds.save_as(tmp_path / "mr" / f"{i}.dcm")
    report = _ingest(catalog, client, tmp_path / "mr")
    assert len(report["series"]) == len(names)  # type: ignore[arg-type]
    for i in range(len(names)):
        got = catalog.image(f"1.2.826.0.1.3680043.8.498.77.{i}").values[0]
        np.testing.assert_array_equal(got, expected)


def test_enhanced_multiframe_ct_from_highdicom_equals_the_single_frame_series(
    catalog: Catalog, client: Client, tmp_path: Path
) -> None:
    truth = _truth(4)
    _, paths, _ = write_ct_series(tmp_path / "single", truth, spacing=SPACING)
    legacy = [pydicom.dcmread(p) for p in reversed(paths)]  # frames in reverse z order
    multi = hd.legacy.LegacyConvertedEnhancedCTImage(
        legacy_datasets=legacy,
        series_instance_uid=hd.UID(),
        series_number=10,
        sop_instance_uid=hd.UID(),
        instance_number=1,
    )
    (tmp_path / "multi").mkdir()
    multi.save_as(tmp_path / "multi" / "enhanced.dcm")
    report = _ingest(catalog, client, tmp_path / "multi", tmp_path / "single")
    assert len(report["series"]) == 2  # type: ignore[arg-type]
    single = catalog.image(str(legacy[0].SeriesInstanceUID))
    frames = catalog.image(str(multi.SeriesInstanceUID))
    np.testing.assert_array_equal(frames.values, truth)
    assert frames.attrs["spacing"] == pytest.approx(single.attrs["spacing"])
    assert frames.attrs["origin"] == pytest.approx(single.attrs["origin"])
    rows = catalog.sql(
        "select frame_number, slice_index from instances "
        f"where series_uid = '{catalog.series_uid(str(multi.SeriesInstanceUID))}' "
        "order by slice_index"
    )
    # frames were stored from the top slice down: slice k is frame n - k
    assert rows["frame_number"].tolist() == [5, 4, 3, 2, 1]


def test_enhanced_ct_per_frame_rescale_and_positions(
    catalog: Catalog, client: Client, tmp_path: Path
) -> None:
    """An Enhanced CT written by hand: shuffled frames, a different rescale on each."""
    nz, ny, nx = 4, 6, 7
    rng = np.random.default_rng(5)
    stored = rng.integers(0, 3000, (nz, ny, nx)).astype(np.uint16)
    slopes = [1.0, 2.0, 0.5, 1.0]
    intercepts = [-1024.0, -2000.0, -500.0, -1000.0]
    order = [2, 0, 3, 1]  # frame f holds slice order[f]
    ds = pydicom.Dataset()
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = pydicom.uid.EnhancedCTImageStorage
    ds.SOPClassUID = pydicom.uid.EnhancedCTImageStorage
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    ds.SeriesInstanceUID = pydicom.uid.generate_uid()
    ds.StudyInstanceUID = pydicom.uid.generate_uid()
    ds.PatientID, ds.Modality = "ENH-1", "CT"
    ds.Rows, ds.Columns, ds.NumberOfFrames = ny, nx, nz
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    shared = pydicom.Dataset()
    measures = pydicom.Dataset()
    measures.PixelSpacing, measures.SliceThickness = [0.6, 0.8], 3.0
    orient = pydicom.Dataset()
    orient.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    shared.PixelMeasuresSequence = [measures]
    shared.PlaneOrientationSequence = [orient]
    ds.SharedFunctionalGroupsSequence = [shared]
    frames = []
    for z in order:
        item = pydicom.Dataset()
        plane = pydicom.Dataset()
        plane.ImagePositionPatient = [-10.0, -20.0, 50.0 + 3.0 * z]
        value = pydicom.Dataset()
        value.RescaleSlope, value.RescaleIntercept = slopes[z], intercepts[z]
        value.RescaleType = "HU"
        item.PlanePositionSequence = [plane]
        item.PixelValueTransformationSequence = [value]
        frames.append(item)
    ds.PerFrameFunctionalGroupsSequence = frames
    ds.PixelData = np.stack([stored[z] for z in order]).tobytes()
    (tmp_path / "enh").mkdir()
    ds.save_as(tmp_path / "enh" / "x.dcm", enforce_file_format=True)
    _ingest(catalog, client, tmp_path / "enh")
    image = catalog.image(str(ds.SeriesInstanceUID))
    expected = stored * np.asarray(slopes)[:, None, None] + np.asarray(intercepts)[:, None, None]
    np.testing.assert_allclose(image.values, expected)
    assert image.attrs["spacing"] == pytest.approx([3.0, 0.6, 0.8])
    assert image.attrs["origin"] == pytest.approx([-10.0, -20.0, 50.0])


def test_scout_and_two_series_in_one_folder(
    catalog: Catalog, client: Client, tmp_path: Path
) -> None:
    folder = tmp_path / "exam"
    a, _, _ = write_ct_series(folder, _truth(6), spacing=SPACING, seed=1)
    b, _, _ = write_ct_series(folder, _truth(7, (3, 12, 10)), spacing=SPACING, seed=2)
    # a topogram: coronal, one image, ImageType LOCALIZER, inside series a
    _, scout_paths, _ = write_ct_series(
        tmp_path / "tmp", _truth(8, (1, 12, 10)), spacing=SPACING, seed=3,
        orientation=(1.0, 0.0, 0.0, 0.0, 0.0, -1.0),
    )  # fmt: skip
    scout = pydicom.dcmread(scout_paths[0])
    scout.SeriesInstanceUID = a
    scout.ImageType = ["ORIGINAL", "PRIMARY", "LOCALIZER"]
    scout.save_as(folder / "scout.dcm")
    report = _ingest(catalog, client, folder)
    shapes = {s["series_uid"]: s["shape"] for s in report["series"]}  # type: ignore[index]
    assert shapes == {catalog.series_uid(a): [5, 12, 10], catalog.series_uid(b): [3, 12, 10]}
    quarantined = report["quarantined"]
    assert [(Path(q["path"]).name, q["reason"]) for q in quarantined] == [  # type: ignore[union-attr, index]
        ("scout.dcm", LOCALIZER_REASON)
    ]


def test_gantry_tilt_is_flagged_and_spacing_is_along_the_normal(
    catalog: Catalog, client: Client, tmp_path: Path
) -> None:
    truth = _truth(9)
    uid, paths, _ = write_ct_series(tmp_path / "tilt", truth, spacing=SPACING)
    tilt = math.radians(12.0)
    for k, path in enumerate(paths):  # each slice also moves along y: a tilted gantry
        ds = pydicom.dcmread(path)
        x, y, z = (float(v) for v in ds.ImagePositionPatient)
        ds.ImagePositionPatient = [x, y + k * SPACING[0] * math.tan(tilt), z]
        ds.save_as(path)
    _ingest(catalog, client, tmp_path / "tilt")
    row = catalog.sql("select gantry_tilt_deg, spacing_z, oblique from series").iloc[0]
    assert row["gantry_tilt_deg"] == pytest.approx(12.0, abs=1e-3)
    assert row["spacing_z"] == pytest.approx(SPACING[0])
    assert not row["oblique"]
    np.testing.assert_array_equal(catalog.image(uid).values, truth)


def test_oblique_series_is_flagged(catalog: Catalog, client: Client, tmp_path: Path) -> None:
    angle = math.radians(20)
    orientation = (1.0, 0.0, 0.0, 0.0, math.cos(angle), math.sin(angle))
    write_ct_series(tmp_path / "o", _truth(10), spacing=SPACING, orientation=orientation)
    write_ct_series(tmp_path / "a", _truth(11), spacing=SPACING, seed=4)
    _ingest(catalog, client, tmp_path)
    flags = catalog.sql("select oblique, gantry_tilt_deg from series order by oblique")
    assert flags["oblique"].tolist() == [False, True]
    assert flags["gantry_tilt_deg"].tolist() == [0.0, 0.0]


def test_undecodable_and_frameless_files_are_quarantined_with_the_reason(
    catalog: Catalog, client: Client, tmp_path: Path
) -> None:
    uid, _, _ = write_ct_series(tmp_path / "in" / "good", _truth(12), spacing=SPACING)
    _, other, _ = write_ct_series(tmp_path / "in" / "mpeg", _truth(13), spacing=SPACING, seed=5)
    for path in other:
        ds = pydicom.dcmread(path)
        ds.file_meta.TransferSyntaxUID = pydicom.uid.MPEG2MPML
        ds.PixelData = encapsulate([b"\x00" * 64])
        ds.save_as(path, enforce_file_format=True)
    dose = pydicom.dcmread(get_testdata_file("rtdose.dcm", download=False))
    dose.save_as(tmp_path / "in" / "dose.dcm")
    (tmp_path / "in" / "readme.dcm").write_text("a text file with a DICOM name")
    report = _ingest(catalog, client, tmp_path / "in")
    assert [s["series_uid"] for s in report["series"]] == [catalog.series_uid(uid)]  # type: ignore[index]
    reasons = {q["reason"] for q in report["quarantined"]}  # type: ignore[union-attr, index]
    assert any(r.startswith("unsupported transfer syntax MPEG2") for r in reasons)
    assert any("without per-frame functional groups" in r for r in reasons)
    by_name = {Path(q["path"]).name: q["reason"] for q in report["quarantined"]}  # type: ignore[union-attr, index]
    assert by_name["readme.dcm"].startswith("not DICOM")
    stored = catalog.sql("select count(*) as n from quarantine")["n"].iloc[0]
    assert stored == len(other) + 2


def test_ct_is_stored_as_int16_unless_a_value_needs_more(
    catalog: Catalog, client: Client, tmp_path: Path
) -> None:
    """Headers allow 0..65535 - 1024 for CT; int16 holds real HU, int32 only when needed."""
    usual = _truth(14)
    hot = _truth(15)
    hot[3, 4, 5] = 40000.0  # beyond int16 after the rescale (a metal implant, say)
    a, _, _ = write_ct_series(tmp_path / "a", usual, spacing=SPACING, seed=6)
    b, _, _ = write_ct_series(tmp_path / "b", hot, spacing=SPACING, seed=7)
    with catalog.run("ingest dicom", {}, allow_warnings=True) as run:  # 40000 HU: a warning
        ingest_dicom(run, [tmp_path / "a", tmp_path / "b"], client)
    stored_a, stored_b = catalog.image(a), catalog.image(b)
    assert stored_a.dtype == np.int16
    assert stored_b.dtype == np.int32
    np.testing.assert_array_equal(stored_a.values, usual)
    np.testing.assert_array_equal(stored_b.values, hot)
