"""Neighbourhood grey tone difference matrix (NGTDM, IBSI 3.10) and PyRadiomics NGTDM.

For every ROI voxel of grey level ``i`` the neighbourhood mean ``A`` is the mean grey level
of the ROI voxels within Chebyshev distance ``delta`` (the centre excluded; voxels outside
the ROI or outside the array are not neighbours). The matrix holds, per grey level,

- ``n_i``: the number of voxels of grey level ``i`` with at least one valid neighbour (IBSI),
- ``s_i = sum |i - A|`` over those voxels,
- ``n_i`` counting every ROI voxel of grey level ``i`` (PyRadiomics 3.0.1 counts voxels
  without a neighbour too, with a zero difference).

Pure NumPy: the neighbour counts and sums are box sums of the ROI mask and of the masked grey
levels (a Chebyshev ball is a box, a shell the difference of two boxes), computed exactly
in integers as separable shifted additions on the zero-padded, flattened arrays.

Chunked computation: all three columns are additive. Give each chunk a halo of ``distance``
voxels on every side (in-plane only when ``two_d``), pass the chunk with its halo as `levels`
and the chunk's own region as ``core``, and sum the matrices.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from radgen.errors import ConfigError
from radgen.features.texture_input import check_distances
from radgen.features.texture_ngldm import (
    Core,
    _check_core,
    _check_levels,
    _padded_flat,
)

__all__ = ["ibsi_ngtdm", "ngtdm_features", "ngtdm_matrix", "pyradiomics_ngtdm"]

#: IBSI NGTDM tags in reference-table order.
IBSI_TAGS = ("ngt.coarseness", "ngt.contrast", "ngt.busyness", "ngt.complexity", "ngt.strength")

#: PyRadiomics NGTDM feature (all enabled by default in 3.0.1) -> IBSI tag.
PYRADIOMICS_NAMES = {
    "Coarseness": "ngt.coarseness",
    "Contrast": "ngt.contrast",
    "Busyness": "ngt.busyness",
    "Complexity": "ngt.complexity",
    "Strength": "ngt.strength",
}

#: Columns of an NGTDM from :func:`ngtdm_matrix`.
N_VALID, S_SUM, N_ALL = 0, 1, 2


def _box_sums(
    flat: npt.NDArray[np.signedinteger[Any]],
    radius: int,
    axes: Sequence[int],
    strides: tuple[int, int, int],
) -> npt.NDArray[np.signedinteger[Any]]:
    """Box sums ``|offset| <= radius`` along `axes` of padded, flattened channels.

    `flat` has shape ``(channels, voxels)`` (see :func:`_padded_flat`, padding >= `radius`);
    the box is separable, so each axis is ``2 radius`` contiguous shifted additions. Exact:
    integer arithmetic in the dtype of `flat`.
    """
    out = flat
    for ax in axes:
        step = strides[ax]
        src = out
        out = src.copy()
        for k in range(1, radius + 1):
            shift = k * step
            out[:, shift:] += src[:, :-shift]
            out[:, :-shift] += src[:, shift:]
    return out


def _ngtdm_counts(
    levels: npt.NDArray[np.integer[Any]],
    ng: int,
    boxes: dict[int, int],
    axes: Sequence[int],
    *,
    per_slice: bool,
    core: Core | None,
) -> npt.NDArray[np.float64]:
    """NGTDM for the neighbourhood ``sum_r coef_r * box(r)`` given as ``{r: coef_r}``."""
    roi = levels > 0
    reach = max(boxes)
    # Channel 0: ROI mask, channel 1: masked levels. The widest box sums at most
    # (2 reach + 1)^3 voxels of level <= ng: pick the smallest exact integer type.
    bound = (2 * reach + 1) ** 3 * ng
    dtype = next(t for t in (np.int16, np.int32, np.int64) if bound <= np.iinfo(t).max)
    shape = tuple(n + 2 * reach for n in levels.shape)
    strides = (shape[1] * shape[2], shape[2], 1)
    both = np.zeros((2, *shape), dtype=dtype)
    inner = tuple(slice(reach, reach + n) for n in levels.shape)
    both[0][inner] = roi
    both[1][inner] = levels
    both = both.reshape(2, -1)  # padded, flattened: see _padded_flat
    mask_flat, level_flat = both[0], both[1]
    sums = np.zeros_like(both)
    for radius, coef in boxes.items():
        box = both if radius == 0 else _box_sums(both, radius, axes, strides)
        if coef == 1:
            sums += box
        elif coef == -1:
            sums -= box
        elif coef:
            sums += coef * box
    sel = _check_core(core, levels.shape)
    centre_flat = mask_flat if sel is None else _padded_flat(roi & sel, reach)[0]
    at = np.flatnonzero(centre_flat)  # padded flat index of every centre voxel
    count = sums[0].take(at).astype(np.float64)
    total = sums[1].take(at).astype(np.float64)
    grey = level_flat.take(at).astype(np.int64)
    key = grey - 1  # bin of each centre voxel: slice * ng + level - 1
    nslice = levels.shape[0] if per_slice else 1
    if per_slice:
        key += (at // strides[0] - reach) * ng
    valid = count > 0
    diff = np.abs(grey - total / np.maximum(count, 1.0))
    diff *= valid  # no neighbour: no difference
    size = nslice * ng
    out = np.empty((size, 3), dtype=np.float64)
    out[:, N_VALID] = np.bincount(key, weights=valid, minlength=size)
    out[:, S_SUM] = np.bincount(key, weights=diff, minlength=size)
    out[:, N_ALL] = np.bincount(key, minlength=size)
    return out.reshape((nslice, ng, 3)) if per_slice else out


def ngtdm_matrix(
    levels: npt.NDArray[np.integer[Any]],
    ng: int,
    *,
    two_d: bool = False,
    distance: int = 1,
    core: Core | None = None,
) -> npt.NDArray[np.float64]:
    """Neighbourhood grey tone difference matrix (IBSI 3.10).

    ``A(v) = sum_{u in N(v)} x(u) / |N(v)|`` with ``N(v)`` the ROI voxels at Chebyshev
    distance ``1..distance`` of ``v``; ``s_i = sum_{v: x(v) = i, |N(v)| > 0} |i - A(v)|``.

    Parameters
    ----------
    levels : ndarray of int, shape (z, y, x)
        Grey levels ``1..ng`` inside the ROI, 0 outside, cropped to the ROI bounding box.
    ng : int
        Number of grey levels after discretisation; the matrix has `ng` rows.
    two_d : bool
        Neighbours in the axial plane only (first axis fixed); one matrix per slice.
    distance : int
        Chebyshev distance ``delta >= 1``.
    core : tuple of 3 slices, optional
        For chunked computation: only voxels in ``levels[core]`` are counted as centres, the
        rest of `levels` is a halo that provides neighbours.

    Returns
    -------
    ndarray of float64
        Shape ``(ng, 3)`` in 3D, ``(n_slices, ng, 3)`` when `two_d` (the 2.5D merged matrix
        is the sum over axis 0). Row ``i - 1`` is grey level ``i``; the columns are ``n_i``
        over voxels with a valid neighbour, ``s_i``, and ``n_i`` over all ROI voxels.

    Notes
    -----
    Additive over chunks with a halo of `distance` voxels (in-plane only when `two_d`):
    compute each chunk with its halo and ``core`` set to the chunk, then sum.

    Examples
    --------
    >>> ngtdm_matrix(np.array([[[1, 3]]]), 3).tolist()
    [[1.0, 2.0, 1.0], [0.0, 0.0, 0.0], [1.0, 2.0, 1.0]]
    """
    arr = _check_levels(levels, ng)
    d = check_distances([distance])[-1]
    axes = (1, 2) if two_d else (0, 1, 2)
    return _ngtdm_counts(arr, ng, {d: 1, 0: -1}, axes, per_slice=two_d, core=core)


def _pairwise(
    p: npt.NDArray[np.float64], s: npt.NDArray[np.float64], i: npt.NDArray[np.float64]
) -> tuple[float, float, float, float]:
    """Double sums over the grey levels present: contrast, busyness, complexity, strength."""
    pi, pj = p[:, None], p[None, :]
    si, sj = s[:, None], s[None, :]
    ii, jj = i[:, None], i[None, :]
    sq = (ii - jj) ** 2
    contrast = float(np.sum(pi * pj * sq))
    busy = float(np.sum(np.abs(ii * pi - jj * pj)))
    complexity = float(np.sum(np.abs(ii - jj) * (pi * si + pj * sj) / (pi + pj)))
    strength = float(np.sum((pi + pj) * sq))
    return contrast, busy, complexity, strength


def ngtdm_features(matrix: npt.ArrayLike, *, pyradiomics: bool = False) -> dict[str, float]:
    """The 5 NGTDM features of one matrix.

    With ``N_vc = sum n_i``, ``p_i = n_i / N_vc`` and ``N_gp`` the number of grey levels with
    ``p_i > 0`` (all sums run over those levels):

    - ``ngt.coarseness = 1 / sum p_i s_i``
    - ``ngt.contrast = [sum_ij p_i p_j (i - j)^2 / (N_gp (N_gp - 1))] [sum s_i / N_vc]``
    - ``ngt.busyness = sum p_i s_i / sum_ij |i p_i - j p_j|``
    - ``ngt.complexity = sum_ij |i - j| (p_i s_i + p_j s_j) / (p_i + p_j) / N_vc``
    - ``ngt.strength = sum_ij (p_i + p_j)(i - j)^2 / sum s_i``

    Parameters
    ----------
    matrix : array_like, shape (ng, 3)
        An NGTDM from :func:`ngtdm_matrix`.
    pyradiomics : bool
        PyRadiomics 3.0.1 conventions: ``n_i`` counts every ROI voxel (column 2), and the
        undefined values take PyRadiomics' replacements (coarseness ``1e6``, contrast,
        busyness and strength 0). Otherwise IBSI: ``n_i`` counts voxels with a valid
        neighbour (column 0) and undefined values are NaN.

    Returns
    -------
    dict of str to float
        Keyed by IBSI tag. All NaN (IBSI) for a matrix without voxels.
    """
    m = np.asarray(matrix, dtype=np.float64)
    n = m[:, N_ALL] if pyradiomics else m[:, N_VALID]
    present = n > 0
    nvc = float(n.sum())
    if nvc <= 0:
        return dict.fromkeys(IBSI_TAGS, math.nan)
    p = n[present] / nvc
    s = m[present, S_SUM]
    i = np.flatnonzero(present).astype(np.float64) + 1.0
    ngp = int(present.sum())
    contrast_sum, busy_den, complexity_sum, strength_sum = _pairwise(p, s, i)
    ps = float(np.sum(p * s))
    s_total = float(s.sum())
    undefined = 0.0 if pyradiomics else math.nan
    return {
        "ngt.coarseness": 1.0 / ps if ps != 0 else (1e6 if pyradiomics else math.nan),
        "ngt.contrast": (contrast_sum / (ngp * (ngp - 1)) * s_total / nvc)
        if ngp > 1
        else undefined,
        "ngt.busyness": ps / busy_den if busy_den != 0 else undefined,
        "ngt.complexity": complexity_sum / nvc,
        "ngt.strength": strength_sum / s_total if s_total != 0 else undefined,
    }


def ibsi_ngtdm(levels: npt.NDArray[np.integer[Any]], ng: int) -> dict[str, float]:
    """IBSI NGTDM features (``delta = 1``) for the 2D, 2.5D and 3D aggregations.

    - ``[2D]``: one matrix per axial slice with in-plane neighbours, features averaged over
      the slices where they are defined (slices without a voxel with a valid neighbour, and
      undefined values such as the contrast of a single-level slice, are left out);
    - ``[2.5D]``: the per-slice matrices summed, then features;
    - ``[3D]``: one matrix with the 26-neighbourhood.

    Parameters
    ----------
    levels : ndarray of int, shape (z, y, x)
        Grey levels ``1..ng`` inside the ROI, 0 outside, cropped to the ROI bounding box.
    ng : int
        Number of grey levels after discretisation.

    Returns
    -------
    dict of str to float
        ``"<tag> [<aggregation>]"``, e.g. ``"ngt.coarseness [3D]"``: 5 features x 3
        aggregations. NaN where undefined (e.g. coarseness of a ROI without grey tone
        differences).

    References
    ----------
    Zwanenburg A. et al., The Image Biomarker Standardisation Initiative, arXiv:1612.07003,
    section 3.10.
    """
    slices = ngtdm_matrix(levels, ng, two_d=True)
    per_slice = [ngtdm_features(m) for m in slices]
    out: dict[str, float] = {}
    for tag in IBSI_TAGS:
        values = np.array([f[tag] for f in per_slice])
        values = values[~np.isnan(values)]
        out[f"{tag} [2D]"] = float(values.mean()) if values.size else math.nan
    for tag, value in ngtdm_features(slices.sum(axis=0)).items():
        out[f"{tag} [2.5D]"] = value
    for tag, value in ngtdm_features(ngtdm_matrix(levels, ng)).items():
        out[f"{tag} [3D]"] = value
    return out


def _shell_boxes(distances: Iterable[int]) -> dict[int, int]:
    """Box coefficients of the union of Chebyshev shells ``max|offset| in distances``."""
    boxes: dict[int, int] = {}
    for d in check_distances(distances):
        boxes[d] = boxes.get(d, 0) + 1
        boxes[d - 1] = boxes.get(d - 1, 0) - 1
    return boxes


def pyradiomics_ngtdm(
    levels: npt.NDArray[np.integer[Any]],
    *,
    distances: Iterable[int] = (1,),
    force2D: bool = False,
    force2Ddimension: int = 0,
) -> dict[str, float]:
    """PyRadiomics 3.0.1 ``ngtdm`` features (all 5, enabled by default).

    The neighbours of a voxel are the ROI voxels at a Chebyshev distance *in* `distances`
    (shells, as PyRadiomics' ``generate_angles``), restricted to offsets with no step along
    `force2Ddimension` when `force2D`; one matrix for the whole ROI. PyRadiomics counts a
    voxel without neighbours in ``n_i`` with a zero difference, and returns 1e6 for the
    coarseness and 0 for contrast, busyness and strength when they are undefined.

    Where no offset of `distances` fits in the image, PyRadiomics raises ("Error getting
    angle count"); this function returns the values of a ROI whose voxels have no neighbour.

    Parameters
    ----------
    levels : ndarray of int, shape (z, y, x)
        PyRadiomics-discretised grey levels (``binImage``), 0 outside the ROI, cropped to the
        bounding box.
    distances : iterable of int
        PyRadiomics ``distances``.
    force2D : bool
        PyRadiomics ``force2D``.
    force2Ddimension : int
        PyRadiomics ``force2Ddimension`` (0 = z in (z, y, x) order).

    Returns
    -------
    dict of str to float
        Keyed by PyRadiomics feature name (``"Coarseness"``, ...).
    """
    arr = np.asarray(levels)
    ng = int(arr.max()) if arr.size else 0
    arr = _check_levels(arr, max(ng, 1))
    if force2D and force2Ddimension not in (0, 1, 2):
        raise ConfigError("force2Ddimension", f"must be 0, 1 or 2, got {force2Ddimension}")
    axes = tuple(ax for ax in range(3) if not (force2D and ax == force2Ddimension))
    matrix = _ngtdm_counts(arr, ng, _shell_boxes(distances), axes, per_slice=False, core=None)
    ibsi = ngtdm_features(matrix, pyradiomics=True)
    return {name: ibsi[tag] for name, tag in PYRADIOMICS_NAMES.items()}
