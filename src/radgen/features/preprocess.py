"""Image pre-processing before feature extraction, in both conventions.

PyRadiomics convention (equal to PyRadiomics 3.0.1 ``RadiomicsFeatureExtractor`` to 1e-6):
:func:`pyradiomics_prepare` does what ``featureextractor.loadImage`` and ``execute`` do before
filtering, in the same order:

1. select the ROI label (``label``);
2. ``normalize``: whole-image z-score with the *sample* standard deviation, as
   ``sitk.Normalize`` (``normalizeScale``, ``removeOutliers``: :func:`pyradiomics_normalization`);
3. ``resampledPixelSpacing`` with ``interpolator`` (default ``sitkBSpline``) and
   ``padDistance`` (:func:`pyradiomics_resample`, SimpleITK itself, same grid as
   ``imageoperations.resampleImage``), or else ``preCrop``;
4. the checks of ``imageoperations.checkMask`` (``minimumROIDimensions``, default 2;
   ``minimumROISize``);
5. ``resegmentRange`` / ``resegmentMode`` (``absolute``, ``relative``, ``sigma``) as
   ``imageoperations.resegmentMask``, checked again; ``resegmentShape`` picks the mask of the
   shape features.

Unlike PyRadiomics nothing is done to the whole image that a crop can do: normalisation is
applied lazily to the crops (:meth:`PyradiomicsInput.values`; only its mean and SD are
whole-image statistics), and resampling interpolates a crop of the input that extends
:data:`RESAMPLE_MARGIN` voxels beyond the output grid (the B-spline prefilter is an IIR filter
whose effect decays as ``0.268^n``; from 20 voxels the results were bit-identical to resampling
the whole image). Where the last bit of a sample position can decide a value (truncation to
an integer pixel type of a value that is an integer up to rounding, nearest-neighbour ties)
the crop keeps the image origin, so SimpleITK computes the same positions as PyRadiomics.

IBSI convention (IBSI 1 sections 2.4-2.6): :func:`ibsi_resample` (grid centres aligned,
mask interpolated linearly and thresholded at 0.5), :func:`zscore_within_roi` (setting
``normalizeWithinROI``), :func:`resegment_range` and :func:`resegment_outliers` returning the
intensity mask.

Arrays are (z, y, x) and spacings (z, y, x) in mm, except ``resampledPixelSpacing``, which
keeps the PyRadiomics (x, y, z) order so that PyRadiomics parameter files mean the same.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
import scipy.ndimage as ndi
import SimpleITK as sitk

from radgen.errors import ConfigError, EmptyRoiError, InputError

__all__ = [
    "PYRADIOMICS_SETTINGS",
    "RESAMPLE_MARGIN",
    "Normalization",
    "PyradiomicsInput",
    "Resampled",
    "as_image",
    "as_spacing",
    "check_roi",
    "expand_region",
    "ibsi_grid",
    "ibsi_resample",
    "pyradiomics_normalization",
    "pyradiomics_prepare",
    "pyradiomics_resample",
    "pyradiomics_resegment",
    "relative_box",
    "resegment_outliers",
    "resegment_range",
    "roi_bbox",
    "select_label",
    "sitk_image",
    "zscore_within_roi",
]

#: Input voxels interpolated beyond the output grid when resampling a crop instead of the
#: whole image (covers the cubic B-spline prefilter to below double precision and the
#: support of every SimpleITK interpolator PyRadiomics accepts).
RESAMPLE_MARGIN = 32

#: Every key of PyRadiomics' parameter schema (``setting`` and ``voxelSetting``), with the
#: extractor's defaults where it has one. Keys of feature classes pass through untouched.
PYRADIOMICS_SETTINGS: Mapping[str, Any] = {
    "minimumROIDimensions": 2,
    "minimumROISize": None,
    "geometryTolerance": None,
    "correctMask": False,
    "additionalInfo": True,
    "label": 1,
    "label_channel": 0,
    "binWidth": 25,
    "binCount": None,
    "normalize": False,
    "normalizeScale": 1,
    "removeOutliers": None,
    "resampledPixelSpacing": None,
    "interpolator": "sitkBSpline",
    "padDistance": 5,
    "distances": [1],
    "force2D": False,
    "force2Ddimension": 0,
    "resegmentRange": None,
    "resegmentMode": "absolute",
    "resegmentShape": False,
    "preCrop": False,
    "sigma": [],
    "start_level": 0,
    "level": 1,
    "wavelet": "coif1",
    "gradientUseSpacing": True,
    "lbp2DRadius": 1,
    "lbp2DSamples": 8,
    "lbp2DMethod": "uniform",
    "lbp3DLevels": 2,
    "lbp3DIcosphereRadius": 1,
    "lbp3DIcosphereSubdivision": 1,
    "voxelArrayShift": 0,
    "symmetricalGLCM": True,
    "weightingNorm": None,
    "gldm_a": 0,
    "kernelRadius": 1,
    "maskedKernel": True,
    "initValue": 0,
    "voxelBatch": -1,
}

_INTERPOLATORS = (
    "sitkNearestNeighbor",
    "sitkLinear",
    "sitkBSpline",
    "sitkGaussian",
    "sitkLabelGaussian",
    "sitkHammingWindowedSinc",
    "sitkCosineWindowedSinc",
    "sitkWelchWindowedSinc",
    "sitkLanczosWindowedSinc",
    "sitkBlackmanWindowedSinc",
)

#: every SimpleITK interpolator enum (their values changed between SimpleITK versions)
_INTERPOLATOR_ENUMS = frozenset(
    {
        *_INTERPOLATORS,
        "sitkBSpline1",
        "sitkBSpline2",
        "sitkBSpline3",
        "sitkBSpline4",
        "sitkBSpline5",
        "sitkLabelLinear",
        "sitkBSplineResampler",
        "sitkBSplineResamplerOrder1",
        "sitkBSplineResamplerOrder2",
        "sitkBSplineResamplerOrder3",
        "sitkBSplineResamplerOrder4",
        "sitkBSplineResamplerOrder5",
    }
)

#: dtypes SimpleITK (and hence PyRadiomics) holds as they are
_SITK_DTYPES = {
    np.dtype(t)
    for t in (
        np.int8,
        np.uint8,
        np.int16,
        np.uint16,
        np.int32,
        np.uint32,
        np.int64,
        np.uint64,
        np.float32,
        np.float64,
    )
}


# ---------------------------------------------------------------------------------------------
# shared helpers


def as_spacing(spacing: Sequence[float]) -> tuple[float, float, float]:
    """Validate a (z, y, x) voxel size: three positive finite numbers."""
    try:
        sp = tuple(float(s) for s in spacing)
    except (TypeError, ValueError) as err:
        raise InputError(
            "spacing", f"expected three numbers (z, y, x) in mm, got {spacing!r}"
        ) from err
    if len(sp) != 3 or not all(math.isfinite(s) and s > 0 for s in sp):
        raise InputError(
            "spacing", f"expected three positive voxel sizes (z, y, x) in mm, got {spacing!r}"
        )
    return sp[0], sp[1], sp[2]


def as_image(image: npt.ArrayLike) -> npt.NDArray[Any]:
    """A 3-D numeric array in a dtype SimpleITK keeps (float16 -> float32, bool -> uint8)."""
    arr = np.asarray(image)
    if arr.ndim != 3:
        raise InputError("image", f"expected a 3-D (z, y, x) array, got {arr.ndim} dimensions")
    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8)
    elif arr.dtype == np.float16:
        arr = arr.astype(np.float32)
    if arr.dtype not in _SITK_DTYPES:
        raise InputError("image", f"unsupported intensity dtype {arr.dtype}")
    return arr


def _image_mask(
    image: npt.ArrayLike, mask: npt.ArrayLike
) -> tuple[npt.NDArray[Any], npt.NDArray[np.bool_]]:
    img = np.asarray(image)
    roi = np.asarray(mask)
    if img.shape != roi.shape:
        raise InputError("mask", f"mask shape {roi.shape} differs from image shape {img.shape}")
    return img, roi.astype(bool, copy=False)


def roi_bbox(mask: npt.ArrayLike) -> tuple[slice, slice, slice]:
    """Bounding box of the non-zero voxels of a 3-D mask, as slices (z, y, x).

    Raises
    ------
    EmptyRoiError
        If the mask is empty.

    Examples
    --------
    >>> m = np.zeros((3, 4, 5), bool); m[1, 1:3, 2] = True
    >>> roi_bbox(m)
    (slice(1, 2, None), slice(1, 3, None), slice(2, 3, None))
    """
    roi = np.asarray(mask)
    if roi.ndim != 3:
        raise InputError("mask", f"expected a 3-D (z, y, x) mask, got {roi.ndim} dimensions")
    out = []
    for axis in range(3):
        other = tuple(a for a in range(3) if a != axis)
        hits = np.flatnonzero(np.any(roi, axis=other))
        if hits.size == 0:
            raise EmptyRoiError("mask", "the ROI has no voxel")
        out.append(slice(int(hits[0]), int(hits[-1]) + 1))
    return out[0], out[1], out[2]


def expand_region(
    box: Sequence[slice], margin: Sequence[int], shape: Sequence[int]
) -> tuple[slice, slice, slice]:
    """`box` grown by `margin` voxels per axis on both sides, clipped to `shape`."""
    out = [
        slice(max(int(b.start) - int(m), 0), min(int(b.stop) + int(m), int(n)))
        for b, m, n in zip(box, margin, shape, strict=True)
    ]
    return out[0], out[1], out[2]


def relative_box(inner: Sequence[slice], outer: Sequence[slice]) -> tuple[slice, slice, slice]:
    """`inner` expressed in the coordinates of the crop `outer`."""
    out = [
        slice(int(i.start) - int(o.start), int(i.stop) - int(o.start))
        for i, o in zip(inner, outer, strict=True)
    ]
    return out[0], out[1], out[2]


def sitk_image(array: npt.NDArray[Any], spacing: Sequence[float]) -> sitk.Image:
    """SimpleITK image of a (z, y, x) array with (z, y, x) spacing, origin 0."""
    img = sitk.GetImageFromArray(np.ascontiguousarray(array))
    img.SetSpacing(tuple(float(s) for s in spacing[::-1]))
    return img


# ---------------------------------------------------------------------------------------------
# PyRadiomics convention


@dataclass(frozen=True)
class Normalization:
    r"""PyRadiomics ``imageoperations.normalizeImage``, applied voxel by voxel.

    ``f(x) = s * clip((x - mu) / sigma, -n, n)`` with ``mu`` and ``sigma`` the mean and
    *sample* standard deviation of the whole image (``sitk.Normalize``), ``n`` =
    ``removeOutliers`` (no clipping when None) and ``s`` = ``normalizeScale``.
    """

    mean: float
    sigma: float
    scale: float = 1.0
    outliers: float | None = None

    def apply(self, values: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Normalised intensities (float64), with SimpleITK's arithmetic."""
        out = (np.asarray(values, dtype=np.float64) + (-self.mean)) * (1.0 / self.sigma)
        if self.outliers is not None:
            out = np.clip(out, -self.outliers, self.outliers)
        out = out * float(self.scale)
        return out


def pyradiomics_normalization(
    image: npt.ArrayLike, *, normalizeScale: float = 1, removeOutliers: float | None = None
) -> Normalization:
    """Whole-image statistics of PyRadiomics ``normalize`` (``sitk.StatisticsImageFilter``).

    Raises
    ------
    InputError
        A constant image (zero standard deviation).
    ConfigError
        Non-positive `normalizeScale` or `removeOutliers`.
    """
    if not float(normalizeScale) > 0:
        raise ConfigError("normalizeScale", f"must be positive, got {normalizeScale!r}")
    if removeOutliers is not None and not float(removeOutliers) > 0:
        raise ConfigError("removeOutliers", f"must be positive, got {removeOutliers!r}")
    stats = sitk.StatisticsImageFilter()
    stats.Execute(sitk.GetImageFromArray(np.ascontiguousarray(as_image(image))))
    sigma = float(stats.GetSigma())
    if not sigma > 0:
        raise InputError("image", "cannot normalize a constant image (standard deviation 0)")
    outliers = None if removeOutliers is None else float(removeOutliers)
    return Normalization(float(stats.GetMean()), sigma, float(normalizeScale), outliers)


@dataclass(frozen=True)
class PyradiomicsInput:
    """An image and ROI after PyRadiomics' pre-processing, before filtering.

    Attributes
    ----------
    image : ndarray (z, y, x)
        The image as PyRadiomics' filters see it: the whole input (a view, not a copy), or the
        resampled or pre-cropped region. Intensities before `normalization`.
    normalization : Normalization or None
        Applied by :meth:`values` (None: nothing to apply, e.g. already applied before
        resampling).
    mask : ndarray of bool
        The intensity ROI (after re-segmentation), same grid as `image`.
    shape_mask : ndarray of bool
        The ROI of the shape features: the mask before re-segmentation unless
        ``resegmentShape`` (PyRadiomics crops it with `bbox`, the bounding box of `mask`).
    spacing : tuple of 3 floats
        Voxel size (z, y, x) in mm of `image`.
    bbox : tuple of 3 slices
        Bounding box of `mask`, where PyRadiomics crops every filtered image.
    """

    image: npt.NDArray[Any]
    normalization: Normalization | None
    mask: npt.NDArray[np.bool_]
    shape_mask: npt.NDArray[np.bool_]
    spacing: tuple[float, float, float]
    bbox: tuple[slice, slice, slice]

    @property
    def shape(self) -> tuple[int, int, int]:
        """Shape (z, y, x) of the image."""
        s = self.image.shape
        return int(s[0]), int(s[1]), int(s[2])

    def values(self, region: Sequence[slice] | None = None) -> npt.NDArray[Any]:
        """Intensities of `region` (default: the bounding box), normalised if requested.

        The dtype is the input's unless normalised (float64), as in PyRadiomics.
        """
        box = tuple(self.bbox if region is None else region)
        crop = self.image[box]
        if self.normalization is None:
            return np.array(crop)
        return self.normalization.apply(crop)

    def max_abs(self) -> float:
        """``max |x|`` over the whole (normalised) image, as float64."""
        lo = np.min(self.image)
        hi = np.max(self.image)
        ends = np.asarray([lo, hi], dtype=np.float64)
        if self.normalization is not None:
            ends = self.normalization.apply(ends)  # monotonic: the extremes stay extremes
        return float(np.max(np.abs(ends)))

    def mask_crop(self) -> npt.NDArray[np.bool_]:
        """The intensity ROI cropped to `bbox`."""
        return np.array(self.mask[self.bbox])

    def shape_mask_crop(self) -> npt.NDArray[np.bool_]:
        """The shape ROI cropped to `bbox`, as PyRadiomics passes it to the shape class."""
        return np.array(self.shape_mask[self.bbox])


def check_roi(
    mask: npt.ArrayLike,
    *,
    minimumROIDimensions: int = 2,
    minimumROISize: int | None = None,
) -> tuple[slice, slice, slice]:
    """The checks of PyRadiomics ``imageoperations.checkMask``; returns the bounding box.

    Raises
    ------
    EmptyRoiError
        No voxel in the ROI.
    InputError
        A single voxel, fewer dimensions of extent > 1 than `minimumROIDimensions`, or no
        more voxels than `minimumROISize`.
    """
    if int(minimumROIDimensions) not in (1, 2, 3):
        raise ConfigError("minimumROIDimensions", f"must be 1, 2 or 3, got {minimumROIDimensions}")
    roi = np.asarray(mask, dtype=bool)
    box = roi_bbox(roi)
    ndims = sum(1 for b in box if b.stop - b.start > 1)
    if ndims == 0:
        raise InputError("mask", "the ROI is a single voxel: no features for a single voxel")
    if ndims < int(minimumROIDimensions):
        raise InputError(
            "mask",
            f"the ROI has too few dimensions ({ndims}, minimumROIDimensions {minimumROIDimensions})",
        )
    if minimumROISize is not None:
        if not int(minimumROISize) > 0:
            raise ConfigError("minimumROISize", f"must be positive, got {minimumROISize}")
        size = int(np.count_nonzero(roi[box]))
        if size <= int(minimumROISize):
            raise InputError(
                "mask", f"the ROI is too small ({size} voxels, minimumROISize {minimumROISize})"
            )
    return box


def pyradiomics_resegment(
    image: npt.NDArray[Any],
    mask: npt.NDArray[np.bool_],
    resegmentRange: Sequence[float],
    *,
    resegmentMode: str = "absolute",
    normalization: Normalization | None = None,
) -> npt.NDArray[np.bool_]:
    """PyRadiomics ``imageoperations.resegmentMask`` on a boolean ROI.

    Thresholds (closed interval; one value: lower bound only): ``absolute`` as given,
    ``relative`` times the ROI maximum, ``sigma`` as ``mean + t * SD`` of the ROI (population
    SD, as ``numpy.std``).

    Raises
    ------
    ConfigError
        A range of length 0 or more than 2, or an unknown mode.
    EmptyRoiError
        Fewer than 2 voxels remain.
    """
    try:
        bounds = sorted(float(v) for v in resegmentRange)
    except (TypeError, ValueError) as err:
        raise ConfigError(
            "resegmentRange", f"expected 1 or 2 numbers, got {resegmentRange!r}"
        ) from err
    if len(bounds) not in (1, 2):
        raise ConfigError("resegmentRange", f"expected 1 or 2 numbers, got {len(bounds)}")
    box = roi_bbox(mask)
    crop = image[box]
    inside = mask[box]
    vals = crop[inside]
    if normalization is not None:
        vals = normalization.apply(vals)
    if resegmentMode == "absolute":
        thresholds = bounds
    elif resegmentMode == "relative":
        max_gl = np.max(vals)
        thresholds = [max_gl * th for th in bounds]
    elif resegmentMode == "sigma":
        mean_gl = np.mean(vals)
        sd_gl = np.std(vals)
        thresholds = [mean_gl + sd_gl * th for th in bounds]
    else:
        raise ConfigError(
            "resegmentMode", f"must be absolute, relative or sigma, got {resegmentMode!r}"
        )
    keep = vals >= thresholds[0]
    if len(thresholds) == 2:
        keep &= vals <= thresholds[1]
    kept = int(np.count_nonzero(keep))
    if kept <= 1:
        raise EmptyRoiError(
            "mask", f"re-segmentation left {kept} voxel(s) of the ROI: cannot extract features"
        )
    out = np.zeros(mask.shape, dtype=bool)
    sub = np.zeros(inside.shape, dtype=bool)
    sub[inside] = keep
    out[box] = sub
    return out


def _interpolator(value: str | int) -> int:
    if isinstance(value, str):
        if value not in _INTERPOLATORS:
            raise ConfigError("interpolator", f"unknown interpolator {value!r}")
        return int(getattr(sitk, value))
    if isinstance(value, int | np.integer) and not isinstance(value, bool):
        known = {int(getattr(sitk, n)) for n in dir(sitk) if n in _INTERPOLATOR_ENUMS}
        if int(value) in known:
            return int(value)
    raise ConfigError("interpolator", f"expected a SimpleITK interpolator, got {value!r}")


def pyradiomics_resample(
    image: npt.ArrayLike,
    mask: npt.ArrayLike,
    spacing: Sequence[float],
    resampledPixelSpacing: Sequence[float],
    *,
    interpolator: str | int = "sitkBSpline",
    padDistance: int = 5,
    normalization: Normalization | None = None,
) -> tuple[npt.NDArray[Any], npt.NDArray[np.bool_], tuple[float, float, float]]:
    """Resample as PyRadiomics ``imageoperations.resampleImage``, from a crop.

    The output grid is PyRadiomics': spacing `resampledPixelSpacing` (0 keeps the input
    spacing, as does an axis the ROI spans with one voxel), origin aligned to the input origin
    (``0.5 (s_new - s_old) / s_old`` in input index units), covering the ROI bounding box
    plus `padDistance` output voxels, clipped to the image. When the spacing does not change
    the image is only cropped to the bounding box plus `padDistance`.

    The image is interpolated with SimpleITK from a crop :data:`RESAMPLE_MARGIN` input voxels
    larger than the output grid (same values as resampling the whole image). Where the last
    bit of a sample position can decide the result (an interpolated value within 1e-6 of an
    integer in an integer pixel type, a nearest-neighbour tie, a label interpolator) the crop
    starts at voxel 0 instead, so that SimpleITK computes the same positions to the bit. The
    mask is resampled by nearest neighbour from the whole mask.

    Parameters
    ----------
    image : array_like (z, y, x)
        Intensities (before `normalization`).
    mask : array_like of bool (z, y, x)
        The ROI (``mask == label``).
    spacing : sequence of 3 floats
        Input voxel size (z, y, x) in mm.
    resampledPixelSpacing : sequence of 3 floats
        Output voxel size in PyRadiomics' **(x, y, z)** order.
    interpolator : str or int, default "sitkBSpline"
        SimpleITK interpolator name or its enum value 1-10.
    padDistance : int, default 5
        Output voxels around the bounding box.
    normalization : Normalization, optional
        Applied to the input before interpolation (PyRadiomics normalises first).

    Returns
    -------
    image : ndarray (z, y, x)
        Resampled intensities in the input pixel type (float64 when normalised), as
        SimpleITK casts them.
    mask : ndarray of bool
        Resampled ROI.
    spacing : tuple of 3 floats
        Output voxel size (z, y, x).
    """
    img, roi = _image_mask(as_image(image), mask)
    sp = as_spacing(spacing)
    if int(padDistance) < 0:
        raise ConfigError("padDistance", f"must be >= 0, got {padDistance}")
    pad = int(padDistance)
    try:
        wanted = np.array([float(v) for v in resampledPixelSpacing], dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ConfigError(
            "resampledPixelSpacing", f"expected 3 numbers, got {resampledPixelSpacing!r}"
        ) from err
    if wanted.shape != (3,) or np.any(wanted < 0) or not np.all(np.isfinite(wanted)):
        raise ConfigError(
            "resampledPixelSpacing",
            f"expected 3 numbers >= 0 (x, y, z), got {resampledPixelSpacing!r}",
        )
    interp = _interpolator(interpolator)
    box = roi_bbox(roi)
    # PyRadiomics works in SimpleITK's (x, y, z) order; so do we, with its expressions.
    sp_xyz = np.array(sp[::-1], dtype=np.float64)
    size_xyz = np.array(img.shape[::-1])
    lower = np.array([b.start for b in box][::-1])
    extent = np.array([b.stop - b.start for b in box][::-1])
    new = np.where(wanted == 0, sp_xyz, wanted)
    new = np.where(extent != 1, new, sp_xyz)
    if np.allclose(sp_xyz, new):
        region = expand_region(box, (pad, pad, pad), img.shape)
        crop = img[region]
        values = np.array(crop) if normalization is None else normalization.apply(crop)
        return values, np.array(roi[region]), sp

    ratio = sp_xyz / new
    lo_new = np.floor((lower - 0.5) * ratio - pad)
    hi_new = np.ceil((lower + extent - 0.5) * ratio + pad)
    max_hi = np.ceil(size_xyz * ratio) - 1
    lo_new = np.where(lo_new < 0, 0, lo_new)
    hi_new = np.where(hi_new > max_hi, max_hi, hi_new)
    new_size = np.array(hi_new - lo_new + 1, dtype="int").tolist()
    origin_index = np.array(0.5 * (new - sp_xyz) / sp_xyz) + lo_new / ratio
    reference = sitk.Image([1, 1, 1], sitk.sitkUInt8)
    reference.SetSpacing(sp_xyz.tolist())
    new_origin = reference.TransformContinuousIndexToPhysicalPoint(origin_index.tolist())

    rif = sitk.ResampleImageFilter()
    rif.SetOutputSpacing(new.tolist())
    rif.SetOutputDirection(reference.GetDirection())
    rif.SetSize([int(v) for v in new_size])
    rif.SetOutputOrigin(new_origin)
    rif.SetInterpolator(interp)

    # input voxels the output grid samples, plus the interpolator's margin
    last = origin_index + (np.array(new_size) - 1) / ratio
    in_lo = np.maximum(np.floor(origin_index).astype(int) - RESAMPLE_MARGIN, 0)
    in_hi = np.minimum(np.ceil(last).astype(int) + RESAMPLE_MARGIN, size_xyz - 1)
    out_dtype = img.dtype if normalization is None else np.dtype(np.float64)

    def run(lower: npt.NDArray[np.int_], pixel_type: int | None) -> npt.NDArray[Any]:
        box = tuple(slice(int(lower[k]), int(in_hi[k]) + 1) for k in (2, 1, 0))
        crop = img[box]
        values = np.ascontiguousarray(crop) if normalization is None else normalization.apply(crop)
        source = sitk.GetImageFromArray(values)
        source.SetSpacing(sp_xyz.tolist())
        source.SetOrigin(reference.TransformIndexToPhysicalPoint([int(v) for v in lower]))
        rif.SetOutputPixelType(source.GetPixelID() if pixel_type is None else pixel_type)
        return np.asarray(sitk.GetArrayFromImage(rif.Execute(source)))

    # SimpleITK computes each sample's continuous index from the image origin, so a crop
    # that moves the origin changes its last bits. That matters only where it decides: a
    # value that is an integer up to rounding, truncated to an integer pixel type (e.g. a
    # constant region), a nearest-neighbour tie, a label interpolator. Then the crop keeps
    # the origin (it is cut on the far side only), which reproduces PyRadiomics' bits.
    out_image = None
    if interp == sitk.sitkNearestNeighbor:
        steps = [origin_index[k] + np.arange(new_size[k]) / ratio[k] for k in range(3)]
        if not any(np.any(np.abs(np.mod(p, 1.0) - 0.5) < 1e-6) for p in steps):
            out_image = run(in_lo, None)
    elif interp not in (sitk.sitkLabelGaussian, getattr(sitk, "sitkLabelLinear", -1)):
        if np.issubdtype(out_dtype, np.floating):
            out_image = run(in_lo, None)
        else:
            exact = run(in_lo, sitk.sitkFloat64)
            if not np.any(np.abs(exact - np.round(exact)) < 1e-6):
                # ITK's cast: clamp to the type's range, then truncate towards zero
                info = np.iinfo(out_dtype)
                out_image = np.trunc(np.clip(exact, info.min, info.max)).astype(out_dtype)
    if out_image is None:
        out_image = run(np.zeros(3, dtype=int), None)

    whole_mask = sitk.GetImageFromArray(roi.astype(np.uint8))
    whole_mask.SetSpacing(sp_xyz.tolist())
    rif.SetOutputPixelType(sitk.sitkUInt8)
    rif.SetInterpolator(sitk.sitkNearestNeighbor)
    out_mask = sitk.GetArrayFromImage(rif.Execute(whole_mask)).astype(bool)
    new_zyx = (float(new[2]), float(new[1]), float(new[0]))
    return out_image, out_mask, new_zyx


def _known_settings(settings: Mapping[str, Any], where: str = "setting") -> None:
    for key in settings:
        if key not in PYRADIOMICS_SETTINGS:
            raise ConfigError(f"{where}.{key}", "unknown PyRadiomics setting")


def select_label(mask: npt.ArrayLike, label: int = 1) -> npt.NDArray[np.bool_]:
    """``mask == label`` after PyRadiomics' checks (``imageoperations.getMask``).

    Unlike PyRadiomics, a mask whose only value is `label` (an ROI covering the whole image)
    is accepted.

    Raises
    ------
    InputError
        Non-integral or negative mask values.
    EmptyRoiError
        `label` does not occur in the mask.
    """
    arr = np.asarray(mask)
    if isinstance(label, bool) or int(label) != label or label < 1:
        raise ConfigError("label", f"must be a positive integer, got {label!r}")
    if arr.dtype == np.bool_:
        roi = arr if label == 1 else np.zeros(arr.shape, dtype=bool)
    elif np.issubdtype(arr.dtype, np.integer):
        roi = arr == label
    elif np.issubdtype(arr.dtype, np.floating):
        roi = arr == label
        if not np.all(np.isfinite(arr)) or np.any(arr != np.floor(arr)):
            raise InputError("mask", "mask values must be integer labels")
    else:
        raise InputError("mask", f"unsupported mask dtype {arr.dtype}")
    if not np.any(roi):
        raise EmptyRoiError("mask", f"label {label} is not present in the mask")
    return roi


def pyradiomics_prepare(
    image: npt.ArrayLike,
    mask: npt.ArrayLike,
    spacing: Sequence[float],
    **settings: Any,
) -> PyradiomicsInput:
    """Pre-process an image and mask as PyRadiomics' feature extractor does before filtering.

    Parameters
    ----------
    image : array_like (z, y, x)
        Intensities.
    mask : array_like (z, y, x)
        Label map; the ROI is ``mask == label``.
    spacing : sequence of 3 floats
        Voxel size (z, y, x) in mm.
    **settings
        PyRadiomics settings (:data:`PYRADIOMICS_SETTINGS`); used here: ``label``,
        ``normalize``, ``normalizeScale``, ``removeOutliers``, ``resampledPixelSpacing``
        ((x, y, z) order), ``interpolator``, ``padDistance``, ``preCrop``,
        ``minimumROIDimensions``, ``minimumROISize``, ``resegmentRange``,
        ``resegmentMode``, ``resegmentShape``.

    Returns
    -------
    PyradiomicsInput

    Raises
    ------
    ConfigError
        Unknown setting or invalid value.
    EmptyRoiError, InputError
        The ROI fails a check that makes PyRadiomics refuse the mask.
    """
    _known_settings(settings)
    opts = {**PYRADIOMICS_SETTINGS, **settings}
    img = as_image(image)
    sp = as_spacing(spacing)
    if np.shape(mask) != img.shape:
        raise InputError(
            "mask", f"mask shape {np.shape(mask)} differs from image shape {img.shape}"
        )
    roi = select_label(mask, opts["label"])
    check = {
        "minimumROIDimensions": opts["minimumROIDimensions"],
        "minimumROISize": opts["minimumROISize"],
    }

    norm = None
    if opts["normalize"]:
        norm = pyradiomics_normalization(
            img, normalizeScale=opts["normalizeScale"], removeOutliers=opts["removeOutliers"]
        )
    pad = opts["padDistance"]
    if opts["interpolator"] is not None and opts["resampledPixelSpacing"] is not None:
        img, roi, sp = pyradiomics_resample(
            img,
            roi,
            sp,
            opts["resampledPixelSpacing"],
            interpolator=opts["interpolator"],
            padDistance=pad,
            normalization=norm,
        )
        norm = None  # applied before interpolation
    elif opts["preCrop"]:
        box = check_roi(roi, **check)
        region = expand_region(box, (pad, pad, pad), img.shape)
        img, roi = img[region], roi[region]

    if not np.any(roi):
        raise EmptyRoiError("mask", "the ROI has no voxel after resampling")
    box = check_roi(roi, **check)
    shape_mask = roi
    if opts["resegmentRange"] is not None:
        resegmented = pyradiomics_resegment(
            img,
            roi,
            opts["resegmentRange"],
            resegmentMode=opts["resegmentMode"],
            normalization=norm,
        )
        box = check_roi(resegmented, **check)
        if opts["resegmentShape"]:
            shape_mask = resegmented
        roi = resegmented
    return PyradiomicsInput(img, norm, roi, shape_mask, sp, box)


# ---------------------------------------------------------------------------------------------
# IBSI convention


class Resampled(NamedTuple):
    """Result of :func:`ibsi_resample`."""

    image: npt.NDArray[np.float64]
    mask: npt.NDArray[np.bool_]
    spacing: tuple[float, float, float]
    #: index in the full resampled grid of ``image[0, 0, 0]`` (0 unless `roi_margin` is set)
    offset: tuple[int, int, int]


def ibsi_grid(
    shape: Sequence[int], spacing: Sequence[float], new_spacing: Sequence[float]
) -> tuple[tuple[int, int, int], tuple[float, float, float], tuple[float, float, float]]:
    r"""Resampled grid of IBSI 2.4 with the grid centres aligned.

    Per axis ``n_b = ceil(n_a s_a / s_b)`` and the new voxel ``j`` sits at input index
    ``x_0 + j s_b / s_a`` with ``x_0 = ((n_a - 1) - (n_b - 1) s_b / s_a) / 2``, so that both
    grids share their centre.

    Returns
    -------
    shape : tuple of 3 ints
        ``n_b``.
    start : tuple of 3 floats
        ``x_0`` (input index units).
    step : tuple of 3 floats
        ``s_b / s_a``.

    Examples
    --------
    >>> ibsi_grid((5, 5, 5), (2.0, 2.0, 2.0), (3.0, 3.0, 3.0))
    ((4, 4, 4), (-0.25, -0.25, -0.25), (1.5, 1.5, 1.5))
    """
    sp = as_spacing(spacing)
    new = as_spacing(new_spacing)
    n_b = []
    start = []
    step = []
    for n, s_a, s_b in zip(shape, sp, new, strict=True):
        # round first so that 100.0000000001 voxels do not become 101
        count = max(math.ceil(round(int(n) * s_a / s_b, 9)), 1)
        r = s_b / s_a
        n_b.append(count)
        start.append(((int(n) - 1) - (count - 1) * r) / 2.0)
        step.append(r)
    return (
        (n_b[0], n_b[1], n_b[2]),
        (start[0], start[1], start[2]),
        (step[0], step[1], step[2]),
    )


def ibsi_resample(
    image: npt.ArrayLike,
    mask: npt.ArrayLike,
    spacing: Sequence[float],
    new_spacing: Sequence[float],
    *,
    order: int = 3,
    mask_threshold: float = 0.5,
    roi_margin: int | None = None,
) -> Resampled:
    """Interpolate image and ROI to a new voxel size (IBSI 2.4).

    Grid of :func:`ibsi_grid` (centres aligned). Intensities: B-spline interpolation of
    `order` (3: cubic, 1: trilinear) with ``scipy.ndimage`` (``mode='nearest'``: the few new
    voxel centres that lie up to half a voxel outside the input take the border voxel's value).
    ROI: the mask is interpolated trilinearly and a voxel is kept when the value, rounded to
    6 decimals, is at least `mask_threshold`.

    Parameters
    ----------
    image, mask : array_like (z, y, x)
        Intensities and ROI (non-zero = inside).
    spacing, new_spacing : sequence of 3 floats
        Input and output voxel size (z, y, x) in mm.
    order : {3, 1, 0}, default 3
        Spline order of the intensity interpolation.
    mask_threshold : float, default 0.5
        Partial-volume threshold of the ROI.
    roi_margin : int, optional
        Compute only the part of the new grid covering the ROI's bounding box plus this many
        new voxels (same values as the full grid there; the input is interpolated from a crop
        :data:`RESAMPLE_MARGIN` voxels larger). None computes the whole grid.

    Returns
    -------
    Resampled
        ``image`` (float64), ``mask``, ``spacing`` = `new_spacing`, ``offset`` of the returned
        block in the full new grid.
    """
    img, roi = _image_mask(image, mask)
    if img.ndim != 3:
        raise InputError("image", f"expected a 3-D (z, y, x) array, got {img.ndim} dimensions")
    if order not in (0, 1, 3):
        raise ConfigError("interpolation order", f"must be 0, 1 or 3, got {order!r}")
    if not 0.0 < float(mask_threshold) <= 1.0:
        raise ConfigError("mask_threshold", f"must be in (0, 1], got {mask_threshold!r}")
    new_sp = as_spacing(new_spacing)
    n_b, start, step = ibsi_grid(img.shape, spacing, new_sp)
    lo_out = [0, 0, 0]
    hi_out = list(n_b)
    if roi_margin is not None:
        if int(roi_margin) < 0:
            raise ConfigError("roi_margin", f"must be >= 0, got {roi_margin}")
        box = roi_bbox(roi)
        for k in range(3):
            first = math.floor((box[k].start - 0.5 - start[k]) / step[k]) - int(roi_margin)
            last = math.ceil((box[k].stop - 0.5 - start[k]) / step[k]) + int(roi_margin)
            lo_out[k] = min(max(first, 0), n_b[k] - 1)
            hi_out[k] = max(min(last + 1, n_b[k]), lo_out[k] + 1)
    # input block the output block samples, plus the spline prefilter's margin
    margin = RESAMPLE_MARGIN if order > 1 else 1
    region = []
    offsets = []
    for k in range(3):
        p_first = start[k] + lo_out[k] * step[k]
        p_last = start[k] + (hi_out[k] - 1) * step[k]
        a = max(math.floor(p_first) - margin, 0)
        b = min(math.ceil(p_last) + margin, img.shape[k] - 1)
        region.append(slice(a, b + 1))
        offsets.append(p_first - a)
    reg = (region[0], region[1], region[2])
    out_shape = tuple(hi_out[k] - lo_out[k] for k in range(3))
    source = np.asarray(img[reg], dtype=np.float64)
    new_image = ndi.affine_transform(
        source,
        np.asarray(step),
        offset=np.asarray(offsets),
        output_shape=out_shape,
        order=order,
        mode="nearest",
        prefilter=order > 1,
    )
    new_mask = ndi.affine_transform(
        roi[reg].astype(np.float64),
        np.asarray(step),
        offset=np.asarray(offsets),
        output_shape=out_shape,
        order=1,
        mode="nearest",
    )
    keep = np.round(new_mask, 6) >= float(mask_threshold)
    return Resampled(new_image, keep, new_sp, (lo_out[0], lo_out[1], lo_out[2]))


def _roi_stats(
    image: npt.ArrayLike, mask: npt.ArrayLike
) -> tuple[npt.NDArray[Any], npt.NDArray[np.bool_], float, float]:
    img, roi = _image_mask(image, mask)
    vals = img[roi].astype(np.float64)
    if vals.size == 0:
        raise EmptyRoiError("mask", "the ROI has no voxel")
    if not np.all(np.isfinite(vals)):
        raise InputError("image", "non-finite intensities inside the ROI")
    return img, roi, float(np.mean(vals)), float(np.std(vals))


def zscore_within_roi(image: npt.ArrayLike, mask: npt.ArrayLike) -> npt.NDArray[np.float64]:
    r"""Standardise by the ROI's mean and SD (setting ``normalizeWithinROI``).

    ``I' = (I - mu_ROI) / sigma_ROI`` for every voxel, with the population SD of the ROI
    intensities. The result is unchanged by ``I -> a I + b`` with ``a > 0`` (up to
    rounding), so every feature of it is too.

    Raises
    ------
    EmptyRoiError
        Empty ROI.
    InputError
        A constant ROI (SD 0) or non-finite ROI intensities.

    Examples
    --------
    >>> z = zscore_within_roi(np.array([[[1.0, 3.0, 100.0]]]), np.array([[[1, 1, 0]]]))
    >>> z.tolist()
    [[[-1.0, 1.0, 98.0]]]
    """
    img, _, mean, sd = _roi_stats(image, mask)
    if not sd > 0:
        raise InputError("image", "cannot standardise a constant ROI (SD 0)")
    return (img.astype(np.float64) - mean) / sd


def resegment_range(
    image: npt.ArrayLike,
    mask: npt.ArrayLike,
    lower: float = -math.inf,
    upper: float = math.inf,
) -> npt.NDArray[np.bool_]:
    """Range re-segmentation (IBSI 2.6): the ROI voxels with ``lower <= I <= upper``.

    Returns
    -------
    ndarray of bool
        The intensity mask (may be empty).
    """
    if float(lower) > float(upper):
        raise ConfigError("resegmentRange", f"lower bound {lower} is above upper bound {upper}")
    img, roi = _image_mask(image, mask)
    return roi & (img >= lower) & (img <= upper)


def resegment_outliers(
    image: npt.ArrayLike, mask: npt.ArrayLike, n_sigma: float = 3.0
) -> npt.NDArray[np.bool_]:
    r"""Outlier re-segmentation (IBSI 2.6): keep ``mu - n sigma <= I <= mu + n sigma``.

    ``mu`` and ``sigma`` are the mean and population SD of the ROI intensities.

    Raises
    ------
    EmptyRoiError
        Empty ROI.
    """
    if not float(n_sigma) > 0:
        raise ConfigError("n_sigma", f"must be positive, got {n_sigma!r}")
    img, roi, mean, sd = _roi_stats(image, mask)
    return roi & (img >= mean - n_sigma * sd) & (img <= mean + n_sigma * sd)
