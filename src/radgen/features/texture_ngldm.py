"""Neighbouring grey level dependence matrix (NGLDM, IBSI 3.11) and PyRadiomics GLDM.

A voxel of grey level ``i`` with ``k`` *dependent* neighbours adds one count to ``s(i, k + 1)``.
A neighbour is a voxel of the ROI within Chebyshev distance ``delta`` of the centre (the centre
excluded) and it is dependent when ``|x_neighbour - i| <= alpha``. Neighbours outside the ROI or
outside the array are not considered, so every ROI voxel adds exactly one count
(``N_s = N_v``). PyRadiomics' GLDM is the same matrix with ``alpha = gldm_a``; its
``distances`` select the Chebyshev *shells* ``max|offset| in distances`` rather than the full
cube.

Pure NumPy: the dependence count of every voxel is accumulated from shifted-array
comparisons on the zero-padded, flattened levels (one contiguous comparison per direction,
shared by the two voxels of a pair). The small helpers
(:func:`_check_levels`, :func:`_half_offsets`, :func:`_padded_flat`) are shared with the
NGTDM and GLDZM modules.

Chunked computation: the NGLDM counts are additive. Split the ROI bounding box into chunks,
give each chunk a halo of ``distance`` voxels on every side (in-plane only when ``two_d``),
pass the chunk with its halo as `levels` and the chunk's own region as ``core``, and sum the
matrices.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import numpy.typing as npt

from radgen.errors import ConfigError, EmptyRoiError, InputError
from radgen.features.texture_input import check_distances

__all__ = ["ibsi_ngldm", "ngldm_features", "ngldm_matrix", "pyradiomics_gldm"]

Offset = tuple[int, int, int]
Core = tuple[slice, slice, slice]

#: IBSI NGLDM tags in reference-table order.
IBSI_TAGS = (
    "ngl.lde",
    "ngl.hde",
    "ngl.lgce",
    "ngl.hgce",
    "ngl.ldlge",
    "ngl.ldhge",
    "ngl.hdlge",
    "ngl.hdhge",
    "ngl.glnu",
    "ngl.glnu.norm",
    "ngl.dcnu",
    "ngl.dcnu.norm",
    "ngl.dc.perc",
    "ngl.gl.var",
    "ngl.dc.var",
    "ngl.dc.entr",
    "ngl.dc.energy",
)

#: PyRadiomics GLDM feature (enabled by default in 3.0.1) -> IBSI tag of the same formula.
PYRADIOMICS_NAMES = {
    "SmallDependenceEmphasis": "ngl.lde",
    "LargeDependenceEmphasis": "ngl.hde",
    "GrayLevelNonUniformity": "ngl.glnu",
    "DependenceNonUniformity": "ngl.dcnu",
    "DependenceNonUniformityNormalized": "ngl.dcnu.norm",
    "GrayLevelVariance": "ngl.gl.var",
    "DependenceVariance": "ngl.dc.var",
    "DependenceEntropy": "ngl.dc.entr",
    "LowGrayLevelEmphasis": "ngl.lgce",
    "HighGrayLevelEmphasis": "ngl.hgce",
    "SmallDependenceLowGrayLevelEmphasis": "ngl.ldlge",
    "SmallDependenceHighGrayLevelEmphasis": "ngl.ldhge",
    "LargeDependenceLowGrayLevelEmphasis": "ngl.hdlge",
    "LargeDependenceHighGrayLevelEmphasis": "ngl.hdhge",
}


def _check_levels(levels: npt.NDArray[np.integer[Any]], ng: int) -> npt.NDArray[Any]:
    """Validate a (z, y, x) grey-level array: integers in ``0..ng``, at least one ROI voxel.

    Returns `levels` as an array, unconverted (the kernels copy it once into the type they
    need, see :func:`_level_dtype`).
    """
    arr = np.asarray(levels)
    if arr.ndim != 3:
        raise InputError("levels", f"expected a 3-D (z, y, x) array, got {arr.ndim} dimensions")
    if arr.dtype.kind not in "iub":
        raise InputError("levels", f"expected integer grey levels, got dtype {arr.dtype}")
    if isinstance(ng, bool) or int(ng) != ng or ng < 1:
        raise ConfigError("ng", f"must be a positive integer, got {ng}")
    top = int(arr.max()) if arr.size else 0
    if top <= 0:
        raise EmptyRoiError("levels", "the ROI has no voxel")
    if int(arr.min()) < 0 or top > ng:
        raise InputError("levels", f"grey levels must lie in 0..{ng} (0 = outside the ROI)")
    return arr


def _level_dtype(top: int) -> type[np.signedinteger[Any]]:
    """Smallest signed integer type holding ``-top..top`` (fewer bytes per vectorised pass)."""
    for dtype in (np.int8, np.int16, np.int32):
        if top <= np.iinfo(dtype).max:
            return dtype
    return np.int64


def _check_core(core: Core | None, shape: tuple[int, ...]) -> npt.NDArray[np.bool_] | None:
    """Boolean array selecting the centre voxels of a chunk, or None for all voxels."""
    if core is None:
        return None
    if len(core) != 3:
        raise ConfigError("core", "give one slice per axis (z, y, x)")
    sel = np.zeros(shape, dtype=bool)
    sel[core] = True
    return sel


def _half_offsets(norms: Iterable[int], fixed_axis: int | None) -> list[Offset]:
    """One offset of each pair ``(o, -o)`` whose Chebyshev norm lies in `norms`.

    Parameters
    ----------
    norms : iterable of int
        Accepted values of ``max(|dz|, |dy|, |dx|)``.
    fixed_axis : int or None
        Axis along which the offset must be 0 (2-D neighbourhoods), or None.

    Returns
    -------
    list of (int, int, int)
        Offsets whose first non-zero component is positive.
    """
    keep = set(norms)
    reach = max(keep)
    out: list[Offset] = []
    for dz in range(-reach, reach + 1):
        for dy in range(-reach, reach + 1):
            for dx in range(-reach, reach + 1):
                o = (dz, dy, dx)
                if max(abs(dz), abs(dy), abs(dx)) not in keep:
                    continue
                if fixed_axis is not None and o[fixed_axis] != 0:
                    continue
                if next(v for v in o if v != 0) > 0:
                    out.append(o)
    return out


def _padded_flat(
    arr: npt.NDArray[Any], pad: int, fill: int = 0, dtype: npt.DTypeLike | None = None
) -> tuple[npt.NDArray[Any], tuple[int, int, int]]:
    """`arr` padded by `pad` voxels of `fill` on every side, flattened, and its strides.

    With ``pad`` at least the reach of an offset ``o``, the neighbour of every voxel of
    `arr` at ``o`` is ``flat[index + o . strides]``: a contiguous shift of the whole array.
    Shifts wrap around only at padding voxels, whose results are never read.
    """
    shape = tuple(n + 2 * pad for n in arr.shape)
    padded = np.full(shape, fill, dtype=arr.dtype if dtype is None else dtype)
    padded[tuple(slice(pad, pad + n) for n in arr.shape)] = arr
    strides = (shape[1] * shape[2], shape[2], 1)
    return padded.ravel(), strides


def _dependence_counts(
    flat: npt.NDArray[np.signedinteger[Any]],
    strides: tuple[int, int, int],
    offsets: list[Offset],
    alpha: float,
) -> npt.NDArray[np.signedinteger[Any]]:
    """Dependence count of every voxel of padded, flattened levels (see :func:`_padded_flat`).

    Each offset of a pair ``(o, -o)`` is one contiguous comparison of the levels with
    themselves shifted, added to both voxels of every pair. Outside the ROI `flat` must hold
    a value farther than `alpha` from every grey level; counts are only valid at ROI voxels.
    """
    n = flat.size
    dtype = np.int8 if 2 * len(offsets) <= np.iinfo(np.int8).max else np.int32
    dep: npt.NDArray[np.signedinteger[Any]] = np.zeros(n, dtype=dtype)
    for o in offsets:
        shift = o[0] * strides[0] + o[1] * strides[1] + o[2]
        a, b = flat[: n - shift], flat[shift:]
        match = a == b if alpha < 1 else np.abs(a - b) <= alpha
        dep[: n - shift] += match
        dep[shift:] += match
    return dep


def _gldm_counts(
    levels: npt.NDArray[np.integer[Any]],
    ng: int,
    offsets: list[Offset],
    alpha: float,
    *,
    per_slice: bool,
    core: Core | None,
) -> npt.NDArray[np.float64]:
    """Count matrix of shape ``(ng, 2 len(offsets) + 1)``, or one per slice when `per_slice`."""
    if alpha < 0 or not math.isfinite(alpha):
        raise ConfigError("alpha", f"must be a finite number >= 0, got {alpha}")
    ncol = 2 * len(offsets) + 1
    reach = max((max(abs(v) for v in o) for o in offsets), default=0)
    flat, strides = _padded_flat(levels, reach, dtype=_level_dtype(ng))
    if alpha < 1:  # integer levels: |a - b| <= alpha means a == b; outside (0) never equals
        a_eff = 0
        cmp = flat
    else:
        # Outside the ROI holds a sentinel farther than alpha from every level 1..ng (alpha
        # beyond ng is the same as ng). Pairs of two outside voxels match, but only ROI
        # centres are read.
        a_eff = min(math.floor(alpha), ng)
        dtype = np.int16 if 2 * ng + 2 <= np.iinfo(np.int16).max else np.int64
        cmp = np.where(flat > 0, flat, -(a_eff + 1)).astype(dtype)
    dep = _dependence_counts(cmp, strides, offsets, a_eff)
    sel = _check_core(core, levels.shape)
    centre = flat > 0 if sel is None else _padded_flat(sel & (levels > 0), reach)[0]
    at = np.flatnonzero(centre)  # padded flat index of every centre voxel
    key = (flat.take(at).astype(np.intp) - 1) * ncol + dep.take(at)
    nslice = levels.shape[0] if per_slice else 1
    if per_slice:
        key += (at // strides[0] - reach) * (ng * ncol)
    counts = np.bincount(key, minlength=nslice * ng * ncol).astype(np.float64)
    shape = (nslice, ng, ncol) if per_slice else (ng, ncol)
    return counts.reshape(shape)


def ngldm_matrix(
    levels: npt.NDArray[np.integer[Any]],
    ng: int,
    *,
    two_d: bool = False,
    alpha: float = 0,
    distance: int = 1,
    core: Core | None = None,
) -> npt.NDArray[np.float64]:
    """Neighbouring grey level dependence matrix (IBSI 3.11).

    ``s(i, j)`` counts the ROI voxels of grey level ``i`` with ``j - 1`` dependent neighbours
    among the ROI voxels within Chebyshev distance `distance` (centre excluded);
    a neighbour of grey level ``x`` is dependent when ``|x - i| <= alpha``.

    Parameters
    ----------
    levels : ndarray of int, shape (z, y, x)
        Grey levels ``1..ng`` inside the ROI, 0 outside, cropped to the ROI bounding box.
    ng : int
        Number of grey levels after discretisation; the matrix has `ng` rows.
    two_d : bool
        Neighbours in the axial plane only (first axis fixed); one matrix per slice.
    alpha : float
        Coarseness parameter ``alpha >= 0``.
    distance : int
        Chebyshev distance ``delta >= 1``.
    core : tuple of 3 slices, optional
        For chunked computation: only voxels in ``levels[core]`` are counted as centres, the
        rest of `levels` is a halo that provides neighbours.

    Returns
    -------
    ndarray of float64
        Shape ``(ng, n_dep)`` in 3D, ``(n_slices, ng, n_dep)`` when `two_d` (one matrix per
        slice of `levels`; the 2.5D merged matrix is the sum over axis 0). Column ``j - 1``
        holds dependence ``j``; ``n_dep = (2 delta + 1)^3`` in 3D and ``(2 delta + 1)^2``
        in 2D, the most a voxel can reach.

    Notes
    -----
    Additive over chunks with a halo of `distance` voxels (in-plane only when `two_d`):
    compute each chunk with its halo and ``core`` set to the chunk, then sum.

    Examples
    --------
    Two voxels of level 1 each with one dependent neighbour (dependence 2), one voxel of
    level 2 with none (dependence 1):

    >>> ngldm_matrix(np.array([[[1, 1, 2]]]), 2)[:, :3].tolist()
    [[0.0, 2.0, 0.0], [1.0, 0.0, 0.0]]
    """
    arr = _check_levels(levels, ng)
    d = check_distances([distance])[-1]
    offsets = _half_offsets(range(1, d + 1), 0 if two_d else None)
    return _gldm_counts(arr, ng, offsets, float(alpha), per_slice=two_d, core=core)


def ngldm_features(matrix: npt.ArrayLike, n_voxels: float | None = None) -> dict[str, float]:
    """The 17 IBSI NGLDM features of one matrix.

    With ``s(i, j)`` the matrix, ``N_s = sum s``, ``p = s / N_s``, ``s_i. = sum_j s(i, j)`` and
    ``s_.j = sum_i s(i, j)``:

    - ``ngl.lde = sum s / j^2 / N_s``, ``ngl.hde = sum s j^2 / N_s``
    - ``ngl.lgce = sum s / i^2 / N_s``, ``ngl.hgce = sum s i^2 / N_s``
    - ``ngl.ldlge``, ``ngl.ldhge``, ``ngl.hdlge``, ``ngl.hdhge``: ``s / (i^2 j^2)``,
      ``s i^2 / j^2``, ``s j^2 / i^2``, ``s i^2 j^2``, each summed over ``N_s``
    - ``ngl.glnu = sum_i s_i.^2 / N_s`` (``.norm``: over ``N_s^2``), ``ngl.dcnu`` likewise
      with ``s_.j``
    - ``ngl.dc.perc = N_s / N_v``
    - ``ngl.gl.var = sum p (i - mu_i)^2``, ``ngl.dc.var = sum p (j - mu_j)^2``
    - ``ngl.dc.entr = -sum p log2 p``, ``ngl.dc.energy = sum p^2``

    Parameters
    ----------
    matrix : array_like, shape (ng, n_dep)
        An NGLDM from :func:`ngldm_matrix` (row ``i - 1`` = grey level ``i``, column
        ``j - 1`` = dependence ``j``).
    n_voxels : float, optional
        ``N_v``, the number of ROI voxels; by default ``N_s`` (every ROI voxel has a
        dependence), so ``ngl.dc.perc`` is 1.

    Returns
    -------
    dict of str to float
        Keyed by IBSI tag. All NaN for an empty matrix.
    """
    s = np.asarray(matrix, dtype=np.float64)
    ns = float(s.sum())
    if ns <= 0:
        return dict.fromkeys(IBSI_TAGS, math.nan)
    i = np.arange(1, s.shape[0] + 1, dtype=np.float64)[:, None]
    j = np.arange(1, s.shape[1] + 1, dtype=np.float64)[None, :]
    p = s / ns
    si = s.sum(axis=1)
    sj = s.sum(axis=0)
    mu_i = float(np.sum(p * i))
    mu_j = float(np.sum(p * j))
    nz = p[p > 0]
    nv = ns if n_voxels is None else float(n_voxels)
    return {
        "ngl.lde": float(np.sum(p / j**2)),
        "ngl.hde": float(np.sum(p * j**2)),
        "ngl.lgce": float(np.sum(p / i**2)),
        "ngl.hgce": float(np.sum(p * i**2)),
        "ngl.ldlge": float(np.sum(p / (i**2 * j**2))),
        "ngl.ldhge": float(np.sum(p * i**2 / j**2)),
        "ngl.hdlge": float(np.sum(p * j**2 / i**2)),
        "ngl.hdhge": float(np.sum(p * i**2 * j**2)),
        "ngl.glnu": float(np.sum(si**2)) / ns,
        "ngl.glnu.norm": float(np.sum(si**2)) / ns**2,
        "ngl.dcnu": float(np.sum(sj**2)) / ns,
        "ngl.dcnu.norm": float(np.sum(sj**2)) / ns**2,
        "ngl.dc.perc": ns / nv,
        "ngl.gl.var": float(np.sum(p * (i - mu_i) ** 2)),
        "ngl.dc.var": float(np.sum(p * (j - mu_j) ** 2)),
        "ngl.dc.entr": float(-np.sum(nz * np.log2(nz))),
        "ngl.dc.energy": float(np.sum(p**2)),
    }


def ibsi_ngldm(levels: npt.NDArray[np.integer[Any]], ng: int) -> dict[str, float]:
    """IBSI NGLDM features (``alpha = 0``, ``delta = 1``) for the 2D, 2.5D and 3D aggregations.

    - ``[2D]``: one matrix per axial slice with in-plane neighbours, features averaged over
      the slices that hold ROI voxels;
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
        ``"<tag> [<aggregation>]"``, e.g. ``"ngl.lde [3D]"``: 17 features x 3 aggregations.

    References
    ----------
    Zwanenburg A. et al., The Image Biomarker Standardisation Initiative, arXiv:1612.07003,
    section 3.11.
    """
    slices = ngldm_matrix(levels, ng, two_d=True)
    per_slice = [ngldm_features(m) for m in slices if m.sum() > 0]
    out: dict[str, float] = {}
    for tag in IBSI_TAGS:
        out[f"{tag} [2D]"] = float(np.mean([f[tag] for f in per_slice]))
    for tag, value in ngldm_features(slices.sum(axis=0)).items():
        out[f"{tag} [2.5D]"] = value
    for tag, value in ngldm_features(ngldm_matrix(levels, ng)).items():
        out[f"{tag} [3D]"] = value
    return out


def pyradiomics_gldm(
    levels: npt.NDArray[np.integer[Any]],
    *,
    distances: Iterable[int] = (1,),
    gldm_a: float = 0,
    force2D: bool = False,
    force2Ddimension: int = 0,
) -> dict[str, float]:
    """PyRadiomics 3.0.1 ``gldm`` features (the 14 enabled by default).

    Same matrix as :func:`ngldm_matrix` with ``alpha = gldm_a``, except that the neighbours
    are the voxels at a Chebyshev distance *in* `distances` (shells, as PyRadiomics'
    ``generate_angles``), restricted to offsets with no step along `force2Ddimension` when
    `force2D`. The matrix is one for the whole ROI (no per-slice averaging). The features
    are the IBSI formulas of :func:`ngldm_features` under PyRadiomics' names; PyRadiomics
    deprecated ``GrayLevelNonUniformityNormalized`` and ``DependencePercentage``.

    Where no offset of `distances` fits in the image, PyRadiomics raises ("Error getting
    angle count"); this function returns the values of a ROI whose voxels have no neighbour.

    Parameters
    ----------
    levels : ndarray of int, shape (z, y, x)
        PyRadiomics-discretised grey levels (``binImage``), 0 outside the ROI, cropped to the
        bounding box.
    distances : iterable of int
        PyRadiomics ``distances``.
    gldm_a : float
        PyRadiomics ``gldm_a`` (``alpha``). PyRadiomics takes integers only; a fractional
        value acts as its floor, as grey-level differences are integers.
    force2D : bool
        PyRadiomics ``force2D``.
    force2Ddimension : int
        PyRadiomics ``force2Ddimension`` (0 = z in (z, y, x) order).

    Returns
    -------
    dict of str to float
        Keyed by PyRadiomics feature name (``"SmallDependenceEmphasis"``, ...).
    """
    arr = np.asarray(levels)
    ng = int(arr.max()) if arr.size else 0
    arr = _check_levels(arr, max(ng, 1))
    if force2D and force2Ddimension not in (0, 1, 2):
        raise ConfigError("force2Ddimension", f"must be 0, 1 or 2, got {force2Ddimension}")
    offsets = _half_offsets(check_distances(distances), force2Ddimension if force2D else None)
    matrix = _gldm_counts(arr, ng, offsets, float(gldm_a), per_slice=False, core=None)
    ibsi = ngldm_features(matrix)
    return {name: ibsi[tag] for name, tag in PYRADIOMICS_NAMES.items()}
