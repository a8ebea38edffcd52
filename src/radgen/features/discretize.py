"""Grey-level discretisation (IBSI 2.7): fixed bin size and fixed bin number.

Pure NumPy: intensities in, integer grey levels ``1..Ng`` out.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from radgen.errors import ConfigError

__all__ = ["binning_suffix", "fixed_bin_number", "fixed_bin_size"]


def fixed_bin_size(
    values: npt.ArrayLike, width: float, *, min_bound: float | None = None
) -> npt.NDArray[np.int64]:
    """Fixed bin size discretisation (IBSI Q3RU).

    ``X_d = floor((X - X_min) / w) + 1`` where ``X_min`` is `min_bound` (the lower bound of the
    re-segmentation range, as IBSI recommends) or, when None, the minimum of `values`.

    Parameters
    ----------
    values : array_like
        Intensities of the ROI voxels.
    width : float
        Bin width ``w`` in intensity units; positive.
    min_bound : float, optional
        ``X_min``. Values below it are an error.

    Returns
    -------
    ndarray of int64
        Grey levels starting at 1.

    Examples
    --------
    >>> fixed_bin_size([-10.0, 0.0, 24.9, 25.0], 25.0, min_bound=-10.0).tolist()
    [1, 1, 2, 2]
    """
    x = np.asarray(values, dtype=np.float64)
    if not width > 0:
        raise ConfigError("binWidth", f"must be positive, got {width}")
    if x.size == 0:
        return np.zeros(0, dtype=np.int64)
    low = float(x.min()) if min_bound is None else float(min_bound)
    if float(x.min()) < low:
        raise ConfigError("resegmentRange", f"intensity {x.min()} lies below the bin minimum {low}")
    return np.floor((x - low) / width).astype(np.int64) + 1


def fixed_bin_number(values: npt.ArrayLike, n_bins: int) -> npt.NDArray[np.int64]:
    """Fixed bin number discretisation (IBSI K15C).

    ``X_d = floor(Ng (X - X_min) / (X_max - X_min)) + 1``, with ``X_d = Ng`` at ``X_max``.
    A constant ROI maps to grey level 1.

    Parameters
    ----------
    values : array_like
        Intensities of the ROI voxels.
    n_bins : int
        ``Ng``; positive.

    Returns
    -------
    ndarray of int64
        Grey levels in ``1..Ng``.

    Examples
    --------
    >>> fixed_bin_number([1.0, 3.0, 4.0, 6.0], 6).tolist()
    [1, 3, 4, 6]
    """
    x = np.asarray(values, dtype=np.float64)
    if int(n_bins) != n_bins or n_bins < 1:
        raise ConfigError("binCount", f"must be a positive integer, got {n_bins}")
    if x.size == 0:
        return np.zeros(0, dtype=np.int64)
    lo, hi = float(x.min()), float(x.max())
    if hi == lo:
        return np.ones(x.shape, dtype=np.int64)
    levels = np.floor(n_bins * (x - lo) / (hi - lo)).astype(np.int64) + 1
    return np.minimum(levels, int(n_bins))


def binning_suffix(*, width: float | None = None, n_bins: int | None = None) -> str:
    """Column suffix naming the discretisation, e.g. ``fbs_w25`` or ``fbn_n32``.

    Examples
    --------
    >>> binning_suffix(width=2.5)
    'fbs_w2p5'
    """
    if width is not None:
        text = f"{width:g}".replace(".", "p").replace("-", "m")
        return f"fbs_w{text}"
    if n_bins is not None:
        return f"fbn_n{int(n_bins)}"
    raise ConfigError("setting", "give binWidth or binCount")
