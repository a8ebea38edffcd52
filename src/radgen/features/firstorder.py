"""First-order features: intensity statistics (IBSI 3.3) and intensity histogram (IBSI 3.4).

Pure NumPy kernels on the vector of ROI intensities; no I/O. Keys are IBSI tags.

Notes
-----
Kurtosis is *excess* kurtosis (IBSI); PyRadiomics reports kurtosis without the -3.
Percentiles use linear interpolation between order statistics (NumPy's default, as
PyRadiomics). Skewness and kurtosis are 0 for a constant ROI, as IBSI specifies.

Documented NaN: the coefficient of variation for a zero mean (zero up to rounding), the quartile coefficient of
dispersion for ``P75 + P25 = 0``, and the robust mean absolute deviation when no voxel lies
between P10 and P90 (ROIs of two or three voxels).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from radgen.errors import EmptyRoiError

__all__ = ["coefficient_of_variation", "intensity_histogram", "intensity_statistics"]


def coefficient_of_variation(mean: float, var: float, n: int, largest: float) -> float:
    """``sqrt(var) / mean``, NaN where the mean is zero up to rounding.

    A mean summed from `n` values no larger than `largest` in magnitude carries an error up
    to ``n eps largest``; within that of zero (e.g. a wavelet band, or any image after
    ``normalizeWithinROI``) the ratio is rounding noise, and where the in-memory and the
    chunked path add in different orders it would differ by orders of magnitude.
    """
    if abs(mean) <= n * np.finfo(np.float64).eps * abs(largest):
        return math.nan
    return math.sqrt(var) / mean


def _moments(x: npt.NDArray[np.float64]) -> tuple[float, float, float, float]:
    mean = float(x.mean())
    dev = x - mean
    var = float(np.mean(dev**2))
    if var <= 0.0 or var**2 == 0.0:  # constant ROI (or a variance that underflows)
        return mean, var, 0.0, 0.0
    skew = float(np.mean(dev**3) / var**1.5)
    kurt = float(np.mean(dev**4) / var**2 - 3.0)
    return mean, var, skew, kurt


def _dispersion(x: npt.NDArray[np.float64], prefix: str) -> dict[str, float]:
    """Features shared by both families (mean, spread, percentiles)."""
    mean, var, skew, kurt = _moments(x)
    p10, p25, median, p75, p90 = (float(v) for v in np.percentile(x, [10, 25, 50, 75, 90]))
    robust = x[(x >= p10) & (x <= p90)]
    out = {
        "mean": mean,
        "var": var,
        "skew": skew,
        "kurt": kurt,
        "median": median,
        "min": float(x.min()),
        "P10": p10,
        "P90": p90,
        "max": float(x.max()),
        "iqr": p75 - p25,
        "range": float(x.max() - x.min()),
        "mad": float(np.mean(np.abs(x - mean))),
        "rmad": float(np.mean(np.abs(robust - robust.mean()))) if robust.size else math.nan,
        "medad": float(np.mean(np.abs(x - median))),
        "cov": coefficient_of_variation(mean, var, x.size, float(np.abs(x).max())),
        "qcod": (p75 - p25) / (p75 + p25) if (p75 + p25) != 0 else math.nan,
    }
    return {f"{prefix}.{k}": v for k, v in out.items()}


def intensity_statistics(values: npt.ArrayLike) -> dict[str, float]:
    """Intensity-based statistical features (IBSI family ``stat``, 18 features).

    Parameters
    ----------
    values : array_like
        Intensities of the ROI voxels (any shape; flattened), in image units.

    Returns
    -------
    dict of str to float
        Keyed by IBSI tag (``stat.mean``, ``stat.var``, ...). ``stat.cov`` is NaN for a
        zero mean and ``stat.qcod`` for ``P75 + P25 = 0``.

    Raises
    ------
    EmptyRoiError
        If `values` is empty.

    References
    ----------
    Zwanenburg A. et al., The Image Biomarker Standardisation Initiative, arXiv:1612.07003,
    section 3.3.

    Examples
    --------
    >>> round(intensity_statistics([1.0, 2.0, 3.0, 4.0])["stat.var"], 4)
    1.25
    """
    x = np.asarray(values, dtype=np.float64).ravel()
    if x.size == 0:
        raise EmptyRoiError("", "the ROI has no voxel")
    out = _dispersion(x, "stat")
    energy = float(np.sum(x**2))
    out["stat.energy"] = energy
    out["stat.rms"] = math.sqrt(energy / x.size)
    return out


def intensity_histogram(levels: npt.ArrayLike) -> dict[str, float]:
    """Intensity histogram features (IBSI family ``ih``, 23 features).

    Parameters
    ----------
    levels : array_like of int
        Discretised grey levels ``1..Ng`` of the ROI voxels (see
        :mod:`radgen.features.discretize`). The histogram spans ``1..max(levels)``.

    Returns
    -------
    dict of str to float
        Keyed by IBSI tag (``ih.entropy``, ``ih.max.grad``, ...); entropy in bits.

    Raises
    ------
    EmptyRoiError
        If `levels` is empty.

    Notes
    -----
    Of several modes, the one closest to the mean is taken, the lower one on a tie (IBSI).
    The histogram gradient uses a forward difference at the first bin, a backward difference
    at the last and central differences between.

    Examples
    --------
    >>> intensity_histogram([1, 1, 2, 4])["ih.mode"]
    1.0
    """
    xd = np.asarray(levels).ravel()
    if xd.size == 0:
        raise EmptyRoiError("", "the ROI has no voxel")
    if xd.min() < 1 or not np.all(np.equal(np.mod(xd, 1), 0)):
        raise ValueError("grey levels must be integers >= 1")
    xd = xd.astype(np.int64)
    out = _dispersion(xd.astype(np.float64), "ih")
    counts = np.bincount(xd)[1:].astype(np.float64)  # bins 1..Ng
    p = counts / counts.sum()
    grey = np.arange(1, counts.size + 1, dtype=np.float64)
    top = np.flatnonzero(counts == counts.max())
    mean = out["ih.mean"]
    out["ih.mode"] = float(grey[top[np.argmin(np.abs(grey[top] - mean))]])
    nz = p[p > 0]
    out["ih.entropy"] = float(-np.sum(nz * np.log2(nz)))
    out["ih.uniformity"] = float(np.sum(p**2))
    grad = np.gradient(counts) if counts.size > 1 else np.zeros(1)
    out["ih.max.grad"] = float(grad.max())
    out["ih.max.grad.gl"] = float(grey[int(np.argmax(grad))])
    out["ih.min.grad"] = float(grad.min())
    out["ih.min.grad.gl"] = float(grey[int(np.argmin(grad))])
    return out
