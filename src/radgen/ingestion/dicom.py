"""DICOM files -> series -> Zarr volumes, with a quarantine for what cannot be ingested.

Files are grouped by SeriesInstanceUID and sorted by their position projected on the slice
normal (never by file name or InstanceNumber). The modality LUT (RescaleSlope/Intercept) is
applied per slice. A series whose slices disagree on orientation or size, repeat a position
with different pixels, or leave a gap goes to quarantine with the reason; the other series
are still ingested.

Header reading and volume assembly are plain functions that run on Dask workers; the
coordinator (:func:`ingest_dicom`) commits the table rows.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import logging
import math
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pydicom
from pydicom.errors import InvalidDicomError
from pydicom.pixels import get_decoder, pixel_array

from radgen.errors import ConfigError, CorruptDicomError, InputError
from radgen.ingestion.deid import PROFILE, Deidentifier, phi_values
from radgen.platform.storage import Root, file_sha256
from radgen.platform.volumes import write_volume_slices

__all__ = [
    "DicomHeader",
    "Quarantined",
    "SeriesResult",
    "assemble_series",
    "find_files",
    "plausible_range",
    "read_header",
    "scanner_batch",
]

log = logging.getLogger(__name__)

#: Files up to this size are read once for both their hash and their header.
_READ_ONCE_BYTES = 16 << 20
#: Relative tolerance on slice spacing before a series counts as having a gap.
SPACING_TOLERANCE = 0.01
#: Orientation cosines may differ by this much between slices of one series.
ORIENTATION_TOLERANCE = 1e-4

_FLOAT32_MAX = float(np.finfo(np.float32).max)

#: A DICOM UID (PS3.5 9.1): dot-separated numbers, at most 64 characters.
_UID = re.compile(r"(?=.{1,64}$)[0-9]+(\.[0-9]+)*")

#: Scanner fields that define a batch by default (see :func:`scanner_batch`).
BATCH_FIELDS = (
    "modality",
    "manufacturer",
    "manufacturer_model_name",
    "convolution_kernel",
    "kvp",
    "magnetic_field_strength",
)
#: Header fields a batch may be defined by.
BATCH_FIELD_CHOICES = (
    *BATCH_FIELDS,
    "software_versions",
    "slice_thickness",
    "repetition_time",
    "echo_time",
    "body_part",
)


@dataclass(frozen=True)
class Quarantined:
    """A file or series that was not ingested, and why."""

    path: str
    reason: str
    series_uid: str | None = None
    file_sha256: str | None = None


def acquisition_time(ds: pydicom.Dataset) -> dt.datetime | None:
    """When the image was acquired, from its DICOM dates (None without any).

    AcquisitionDateTime first, else the Acquisition, Content, Series or Study date with its
    time (midnight when the time is missing). DICOM times carry no zone unless
    TimezoneOffsetFromUTC says so; they are kept as recorded and stored as UTC.
    """
    stamp = _text(ds, "AcquisitionDateTime")
    if stamp:
        parsed = _parse_dicom_datetime(stamp[:8], stamp[8:])
        if parsed is not None:
            return parsed
    for prefix in ("Acquisition", "Content", "Series", "Study"):
        date = _text(ds, f"{prefix}Date")
        if date:
            parsed = _parse_dicom_datetime(date, _text(ds, f"{prefix}Time") or "")
            if parsed is not None:
                return parsed
    return None


def _parse_dicom_datetime(date: str, time: str) -> dt.datetime | None:
    """DA ``YYYYMMDD`` plus TM ``HHMMSS.FFFFFF`` (any prefix of it); None if not a date."""
    date = date.strip().replace(".", "")  # ACR-NEMA wrote YYYY.MM.DD
    try:
        day = dt.datetime.strptime(date[:8], "%Y%m%d")
    except ValueError:
        return None
    digits = time.strip().split("+")[0].split("-")[0].replace(":", "")
    whole, _, fraction = digits.partition(".")
    try:
        hours = int(whole[0:2] or 0)
        minutes = int(whole[2:4] or 0)
        seconds = int(whole[4:6] or 0)
        micros = int((fraction + "000000")[:6]) if fraction else 0
        return day.replace(
            hour=hours, minute=minutes, second=min(seconds, 59), microsecond=micros, tzinfo=dt.UTC
        )
    except ValueError:
        return day.replace(tzinfo=dt.UTC)


def _text(ds: pydicom.Dataset, keyword: str) -> str | None:
    value = ds.get(keyword)
    if value is None or value == "":
        return None
    if isinstance(value, pydicom.multival.MultiValue):
        return "\\".join(str(v) for v in value)
    return str(value).strip() or None


def _number(ds: pydicom.Dataset, keyword: str) -> float | None:
    value = ds.get(keyword)
    if value is None or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _floats(ds: pydicom.Dataset, keyword: str, n: int) -> tuple[float, ...] | None:
    value = ds.get(keyword)
    if value is None:
        return None
    try:
        out = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        return None
    return out if len(out) == n else None


@dataclass(frozen=True)
class DicomHeader:
    """What ingestion needs from one DICOM file, read without its pixels."""

    path: str
    sha256: str
    series_uid: str
    sop_uid: str
    study_uid: str | None
    patient_id: str | None
    modality: str
    series_description: str | None
    body_part: str | None
    rows: int
    columns: int
    position: tuple[float, float, float] | None
    orientation: tuple[float, ...] | None
    pixel_spacing: tuple[float, float] | None
    slice_thickness: float | None
    instance_number: int | None
    rescale_slope: float
    rescale_intercept: float
    bits_stored: int
    pixel_representation: int
    transfer_syntax: str | None
    image_type: str | None
    units: str | None
    manufacturer: str | None
    manufacturer_model_name: str | None
    software_versions: str | None
    kvp: float | None
    convolution_kernel: str | None
    magnetic_field_strength: float | None
    repetition_time: float | None
    echo_time: float | None
    acquired_at: dt.datetime | None = None
    frame: int | None = None
    localizer: bool = False
    phi: tuple[str, ...] = ()

    @property
    def scanner(self) -> dict[str, Any]:
        """Scanner metadata columns of the series and feature tables."""
        return {
            "manufacturer": self.manufacturer,
            "manufacturer_model_name": self.manufacturer_model_name,
            "software_versions": self.software_versions,
            "kvp": self.kvp,
            "convolution_kernel": self.convolution_kernel,
            "slice_thickness": self.slice_thickness,
            "magnetic_field_strength": self.magnetic_field_strength,
            "repetition_time": self.repetition_time,
            "echo_time": self.echo_time,
            "pixel_spacing": None if self.pixel_spacing is None else list(self.pixel_spacing),
        }


def find_files(paths: Sequence[str | Path]) -> list[str]:
    """Every regular file under `paths` (recursively), sorted, hidden files excluded.

    Raises
    ------
    InputError
        A path does not exist.
    """
    found: list[str] = []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise InputError(str(raw), "no such file or directory")
        if path.is_file():
            found.append(str(path.resolve()))
            continue
        for item in sorted(path.rglob("*")):
            if item.is_file() and not any(
                part.startswith(".") for part in item.relative_to(path).parts
            ):
                found.append(str(item.resolve()))
    return sorted(set(found))


def read_header(path: str) -> list[DicomHeader] | Quarantined:
    """Read the header of one file: one :class:`DicomHeader` per frame, or why it is unusable.

    A classic image gives one header. An enhanced multi-frame object gives one per frame,
    with the frame's plane position, orientation, pixel measures and pixel value
    transformation taken from its per-frame (else shared) functional groups.

    Parameters
    ----------
    path : str
        Local path.

    Returns
    -------
    list of DicomHeader, or Quarantined
    """
    source: str | io.BytesIO = path
    try:
        if Path(path).stat().st_size <= _READ_ONCE_BYTES:  # hash and parse one read
            data = Path(path).read_bytes()
            digest = hashlib.sha256(data).hexdigest()
            source = io.BytesIO(data)
        else:
            digest = file_sha256(path)
    except OSError as err:
        return Quarantined(path, f"unreadable: {err.strerror or err}")
    try:
        ds = pydicom.dcmread(source, stop_before_pixels=True)
    except InvalidDicomError:
        return Quarantined(path, "not DICOM (no DICM preamble or valid header)", file_sha256=digest)
    except Exception as err:  # hostile bytes raise struct.error, BytesLengthException, ...
        return Quarantined(path, f"truncated or corrupt header: {_why(err)}", file_sha256=digest)
    try:  # values are decoded on access: a corrupt element fails here
        return _header(path, digest, ds)
    except Exception as err:
        return Quarantined(path, f"corrupt header element: {_why(err)}", file_sha256=digest)


def _why(err: BaseException) -> str:
    """An exception as one short line (pydicom's messages run over several lines)."""
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= 300 else text[:299] + "…"


def _header(path: str, digest: str, ds: pydicom.Dataset) -> list[DicomHeader] | Quarantined:
    """The headers of a parsed dataset (:func:`read_header`)."""
    series_uid = _text(ds, "SeriesInstanceUID")
    sop_uid = _text(ds, "SOPInstanceUID")
    if not series_uid or not sop_uid:
        return Quarantined(path, "no SeriesInstanceUID or SOPInstanceUID", file_sha256=digest)
    for name, uid in (("SeriesInstanceUID", series_uid), ("SOPInstanceUID", sop_uid)):
        if not _UID.fullmatch(uid):  # the series UID names its volume folder (with --no-deid)
            reason = f"{name} is not a DICOM UID (dot-separated digits, at most 64 characters)"
            return Quarantined(path, reason, file_sha256=digest)
    rows, cols = ds.get("Rows"), ds.get("Columns")
    if not rows or not cols:
        modality = _text(ds, "Modality") or "unknown modality"
        return Quarantined(path, f"not an image (no Rows/Columns; {modality})", series_uid, digest)
    meta = getattr(ds, "file_meta", None)
    transfer = (
        str(meta.TransferSyntaxUID) if meta is not None and "TransferSyntaxUID" in meta else None
    )
    unsupported = _unsupported_transfer_syntax(transfer)
    if unsupported:
        return Quarantined(path, unsupported, series_uid, digest)
    image_type = _text(ds, "ImageType")
    base = DicomHeader(
        path=path,
        sha256=digest,
        series_uid=series_uid,
        sop_uid=sop_uid,
        study_uid=_text(ds, "StudyInstanceUID"),
        patient_id=_text(ds, "PatientID"),
        modality=_text(ds, "Modality") or "OT",
        series_description=_text(ds, "SeriesDescription"),
        body_part=_text(ds, "BodyPartExamined"),
        rows=int(rows),
        columns=int(cols),
        position=_position(ds),
        orientation=_floats(ds, "ImageOrientationPatient", 6),
        pixel_spacing=_pair(ds),
        slice_thickness=_number(ds, "SliceThickness"),
        instance_number=_int(ds.get("InstanceNumber")),
        rescale_slope=_number(ds, "RescaleSlope") or 1.0,
        rescale_intercept=_number(ds, "RescaleIntercept") or 0.0,
        bits_stored=int(ds.get("BitsStored") or ds.get("BitsAllocated") or 16),
        pixel_representation=int(ds.get("PixelRepresentation") or 0),
        transfer_syntax=transfer,
        image_type=image_type,
        units=_text(ds, "RescaleType") or ("HU" if _text(ds, "Modality") == "CT" else None),
        manufacturer=_text(ds, "Manufacturer"),
        manufacturer_model_name=_text(ds, "ManufacturerModelName"),
        software_versions=_text(ds, "SoftwareVersions"),
        kvp=_number(ds, "KVP"),
        convolution_kernel=_text(ds, "ConvolutionKernel"),
        magnetic_field_strength=_number(ds, "MagneticFieldStrength"),
        repetition_time=_number(ds, "RepetitionTime"),
        echo_time=_number(ds, "EchoTime"),
        acquired_at=acquisition_time(ds),
        localizer="LOCALIZER" in (image_type or "").upper().split("\\"),
        phi=phi_values(ds),
    )
    n_frames = _int(ds.get("NumberOfFrames")) or 1
    if "PerFrameFunctionalGroupsSequence" in ds:
        return _frames(ds, base, n_frames)
    if n_frames > 1:
        return Quarantined(
            path,
            f"multi-frame object ({n_frames} frames) without per-frame functional groups: "
            "no position per frame",
            series_uid,
            digest,
        )
    return [base]


def _unsupported_transfer_syntax(transfer: str | None) -> str | None:
    """Why pixels in this transfer syntax cannot be decoded here (None when they can)."""
    if transfer is None:
        return None
    uid = pydicom.uid.UID(transfer)
    try:
        decoder = get_decoder(uid)
    except NotImplementedError:
        return f"unsupported transfer syntax {uid.name} ({transfer})"
    if not decoder.is_available:
        return f"unsupported transfer syntax {uid.name} ({transfer}): no decoder installed"
    return None


def _int(value: Any) -> int | None:
    try:
        return None if value in (None, "") else int(value)
    except (TypeError, ValueError):
        return None


def _position(ds: pydicom.Dataset) -> tuple[float, float, float] | None:
    position = _floats(ds, "ImagePositionPatient", 3)
    return None if position is None else (position[0], position[1], position[2])


def _pair(ds: pydicom.Dataset) -> tuple[float, float] | None:
    spacing = _floats(ds, "PixelSpacing", 2)
    return None if spacing is None else (spacing[0], spacing[1])


def _group(item: pydicom.Dataset | None, shared: pydicom.Dataset | None, name: str) -> Any:
    """A functional group macro of one frame: its per-frame item, else the shared one."""
    for source in (item, shared):
        if source is not None and name in source and len(source[name].value):
            return source[name].value[0]
    return None


def _frames(ds: pydicom.Dataset, base: DicomHeader, n_frames: int) -> list[DicomHeader]:
    """One header per frame of an enhanced multi-frame object."""
    per_frame = ds.PerFrameFunctionalGroupsSequence
    shared_seq = ds.get("SharedFunctionalGroupsSequence")
    shared = shared_seq[0] if shared_seq else None
    out = []
    for index in range(n_frames):
        item = per_frame[index] if index < len(per_frame) else None
        plane = _group(item, shared, "PlanePositionSequence")
        orient = _group(item, shared, "PlaneOrientationSequence")
        measures = _group(item, shared, "PixelMeasuresSequence")
        value = _group(item, shared, "PixelValueTransformationSequence")
        out.append(
            replace(
                base,
                frame=index,
                position=_position(plane) if plane is not None else base.position,
                orientation=(
                    _floats(orient, "ImageOrientationPatient", 6)
                    if orient is not None
                    else base.orientation
                ),
                pixel_spacing=_pair(measures) if measures is not None else base.pixel_spacing,
                slice_thickness=(
                    _number(measures, "SliceThickness")
                    if measures is not None
                    else base.slice_thickness
                ),
                rescale_slope=(
                    _number(value, "RescaleSlope") or 1.0
                    if value is not None
                    else base.rescale_slope
                ),
                rescale_intercept=(
                    _number(value, "RescaleIntercept") or 0.0
                    if value is not None
                    else base.rescale_intercept
                ),
            )
        )
    return out


def read_headers(paths: Sequence[str]) -> list[DicomHeader | Quarantined]:
    """Read many headers (one Dask task handles a batch of files)."""
    out: list[DicomHeader | Quarantined] = []
    for path in paths:
        read = read_header(path)
        if isinstance(read, Quarantined):
            out.append(read)
        else:
            out.extend(read)
    return out


def scanner_batch(
    header_or_row: DicomHeader | dict[str, Any], fields: Sequence[str] = BATCH_FIELDS
) -> tuple[str, str]:
    """Batch id and readable label derived from scanner metadata.

    By default the batch is the acquisition and reconstruction setup that shifts feature
    values: modality, manufacturer, model, reconstruction kernel, kVp (CT) and field strength
    (MR); slice thickness and pixel spacing stay on every row as covariates instead. Which
    fields define a batch is configurable (``radgen ingest dicom --batch-fields``, or
    ``scanner_batch_fields`` in ``ROOT/config/radgen.yaml``), any of
    :data:`BATCH_FIELD_CHOICES`.

    Returns
    -------
    tuple of str
        ``("sb-1a2b3c4d", "CT | ACME | Scanner 9 | B30f | 120 kV")``.
    """
    values = asdict(header_or_row) if isinstance(header_or_row, DicomHeader) else header_or_row
    parts = {k: _present(values.get(k)) for k in fields}
    norm = [
        "" if v is None else (f"{v:g}" if isinstance(v, float) else str(v).strip().upper())
        for v in parts.values()
    ]
    if tuple(fields) != BATCH_FIELDS:  # another definition gives other ids
        norm = [f"{k}={v}" for k, v in zip(fields, norm, strict=True)]
    digest = hashlib.sha256("|".join(norm).encode()).hexdigest()[:8]
    units = {"kvp": " kV", "magnetic_field_strength": " T", "slice_thickness": " mm"}
    label_bits = [
        f"{v:g}{units.get(k, '')}" if isinstance(v, float) else str(v)
        for k, v in parts.items()
        if v not in (None, "")
    ]
    return f"sb-{digest}", " | ".join(label_bits) or "unknown scanner"


def batch_fields(raw: str | Sequence[str] | None) -> tuple[str, ...]:
    """Validated batch field list from a comma-separated string or a list (None: default).

    Raises
    ------
    ConfigError
        A name is not one of :data:`BATCH_FIELD_CHOICES`, or the list is empty.
    """
    if raw is None:
        return BATCH_FIELDS
    names = [n.strip() for n in (raw.split(",") if isinstance(raw, str) else raw) if n.strip()]
    unknown = [n for n in names if n not in BATCH_FIELD_CHOICES]
    if unknown or not names:
        raise ConfigError(
            "scanner batch fields",
            f"{', '.join(unknown) or 'empty list'}: choose from {', '.join(BATCH_FIELD_CHOICES)}",
        )
    return tuple(dict.fromkeys(names))


def _present(value: Any) -> Any:
    """None for missing values, including the NaN pandas uses for them."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return value


@dataclass
class SeriesResult:
    """What assembling one series produced: rows to commit, or the reason it failed."""

    series_uid: str
    series_row: dict[str, Any] | None = None
    instance_rows: list[dict[str, Any]] = field(default_factory=list)
    image_stats: dict[str, Any] | None = None
    quarantined: list[Quarantined] = field(default_factory=list)


def _normal(orientation: Sequence[float]) -> npt.NDArray[np.float64]:
    row = np.asarray(orientation[:3], dtype=float)
    col = np.asarray(orientation[3:], dtype=float)
    n = np.cross(row, col)
    norm = float(np.linalg.norm(n))
    if norm < 1e-6:
        raise ValueError("degenerate ImageOrientationPatient")
    return n / norm


def _stored_dtype(headers: Sequence[DicomHeader]) -> np.dtype[Any]:
    """Smallest exact dtype for the rescaled values, decided from the headers alone."""
    integral = all(
        float(h.rescale_slope).is_integer() and float(h.rescale_intercept).is_integer()
        for h in headers
    )
    if not integral:
        return np.dtype(np.float32)
    lo, hi = 0.0, 0.0
    for h in headers:
        bits = max(1, min(h.bits_stored, 32))
        s_lo, s_hi = (
            (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
            if h.pixel_representation
            else (0, 2**bits - 1)
        )
        ends = [
            h.rescale_slope * s_lo + h.rescale_intercept,
            h.rescale_slope * s_hi + h.rescale_intercept,
        ]
        lo, hi = min(lo, *ends), max(hi, *ends)
    for candidate in (np.int16, np.int32):
        info = np.iinfo(candidate)
        if info.min <= lo and hi <= info.max:
            return np.dtype(candidate)
    return np.dtype(np.float64)


def _pixels(header: DicomHeader) -> npt.NDArray[Any]:
    try:
        if header.frame is not None:  # one frame, without decoding the others
            arr = pixel_array(header.path, index=header.frame)
        else:
            ds = pydicom.dcmread(header.path)
            if (
                "PixelData" not in ds
                and "FloatPixelData" not in ds
                and "DoubleFloatPixelData" not in ds
            ):
                raise CorruptDicomError(header.path, "no Pixel Data element")
            arr = ds.pixel_array
    except CorruptDicomError:
        raise
    except NotImplementedError as err:
        raise CorruptDicomError(
            header.path, f"unsupported transfer syntax {header.transfer_syntax}: {_why(err)}"
        ) from err
    except Exception as err:  # decoders raise what they like on hostile bytes
        raise CorruptDicomError(
            header.path, f"truncated or unreadable pixel data: {_why(err)}"
        ) from err
    if arr.shape != (header.rows, header.columns):
        raise CorruptDicomError(
            header.path,
            f"pixel array shape {arr.shape} is not one {header.rows}x{header.columns} "
            "grey-level frame",
        )
    return np.asarray(arr)


def _rescaled(header: DicomHeader, dtype: np.dtype[Any]) -> npt.NDArray[Any]:
    """Pixels after the modality LUT: float32/64 for `dtype` floats, else exact integers.

    Integers come back in a working type wide enough for the arithmetic (int32, or int64
    for 32-bit pixels); :func:`assemble_series` checks the range before narrowing.
    """
    raw = _pixels(header)
    if dtype.kind == "f":
        return (raw.astype(np.float64) * header.rescale_slope + header.rescale_intercept).astype(
            dtype
        )
    work: npt.NDArray[np.signedinteger[Any]] = raw.astype(
        np.int64 if raw.dtype.itemsize >= 4 else np.int32
    )
    slope, intercept = int(header.rescale_slope), int(header.rescale_intercept)
    if slope != 1:
        np.multiply(work, slope, out=work)
    if intercept:
        np.add(work, intercept, out=work)
    return work


class _Widen(Exception):
    """A slice holds values outside the optimistic stored type: write the series again wider."""


def _series_folder(headers: Sequence[DicomHeader]) -> str:
    parents = {str(Path(h.path).parent) for h in headers}
    return parents.pop() if len(parents) == 1 else str(Path(headers[0].path).parent)


def _geometry_problem(headers: Sequence[DicomHeader]) -> str | None:
    first = headers[0]
    geometry = [[*h.position, *h.orientation] for h in headers if h.position and h.orientation]
    if len(geometry) < len(headers):
        return "missing ImagePositionPatient or ImageOrientationPatient"
    values = np.asarray(geometry, dtype=np.float64)  # x, y, z, then the 6 cosines
    if not np.isfinite(values).all():
        return "non-finite ImagePositionPatient or ImageOrientationPatient"
    if float(np.linalg.norm(np.cross(values[0, 3:6], values[0, 6:9]))) < 1e-6:
        return f"degenerate ImageOrientationPatient {values[0, 3:].tolist()}"
    if any((h.rows, h.columns) != (first.rows, first.columns) for h in headers):
        return "inconsistent image size between slices"
    ref = np.asarray(first.orientation)
    if any(
        np.max(np.abs(np.asarray(h.orientation) - ref)) > ORIENTATION_TOLERANCE for h in headers
    ):
        return "inconsistent orientation between slices"
    if any(h.pixel_spacing != first.pixel_spacing for h in headers):
        return "inconsistent pixel spacing between slices"
    if first.pixel_spacing is None:
        return "missing PixelSpacing"
    if not all(math.isfinite(v) and v > 0 for v in first.pixel_spacing):
        return f"PixelSpacing {list(first.pixel_spacing)} is not positive"
    for h in headers:  # the largest rescaled value must fit a float32 (NaN fails too)
        top = abs(h.rescale_slope) * 2.0 ** max(1, min(h.bits_stored, 64))
        if not top + abs(h.rescale_intercept) < _FLOAT32_MAX:
            return (
                f"RescaleSlope {h.rescale_slope:g} / RescaleIntercept {h.rescale_intercept:g} "
                "out of range: rescaled values overflow"
            )
    return None


def assemble_series(
    headers: Sequence[DicomHeader],
    root_url: str,
    *,
    run_id: str,
    deid: Deidentifier | None = None,
    batch_fields: Sequence[str] = BATCH_FIELDS,
    progress: Callable[[int], None] | None = None,
) -> SeriesResult:
    """Sort, check and write one series as a Zarr volume (runs on a Dask worker).

    Parameters
    ----------
    headers : sequence of DicomHeader
        Every slice (file or frame) of one SeriesInstanceUID, localizers excluded.
    root_url : str
        Catalog root (the worker opens its own filesystem).
    run_id : str
        Run the rows belong to.
    deid : Deidentifier, optional
        De-identify what is stored (see :mod:`radgen.ingestion.deid`); None keeps the
        identifiers (``--no-deid``).
    batch_fields : sequence of str
        Fields that define the scanner batch (:func:`scanner_batch`).
    progress : callable, optional
        Called with the number of slices written.

    Returns
    -------
    SeriesResult
        Rows for ``series``/``instances`` and image statistics, or quarantine entries.
    """
    first = headers[0]
    phi = sorted({v for h in headers for v in h.phi})

    def clean(text: str) -> str:
        return text if deid is None else deid.redact(text, phi, first.patient_id)

    def new_uid(value: str) -> str:
        return value if deid is None else deid.uid(value)

    uid = new_uid(first.series_uid)
    folder = clean(_series_folder(headers))
    result = SeriesResult(series_uid=uid)

    def reject(reason: str) -> SeriesResult:
        result.quarantined.append(Quarantined(folder, clean(reason), uid))
        return result

    problem = _geometry_problem(headers)
    if problem:
        return reject(problem)
    assert first.orientation is not None
    assert first.pixel_spacing is not None
    normal = _normal(first.orientation)
    ordered = sorted(headers, key=lambda h: float(np.dot(h.position, normal)))  # type: ignore[arg-type]
    positions = np.array([float(np.dot(h.position, normal)) for h in ordered])  # type: ignore[arg-type]

    safe = _stored_dtype(ordered)
    # CT headers allow 0..65535 + intercept, which needs int32, but real values fit int16:
    # try int16 first and write again as `safe` if a slice proves otherwise.
    dtype = np.dtype(np.int16) if safe == np.dtype(np.int32) else safe
    # Duplicate positions: identical pixels are the same slice twice; different pixels are an error.
    keep: list[DicomHeader] = [ordered[0]]
    keep_pos = [positions[0]]
    for h, pos in zip(ordered[1:], positions[1:], strict=True):
        if abs(pos - keep_pos[-1]) < 1e-3:
            prev = keep[-1]
            try:
                same = np.array_equal(_rescaled(prev, dtype), _rescaled(h, dtype))
            except CorruptDicomError as err:
                return reject(f"{err.path}: {err.reason}")
            if not same:
                return reject(
                    f"duplicate position {pos:.3f} mm with different pixels: {prev.path}, {h.path}"
                )
            log.info("%s: %s duplicates %s; kept one", uid, clean(h.path), clean(prev.path))
            continue
        keep.append(h)
        keep_pos.append(pos)
    ordered, positions = keep, np.asarray(keep_pos)

    tilt = 0.0
    if len(ordered) > 1:
        gaps = np.diff(positions)
        step = float(np.median(gaps))
        if step <= 0:
            return reject("slices share one position")
        worst = float(np.max(np.abs(gaps - step)))
        if worst > max(SPACING_TOLERANCE * step, 1e-3):
            at = int(np.argmax(np.abs(gaps - step)))
            return reject(
                f"uneven slice spacing (missing slice?): gap of {gaps[at]:.3f} mm after slice {at} "
                f"where {step:.3f} mm is typical"
            )
        spacing_cv = float(np.std(gaps) / step)
        tilt = _gantry_tilt(ordered, normal)
        if tilt > 0:
            log.warning("%s: gantry tilt of %.2f degrees (volume kept unsheared)", uid, tilt)
    else:
        thickness = first.slice_thickness
        step = thickness if thickness and math.isfinite(thickness) and thickness > 0 else 1.0
        spacing_cv = 0.0

    shape = (len(ordered), first.rows, first.columns)
    row_dir = np.asarray(first.orientation[:3])
    col_dir = np.asarray(first.orientation[3:])
    direction = np.column_stack([row_dir, col_dir, normal])
    spacing = [step, float(first.pixel_spacing[0]), float(first.pixel_spacing[1])]
    stats: dict[str, Any] = {}

    def planes(stored: np.dtype[Any]) -> Iterator[npt.NDArray[Any]]:
        stats.update(n_voxels=0, n_nonfinite=0, min_value=np.inf, max_value=-np.inf)
        limits = np.iinfo(stored) if stored.kind in "iu" else None
        for i, h in enumerate(ordered):
            plane = _rescaled(h, stored)
            stats["n_voxels"] += int(plane.size)
            if limits is None:
                finite = np.isfinite(plane)
                stats["n_nonfinite"] += int(plane.size - int(finite.sum()))
                lo, hi = (
                    (float(plane[finite].min()), float(plane[finite].max()))
                    if finite.any()
                    else (np.inf, -np.inf)
                )
            else:
                lo, hi = float(plane.min()), float(plane.max())
                if lo < limits.min or hi > limits.max:
                    raise _Widen
                plane = plane.astype(stored)
            stats["min_value"] = min(stats["min_value"], lo)
            stats["max_value"] = max(stats["max_value"], hi)
            if progress is not None:
                progress(i + 1)
            yield plane

    rel = f"images/{uid}.zarr"
    sop_uids = [new_uid(h.sop_uid) for h in ordered]
    attrs = {
        "series_uid": uid,
        "spacing": spacing,
        "origin": [float(v) for v in ordered[0].position],  # type: ignore[union-attr]
        "direction": direction.tolist(),
        "modality": first.modality,
        "units": first.units,
        "rescale": [[h.rescale_slope, h.rescale_intercept] for h in ordered],
        "sop_instance_uids": sop_uids,
        "frame_numbers": [1 if h.frame is None else h.frame + 1 for h in ordered],
        "run_id": run_id,
    }
    root = Root.from_string(root_url)
    try:
        try:
            write_volume_slices(
                root, rel, planes(dtype), shape=shape, dtype=dtype, name="image", attrs=attrs
            )
        except _Widen:
            log.info("%s: values beyond %s; stored as %s", uid, dtype, safe)
            write_volume_slices(
                root, rel, planes(safe), shape=shape, dtype=safe, name="image", attrs=attrs
            )
    except CorruptDicomError as err:
        return reject(f"{err.path}: {err.reason}")

    now = dt.datetime.now(dt.UTC)
    batch, _ = scanner_batch(first, batch_fields)
    content = hashlib.sha256("".join(sorted(h.sha256 for h in headers)).encode()).hexdigest()
    acquired = min((h.acquired_at for h in headers if h.acquired_at), default=None)
    if acquired is not None and deid is not None:  # modified dates: one shift per subject
        acquired -= deid.date_shift(first.patient_id)
    result.series_row = {
        "series_uid": uid,
        "study_uid": None if first.study_uid is None else new_uid(first.study_uid),
        "subject_id": first.patient_id if deid is None else deid.subject(first.patient_id),
        "modality": first.modality,
        "series_description": (
            None if first.series_description is None else clean(first.series_description)
        ),
        "body_part": first.body_part,
        "n_instances": len(ordered),
        "shape": list(shape),
        "spacing": spacing,
        "rows": first.rows,
        "columns": first.columns,
        "spacing_z": spacing[0],
        "spacing_y": spacing[1],
        "spacing_x": spacing[2],
        "oblique": _oblique(direction),
        "gantry_tilt_deg": tilt,
        "origin": attrs["origin"],
        "direction": direction.ravel().tolist(),
        "units": first.units,
        "zarr_path": rel,
        "content_hash": content,
        "deidentification": None if deid is None else PROFILE,
        **first.scanner,
        "scanner_batch": batch,
        "acquired_at": acquired,
        "run_id": run_id,
        "ingested_at": now,
    }
    result.instance_rows = [
        {
            "sop_uid": sop,
            "frame_number": 1 if h.frame is None else h.frame + 1,
            "series_uid": uid,
            "slice_index": i,
            "instance_number": h.instance_number,
            "position": list(h.position) if h.position else None,
            "rescale_slope": h.rescale_slope,
            "rescale_intercept": h.rescale_intercept,
            "transfer_syntax": h.transfer_syntax,
            "source_path": clean(h.path),
            "file_sha256": h.sha256,
            "run_id": run_id,
        }
        for i, (h, sop) in enumerate(zip(ordered, sop_uids, strict=True))
    ]
    plausible = plausible_range(first.modality, stats["min_value"], stats["max_value"])
    result.image_stats = {
        "series_uid": uid,
        "modality": first.modality,
        **stats,
        "spacing_cv": spacing_cv,
        "in_plausible_range": plausible,
    }
    return result


#: Tilt below this (degrees) is rounding in the positions, not a tilted gantry.
TILT_TOLERANCE_DEG = 0.1


def _gantry_tilt(ordered: Sequence[DicomHeader], normal: npt.NDArray[np.float64]) -> float:
    """Angle between the slice normal and the first-to-last position step, in degrees."""
    step = np.asarray(ordered[-1].position, dtype=float) - np.asarray(
        ordered[0].position, dtype=float
    )
    length = float(np.linalg.norm(step))
    if length == 0:
        return 0.0
    cos = min(1.0, abs(float(np.dot(step / length, normal))))
    angle = math.degrees(math.acos(cos))
    return round(angle, 3) if angle > TILT_TOLERANCE_DEG else 0.0


def _oblique(direction: npt.NDArray[np.float64]) -> bool:
    """Whether some array axis is not along a patient axis (beyond 1e-3 in its cosines)."""
    cosines = np.abs(direction)
    return bool(np.any((cosines > 1e-3) & (cosines < 1 - 1e-3)))


def plausible_range(modality: str, lo: float, hi: float) -> bool:
    """Whether the value range is plausible for the modality (CT: Hounsfield units)."""
    if modality == "CT":
        return lo >= -3024 and hi <= 30000
    if modality == "PT":
        return lo >= 0
    return True


def group_by_series(headers: Iterable[DicomHeader]) -> dict[str, list[DicomHeader]]:
    """Headers grouped by SeriesInstanceUID, each group ordered by path."""
    groups: dict[str, list[DicomHeader]] = defaultdict(list)
    for h in headers:
        groups[h.series_uid].append(h)
    return {uid: sorted(items, key=lambda h: h.path) for uid, items in sorted(groups.items())}
