"""First-order features and grey-level binning in the PyRadiomics 3.0.1 convention.

Reproduces ``radiomics.imageoperations.getBinEdges`` / ``binImage`` and
``radiomics.firstorder.RadiomicsFirstOrder`` (segment-based) with NumPy, to 1e-6 relative.
The IBSI convention lives in :mod:`radgen.features.firstorder` and
:mod:`radgen.features.discretize`; the two differ in binning (PyRadiomics bins from
``floor(min / w) * w``, IBSI from the minimum), kurtosis (PyRadiomics does not subtract 3) and
in the entropy of the histogram (PyRadiomics adds ``eps`` inside the logarithm).

Notes
-----
Arithmetic follows PyRadiomics step by step, including the intensity dtype: the bin edges of
an ``int16`` image are computed in integer arithmetic as PyRadiomics does, so that a value on
a bin edge falls in the same bin.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from radgen.errors import ConfigError, EmptyRoiError, InputError

__all__ = [
    "PYRADIOMICS_FIRSTORDER_FEATURES",
    "pyradiomics_bin",
    "pyradiomics_bin_edges",
    "pyradiomics_firstorder",
]

#: Features ``RadiomicsFirstOrder.execute()`` returns by default (``StandardDeviation`` is
#: deprecated in PyRadiomics and therefore not enabled by default).
PYRADIOMICS_FIRSTORDER_FEATURES: tuple[str, ...] = (
    "10Percentile",
    "90Percentile",
    "Energy",
    "Entropy",
    "InterquartileRange",
    "Kurtosis",
    "Maximum",
    "Mean",
    "MeanAbsoluteDeviation",
    "Median",
    "Minimum",
    "Range",
    "RobustMeanAbsoluteDeviation",
    "RootMeanSquared",
    "Skewness",
    "TotalEnergy",
    "Uniformity",
    "Variance",
)


def _check_binning(bin_width: float, bin_count: int | None) -> None:
    if bin_count is not None:
        if isinstance(bin_count, bool) or int(bin_count) != bin_count or bin_count < 1:
            raise ConfigError("binCount", f"must be a positive integer, got {bin_count!r}")
        return
    if not (isinstance(bin_width, int | float | np.number) and float(bin_width) > 0):
        raise ConfigError("binWidth", f"must be positive, got {bin_width!r}")
    if not np.isfinite(float(bin_width)):
        raise ConfigError("binWidth", f"must be finite, got {bin_width!r}")


def pyradiomics_bin_edges(
    values: npt.ArrayLike, *, binWidth: float = 25, binCount: int | None = None
) -> npt.NDArray[Any]:
    r"""Bin edges of ``radiomics.imageoperations.getBinEdges``.

    Fixed bin width ``W``: edges ``L, L + W, ...`` with ``L = min - (min mod W)`` (the largest
    multiple of ``W`` not above the minimum) up to below ``max + 2W``, so every bin is half open
    ``[lower, upper)`` and a maximum on an edge opens a bin of its own. (PyRadiomics' special
    case for a single edge, ``[v - 0.5, v + 0.5]``, is kept although the range always spans
    two widths.)

    Fixed bin count ``N_b``: the ``N_b + 1`` edges of ``numpy.histogram`` with the last edge
    raised by 1, so that the maximum falls in bin ``N_b``.

    Parameters
    ----------
    values : array_like
        Intensities of the ROI voxels (flattened). Their dtype is kept: PyRadiomics computes
        the edges of an integer image in integer arithmetic.
    binWidth : float, default 25
        ``W``; used when `binCount` is None.
    binCount : int, optional
        ``N_b``.

    Returns
    -------
    ndarray
        Increasing bin edges.

    Raises
    ------
    EmptyRoiError
        If `values` is empty.
    ConfigError
        Non-positive `binWidth` or `binCount`.

    Examples
    --------
    >>> pyradiomics_bin_edges([54, 80, 166], binWidth=25).tolist()
    [50, 75, 100, 125, 150, 175, 200]
    """
    _check_binning(binWidth, binCount)
    x = np.asarray(values).ravel()
    if x.size == 0:
        raise EmptyRoiError("mask", "the ROI has no voxel")
    if binCount is not None:
        edges: npt.NDArray[Any] = np.histogram(x, int(binCount))[1]
        edges[-1] += 1
        return edges
    minimum = x.min()
    maximum = x.max()
    low_bound = minimum - (minimum % binWidth)
    high_bound = maximum + 2 * binWidth
    edges = np.arange(low_bound, high_bound, binWidth)
    if len(edges) == 1:  # flat ROI on a multiple of the bin width: one bin of width 1
        edges = np.asarray([edges[0] - 0.5, edges[0] + 0.5])
    return edges


def pyradiomics_bin(
    values_or_image: npt.ArrayLike,
    mask: npt.ArrayLike | None = None,
    *,
    binWidth: float = 25,
    binCount: int | None = None,
) -> tuple[npt.NDArray[np.intp], npt.NDArray[Any]]:
    """Discretise as ``radiomics.imageoperations.binImage``.

    ``levels = numpy.digitize(X, edges)`` with the edges of :func:`pyradiomics_bin_edges`
    computed from the ROI voxels only: grey levels start at 1 at the ROI minimum.

    Parameters
    ----------
    values_or_image : array_like
        Intensities, any shape (an image crop (z, y, x) or a vector of ROI values).
    mask : array_like of bool, optional
        ROI, same shape. None bins every element.
    binWidth : float, default 25
        Fixed bin width, used when `binCount` is None.
    binCount : int, optional
        Fixed bin count.

    Returns
    -------
    levels : ndarray of int
        Same shape as `values_or_image`; 0 outside the mask.
    edges : ndarray
        The bin edges.

    Examples
    --------
    >>> levels, _ = pyradiomics_bin([54.0, 80.0, 166.0])
    >>> levels.tolist()
    [1, 2, 5]
    """
    arr = np.asarray(values_or_image)
    if mask is None:
        edges = pyradiomics_bin_edges(arr.ravel(), binWidth=binWidth, binCount=binCount)
        return np.digitize(arr, edges).astype(np.intp), edges
    roi = np.asarray(mask, dtype=bool)
    if roi.shape != arr.shape:
        raise InputError("mask", f"mask shape {roi.shape} differs from image shape {arr.shape}")
    inside = arr[roi]
    edges = pyradiomics_bin_edges(inside, binWidth=binWidth, binCount=binCount)
    levels = np.zeros(arr.shape, dtype=np.intp)
    levels[roi] = np.digitize(inside, edges)
    return levels, edges


def pyradiomics_firstorder(
    image_crop: npt.ArrayLike,
    mask_crop: npt.ArrayLike,
    spacing: Sequence[float],
    *,
    binWidth: float = 25,
    binCount: int | None = None,
    voxelArrayShift: float = 0,
) -> dict[str, float]:
    r"""First-order features of ``radiomics.firstorder.RadiomicsFirstOrder``.

    With ``X`` the ``N_p`` ROI intensities, ``c`` = `voxelArrayShift`, ``p(i)`` the fraction of
    voxels in grey level ``i`` (binning of :func:`pyradiomics_bin`, occupied levels only):

    * ``Energy = sum (X + c)^2``; ``TotalEnergy = V_voxel * Energy``;
      ``RootMeanSquared = sqrt(Energy / N_p)``
    * ``Entropy = -sum p(i) log2(p(i) + eps)`` with ``eps = numpy.spacing(1)``;
      ``Uniformity = sum p(i)^2``
    * ``Minimum``, ``10Percentile``, ``Median``, ``90Percentile``, ``Maximum``,
      ``InterquartileRange = P75 - P25``, ``Range`` (percentiles: linear interpolation)
    * ``Mean``, ``Variance = mean((X - mean)^2)``, ``MeanAbsoluteDeviation``,
      ``RobustMeanAbsoluteDeviation`` (over the voxels with ``P10 <= X <= P90``)
    * ``Skewness = m3 / m2^1.5``, ``Kurtosis = m4 / m2^2`` (not excess; both 0 for a flat ROI)

    Parameters
    ----------
    image_crop : array_like of shape (z, y, x)
        Intensities (the ROI bounding-box crop, e.g. from
        :func:`radgen.features.filters.filtered_images`). The dtype matters for binning, as in
        PyRadiomics.
    mask_crop : array_like of bool, same shape
        ROI (non-zero = inside).
    spacing : sequence of 3 floats
        Voxel size (z, y, x) in mm, for ``TotalEnergy``.
    binWidth : float, default 25
        PyRadiomics ``binWidth``.
    binCount : int, optional
        PyRadiomics ``binCount``; overrides `binWidth`.
    voxelArrayShift : float, default 0
        PyRadiomics ``voxelArrayShift`` ``c``.

    Returns
    -------
    dict of str to float
        Keyed by the PyRadiomics feature name (:data:`PYRADIOMICS_FIRSTORDER_FEATURES`).

    Raises
    ------
    EmptyRoiError
        If the mask selects no voxel.
    InputError
        Shape mismatch or a spacing that is not 3 positive numbers.

    Examples
    --------
    >>> img = [[[1.0, 2.0], [3.0, 4.0]]]
    >>> out = pyradiomics_firstorder(img, [[[1, 1], [1, 1]]], (1.0, 1.0, 1.0))
    >>> out["Energy"], out["Kurtosis"]
    (30.0, 1.64)
    """
    image = np.asarray(image_crop)
    roi = np.asarray(mask_crop).astype(bool)
    if image.shape != roi.shape:
        raise InputError("mask", f"mask shape {roi.shape} differs from image shape {image.shape}")
    sp = tuple(float(s) for s in spacing)
    if len(sp) != 3 or not all(s > 0 and np.isfinite(s) for s in sp):
        raise InputError("spacing", f"expected 3 positive voxel sizes, got {tuple(spacing)}")
    raw = image[roi]
    if raw.size == 0:
        raise EmptyRoiError("mask", "the ROI has no voxel")
    x = raw.astype(np.float64)
    xs = np.sort(x)  # one sort serves the percentiles, the histogram and the robust subset
    n = xs.size

    # histogram of the occupied grey levels: numpy.digitize(raw, edges) counted per bin by
    # bisecting the sorted values (exact: every edge and value is exact in float64)
    edges = pyradiomics_bin_edges(raw, binWidth=binWidth, binCount=binCount)
    below = np.searchsorted(xs, np.asarray(edges, dtype=np.float64), side="left")
    counts = np.diff(np.concatenate(([0], below, [n])))
    counts = counts[counts > 0]
    p = counts.astype(np.float64) / float(n)

    shifted = x + voxelArrayShift
    energy = float(np.sum(shifted * shifted))
    # PyRadiomics multiplies the SimpleITK spacing, which is (x, y, z)
    voxel_volume = float(np.multiply.reduce(np.asarray(sp[::-1])))
    mean = np.mean(x)
    dev = x - mean
    dev2 = dev * dev
    m2 = float(np.mean(dev2))
    m3 = float(np.mean(dev2 * dev))
    m4 = float(np.mean(dev2 * dev2))
    variance = m2
    if m2 == 0:  # flat ROI: PyRadiomics divides by 1 instead
        m2 = 1.0
    p10, p25, median, p75, p90 = _percentiles(xs, (10, 25, 50, 75, 90))
    robust = xs[np.searchsorted(xs, p10, side="left") : np.searchsorted(xs, p90, side="right")]
    eps = float(np.spacing(1))
    minimum, maximum = float(xs[0]), float(xs[-1])
    return {
        "10Percentile": p10,
        "90Percentile": p90,
        "Energy": energy,
        "Entropy": float(-np.sum(p * np.log2(p + eps))),
        "InterquartileRange": p75 - p25,
        "Kurtosis": m4 / m2**2.0,
        "Maximum": maximum,
        "Mean": float(mean),
        "MeanAbsoluteDeviation": float(np.mean(np.abs(dev))),
        "Median": median,
        "Minimum": minimum,
        "Range": maximum - minimum,
        # NaN when no voxel lies between P10 and P90 (2 voxels), as PyRadiomics' nanmean
        "RobustMeanAbsoluteDeviation": (
            float(np.mean(np.abs(robust - np.mean(robust)))) if robust.size else math.nan
        ),
        "RootMeanSquared": float(np.sqrt(energy / n)),
        "Skewness": m3 / m2**1.5,
        "TotalEnergy": energy * voxel_volume,
        "Uniformity": float(np.sum(p * p)),
        "Variance": variance,
    }


def _percentiles(xs: npt.NDArray[np.float64], qs: Sequence[float]) -> list[float]:
    """``numpy.percentile`` (method "linear") of already sorted values, in one pass."""
    n = xs.size
    out = []
    for q in qs:
        virtual = (q / 100.0) * (n - 1)
        lo = math.floor(virtual)
        hi = min(lo + 1, n - 1)
        t = virtual - lo
        a, b = float(xs[lo]), float(xs[hi])
        diff = b - a
        # numpy's _lerp: a + t (b - a), or b - (1 - t) (b - a) from t = 0.5 on
        out.append(b - diff * (1 - t) if t >= 0.5 else a + diff * t)
    return out
