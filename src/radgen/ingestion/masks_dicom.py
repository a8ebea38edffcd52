"""DICOM SEG and RTSTRUCT masks -> one binary volume per segment or ROI on an image grid.

Overlapping structures are common (a GTV inside the BODY), so every SEG segment and every
RTSTRUCT ROI becomes its own mask (voxels 1 inside, 0 outside); :mod:`radgen.ingestion.masks`
stores them and finds the image (:class:`ImageGrid`) each file refers to.

**SEG** (read with highdicom). Rows, Columns, PixelSpacing and ImageOrientationPatient of
every frame must equal the series'; otherwise the whole file is rejected ("SEG grid does not
match series X: pixel spacing 0.5 vs 0.7"). A frame goes to the slice whose SOP Instance UID
it derives from (DerivationImageSequence > SourceImageSequence); a frame without such a
reference, or referencing an instance that is not a slice of the series, goes to the slice
at its ImagePositionPatient, which must be voxel ``(0, 0, k)`` of the image within
``0.1`` voxel. BINARY frames count stored values above 0, FRACTIONAL frames values of at
least half the MaximumFractionalValue, LABELMAP frames the value equal to the segment number.

**RTSTRUCT** (read with pydicom). Each ROI of StructureSetROISequence gathers the
CLOSED_PLANAR contours of ROIContourSequence (other geometric types, such as POINT, are
ignored). Contour points (patient LPS mm) go to voxel coordinates through the inverse of the
image affine; a contour must lie on one slice (its z index within ``0.1`` of a whole number)
or the ROI is rejected. Rule: *a voxel belongs to a contour when its centre lies inside the
polygon* (``skimage.draw.polygon`` on voxel centres; a centre exactly on an edge counts as
inside, as that function decides). The contours of one ROI on one slice combine by the
*even-odd rule*: their masks are XOR-ed, so a contour inside another one cuts a hole (and
two contours of one ROI sharing an edge lose the voxel centres on it). Polygons reaching
outside the image are clipped to it. An ROI without contours or without any voxel is
rejected as "empty ROI <name>"; the other ROIs of the file are still ingested.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import highdicom as hd
import numpy as np
import numpy.typing as npt
import pydicom
from pydicom.errors import InvalidDicomError
from skimage.draw import polygon

from radgen.errors import InputError

__all__ = [
    "ImageGrid",
    "MaskPart",
    "mask_parts",
    "rasterize",
    "read_mask_dataset",
    "referenced_instances",
    "referenced_series",
]

#: Modalities read as masks.
MASK_MODALITIES = ("SEG", "RTSTRUCT")
#: A SEG frame or RTSTRUCT contour must lie this close (in voxels) to a slice of the image.
VOXEL_TOLERANCE = 0.1
#: Direction cosines and pixel spacings (relative) may differ by this much from the image's.
_GEOMETRY_TOLERANCE = 1e-3


@dataclass(frozen=True)
class ImageGrid:
    """The voxel grid of an ingested series, as the DICOM mask readers need it."""

    series_uid: str
    shape: tuple[int, int, int]
    """Array shape ``(z, y, x)``."""
    spacing: tuple[float, float, float]
    """Voxel size ``(z, y, x)`` in mm."""
    affine: npt.NDArray[np.float64]
    """4x4 matrix mapping array indices ``(x, y, z, 1)`` to LPS mm."""
    slices: Mapping[tuple[str, int], int] = field(default_factory=dict)
    """Slice index of each source image ``(SOP Instance UID, frame number)``, under the UIDs
    the mask file uses (the original ones, when the catalog stores keyed replacements)."""


@dataclass(frozen=True)
class MaskPart:
    """One mask read from a file (a label volume, a segment or an ROI), or why it was not.

    ``labels`` is a ``(z, y, x)`` array on the image grid (None when ``problem`` says why
    the part was rejected); ``number`` is the segment or ROI number (None when the file is
    one mask) and ``name`` the SegmentLabel or ROIName of label 1.
    """

    labels: npt.NDArray[Any] | None
    number: int | None = None
    name: str | None = None
    problem: str | None = None


def read_mask_dataset(path: str) -> pydicom.Dataset:
    """Read a DICOM file that should be a SEG or an RTSTRUCT.

    Parameters
    ----------
    path : str
        Local path.

    Returns
    -------
    pydicom.Dataset
        The whole dataset, pixel data included.

    Raises
    ------
    InputError
        Not DICOM, unreadable, or not a mask ("not a mask (Modality CT)").
    """
    try:
        ds = pydicom.dcmread(path)
    except InvalidDicomError as err:
        raise InputError(path, "not DICOM or NIfTI") from err
    except (OSError, EOFError, ValueError, KeyError, TypeError) as err:
        raise InputError(path, f"truncated or corrupt DICOM: {err}") from err
    modality = str(ds.get("Modality", "") or "").strip()
    if modality not in MASK_MODALITIES:
        raise InputError(path, f"not a mask (Modality {modality or 'missing'})")
    return ds


def _unique(values: Iterator[Any]) -> list[str]:
    out: list[str] = []
    for v in values:
        if v and str(v) not in out:
            out.append(str(v))
    return out


def referenced_series(ds: pydicom.Dataset) -> list[str]:
    """SeriesInstanceUIDs a SEG or RTSTRUCT says it was drawn on, in file order.

    SEG: ReferencedSeriesSequence. RTSTRUCT: ReferencedFrameOfReferenceSequence >
    RTReferencedStudySequence > RTReferencedSeriesSequence.

    Parameters
    ----------
    ds : pydicom.Dataset
        A SEG or RTSTRUCT dataset.

    Returns
    -------
    list of str
        Possibly empty.
    """
    if ds.get("Modality") == "SEG":
        return _unique(
            item.get("SeriesInstanceUID") for item in _seq(ds, "ReferencedSeriesSequence")
        )
    return _unique(
        series.get("SeriesInstanceUID")
        for frame in _seq(ds, "ReferencedFrameOfReferenceSequence")
        for study in _seq(frame, "RTReferencedStudySequence")
        for series in _seq(study, "RTReferencedSeriesSequence")
    )


def referenced_instances(ds: pydicom.Dataset) -> list[str]:
    """SOP Instance UIDs of the images the frames (SEG) or contours (RTSTRUCT) derive from.

    Parameters
    ----------
    ds : pydicom.Dataset
        A SEG or RTSTRUCT dataset.

    Returns
    -------
    list of str
        Possibly empty; used when the file names no series.
    """
    if ds.get("Modality") == "SEG":
        return _unique(
            source[0]
            for item in _seq(ds, "PerFrameFunctionalGroupsSequence")
            if (source := _source(item)) is not None
        )
    return _unique(
        image.get("ReferencedSOPInstanceUID")
        for roi in _seq(ds, "ROIContourSequence")
        for contour in _seq(roi, "ContourSequence")
        for image in _seq(contour, "ContourImageSequence")
    )


def mask_parts(ds: pydicom.Dataset, grid: ImageGrid) -> Iterator[MaskPart]:
    """One :class:`MaskPart` per segment (SEG) or ROI (RTSTRUCT), on the image grid.

    Problems with the whole file (a grid that does not match, a frame off the image) raise
    at once, before any part is made; a problem with one segment or ROI comes back as a
    part with ``problem`` set. Parts are built one at a time, as the iterator is consumed.

    Parameters
    ----------
    ds : pydicom.Dataset
        From :func:`read_mask_dataset`.
    grid : ImageGrid
        The image the mask lies on.

    Returns
    -------
    iterator of MaskPart

    Raises
    ------
    InputError
        The file cannot be placed on the grid.
    """
    if ds.get("Modality") == "SEG":
        return _segmentation_parts(ds, grid)
    return _rtstruct_parts(ds, grid)


def _seq(ds: pydicom.Dataset, keyword: str) -> Sequence[pydicom.Dataset]:
    value = ds.get(keyword)
    return list(value) if value else []


# --- SEG ------------------------------------------------------------------------------


def _source(frame: pydicom.Dataset) -> tuple[str, int] | None:
    """``(SOP Instance UID, frame number)`` of the image a SEG frame derives from."""
    for derivation in _seq(frame, "DerivationImageSequence"):
        for source in _seq(derivation, "SourceImageSequence"):
            uid = source.get("ReferencedSOPInstanceUID")
            if not uid:
                continue
            number = source.get("ReferencedFrameNumber")
            if isinstance(number, pydicom.multival.MultiValue):
                if len(number) != 1:
                    return None  # derived from several frames: placed by position instead
                number = number[0]
            return str(uid), int(number or 1)
    return None


def _functional(
    frame: pydicom.Dataset, shared: pydicom.Dataset | None, sequence: str, keyword: str
) -> list[float] | None:
    """A value of a functional group: the frame's own, else the shared one."""
    for group in (frame, shared):
        items = [] if group is None else _seq(group, sequence)
        value = items[0].get(keyword) if items else None
        if value is not None:
            values = value if isinstance(value, pydicom.multival.MultiValue) else [value]
            return [float(v) for v in values]
    return None


def _fmt(values: Sequence[float]) -> str:
    if len(set(values)) == 1:
        return f"{values[0]:g}"
    return " x ".join(f"{v:g}" for v in values)


def _frame_problem(
    frame: pydicom.Dataset, shared: pydicom.Dataset | None, grid: ImageGrid
) -> str | None:
    spacing = _functional(frame, shared, "PixelMeasuresSequence", "PixelSpacing")
    expected = [grid.spacing[1], grid.spacing[2]]
    if spacing is None or len(spacing) != 2:
        return "no PixelSpacing"
    if not np.allclose(spacing, expected, rtol=_GEOMETRY_TOLERANCE, atol=0):
        return f"pixel spacing {_fmt(spacing)} vs {_fmt(expected)}"
    orientation = _functional(frame, shared, "PlaneOrientationSequence", "ImageOrientationPatient")
    direction = grid.affine[:3, :3] / np.asarray(grid.spacing[::-1])[np.newaxis, :]
    image_orientation = np.concatenate([direction[:, 0], direction[:, 1]])
    if orientation is None or len(orientation) != 6:
        return "no ImageOrientationPatient"
    if np.max(np.abs(np.asarray(orientation) - image_orientation)) > _GEOMETRY_TOLERANCE:
        return (
            f"orientation {[round(v, 4) for v in orientation]} vs "
            f"{[round(float(v), 4) for v in image_orientation]}"
        )
    return None


def _frame_slice(
    number: int,
    frame: pydicom.Dataset,
    shared: pydicom.Dataset | None,
    grid: ImageGrid,
) -> int | str:
    """Slice index of a SEG frame, or why it has none."""
    source = _source(frame)
    if source is not None and source in grid.slices:
        return grid.slices[source]
    position = _functional(frame, shared, "PlanePositionSequence", "ImagePositionPatient")
    if position is None or len(position) != 3:
        return f"frame {number} has neither a source image of the series nor a position"
    x, y, z, _ = np.linalg.inv(grid.affine) @ np.array([*position, 1.0])
    k = round(float(z))
    on_grid = max(abs(x), abs(y), abs(z - k)) <= VOXEL_TOLERANCE
    if not on_grid or not 0 <= k < grid.shape[0]:
        return (
            f"frame {number} at {[round(v, 2) for v in position]} mm is not on a slice "
            f"(voxel {float(x):.2f}, {float(y):.2f}, {float(z):.2f})"
        )
    return k


def _segmentation_parts(ds: pydicom.Dataset, grid: ImageGrid) -> Iterator[MaskPart]:
    path = str(ds.filename)
    try:
        seg = hd.seg.Segmentation.from_dataset(ds, copy=False)
        kind = seg.segmentation_type.value
        numbers = [int(n) for n in seg.segment_numbers]
        names = {n: str(seg.get_segment_description(n).segment_label) for n in numbers}
    except (AttributeError, IndexError, KeyError, TypeError, ValueError) as err:
        raise InputError(path, f"unreadable DICOM SEG: {err}") from err
    mismatch = f"SEG grid does not match series {grid.series_uid}"
    size, expected = (int(ds.Rows), int(ds.Columns)), grid.shape[1:]
    if size != expected:
        raise InputError(
            path, f"{mismatch}: {size[0]}x{size[1]} pixels vs {expected[0]}x{expected[1]}"
        )
    shared = (_seq(ds, "SharedFunctionalGroupsSequence") or [None])[0]
    frames = _seq(ds, "PerFrameFunctionalGroupsSequence")
    slices: list[int] = []
    segment_of: list[int | None] = []
    for index, frame in enumerate(frames):
        problem = _frame_problem(frame, shared, grid)
        if problem:
            raise InputError(path, f"{mismatch}: {problem}")
        where = _frame_slice(index + 1, frame, shared, grid)
        if isinstance(where, str):
            raise InputError(path, f"{mismatch}: {where}")
        slices.append(where)
        segment = _functional(
            frame, shared, "SegmentIdentificationSequence", "ReferencedSegmentNumber"
        )
        segment_of.append(None if segment is None else int(segment[0]))
    if kind != "LABELMAP" and None in segment_of:
        raise InputError(path, "a SEG frame has no SegmentIdentificationSequence")
    threshold = 0.5 * float(ds.get("MaximumFractionalValue") or 255) if kind == "FRACTIONAL" else 0
    return _segments(path, seg, kind, numbers, names, slices, segment_of, threshold, grid)


def _segments(
    path: str,
    seg: Any,
    kind: str,
    numbers: list[int],
    names: dict[int, str],
    slices: list[int],
    segment_of: list[int | None],
    threshold: float,
    grid: ImageGrid,
) -> Iterator[MaskPart]:
    def frame(index: int) -> npt.NDArray[Any]:
        try:
            return np.asarray(seg.get_stored_frame(index, as_index=True))
        except (KeyError, IndexError, NotImplementedError, RuntimeError, ValueError) as err:
            raise InputError(path, f"unreadable SEG pixel data (frame {index + 1}): {err}") from err

    # a label map holds every segment in each frame: decode its frames once
    stack = [frame(i) for i in range(len(slices))] if kind == "LABELMAP" else []
    for number in numbers:
        labels = np.zeros(grid.shape, dtype=np.uint8)
        for index, (k, segment) in enumerate(zip(slices, segment_of, strict=True)):
            if kind == "LABELMAP":
                labels[k] |= stack[index] == number
            elif segment == number:
                stored = frame(index)
                labels[k] |= stored >= threshold if kind == "FRACTIONAL" else stored > 0
        if not labels.any():
            yield MaskPart(None, number, names[number], f"empty ROI {names[number]}")
        else:
            yield MaskPart(labels, number, names[number])


# --- RTSTRUCT -------------------------------------------------------------------------


def _rtstruct_parts(ds: pydicom.Dataset, grid: ImageGrid) -> Iterator[MaskPart]:
    path = str(ds.filename)
    try:
        names = {
            int(item.ROINumber): str(item.get("ROIName") or f"ROI {item.ROINumber}")
            for item in _seq(ds, "StructureSetROISequence")
        }
        contours: dict[int, list[npt.NDArray[np.float64]]] = {n: [] for n in names}
        for roi in _seq(ds, "ROIContourSequence"):
            number = int(roi.ReferencedROINumber)
            for contour in _seq(roi, "ContourSequence"):
                if contour.get("ContourGeometricType") != "CLOSED_PLANAR":
                    continue
                points = np.asarray([float(v) for v in contour.ContourData]).reshape(-1, 3)
                contours.setdefault(number, []).append(points)
    except (AttributeError, KeyError, TypeError, ValueError) as err:
        raise InputError(path, f"unreadable RTSTRUCT: {err}") from err
    if not contours:
        raise InputError(path, "RTSTRUCT without any ROI")
    return _rois(contours, names, grid)


def _rois(
    contours: dict[int, list[npt.NDArray[np.float64]]], names: dict[int, str], grid: ImageGrid
) -> Iterator[MaskPart]:
    inverse = np.linalg.inv(grid.affine).astype(np.float64)
    for number in sorted(contours):
        name = names.get(number, f"ROI {number}")
        result = rasterize(contours[number], inverse, grid.shape)
        if isinstance(result, str):
            yield MaskPart(None, number, name, f"ROI {name}: {result}")
        elif not result.any():
            yield MaskPart(None, number, name, f"empty ROI {name}")
        else:
            yield MaskPart(result, number, name)


def rasterize(
    contours: Sequence[npt.NDArray[np.float64]],
    inverse_affine: npt.NDArray[np.float64],
    shape: tuple[int, int, int],
) -> npt.NDArray[np.uint8] | str:
    """Planar contours of one ROI -> binary volume (voxel centres inside, even-odd rule).

    Parameters
    ----------
    contours : sequence of ndarray of shape (n, 3)
        Closed polygons, points in patient LPS mm.
    inverse_affine : ndarray of shape (4, 4)
        Maps LPS mm to array indices ``(x, y, z, 1)``.
    shape : tuple of int
        Volume shape ``(z, y, x)``.

    Returns
    -------
    ndarray of uint8 or str
        The mask (1 inside), or the reason a contour cannot be placed.

    Examples
    --------
    A 4 x 4 voxel square with a 2 x 2 hole, on slice 1 of an identity grid:

    >>> outer = np.array([[-0.5, -0.5, 1], [3.5, -0.5, 1], [3.5, 3.5, 1], [-0.5, 3.5, 1]])
    >>> inner = np.array([[0.5, 0.5, 1], [2.5, 0.5, 1], [2.5, 2.5, 1], [0.5, 2.5, 1]])
    >>> int(rasterize([outer, inner], np.eye(4), (3, 5, 5)).sum())
    12
    """
    out = np.zeros(shape, dtype=np.uint8)
    for i, points in enumerate(contours, start=1):
        if len(points) < 3:
            return f"contour {i} has fewer than 3 points"
        xyz = (inverse_affine @ np.column_stack([points, np.ones(len(points))]).T)[:3].T
        z = xyz[:, 2]
        k = round(float(np.median(z)))
        if float(np.max(np.abs(z - k))) > VOXEL_TOLERANCE:
            lo, hi = float(z.min()), float(z.max())
            where = f"{lo:.2f}" if abs(hi - lo) < 0.005 else f"{lo:.2f} to {hi:.2f}"
            return (
                f"contour {i} is not on one slice (z index {where}; a contour must lie within "
                f"{VOXEL_TOLERANCE} slice of a whole slice index)"
            )
        if not 0 <= k < shape[0]:
            return f"contour {i} lies outside the image (slice {k}, image has {shape[0]})"
        rows, cols = polygon(xyz[:, 1], xyz[:, 0], shape=shape[1:])
        plane = np.zeros(shape[1:], dtype=np.uint8)
        plane[rows, cols] = 1
        out[k] ^= plane
    return out
