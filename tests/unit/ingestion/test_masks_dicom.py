"""DICOM SEG and RTSTRUCT masks onto ingested series, with closed-form voxel counts.

The expected masks are the arrays the SEGs were encoded from (highdicom writes them from the
CT source datasets) and, for RTSTRUCT, squares whose vertices sit on half-voxel offsets, so
the voxel-centre rule has no centre on an edge and the counts are products of side lengths.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import highdicom as hd
import numpy as np
import pydicom
import pytest
from distributed import Client
from pydicom.dataset import FileMetaDataset
from pydicom.pixels import pack_bits
from pydicom.sr.codedict import codes
from pydicom.uid import ExplicitVRLittleEndian, RTStructureSetStorage, generate_uid

from radgen.cli import main
from radgen.demo import write_ct_series
from radgen.ingestion.deid import Deidentifier
from radgen.ingestion.ingest_dicom import ingest_dicom
from radgen.ingestion.masks import MaskReport, ingest_masks
from radgen.platform.catalog import Catalog

SPACING = (2.0, 0.7, 0.9)  # z, y, x
SHAPE = (6, 12, 10)
VOXEL_ML = SPACING[0] * SPACING[1] * SPACING[2] / 1000.0
OBLIQUE_SPACING = (2.5, 0.8, 0.8)
OBLIQUE_SHAPE = (5, 10, 8)


@dataclass
class Series:
    uid: str  # SeriesInstanceUID in the files
    catalog_uid: str  # the keyed UID the de-identified catalog stores
    paths: list[Path]
    affine: np.ndarray  # array indices (x, y, z, 1) -> LPS mm


@dataclass
class World:
    catalog: Catalog
    axial: Series
    oblique: Series


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    """One catalog with an axial and an oblique CT series, shared by the tests of this module.

    Every test writes its own mask files (fresh UIDs, so fresh hashes) and asserts on its own
    report or on the rows of its own masks.
    """
    tmp = tmp_path_factory.mktemp("masks_dicom")
    catalog = Catalog.init(str(tmp / "cat"))
    deid = Deidentifier.for_root(catalog.root)
    angle = np.deg2rad(25)
    oblique = (1.0, 0.0, 0.0, 0.0, float(np.cos(angle)), float(np.sin(angle)))
    made = {}
    for name, shape, spacing, orientation, seed in [
        ("axial", SHAPE, SPACING, (1.0, 0.0, 0.0, 0.0, 1.0, 0.0), 1),
        ("oblique", OBLIQUE_SHAPE, OBLIQUE_SPACING, oblique, 2),
    ]:
        uid, paths, affine = write_ct_series(
            tmp / "dicom" / name,
            np.zeros(shape),
            spacing=spacing,
            orientation=orientation,
            seed=seed,
        )
        made[name] = Series(uid, deid.uid(uid), paths, affine)
    with (
        Client(
            processes=False, n_workers=1, threads_per_worker=1, dashboard_address=":0"
        ) as client,
        catalog.run("ingest dicom", {}) as run,
    ):
        ingest_dicom(run, [tmp / "dicom"], client)
    return World(catalog, made["axial"], made["oblique"])


def _ingest(world: World, *paths: Path, series: str | None = None) -> MaskReport:
    with world.catalog.run("ingest masks", {"paths": [str(p) for p in paths]}) as run:
        return ingest_masks(run, list(paths), series_uid=series)


def _reasons(report: MaskReport) -> dict[str, str]:
    return {Path(q.path).name: q.reason for q in report.quarantined}


def _by_name(report: MaskReport) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in report.rois}


def _mask(world: World, roi: dict[str, Any]) -> np.ndarray:
    return np.asarray(world.catalog.mask(roi["roi_id"]).values)


# --- SEG ----------------------------------------------------------------------------------


def _sources(series: Series) -> list[pydicom.Dataset]:
    sources = []
    for path in series.paths:
        ds = pydicom.dcmread(path)
        ds.PatientBirthDate = ""  # type 2 attributes highdicom copies; the demo omits them
        ds.ReferringPhysicianName = ""
        sources.append(ds)
    return sources


def _segment(number: int, label: str) -> hd.seg.SegmentDescription:
    return hd.seg.SegmentDescription(
        segment_number=number,
        segment_label=label,
        segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
        segmented_property_type=codes.SCT.Neoplasm,
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL,
    )


def _write_seg(
    path: Path, series: Series, stacked: np.ndarray, labels: list[str], **kwargs: Any
) -> Path:
    """A SEG of `stacked` (z, y, x, segment), frame k derived from slice k of `series`."""
    seg = hd.seg.Segmentation(
        source_images=_sources(series),
        pixel_array=stacked,
        segmentation_type=kwargs.pop("segmentation_type", "BINARY"),
        segment_descriptions=[_segment(i + 1, label) for i, label in enumerate(labels)],
        series_instance_uid=hd.UID(),
        series_number=300,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="radgen tests",
        manufacturer_model_name="test_masks_dicom",
        software_versions="1",
        device_serial_number="1",
        **kwargs,
    )
    seg.save_as(path)
    return path


def _two_segments(shape: tuple[int, int, int]) -> np.ndarray:
    """A 'GTV' box and an overlapping 'core' box inside it (z, y, x, segment)."""
    stacked = np.zeros((*shape, 2), dtype=np.uint8)
    stacked[1:4, 2:7, 1:5, 0] = 1  # 3 x 5 x 4 = 60 voxels
    stacked[2:4, 3:5, 2:4, 1] = 1  # 2 x 2 x 2 = 8 voxels, inside the GTV
    return stacked


def _rewrite_frames(path: Path, order: list[int] | None, keep_sources: bool) -> Path:
    """Reorder the frames of a BINARY SEG and/or drop their source image references."""
    ds = pydicom.dcmread(path)
    frames = ds.pixel_array.reshape(int(ds.NumberOfFrames), ds.Rows, ds.Columns)
    items = list(ds.PerFrameFunctionalGroupsSequence)
    order = order or list(range(len(items)))
    ds.PerFrameFunctionalGroupsSequence = [items[i] for i in order]
    ds.PixelData = pack_bits(frames[order].ravel())
    if not keep_sources:
        for item in ds.PerFrameFunctionalGroupsSequence:
            del item.DerivationImageSequence
    ds.save_as(path)
    return path


def test_seg_segments_become_separate_overlapping_masks(world: World, tmp_path: Path) -> None:
    stacked = _two_segments(SHAPE)
    path = _write_seg(tmp_path / "seg.dcm", world.axial, stacked, ["GTV", "core"])
    report = _ingest(world, path)
    assert report.quarantined == []
    rois = _by_name(report)
    assert set(rois) == {"GTV", "core"}
    for index, name in enumerate(["GTV", "core"]):
        roi = rois[name]
        n = int(stacked[..., index].sum())
        assert roi["series_uid"] == world.axial.catalog_uid
        assert roi["n_voxels"] == n == (60 if name == "GTV" else 8)
        assert roi["volume_ml"] == pytest.approx(n * VOXEL_ML)
        np.testing.assert_array_equal(_mask(world, roi), stacked[..., index])
    ids = "', '".join(r["roi_id"] for r in report.rois)
    rows = world.catalog.sql(f"select name, label, n_voxels from rois where roi_id in ('{ids}')")
    assert sorted(rows["name"]) == ["GTV", "core"]
    assert set(rows["label"]) == {1}


@pytest.mark.parametrize("keep_sources", [True, False], ids=["by-sop-uid", "by-position"])
def test_seg_frames_in_any_order_land_on_their_slices(
    world: World, tmp_path: Path, keep_sources: bool
) -> None:
    stacked = _two_segments(SHAPE)
    path = _write_seg(tmp_path / "seg.dcm", world.axial, stacked, ["GTV", "core"])
    n_frames = int(pydicom.dcmread(path, stop_before_pixels=True).NumberOfFrames)
    order = list(np.random.default_rng(3).permutation(n_frames))
    assert order != sorted(order)
    _rewrite_frames(path, [int(i) for i in order], keep_sources)
    rois = _by_name(_ingest(world, path))
    np.testing.assert_array_equal(_mask(world, rois["GTV"]), stacked[..., 0])
    np.testing.assert_array_equal(_mask(world, rois["core"]), stacked[..., 1])


def test_seg_on_an_oblique_series_is_placed_by_frame_position(world: World, tmp_path: Path) -> None:
    stacked = _two_segments(OBLIQUE_SHAPE)
    path = _write_seg(tmp_path / "oblique.dcm", world.oblique, stacked, ["GTV", "core"])
    _rewrite_frames(path, None, keep_sources=False)  # positions on the tilted normal only
    rois = _by_name(_ingest(world, path))
    assert rois["GTV"]["series_uid"] == world.oblique.catalog_uid
    assert rois["GTV"]["volume_ml"] == pytest.approx(60 * np.prod(OBLIQUE_SPACING) / 1000)
    np.testing.assert_array_equal(_mask(world, rois["GTV"]), stacked[..., 0])
    np.testing.assert_array_equal(_mask(world, rois["core"]), stacked[..., 1])


def test_fractional_and_labelmap_segs(world: World, tmp_path: Path) -> None:
    fractions = np.zeros((*SHAPE, 1), dtype=np.float32)
    fractions[2, 3:6, 3:6, 0] = 0.4  # below half: out
    fractions[2, 4, 4, 0] = 0.6
    fractions[3, 4, 3:5, 0] = 1.0
    fractional = _write_seg(
        tmp_path / "frac.dcm",
        world.axial,
        fractions,
        ["lesion"],
        segmentation_type="FRACTIONAL",
        max_fractional_value=200,
    )
    labelmap = np.zeros(SHAPE, dtype=np.uint8)  # one value per voxel: segments cannot overlap
    labelmap[1:3, 2:4, 2:5] = 1
    labelmap[4, 6:9, 1:3] = 2
    labelled = _write_seg(
        tmp_path / "labelmap.dcm",
        world.axial,
        labelmap,
        ["liver", "spleen"],
        segmentation_type="LABELMAP",
    )
    rois = _by_name(_ingest(world, fractional, labelled))
    np.testing.assert_array_equal(
        _mask(world, rois["lesion"]), (fractions[..., 0] >= 0.5).astype(np.uint8)
    )
    assert rois["lesion"]["n_voxels"] == 3
    for value, name in [(1, "liver"), (2, "spleen")]:
        np.testing.assert_array_equal(
            _mask(world, rois[name]), (labelmap == value).astype(np.uint8)
        )
    assert (rois["liver"]["n_voxels"], rois["spleen"]["n_voxels"]) == (12, 6)


# --- RTSTRUCT -----------------------------------------------------------------------------


def _square(
    affine: np.ndarray, k: int, x: tuple[float, float], y: tuple[float, float]
) -> list[float]:
    """A rectangle on slice k with corners at voxel coordinates x0..x1, y0..y1, in LPS mm."""
    corners = [(x[0], y[0]), (x[1], y[0]), (x[1], y[1]), (x[0], y[1])]
    points = [affine @ np.array([cx, cy, k, 1.0]) for cx, cy in corners]
    return [round(float(v), 6) for p in points for v in p[:3]]


def _write_rtstruct(
    path: Path, series_uid: str, rois: dict[int, tuple[str, list[list[float]]]]
) -> Path:
    """A minimal RT Structure Set: ROI number -> (name, closed planar contours in mm)."""
    sop_uid = generate_uid()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = RTStructureSetStorage
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = pydicom.Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = RTStructureSetStorage
    ds.SOPInstanceUID = sop_uid
    ds.Modality = "RTSTRUCT"
    ds.PatientID = "RG-TEST-0001"
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.StructureSetLabel = "test"
    frame_uid = generate_uid()
    series = pydicom.Dataset()
    series.SeriesInstanceUID = series_uid
    study = pydicom.Dataset()
    study.ReferencedSOPClassUID = "1.2.840.10008.3.1.2.3.1"
    study.ReferencedSOPInstanceUID = generate_uid()
    study.RTReferencedSeriesSequence = [series]
    frame = pydicom.Dataset()
    frame.FrameOfReferenceUID = frame_uid
    frame.RTReferencedStudySequence = [study]
    ds.ReferencedFrameOfReferenceSequence = [frame]
    ds.StructureSetROISequence = []
    ds.ROIContourSequence = []
    for number, (name, contours) in rois.items():
        roi = pydicom.Dataset()
        roi.ROINumber = number
        roi.ReferencedFrameOfReferenceUID = frame_uid
        roi.ROIName = name
        roi.ROIGenerationAlgorithm = "MANUAL"
        ds.StructureSetROISequence.append(roi)
        item = pydicom.Dataset()
        item.ReferencedROINumber = number
        item.ROIDisplayColor = [255, 0, 0]
        item.ContourSequence = []
        for points in contours:
            contour = pydicom.Dataset()
            contour.ContourGeometricType = "CLOSED_PLANAR"
            contour.NumberOfContourPoints = len(points) // 3
            contour.ContourData = points
            item.ContourSequence.append(contour)
        ds.ROIContourSequence.append(item)
    ds.save_as(path, enforce_file_format=True)
    return path


def test_rtstruct_ring_has_an_empty_hole_and_exact_counts(world: World, tmp_path: Path) -> None:
    affine = world.axial.affine
    # voxel centres sit on whole indices: a square from 0.5 to 7.5 holds indices 1..7
    outer = _square(affine, 2, (0.5, 7.5), (1.5, 9.5))  # 7 x 8 voxels
    inner = _square(affine, 2, (2.5, 5.5), (4.5, 7.5))  # 3 x 3 voxels, the other winding:
    inner = np.reshape(inner, (-1, 3))[::-1].ravel().tolist()
    body = [_square(affine, k, (-0.5, 8.5), (-0.5, 10.5)) for k in range(1, 5)]  # 9 x 11 x 4
    path = _write_rtstruct(
        tmp_path / "rt.dcm", world.axial.uid, {1: ("Ring", [outer, inner]), 7: ("BODY", body)}
    )
    report = _ingest(world, path)
    assert report.quarantined == []
    rois = _by_name(report)
    ring = np.zeros(SHAPE, dtype=np.uint8)
    ring[2, 2:10, 1:8] = 1
    ring[2, 5:8, 3:6] = 0
    assert rois["Ring"]["n_voxels"] == 7 * 8 - 3 * 3
    assert rois["Ring"]["volume_ml"] == pytest.approx((7 * 8 - 3 * 3) * VOXEL_ML)
    got = _mask(world, rois["Ring"])
    assert not got[2, 5:8, 3:6].any()  # the hole
    np.testing.assert_array_equal(got, ring)
    expected_body = np.zeros(SHAPE, dtype=np.uint8)
    expected_body[1:5, 0:11, 0:9] = 1
    assert rois["BODY"]["n_voxels"] == 9 * 11 * 4
    np.testing.assert_array_equal(_mask(world, rois["BODY"]), expected_body)
    # overlapping structures stay separate masks
    assert rois["Ring"]["roi_id"].split(":")[0] != rois["BODY"]["roi_id"].split(":")[0]


# --- rejections and re-ingest -------------------------------------------------------------


def test_bad_masks_are_quarantined_while_the_others_land(world: World, tmp_path: Path) -> None:
    affine = world.axial.affine
    good = _square(affine, 3, (0.5, 3.5), (0.5, 3.5))  # 3 x 3 voxels
    other_spacing = _write_seg(
        tmp_path / "spacing.dcm",
        world.axial,
        _two_segments(SHAPE),
        ["GTV", "core"],
        pixel_measures=hd.PixelMeasuresSequence(pixel_spacing=(0.5, 0.5), slice_thickness=2.0),
    )
    unknown = _write_rtstruct(tmp_path / "unknown.dcm", "1.2.3.4.5", {1: ("GTV", [good])})
    between = _square(affine, 2, (0.5, 3.5), (0.5, 3.5))
    between = [v + (0.5 * SPACING[0] if i % 3 == 2 else 0.0) for i, v in enumerate(between)]
    shifted = _write_rtstruct(tmp_path / "between.dcm", world.axial.uid, {1: ("GTV", [between])})
    empty = _write_rtstruct(
        tmp_path / "empty.dcm", world.axial.uid, {1: ("Planned", []), 2: ("Kept", [good])}
    )
    text = tmp_path / "notes.txt"
    text.write_text("not an image\n")
    seg = _write_seg(tmp_path / "good.dcm", world.axial, _two_segments(SHAPE), ["GTV", "core"])
    ct = world.axial.paths[0]
    report = _ingest(world, other_spacing, unknown, shifted, empty, text, seg, ct)
    reasons = _reasons(report)
    assert reasons["spacing.dcm"] == (
        f"SEG grid does not match series {world.axial.catalog_uid}: pixel spacing 0.5 vs 0.7 x 0.9"
    )
    assert reasons["unknown.dcm"] == (
        "references series 1.2.3.4.5, which is not in the catalog; ingest the image first"
    )
    assert "ROI GTV: contour 1 is not on one slice (z index 2.50" in reasons["between.dcm"]
    assert reasons["empty.dcm"] == "empty ROI Planned"
    assert reasons["notes.txt"] == "not DICOM or NIfTI"
    assert reasons[ct.name] == "not a mask (Modality CT)"
    assert len(reasons) == 6
    landed = sorted((r["name"], r["n_voxels"]) for r in report.rois)
    assert landed == [("GTV", 60), ("Kept", 9), ("core", 8)]
    stored = world.catalog.sql(
        f"select path, reason from quarantine where run_id = "
        f"(select run_id from rois where roi_id = '{report.rois[0]['roi_id']}')"
    )
    assert {Path(p).name for p in stored["path"]} == set(reasons)


def test_series_option_overrides_the_reference(world: World, tmp_path: Path) -> None:
    square = _square(world.axial.affine, 0, (-0.5, 1.5), (-0.5, 0.5))  # 2 x 1 voxels
    path = _write_rtstruct(tmp_path / "rt.dcm", "1.2.3.4.5", {3: ("GTV", [square])})
    report = _ingest(world, path, series=world.axial.catalog_uid)
    assert [(r["name"], r["n_voxels"]) for r in report.rois] == [("GTV", 2)]


def test_reingesting_the_same_files_adds_nothing(world: World, tmp_path: Path) -> None:
    seg = _write_seg(tmp_path / "seg.dcm", world.axial, _two_segments(SHAPE), ["GTV", "core"])
    square = _square(world.axial.affine, 1, (0.5, 2.5), (0.5, 2.5))
    rt = _write_rtstruct(tmp_path / "rt.dcm", world.axial.uid, {1: ("GTV", [square])})
    first = _ingest(world, seg, rt)
    assert len(first.rois) == 3
    before = int(world.catalog.sql("select count(*) as n from rois")["n"].iloc[0])
    again = _ingest(world, seg, rt)
    assert again.rois == []
    assert sorted(Path(p).name for p in again.unchanged) == ["rt.dcm", "seg.dcm"]
    assert int(world.catalog.sql("select count(*) as n from rois")["n"].iloc[0]) == before


def test_cli_ingests_a_seg_and_prints_json(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stacked = _two_segments(SHAPE)
    path = _write_seg(tmp_path / "seg.dcm", world.axial, stacked, ["GTV", "core"])
    root = world.catalog.root.url
    args = ["ingest", "masks", str(path), "--series", world.axial.uid, "--catalog", root]
    assert main([*args, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert sorted((r["name"], r["n_voxels"]) for r in out["rois"]) == [("GTV", 60), ("core", 8)]
    assert out["quarantined"] == []
    assert main(args) == 0  # again, human output: nothing new
    assert "unchanged" in capsys.readouterr().out
