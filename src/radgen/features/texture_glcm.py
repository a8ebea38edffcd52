r"""Grey level co-occurrence matrix (GLCM) features (IBSI 3.6, family ``cm``).

Two steps, so that a chunked job can compute the matrices per chunk and add them up:

1. :func:`glcm_matrices` counts co-occurring grey-level pairs, one matrix per direction
   (13 directions in 3D, 4 in-plane directions per axial slice in 2D, for Chebyshev distance 1).
2. :func:`glcm_features` turns a stack of count matrices into the 25 IBSI features.

:func:`ibsi_glcm` runs both and aggregates as IBSI does (six methods).
:func:`pyradiomics_glcm` reproduces ``radiomics.glcm.RadiomicsGLCM`` (PyRadiomics 3.0.1) from
PyRadiomics-discretised grey levels, with its settings and conventions; its features step is
:func:`pyradiomics_glcm_features`.

Notation: :math:`P(i,j)` is the count of voxel pairs with grey level :math:`i` at a voxel
:math:`\mathbf{v}` and :math:`j` at :math:`\mathbf{v}+\mathbf{d}`, both in the ROI;
:math:`p = P / \sum P`; :math:`p_x(i) = \sum_j p(i,j)`, :math:`p_y(j) = \sum_i p(i,j)`;
:math:`p_{x+y}(k) = \sum_{i+j=k} p(i,j)` for :math:`k = 2..2N_g`;
:math:`p_{x-y}(k) = \sum_{|i-j|=k} p(i,j)` for :math:`k = 0..N_g-1`. Entropies use
:math:`\log_2`.

Arrays are (z, y, x); a direction is an offset :math:`(d_z, d_y, d_x)` whose first non-zero
component is positive. "2D" means per axial slice (first axis) with in-plane offsets.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from radgen.errors import ConfigError, EmptyRoiError, InputError
from radgen.features.texture_input import check_distances, check_levels, check_ng

__all__ = [
    "GLCM_TAGS",
    "IBSI_GLCM_AGGREGATIONS",
    "PYRADIOMICS_GLCM_FEATURES",
    "glcm_directions",
    "glcm_features",
    "glcm_matrices",
    "ibsi_glcm",
    "pyradiomics_glcm",
    "pyradiomics_glcm_features",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: The 25 IBSI GLCM feature tags, in the order of the IBSI reference manual.
GLCM_TAGS: tuple[str, ...] = (
    "cm.joint.max",
    "cm.joint.avg",
    "cm.joint.var",
    "cm.joint.entr",
    "cm.diff.avg",
    "cm.diff.var",
    "cm.diff.entr",
    "cm.sum.avg",
    "cm.sum.var",
    "cm.sum.entr",
    "cm.energy",
    "cm.contrast",
    "cm.dissimilarity",
    "cm.inv.diff",
    "cm.inv.diff.norm",
    "cm.inv.diff.mom",
    "cm.inv.diff.mom.norm",
    "cm.inv.var",
    "cm.corr",
    "cm.auto.corr",
    "cm.clust.tend",
    "cm.clust.shade",
    "cm.clust.prom",
    "cm.info.corr.1",
    "cm.info.corr.2",
)

#: The six IBSI texture aggregation methods for the GLCM.
IBSI_GLCM_AGGREGATIONS: tuple[str, ...] = (
    "2D, averaged",
    "2D, slice-merged",
    "2.5D, direction-merged",
    "2.5D, merged",
    "3D, averaged",
    "3D, merged",
)

#: The features ``RadiomicsGLCM`` enables by default (all but the deprecated ones).
PYRADIOMICS_GLCM_FEATURES: tuple[str, ...] = (
    "Autocorrelation",
    "ClusterProminence",
    "ClusterShade",
    "ClusterTendency",
    "Contrast",
    "Correlation",
    "DifferenceAverage",
    "DifferenceEntropy",
    "DifferenceVariance",
    "Id",
    "Idm",
    "Idmn",
    "Idn",
    "Imc1",
    "Imc2",
    "InverseVariance",
    "JointAverage",
    "JointEnergy",
    "JointEntropy",
    "MCC",
    "MaximumProbability",
    "SumAverage",
    "SumEntropy",
    "SumSquares",
)

_WEIGHTING_NORMS = ("manhattan", "euclidean", "infinity", "no_weighting")


# --------------------------------------------------------------------------- validation


# --------------------------------------------------------------------------- matrix step


def glcm_directions(
    distances: Sequence[int] = (1,), *, fixed_axis: int | None = None
) -> list[tuple[int, int, int]]:
    """Offsets ``(dz, dy, dx)`` whose Chebyshev norm is in `distances`, one per +/- pair.

    The first non-zero component of each offset is positive; offsets come in the order
    PyRadiomics' ``generate_angles`` uses (components descending).

    Parameters
    ----------
    distances : sequence of int
        Chebyshev distances ``delta``; positive.
    fixed_axis : int, optional
        Keep only offsets whose component along this axis is 0 (0 gives the in-plane, 2D
        directions).

    Returns
    -------
    list of tuple of int
        13 offsets for ``distances=(1,)`` in 3D, 4 with ``fixed_axis=0``.

    Examples
    --------
    >>> glcm_directions((1,), fixed_axis=0)
    [(0, 1, 1), (0, 1, 0), (0, 1, -1), (0, 0, 1)]
    """
    dist = check_distances(distances)
    if fixed_axis is not None and fixed_axis not in (0, 1, 2):
        raise ConfigError("force2Ddimension", f"must be 0, 1 or 2, got {fixed_axis!r}")
    dmax = max(dist)
    out: list[tuple[int, int, int]] = []
    for off in itertools.product(range(dmax, -dmax - 1, -1), repeat=3):
        if max(abs(c) for c in off) not in dist:
            continue
        if next(c for c in off if c != 0) < 0:  # keep one offset of each +/- pair
            continue
        if fixed_axis is not None and off[fixed_axis] != 0:
            continue
        out.append((off[0], off[1], off[2]))
    return out


def _pair_slices(
    shape: tuple[int, ...], off: tuple[int, int, int]
) -> tuple[tuple[slice, ...] | None, tuple[slice, ...] | None]:
    """Index ``(src, dst)`` with ``arr[dst][v] = arr[src][v + off]``; None if the offset is too long."""
    src, dst = [], []
    for n, o in zip(shape, off, strict=True):
        if abs(o) >= n:
            return None, None
        src.append(slice(max(0, -o), n - max(0, o)))
        dst.append(slice(max(0, o), n - max(0, -o)))
    return tuple(src), tuple(dst)


def _count_pairs(
    levels: IntArray, ng: int, offsets: Sequence[tuple[int, int, int]], *, per_slice: bool
) -> IntArray:
    """Asymmetric co-occurrence counts: shape (n_offsets, ng, ng) or (nz, n_offsets, ng, ng).

    Each pair ``(a, b)`` gets the code ``a * (ng + 1) + b`` (plus ``z * (ng + 1)**2`` per
    slice), one ``np.bincount`` per offset; level 0 (outside the ROI) gets its own row and
    column, dropped at the end.
    """
    nz = levels.shape[0]
    n1 = ng + 1
    lead = nz if per_slice else 1
    n_codes = lead * n1 * n1
    col = levels
    row = col * n1
    if per_slice:  # in-plane offsets only: both voxels of a pair lie in the same slice
        row = row + (np.arange(nz, dtype=np.int64) * (n1 * n1))[:, None, None]
    out = np.zeros((len(offsets), n_codes), dtype=np.int64)
    for k, off in enumerate(offsets):
        src, dst = _pair_slices(levels.shape, off)
        if src is None or dst is None:
            continue
        out[k] = np.bincount((row[src] + col[dst]).ravel(), minlength=n_codes)
    counts = out.reshape(len(offsets), lead, n1, n1)[:, :, 1:, 1:]
    return np.ascontiguousarray(counts.swapaxes(0, 1) if per_slice else counts[:, 0])


def glcm_matrices(
    levels: npt.NDArray[np.integer],
    ng: int,
    *,
    distances: Sequence[int] = (1,),
    two_d: bool = False,
    symmetric: bool = True,
) -> IntArray:
    r"""Grey level co-occurrence counts, one matrix per direction (IBSI 3.6).

    Element :math:`P_{\mathbf{d}}(i,j)` counts the voxels :math:`\mathbf{v}` with grey level
    :math:`i` whose neighbour :math:`\mathbf{v}+\mathbf{d}` has grey level :math:`j`, both in
    the ROI. The symmetric matrix is :math:`P_{\mathbf{d}} + P_{\mathbf{d}}^T` (pairs in both
    directions, as IBSI and Haralick define it).

    Parameters
    ----------
    levels : ndarray of int, shape (z, y, x)
        Grey levels ``1..ng`` inside the ROI, 0 outside (cropped to the ROI bounding box or
        not: padding with 0 changes nothing).
    ng : int
        Number of grey levels; the matrices span ``1..ng`` even where levels are absent.
    distances : sequence of int, default (1,)
        Chebyshev distances :math:`\delta`. Directions are the offsets of
        :func:`glcm_directions`.
    two_d : bool, default False
        If True, in-plane offsets only, with one set of matrices per axial slice.
    symmetric : bool, default True
        Count each pair in both directions.

    Returns
    -------
    ndarray of int64
        Shape ``(n_directions, ng, ng)`` in 3D (13 directions for :math:`\delta=1`) or
        ``(nz, n_directions, ng, ng)`` in 2D (4 directions for :math:`\delta=1`). Entry
        ``[..., i-1, j-1]`` counts the pair ``(i, j)``.

    Raises
    ------
    InputError
        If `levels` is not a 3-D integer array with values in ``0..ng``.
    ConfigError
        If `ng` or `distances` is not a positive integer.

    Notes
    -----
    Chunking: the counts (not the normalised matrices) are additive. A pair is counted by a
    chunk that holds both voxels, so chunks need a halo of :math:`\delta_{max} = \max(\delta)`
    voxels. Split the volume along one axis (z, say) into slabs at least
    :math:`\delta_{max}` slices thick, each extended by the first :math:`\delta_{max}` slices
    of the next one; then the counts of the whole volume are
    ``sum(glcm_matrices(slab)) - sum(glcm_matrices(overlap))`` over the extended slabs and
    their :math:`\delta_{max}`-slice overlaps (every pair lies in one slab, or in two slabs
    and their overlap). The 2D matrices are per slice: z-slabs without any overlap simply
    concatenate along the slice axis. Sum the counts first, normalise after.

    Examples
    --------
    >>> levels = np.array([[[1, 2, 2]]])
    >>> glcm_matrices(levels, 2, two_d=True)[0, 3].tolist()  # direction (0, 0, 1)
    [[0, 1], [1, 2]]
    """
    ng = check_ng(ng)
    arr = check_levels(levels, ng, require_roi=False)
    offsets = glcm_directions(distances, fixed_axis=0 if two_d else None)
    counts = _count_pairs(arr, ng, offsets, per_slice=two_d)
    if symmetric:
        counts = counts + np.swapaxes(counts, -1, -2)
    return counts


# --------------------------------------------------------------------------- features step


@functools.lru_cache(maxsize=64)
def _group_index(ng: int, kind: str) -> tuple[IntArray, IntArray]:
    """Column order and group starts to sum a flattened (ng, ng) matrix by i+j or |i-j|."""
    i, j = np.indices((ng, ng))
    key = (i + j) if kind == "sum" else np.abs(i - j)
    flat = key.ravel()
    order = np.argsort(flat, kind="stable").astype(np.int64)
    starts = np.searchsorted(flat[order], np.arange(int(flat.max()) + 1)).astype(np.int64)
    order.setflags(write=False)
    starts.setflags(write=False)
    return order, starts


def _group_sums(flat: FloatArray, ng: int, kind: str) -> FloatArray:
    order, starts = _group_index(ng, kind)
    return np.add.reduceat(flat[..., order], starts, axis=-1)


def _entropy(p: FloatArray, axis: int | tuple[int, ...]) -> FloatArray:
    logp = np.log2(p, out=np.zeros_like(p), where=p > 0)
    return -np.sum(p * logp, axis=axis)  # type: ignore[no-any-return]


def glcm_features(counts: npt.ArrayLike, ng: int | None = None) -> dict[str, FloatArray]:
    r"""The 25 IBSI GLCM features of each matrix in a stack.

    Parameters
    ----------
    counts : array_like, shape (..., ng, ng)
        Co-occurrence counts (any non-negative weights) for grey levels ``1..ng``, e.g. from
        :func:`glcm_matrices`, or their sum over directions or slices for merged aggregation.
    ng : int, optional
        :math:`N_g` of the normalised inverse differences; defaults to the matrix size.

    Returns
    -------
    dict of str to ndarray
        Keyed by IBSI tag, each of shape ``counts.shape[:-2]``. A matrix without any pair
        gives NaN for every feature.

    Notes
    -----
    With :math:`\mu = \sum_{i,j} i\,p(i,j)` and :math:`\mu_y = \sum_{i,j} j\,p(i,j)`:

    - joint maximum :math:`\max p`; joint average :math:`\mu`; joint variance
      :math:`\sum (i-\mu)^2 p`; joint entropy :math:`HXY = -\sum p \log_2 p`;
    - difference average :math:`\mu_d = \sum k\,p_{x-y}(k)`, variance
      :math:`\sum (k-\mu_d)^2 p_{x-y}(k)`, entropy :math:`-\sum p_{x-y}\log_2 p_{x-y}`; the
      same three for :math:`p_{x+y}` (sum average, variance, entropy);
    - angular second moment :math:`\sum p^2`; contrast :math:`\sum (i-j)^2 p`;
      dissimilarity :math:`\sum |i-j| p`;
    - inverse difference :math:`\sum p_{x-y}(k)/(1+k)`, normalised :math:`/(1+k/N_g)`;
      inverse difference moment :math:`/(1+k^2)`, normalised :math:`/(1+k^2/N_g^2)`;
      inverse variance :math:`\sum_{k\ge1} p_{x-y}(k)/k^2`;
    - correlation :math:`\sum (i-\mu)(j-\mu_y)p / (\sigma_x\sigma_y)` (NaN if a marginal is
      constant); autocorrelation :math:`\sum ij\,p`; cluster tendency, shade and prominence
      :math:`\sum (i+j-\mu-\mu_y)^n p` for :math:`n = 2, 3, 4`;
    - information correlation 1 :math:`(HXY - HXY1)/\max(HX, HY)` (NaN if both marginal
      entropies are 0) and 2 :math:`\sqrt{1-e^{-2(HXY2-HXY)}}`, where
      :math:`HXY1 = -\sum p \log_2(p_x p_y)` and :math:`HXY2 = -\sum p_x p_y \log_2(p_x p_y)`
      both equal :math:`HX + HY`. The exponential is natural, as in IBSI.
    """
    c = np.asarray(counts, dtype=np.float64)
    if c.ndim < 2 or c.shape[-1] != c.shape[-2] or c.shape[-1] == 0:
        raise InputError("counts", f"expected a stack of square matrices, got shape {c.shape}")
    n = c.shape[-1]
    ngn = float(n if ng is None else check_ng(ng))
    lead = c.shape[:-2]
    total = c.sum(axis=(-2, -1))
    empty = total <= 0
    p = c / np.where(empty, 1.0, total)[..., None, None]
    g = np.arange(1, n + 1, dtype=np.float64)
    px = p.sum(axis=-1)
    py = p.sum(axis=-2)
    mu_x = px @ g
    mu_y = py @ g
    var_x = ((g - mu_x[..., None]) ** 2 * px).sum(axis=-1)
    var_y = ((g - mu_y[..., None]) ** 2 * py).sum(axis=-1)
    flat = p.reshape(*lead, n * n)
    p_sum = _group_sums(flat, n, "sum")  # k = 2..2n
    p_diff = _group_sums(flat, n, "diff")  # k = 0..n-1
    k_sum = np.arange(2, 2 * n + 1, dtype=np.float64)
    k_diff = np.arange(n, dtype=np.float64)
    sum_avg = p_sum @ k_sum
    diff_avg = p_diff @ k_diff
    e_ij = np.einsum("...ij,i,j->...", p, g, g)
    hxy = _entropy(flat, -1)
    hx = _entropy(px, -1)
    hy = _entropy(py, -1)
    centred = k_sum - (mu_x + mu_y)[..., None]
    # A marginal is constant when one grey level holds all of it (tested on the counts: the
    # rounded variance or entropy of a constant marginal need not be exactly 0).
    spread_x = np.count_nonzero(c.sum(axis=-1) > 0, axis=-1) > 1
    spread_y = np.count_nonzero(c.sum(axis=-2) > 0, axis=-1) > 1
    with np.errstate(divide="ignore", invalid="ignore"):
        sigma = np.sqrt(var_x * var_y)
        cov = np.einsum("...ij,...i,...j->...", p, g - mu_x[..., None], g - mu_y[..., None])
        corr = np.where(spread_x & spread_y, cov / sigma, np.nan)
        ic1 = np.where(spread_x | spread_y, (hxy - hx - hy) / np.maximum(hx, hy), np.nan)
    ic2 = np.sqrt(1.0 - np.exp(-2.0 * np.maximum(hx + hy - hxy, 0.0)))
    out: dict[str, FloatArray] = {
        "cm.joint.max": flat.max(axis=-1),
        "cm.joint.avg": mu_x,
        "cm.joint.var": var_x,
        "cm.joint.entr": hxy,
        "cm.diff.avg": diff_avg,
        "cm.diff.var": ((k_diff - diff_avg[..., None]) ** 2 * p_diff).sum(axis=-1),
        "cm.diff.entr": _entropy(p_diff, -1),
        "cm.sum.avg": sum_avg,
        "cm.sum.var": ((k_sum - sum_avg[..., None]) ** 2 * p_sum).sum(axis=-1),
        "cm.sum.entr": _entropy(p_sum, -1),
        "cm.energy": (flat * flat).sum(axis=-1),
        "cm.contrast": p_diff @ (k_diff**2),
        "cm.dissimilarity": diff_avg,
        "cm.inv.diff": p_diff @ (1.0 / (1.0 + k_diff)),
        "cm.inv.diff.norm": p_diff @ (1.0 / (1.0 + k_diff / ngn)),
        "cm.inv.diff.mom": p_diff @ (1.0 / (1.0 + k_diff**2)),
        "cm.inv.diff.mom.norm": p_diff @ (1.0 / (1.0 + k_diff**2 / ngn**2)),
        "cm.inv.var": p_diff[..., 1:] @ (1.0 / k_diff[1:] ** 2),
        "cm.corr": corr,
        "cm.auto.corr": e_ij,
        "cm.clust.tend": (centred**2 * p_sum).sum(axis=-1),
        "cm.clust.shade": (centred**3 * p_sum).sum(axis=-1),
        "cm.clust.prom": (centred**4 * p_sum).sum(axis=-1),
        "cm.info.corr.1": ic1,
        "cm.info.corr.2": ic2,
    }
    for key, value in out.items():
        value = np.asarray(value, dtype=np.float64)
        out[key] = np.where(empty, np.nan, value) if np.any(empty) else value
    return out


# --------------------------------------------------------------------------- IBSI


def _average(features: dict[str, FloatArray], has_pairs: npt.NDArray[np.bool_]) -> dict[str, float]:
    """Mean of each feature over the matrices that hold at least one pair."""
    if not np.any(has_pairs):
        return {tag: math.nan for tag in features}
    return {tag: float(np.mean(v[has_pairs])) for tag, v in features.items()}


def ibsi_glcm(levels: npt.NDArray[np.integer], ng: int) -> dict[str, float]:
    r"""The 25 IBSI GLCM features under all six IBSI aggregation methods.

    Symmetric matrices, Chebyshev distance :math:`\delta = 1` (the IBSI reference setting):

    - ``2D, averaged``: features of each (slice, in-plane direction) matrix, averaged;
    - ``2D, slice-merged``: the 4 direction matrices of a slice summed, features averaged
      over slices;
    - ``2.5D, direction-merged``: each direction's matrices summed over slices, features
      averaged over the 4 directions;
    - ``2.5D, merged``: all slice and direction matrices summed into one;
    - ``3D, averaged``: features of each of the 13 direction matrices, averaged;
    - ``3D, merged``: the 13 matrices summed into one.

    Parameters
    ----------
    levels : ndarray of int, shape (z, y, x)
        Grey levels ``1..ng`` inside the ROI, 0 outside, cropped to the ROI bounding box.
    ng : int
        Number of grey levels after discretisation; matrices span ``1..ng``.

    Returns
    -------
    dict of str to float
        ``"<tag> [<aggregation>]"``, e.g. ``"cm.contrast [3D, averaged]"``: 150 entries.

    Raises
    ------
    EmptyRoiError
        If no voxel of `levels` is in the ROI.
    InputError, ConfigError
        As :func:`glcm_matrices`.

    Notes
    -----
    Averages run over the matrices that hold at least one voxel pair (a slice with a single
    ROI voxel has none); if no matrix holds a pair, every feature is NaN. A feature that is
    undefined on one averaged matrix (correlation of a constant slice, say) makes the
    average NaN.

    Examples
    --------
    >>> levels = np.array([[[1, 2], [2, 1]]])
    >>> round(ibsi_glcm(levels, 2)["cm.contrast [2.5D, merged]"], 4)
    0.6667
    """
    ng = check_ng(ng)
    arr = check_levels(levels, ng, require_roi=False)
    if not np.any(arr > 0):
        raise EmptyRoiError("levels", "the ROI has no voxel")
    m2 = glcm_matrices(arr, ng, two_d=True)  # (nz, 4, ng, ng)
    # The 13 3D directions: the 9 out-of-plane ones, and the 4 in-plane ones summed over slices.
    out_of_plane = [d for d in glcm_directions((1,)) if d[0] != 0]
    m3_out = _count_pairs(arr, ng, out_of_plane, per_slice=False)
    m3 = np.concatenate([m3_out + np.swapaxes(m3_out, -1, -2), m2.sum(axis=0)])  # (13, ng, ng)
    stacks: dict[str, IntArray] = {
        "2D, averaged": m2,
        "2D, slice-merged": m2.sum(axis=1),
        "2.5D, direction-merged": m2.sum(axis=0),
        "2.5D, merged": m2.sum(axis=(0, 1)),
        "3D, averaged": m3,
        "3D, merged": m3.sum(axis=0),
    }
    out: dict[str, float] = {}
    for aggregation, counts in stacks.items():
        has_pairs = np.asarray(counts.sum(axis=(-2, -1)) > 0)
        means = _average(glcm_features(counts, ng), has_pairs)
        out.update({f"{tag} [{aggregation}]": value for tag, value in means.items()})
    return out


# --------------------------------------------------------------------------- PyRadiomics


def _weights(
    offsets: Sequence[tuple[int, int, int]], norm: str, spacing: Sequence[float] | None
) -> FloatArray:
    if norm == "no_weighting":
        return np.ones(len(offsets))
    if spacing is None:
        raise ConfigError("spacing", f"weightingNorm={norm!r} needs the voxel spacing")
    sp = np.asarray(spacing, dtype=np.float64)
    if sp.shape != (3,) or not np.all(sp > 0):
        raise ConfigError("spacing", f"expected 3 positive (z, y, x) spacings, got {spacing!r}")
    w = np.empty(len(offsets))
    for k, off in enumerate(offsets):
        d = np.abs(np.asarray(off, dtype=np.float64)) * sp
        if norm == "infinity":
            w[k] = np.exp(-(max(d) ** 2))
        elif norm == "euclidean":
            w[k] = np.exp(-np.sum(d**2))
        else:  # manhattan
            w[k] = np.exp(-(np.sum(d) ** 2))
    return w


def pyradiomics_glcm(
    levels: npt.NDArray[np.integer],
    *,
    distances: Sequence[int] = (1,),
    symmetricalGLCM: bool = True,
    weightingNorm: str | None = None,
    force2D: bool = False,
    force2Ddimension: int = 0,
    spacing: Sequence[float] | None = None,
) -> dict[str, float]:
    r"""GLCM features as ``radiomics.glcm.RadiomicsGLCM`` (PyRadiomics 3.0.1) computes them.

    Parameters
    ----------
    levels : ndarray of int, shape (z, y, x)
        PyRadiomics-discretised grey levels (``radiomics.imageoperations.binImage``): 1 and
        up inside the ROI, 0 outside, cropped to the ROI bounding box.
    distances : sequence of int, default (1,)
        Chebyshev distances; every offset of each distance is one "angle".
    symmetricalGLCM : bool, default True
        Add the transpose of each matrix.
    weightingNorm : {None, 'manhattan', 'euclidean', 'infinity', 'no_weighting'}
        None averages the features over the angles. Otherwise the angle matrices are summed
        with weight :math:`e^{-\|\mathbf{d}\|^2}` (distance in mm under that norm; 1 for
        'no_weighting') and the features come from the one summed matrix.
    force2D : bool, default False
        Only offsets with a zero component along `force2Ddimension` (matrices still summed
        over the whole volume, which is IBSI's "2.5D" for dimension 0).
    force2Ddimension : int, default 0
        Axis of `levels` held fixed under `force2D` (0 = z).
    spacing : sequence of float, optional
        Voxel spacing (z, y, x) in mm; needed by the distance weightings.

    Returns
    -------
    dict of str to float
        The 24 features PyRadiomics enables by default (:data:`PYRADIOMICS_GLCM_FEATURES`),
        keyed without prefix, e.g. ``"Contrast"``.

    Raises
    ------
    EmptyRoiError
        If no voxel of `levels` is in the ROI.
    ConfigError
        For an unknown `weightingNorm`, a missing `spacing` or bad `distances`.

    Notes
    -----
    PyRadiomics conventions reproduced here: the matrices keep only the grey levels present
    in the ROI and :math:`i, j` are those levels' values; :math:`N_g` (in Idn, Idmn and the
    ranges of :math:`k`) is the largest level present; angles without any pair are dropped
    before averaging; :math:`\epsilon` = machine epsilon is added inside every logarithm and
    to the correlation's denominator. Correlation is 1 and Imc1 is 0 on a matrix with a
    constant marginal, Imc2 is 0 when :math:`HXY2 = HXY` and is left out of the angle
    average when rounding makes :math:`HXY2 < HXY`; MCC is 1 for a single grey level.
    As in PyRadiomics, the angles are the offsets that fit in `levels` (so pass it cropped to
    the ROI bounding box, as PyRadiomics' extractor crops); when none fits, where PyRadiomics
    raises, every feature is NaN. Its extractor rejects single-voxel and one-dimensional
    ROIs; on those the features follow PyRadiomics' class (mostly NaN).

    Examples
    --------
    >>> levels = np.array([[[1, 2], [2, 1]]])
    >>> pyradiomics_glcm(levels, force2D=True)["Contrast"]  # mean over the 4 in-plane angles
    0.5
    """
    arr = check_levels(levels, None, require_roi=False)
    if weightingNorm is not None and weightingNorm not in _WEIGHTING_NORMS:
        raise ConfigError("weightingNorm", f"must be one of {_WEIGHTING_NORMS} or None")
    present = np.flatnonzero(np.bincount(arr.ravel())[1:]) + 1
    if present.size == 0:
        raise EmptyRoiError("levels", "the ROI has no voxel")
    ng = int(present[-1])
    offsets = glcm_directions(distances, fixed_axis=int(force2Ddimension) if force2D else None)
    # PyRadiomics keeps the angles that fit in the (bounding-box) image; which ones it keeps
    # matters only in degenerate ROIs (a lone angle without pairs is kept, several are dropped).
    offsets = [o for o in offsets if all(abs(c) < n for c, n in zip(o, arr.shape, strict=True))]
    if not offsets:  # PyRadiomics raises "Error getting angle count"
        return dict.fromkeys(PYRADIOMICS_GLCM_FEATURES, math.nan)
    counts = _count_pairs(arr, ng, offsets, per_slice=False)  # (A, ng, ng)
    return pyradiomics_glcm_features(
        counts,
        present,
        offsets=offsets,
        symmetricalGLCM=symmetricalGLCM,
        weightingNorm=weightingNorm,
        spacing=spacing,
    )


def pyradiomics_glcm_features(
    counts: npt.ArrayLike,
    present: npt.ArrayLike,
    *,
    offsets: Sequence[tuple[int, int, int]],
    symmetricalGLCM: bool = True,
    weightingNorm: str | None = None,
    spacing: Sequence[float] | None = None,
) -> dict[str, float]:
    r"""The features step of :func:`pyradiomics_glcm`, from asymmetric per-angle counts.

    For a chunked job: sum ``glcm_matrices(chunk, ng, distances=d, symmetric=False)`` over
    the chunks (3D; for ``force2D`` along z, ``glcm_matrices(..., two_d=True,
    symmetric=False).sum(axis=0)``) with the halo rule of :func:`glcm_matrices`, and the
    grey-level histograms ``np.bincount(chunk.ravel())`` of the chunk cores, then call this
    with ``offsets=glcm_directions(d)`` (or ``glcm_directions(d, fixed_axis=0)``) and the
    levels whose histogram count is positive.

    Parameters
    ----------
    counts : array_like, shape (n_angles, ng, ng)
        Asymmetric co-occurrence counts, one matrix per offset, levels ``1..ng``.
    present : array_like of int
        The grey levels present in the ROI (ascending); ``max(present) <= ng``.
    offsets : sequence of (int, int, int)
        The offset of each matrix, for the distance weights.
    symmetricalGLCM, weightingNorm, spacing
        As :func:`pyradiomics_glcm`.

    Returns
    -------
    dict of str to float
        As :func:`pyradiomics_glcm`.

    Notes
    -----
    PyRadiomics drops the offsets that do not fit in the ROI bounding box before counting;
    their counts are 0, which changes nothing unless no offset that fits holds a pair.
    """
    if weightingNorm is not None and weightingNorm not in _WEIGHTING_NORMS:
        raise ConfigError("weightingNorm", f"must be one of {_WEIGHTING_NORMS} or None")
    c = np.asarray(counts, dtype=np.float64)
    levels = np.asarray(present, dtype=np.int64).ravel()
    if c.ndim != 3 or c.shape[1] != c.shape[2] or c.shape[0] != len(offsets):
        raise InputError("counts", f"expected ({len(offsets)}, ng, ng) counts, got {c.shape}")
    if levels.size == 0:
        raise EmptyRoiError("levels", "the ROI has no voxel")
    if np.any(np.diff(levels) <= 0) or levels[0] < 1 or levels[-1] > c.shape[1]:
        raise InputError("present", f"expected ascending levels in 1..{c.shape[1]}")
    sub = c[:, levels - 1][:, :, levels - 1]
    if symmetricalGLCM:
        sub = sub + np.swapaxes(sub, 1, 2)
    # PyRadiomics layout (i, j, angle), so that reductions round the way its own do.
    pm = np.ascontiguousarray(np.moveaxis(sub, 0, -1))
    if weightingNorm is not None:
        pm = np.sum(pm * _weights(offsets, weightingNorm, spacing)[None, None, :], 2, keepdims=True)
    total = pm.sum(axis=(0, 1))
    if pm.shape[2] > 1:
        pm = pm[:, :, total > 0]
        total = total[total > 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        pm = pm / np.where(total == 0, np.nan, total)[None, None, :]
        # C order as in PyRadiomics: exact tests such as "sigma_x sigma_y == 0" depend on it.
        pm = np.ascontiguousarray(pm)
        return _pyradiomics_features(pm, levels.astype(np.float64), int(levels[-1]))


def _nanmean(x: FloatArray) -> float:
    if x.size == 0 or np.all(np.isnan(x)):
        return math.nan
    return float(np.nanmean(x))


def _pyradiomics_features(pm: FloatArray, grey: FloatArray, ng: int) -> dict[str, float]:
    """Features of normalised matrices ``pm`` (n, n, angles) over present levels `grey`."""
    eps = float(np.spacing(1))
    n, _, na = pm.shape
    i = grey[:, None, None]
    j = grey[None, :, None]
    px = pm.sum(1, keepdims=True)  # (n, 1, A)
    py = pm.sum(0, keepdims=True)  # (1, n, A)
    ux = np.sum(i * pm, (0, 1), keepdims=True)
    uy = np.sum(j * pm, (0, 1), keepdims=True)
    flat = pm.reshape(n * n, na)
    sum_key = (grey[:, None] + grey[None, :]).ravel()
    diff_key = np.abs(grey[:, None] - grey[None, :]).ravel()
    k_sum = np.arange(2, 2 * ng + 1, dtype=np.float64)
    k_diff = np.arange(0, ng, dtype=np.float64)
    p_sum = np.zeros((k_sum.size, na))
    p_diff = np.zeros((k_diff.size, na))
    np.add.at(p_sum, (sum_key - 2).astype(np.int64), flat)
    np.add.at(p_diff, diff_key.astype(np.int64), flat)
    hxy = -np.sum(pm * np.log2(pm + eps), (0, 1))

    s_ij = (i + j) - ux - uy
    sigx = np.sum(pm * (i - ux) ** 2, (0, 1), keepdims=True) ** 0.5
    sigy = np.sum(pm * (j - uy) ** 2, (0, 1), keepdims=True) ** 0.5
    corm = np.sum(pm * (i - ux) * (j - uy), (0, 1), keepdims=True)
    corr = corm / (sigx * sigy + eps)
    corr[sigx * sigy == 0] = 1

    hx = -np.sum(px * np.log2(px + eps), (0, 1))
    hy = -np.sum(py * np.log2(py + eps), (0, 1))
    hxy1 = -np.sum(pm * np.log2(px * py + eps), (0, 1))
    div = np.fmax(hx, hy)
    imc1 = hxy - hxy1
    imc1[div != 0] /= div[div != 0]
    imc1[div == 0] = 0
    hxy2 = -np.sum((px * py) * np.log2(px * py + eps), (0, 1))
    imc2 = (1 - np.e ** (-2 * (hxy2 - hxy))) ** 0.5
    imc2[hxy2 == hxy] = 0

    diff_avg = np.sum(k_diff[:, None] * p_diff, 0)
    out = {
        "Autocorrelation": np.sum(pm * (i * j), (0, 1)),
        "JointAverage": ux[0, 0],
        "ClusterProminence": np.sum(pm * s_ij**4, (0, 1)),
        "ClusterShade": np.sum(pm * s_ij**3, (0, 1)),
        "ClusterTendency": np.sum(pm * s_ij**2, (0, 1)),
        "Contrast": np.sum(pm * (i - j) ** 2, (0, 1)),
        "Correlation": corr[0, 0],
        "DifferenceAverage": diff_avg,
        "DifferenceEntropy": -np.sum(p_diff * np.log2(p_diff + eps), 0),
        "DifferenceVariance": np.sum(p_diff * (k_diff[:, None] - diff_avg) ** 2, 0),
        "JointEnergy": np.sum(pm**2, (0, 1)),
        "JointEntropy": hxy,
        "Imc1": imc1,
        "Imc2": imc2,
        "Idm": np.sum(p_diff / (1 + k_diff[:, None] ** 2), 0),
        "Idmn": np.sum(p_diff / (1 + k_diff[:, None] ** 2 / ng**2), 0),
        "Id": np.sum(p_diff / (1 + k_diff[:, None]), 0),
        "Idn": np.sum(p_diff / (1 + k_diff[:, None] / ng), 0),
        "InverseVariance": np.sum(p_diff[1:] / k_diff[1:, None] ** 2, 0),
        "MaximumProbability": np.amax(pm, (0, 1)) if na else np.zeros(0),
        "SumAverage": np.sum(k_sum[:, None] * p_sum, 0),
        "SumEntropy": -np.sum(p_sum * np.log2(p_sum + eps), 0),
        "SumSquares": np.sum(pm * (i - ux) ** 2, (0, 1)),
    }
    result = {name: _nanmean(np.asarray(v, dtype=np.float64)) for name, v in out.items()}
    result["JointAverage"] = float(np.mean(out["JointAverage"])) if na else math.nan
    result["MCC"] = _mcc(pm, px, py, eps)
    return {name: result[name] for name in PYRADIOMICS_GLCM_FEATURES}


def _mcc(pm: FloatArray, px: FloatArray, py: FloatArray, eps: float) -> float:
    """Maximal correlation coefficient: sqrt of the 2nd largest eigenvalue of Q, angle mean."""
    n = pm.shape[0]
    if not np.all(np.isfinite(pm)):  # an empty weighted matrix: LinAlgError in PyRadiomics
        return math.nan
    if n < 2:
        return 1.0
    # Q(i, j) = sum_k p(i, k) p(j, k) / (p_x(i) p_y(k) + eps), summed in PyRadiomics' order.
    q = np.zeros((n, n, pm.shape[2]))
    for k in range(n):
        q += (pm[:, None, k, :] * pm[None, :, k, :]) / (px[:, None, 0, :] * py[None, :, k, :] + eps)
    eig = np.linalg.eigvals(np.moveaxis(q, -1, 0))  # complex for all angles if any is complex
    eig.sort()
    return _nanmean(np.real(np.sqrt(eig[:, -2])))
