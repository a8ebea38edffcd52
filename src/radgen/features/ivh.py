"""Intensity-volume histogram features (IBSI 3.5).

Pure NumPy kernel on the vector of ROI intensities; no I/O. Keys are IBSI tags.

The IVH gives, for every intensity ``G`` of a regular grid ``X_min, X_min + w, ..., X_max``,
the volume fraction ``nu(G) = #{X_i >= G} / N`` of the ROI with an intensity of at least
``G``. The intensity fraction of an intensity is ``gamma = (X - X_min) / (X_max - X_min)``.

Notes
-----
Which grid (``values`` and keywords of :func:`ivh`):

* ``discretised=True`` (default): `values` already lie on the grid, e.g. grey levels or
  integer HU. The step ``w`` is `bin_width` (default 1); ``X_min, X_max`` are `value_range`
  or, when unset, the ROI minimum and maximum; with `n_bins` (grey levels of a fixed bin number
  discretisation) the range is ``1..n_bins``. For the IBSI digital phantom: step 1 over
  ``min..max`` of the ROI.
* ``discretised=False`` with `bin_width` ``w`` (fixed bin size): ``X_d = floor((X - L) / w) + 1``
  from ``L`` = `value_range` [0] (or the ROI minimum), as
  :func:`radgen.features.discretize.fixed_bin_size`, and each voxel takes its bin centre
  ``L + (X_d - 0.5) w`` (IBSI's conversion of fixed-bin-size bins back to intensities). The
  grid is the bin centres from the first bin to the bin holding the upper bound (`value_range`
  [1] or the ROI maximum), and ``X_min, X_max`` are those two centres.
* ``discretised=False`` with `n_bins` ``N`` (fixed bin number): ``X_d = floor(N (X - L) /
  (U - L)) + 1`` (``X_d = N`` at ``U``) over ``[L, U]`` = `value_range` or the ROI range; the
  IVH is in grey levels ``1..N`` (step 1), as bins of a fixed bin number have no intensity.

Chunking (Dask): the features are order statistics of the ROI intensities, so chunks can
contribute per-level voxel counts (``np.bincount`` of the discretised values, additive, no
halo) from which ``nu`` and all six features follow.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from radgen.errors import ConfigError, EmptyRoiError, InputError
from radgen.features.discretize import fixed_bin_size

__all__ = ["ivh"]

FloatArray = npt.NDArray[np.float64]

#: Tolerance (in grid steps) for values that should lie on the grid but carry rounding.
_ON_GRID = 1e-9


def _volume_at(gamma: FloatArray, fraction: float) -> float:
    """``V_x``: fraction of the ROI volume with an intensity fraction ``gamma >= x``."""
    return float(np.count_nonzero(gamma >= fraction - 1e-12)) / gamma.size


def _intensity_at(sorted_x: FloatArray, fraction: float, x_min: float, step: float) -> float:
    """``I_x``: the smallest grid intensity ``G`` with ``nu(G) <= x``.

    ``nu(G) <= x`` holds when at most ``c = floor(x N)`` voxels have ``X >= G``, i.e. when
    ``G`` exceeds the ``(c + 1)``-th largest value ``t``; the answer is the first grid point
    above ``t`` (the grid continues past ``X_max``, where ``nu = 0``).
    """
    n = sorted_x.size
    allowed = math.floor(fraction * n + 1e-9)
    if allowed >= n:
        return x_min
    t = float(sorted_x[n - 1 - allowed])
    k = math.floor((t - x_min) / step + _ON_GRID) + 1
    return x_min + k * step


def ivh(
    values: npt.ArrayLike,
    *,
    bin_width: float | None = None,
    n_bins: int | None = None,
    value_range: tuple[float, float] | None = None,
    discretised: bool = True,
) -> dict[str, float]:
    """Intensity-volume histogram features (IBSI family ``ivh``, 6 features).

    Parameters
    ----------
    values : array_like
        Intensities of the ROI voxels (any shape; flattened).
    bin_width : float, optional
        Grid step of discrete `values`, or the fixed bin size for continuous ones.
    n_bins : int, optional
        Number of grey levels of a fixed bin number discretisation (see module Notes).
    value_range : (float, float), optional
        ``(X_min, X_max)``: the re-segmentation range, which IBSI uses instead of the ROI
        range when it is set.
    discretised : bool
        Whether `values` are already discrete (default) or continuous (then `bin_width` or
        `n_bins` is required).

    Returns
    -------
    dict of str to float
        ``ivh.V10`` and ``ivh.V90`` (volume fraction with intensity fraction at least 0.1 /
        0.9), ``ivh.I10`` and ``ivh.I90`` (smallest grid intensity present in at most 10 % /
        90 % of the volume), ``ivh.V10minusV90`` and ``ivh.I10minusI90``.

    Raises
    ------
    EmptyRoiError
        If `values` is empty.
    ConfigError
        If the keywords contradict each other or are out of range.
    InputError
        If `values` hold NaN or fall outside `value_range`.

    Notes
    -----
    Documented NaN: ``V10``, ``V90`` and their difference when ``X_max = X_min`` (a constant
    ROI without a range), where the intensity fraction is undefined.

    Examples
    --------
    >>> out = ivh([1, 1, 1, 1, 1, 1, 3, 4, 5, 6])
    >>> out["ivh.V10"], out["ivh.I10"], out["ivh.I90"]
    (0.4, 6.0, 2.0)
    """
    x = np.asarray(values, dtype=np.float64).ravel()
    if x.size == 0:
        raise EmptyRoiError("", "the ROI has no voxel")
    if not np.all(np.isfinite(x)):
        raise InputError("values", "the ROI holds NaN or infinite intensities")
    if bin_width is not None and not bin_width > 0:
        raise ConfigError("binWidth", f"must be positive, got {bin_width}")
    if n_bins is not None and (int(n_bins) != n_bins or n_bins < 1):
        raise ConfigError("binCount", f"must be a positive integer, got {n_bins}")
    if value_range is not None:
        lo, hi = float(value_range[0]), float(value_range[1])
        if not hi >= lo:
            raise ConfigError("value_range", f"upper bound {hi} below lower bound {lo}")
        if x.min() < lo or x.max() > hi:
            raise InputError("values", f"intensities outside the range [{lo}, {hi}]")
    else:
        lo, hi = float(x.min()), float(x.max())

    if discretised:
        if n_bins is not None and bin_width is not None:
            raise ConfigError("setting", "give binWidth or binCount, not both")
        step = 1.0 if bin_width is None else float(bin_width)
        if n_bins is not None:
            lo, hi = 1.0, float(n_bins)
        grid_x = x
    elif bin_width is not None and n_bins is None:
        step = float(bin_width)
        levels = fixed_bin_size(np.append(x, hi), step, min_bound=lo).astype(np.float64)
        grid_x = lo + (levels[:-1] - 0.5) * step
        lo, hi = lo + 0.5 * step, lo + (levels[-1] - 0.5) * step
    elif n_bins is not None and bin_width is None:
        step = 1.0
        if hi > lo:
            grid_x = np.minimum(np.floor(n_bins * (x - lo) / (hi - lo)) + 1.0, float(n_bins))
        else:
            grid_x = np.ones_like(x)
        lo, hi = 1.0, float(n_bins)
    else:
        raise ConfigError("setting", "continuous values need exactly one of binWidth or binCount")

    sorted_x = np.sort(grid_x)
    if hi > lo:
        gamma = (grid_x - lo) / (hi - lo)
        v10, v90 = _volume_at(gamma, 0.1), _volume_at(gamma, 0.9)
    else:
        v10 = v90 = math.nan
    i10 = _intensity_at(sorted_x, 0.1, lo, step)
    i90 = _intensity_at(sorted_x, 0.9, lo, step)
    return {
        "ivh.V10": v10,
        "ivh.V90": v90,
        "ivh.I10": i10,
        "ivh.I90": i90,
        "ivh.V10minusV90": v10 - v90,
        "ivh.I10minusI90": i10 - i90,
    }
