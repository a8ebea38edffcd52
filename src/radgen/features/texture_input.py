"""Argument checks shared by the texture modules (grey-level arrays, ``ng``, distances).

One place for the validation :mod:`texture_glcm`, :mod:`texture_glrlm`, :mod:`texture_glszm`,
:mod:`texture_ngldm` and :mod:`texture_ngtdm` apply to what they are given. (The NGLDM family
keeps its own level check: it keeps the caller's integer dtype for its narrow kernels.)
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import numpy.typing as npt

from radgen.errors import ConfigError, EmptyRoiError, InputError

__all__ = ["check_distances", "check_levels", "check_ng"]


def check_ng(ng: int) -> int:
    """``ng`` as a positive int; :class:`ConfigError` otherwise."""
    if isinstance(ng, bool) or int(ng) != ng or ng < 1:
        raise ConfigError("ng", f"must be a positive integer, got {ng!r}")
    return int(ng)


def check_levels(
    levels: npt.ArrayLike, ng: int | None, *, require_roi: bool
) -> npt.NDArray[np.int64]:
    """A (z, y, x) integer grey-level array (0 outside the ROI, ``1..ng`` inside) as int64.

    Raises
    ------
    InputError
        Not 3-D, not integer, a negative level or one above `ng`.
    EmptyRoiError
        With `require_roi`, no voxel inside the ROI.
    """
    arr = np.asarray(levels)
    if arr.ndim != 3:
        raise InputError("levels", f"expected a 3-D (z, y, x) array, got {arr.ndim} dimensions")
    if not np.issubdtype(arr.dtype, np.integer):
        raise InputError("levels", f"expected integer grey levels, got dtype {arr.dtype}")
    if require_roi and (arr.size == 0 or not np.any(arr)):
        raise EmptyRoiError("levels", "the ROI has no voxel")
    if arr.size and int(arr.min()) < 0:
        raise InputError("levels", "grey levels must be >= 1 inside the ROI and 0 outside")
    if ng is not None and arr.size and int(arr.max()) > ng:
        raise InputError("levels", f"grey level {int(arr.max())} exceeds ng={ng}")
    return arr.astype(np.int64, copy=False)


def check_distances(distances: Iterable[int]) -> tuple[int, ...]:
    """Distinct positive integer Chebyshev distances, sorted."""
    out = tuple(distances)
    if not out or any(isinstance(d, bool) or int(d) != d or d < 1 for d in out):
        raise ConfigError("distances", f"must be positive integers, got {out!r}")
    return tuple(sorted({int(d) for d in out}))
