r"""Grey level run length matrix (GLRLM) features (IBSI 3.7, family ``rlm``).

Two steps:

1. :func:`glrlm_matrices` counts runs, one matrix per direction (13 directions in 3D; 4
   in-plane directions per axial slice in 2D).
2. :func:`glrlm_features` turns a stack of run length matrices into the 16 IBSI features.

:func:`ibsi_glrlm` runs both and aggregates as IBSI does (six methods, see
:data:`IBSI_GLRLM_AGGREGATIONS`). :func:`pyradiomics_glrlm` reproduces
``radiomics.glrlm.RadiomicsGLRLM`` (PyRadiomics 3.0.1) from PyRadiomics-discretised grey levels.

Notation: a *run* is a maximal sequence of consecutive ROI voxels with the same grey level
along a direction :math:`\mathbf{d}`; voxels outside the ROI (level 0) end a run.
:math:`R(i, j)` counts runs of grey level :math:`i` and length :math:`j`;
:math:`N_r = \sum_{ij} R(i,j)`, :math:`r_i = \sum_j R(i,j)`, :math:`r_j = \sum_i R(i,j)`,
:math:`N_v = \sum_j j\, r_j` (the voxels the matrix describes), :math:`p = R / N_r`.
Entropies use :math:`\log_2`.

Run detection is vectorised: for each direction the bounding box is copied, through a
strided view, into a sheared buffer whose rows are the lines along the direction, each row
closed by a zero; the flat buffer is then run-length encoded in one pass (change points,
``np.diff``) and the runs binned with ``np.bincount``. Cost is linear in the bounding-box
volume (at most about 4x it for the diagonals) per direction.

PyRadiomics conventions (:func:`pyradiomics_glrlm`): features are computed per angle and
averaged (or on the distance-weighted sum with ``weightingNorm``); angles that move along an
axis of extent 1 are not generated, and an angle along which no line holds two ROI voxels is
dropped ("segmentation is 2D for this angle"); grey levels are PyRadiomics' own, so absent
levels keep their numbers; the entropy adds ``np.spacing(1)`` inside the logarithm.

Chunked computation
-------------------
Run length matrices are **not** additive over arbitrary chunks: a run crossing a chunk border
is counted as two shorter runs. Two exact options:

* 2D matrices (``two_d=True``) are per axial slice and runs never leave their slice, so the
  matrices of z-slabs of whole slices concatenate along the slice axis (no halo). Pad the
  run-length axis of the slabs' matrices with zeros to a common width before merging.
* 3D matrices of z-slabs are additive if each slab counts only the runs that *start* in it
  (:func:`glrlm_matrices_of_core`): give it the slab plus one slice before it and every
  slice after it up to the end of the bounding box (a run may be as long as the box).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import as_strided

from radgen.errors import ConfigError, EmptyRoiError, InputError
from radgen.features.texture_input import check_levels, check_ng

__all__ = [
    "DIRECTIONS_2D",
    "DIRECTIONS_3D",
    "GLRLM_TAGS",
    "IBSI_GLRLM_AGGREGATIONS",
    "PYRADIOMICS_GLRLM_FEATURES",
    "glrlm_features",
    "glrlm_matrices",
    "glrlm_matrices_of_core",
    "ibsi_glrlm",
    "ibsi_glrlm_from_matrices",
    "length_matrix_features",
    "pyradiomics_glrlm",
    "pyradiomics_glrlm_features",
    "pyradiomics_glrlm_matrices",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
Direction = tuple[int, int, int]

#: The 13 unique 3D directions (dz, dy, dx) of Chebyshev distance 1, in PyRadiomics' order.
DIRECTIONS_3D: tuple[Direction, ...] = (
    (1, 1, 1),
    (1, 1, 0),
    (1, 1, -1),
    (1, 0, 1),
    (1, 0, 0),
    (1, 0, -1),
    (1, -1, 1),
    (1, -1, 0),
    (1, -1, -1),
    (0, 1, 1),
    (0, 1, 0),
    (0, 1, -1),
    (0, 0, 1),
)

#: The 4 in-plane (axial) directions, a subset of :data:`DIRECTIONS_3D` in the same order.
DIRECTIONS_2D: tuple[Direction, ...] = tuple(d for d in DIRECTIONS_3D if d[0] == 0)

#: Generic names of the 16 run/zone features (:func:`length_matrix_features`), IBSI order.
_GENERIC: tuple[str, ...] = (
    "sre",
    "lre",
    "lgre",
    "hgre",
    "srlge",
    "srhge",
    "lrlge",
    "lrhge",
    "glnu",
    "glnu.norm",
    "rlnu",
    "rlnu.norm",
    "r.perc",
    "gl.var",
    "rl.var",
    "rl.entr",
)

#: The 16 IBSI GLRLM feature tags, in the order of the IBSI reference manual.
GLRLM_TAGS: tuple[str, ...] = tuple(f"rlm.{name}" for name in _GENERIC)

#: The six IBSI aggregation methods for the GLRLM.
IBSI_GLRLM_AGGREGATIONS: tuple[str, ...] = (
    "2D, averaged",
    "2D, slice-merged",
    "2.5D, direction-merged",
    "2.5D, merged",
    "3D, averaged",
    "3D, merged",
)

#: PyRadiomics feature name of each generic feature (all 16 are enabled by default).
_PYRADIOMICS_NAMES: dict[str, str] = {
    "sre": "ShortRunEmphasis",
    "lre": "LongRunEmphasis",
    "lgre": "LowGrayLevelRunEmphasis",
    "hgre": "HighGrayLevelRunEmphasis",
    "srlge": "ShortRunLowGrayLevelEmphasis",
    "srhge": "ShortRunHighGrayLevelEmphasis",
    "lrlge": "LongRunLowGrayLevelEmphasis",
    "lrhge": "LongRunHighGrayLevelEmphasis",
    "glnu": "GrayLevelNonUniformity",
    "glnu.norm": "GrayLevelNonUniformityNormalized",
    "rlnu": "RunLengthNonUniformity",
    "rlnu.norm": "RunLengthNonUniformityNormalized",
    "r.perc": "RunPercentage",
    "gl.var": "GrayLevelVariance",
    "rl.var": "RunVariance",
    "rl.entr": "RunEntropy",
}

#: The features ``RadiomicsGLRLM`` enables by default (none is deprecated).
PYRADIOMICS_GLRLM_FEATURES: tuple[str, ...] = tuple(sorted(_PYRADIOMICS_NAMES.values()))

_WEIGHTING_NORMS = ("manhattan", "euclidean", "infinity", "no_weighting")


# --------------------------------------------------------------------------- validation


def _check_force2d(force2D: bool, force2Ddimension: int) -> int | None:
    if not force2D:
        return None
    if isinstance(force2Ddimension, bool) or force2Ddimension not in (0, 1, 2):
        raise ConfigError("force2Ddimension", f"must be 0, 1 or 2, got {force2Ddimension!r}")
    return int(force2Ddimension)


# --------------------------------------------------------------------------- run detection


class _Sheared(NamedTuple):
    buf: npt.NDArray[np.unsignedinteger]  # flat, shape prod(dims)
    dims: tuple[int, ...]  # (line coordinates of the two other axes..., n_primary + 1)
    primary: int
    others: tuple[int, ...]
    offsets: tuple[int, ...]
    step: Direction  # the direction, oriented so that it increases the primary axis


def _shear(levels: IntArray, direction: Sequence[int]) -> _Sheared:
    """Copy the bounding box into a buffer whose rows are the lines along `direction`.

    With the *primary* axis the shortest one the direction moves along, voxel ``c`` goes to
    buffer row ``(u_1, u_2)``, column ``c_primary``, where ``u_k = c_k - d_k c_primary``
    (+ an offset keeping it non-negative) is constant along a line. The copy goes through a
    strided view of the buffer (no index arrays). Every row ends with a zero, so a flat
    run-length encoding of the buffer never joins two lines.
    """
    shape = levels.shape
    d = [int(c) for c in direction]
    moving = [ax for ax in range(3) if d[ax] != 0]
    if not moving:
        raise ValueError("a direction must move along at least one axis")
    primary = min(moving, key=lambda ax: shape[ax])  # the shortest moving axis: least shear
    if d[primary] < 0:  # a run along d is a run along -d
        d = [-c for c in d]
    n_p = shape[primary]
    others = tuple(ax for ax in range(3) if ax != primary)
    offsets = tuple(n_p - 1 if d[ax] > 0 else 0 for ax in others)
    dims = (*(shape[ax] + (n_p - 1 if d[ax] != 0 else 0) for ax in others), n_p + 1)
    dtype = np.min_scalar_type(max(int(levels.max()), 1))
    buf = np.zeros(dims, dtype=dtype)
    s1, s2, st = buf.strides
    origin = buf[offsets[0], offsets[1], 0:]  # a view starting at the buffer cell of c = 0
    view = as_strided(
        origin,
        shape=(shape[others[0]], shape[others[1]], n_p),
        strides=(s1, s2, st - d[others[0]] * s1 - d[others[1]] * s2),
        writeable=True,
    )
    view[...] = levels.transpose(*others, primary)
    return _Sheared(buf.ravel(), dims, primary, others, offsets, (d[0], d[1], d[2]))


class _Runs(NamedTuple):
    levels: IntArray  # grey level of each run
    lengths: IntArray  # length of each run
    starts: IntArray  # flat buffer index of each run's first voxel
    sheared: _Sheared

    def first_voxels(self) -> tuple[IntArray, IntArray, IntArray]:
        """(z, y, x) of the first voxel of every run; the run goes along ``sheared.step``."""
        sh = self.sheared
        where = np.unravel_index(self.starts, sh.dims)
        first: list[IntArray] = [np.empty(0, dtype=np.int64)] * 3
        t = where[-1].astype(np.int64)
        first[sh.primary] = t
        for k, ax in enumerate(sh.others):
            first[ax] = where[k].astype(np.int64) - sh.offsets[k] + sh.step[ax] * t
        return first[0], first[1], first[2]


def _runs(levels: IntArray, direction: Sequence[int]) -> _Runs:
    """Every run along `direction`: the sheared buffer of :func:`_shear`, run-length encoded."""
    sh = _shear(levels, direction)
    buf = sh.buf
    change = np.empty(buf.size, dtype=bool)
    change[0] = True
    np.not_equal(buf[1:], buf[:-1], out=change[1:])
    starts = np.flatnonzero(change)
    lengths = np.diff(starts, append=buf.size)
    run_levels = buf[starts]
    keep = run_levels > 0
    return _Runs(run_levels[keep].astype(np.int64), lengths[keep], starts[keep], sh)


def _lines_hold_one_voxel(levels: IntArray, direction: Direction) -> bool:
    """Whether no line along `direction` holds two ROI voxels (PyRadiomics drops such angles)."""
    sh = _shear(levels, direction)
    per_line = np.count_nonzero(sh.buf.reshape(-1, sh.dims[-1]), axis=1)
    return bool(per_line.max() <= 1)


def _bin_runs(
    run_levels: IntArray,
    columns: IntArray,
    groups: IntArray | None,
    n_groups: int,
    ng: int,
    width: int,
) -> IntArray:
    """Count (group, grey level, column) triples into an (n_groups, ng, width) array."""
    index = (run_levels - 1) * width + columns
    if groups is not None:
        index = index + groups * (ng * width)
    counts = np.bincount(index, minlength=n_groups * ng * width)
    return counts.reshape(n_groups, ng, width)


def _compact_columns(lengths: Sequence[IntArray]) -> tuple[IntArray, list[IntArray]]:
    """The distinct lengths (sorted) and, for each array, the column of each length.

    Feature computation only needs the lengths that occur; a matrix over those columns stays
    small even when the longest run or zone is long.
    """
    top = max(int(ln.max()) for ln in lengths if ln.size)
    present = np.zeros(top + 1, dtype=bool)
    for ln in lengths:
        present[ln] = True
    column = np.cumsum(present) - 1
    return np.flatnonzero(present), [column[ln] for ln in lengths]


def _used_columns(matrices: IntArray) -> tuple[IntArray, IntArray]:
    """The run lengths that occur (1-based) and the matrices restricted to their columns."""
    used = np.flatnonzero(matrices.reshape(-1, matrices.shape[-1]).any(axis=0))
    return used + 1, matrices[..., used]


def _trim(matrices: IntArray) -> IntArray:
    """Drop the all-zero columns after the longest run (keeping at least one column)."""
    used = np.flatnonzero(matrices.reshape(-1, matrices.shape[-1]).any(axis=0))
    return matrices[..., : int(used[-1]) + 1 if used.size else 1]


def _direction_matrices(
    levels: IntArray, ng: int, directions: Sequence[Direction], *, per_slice: bool = False
) -> IntArray:
    """Run length matrices, shape (n_dir, ng, L), or (z, n_dir, ng, L) per axial slice.

    Directions are processed one at a time (only one direction's runs are held in memory).
    """
    width = max(levels.shape[ax] for d in directions for ax in range(3) if d[ax] != 0)
    n_slices = levels.shape[0] if per_slice else 1
    out = np.zeros((n_slices, len(directions), ng, width), dtype=np.int64)
    for k, d in enumerate(directions):
        runs = _runs(levels, d)
        z = runs.first_voxels()[0] if per_slice else None
        out[:, k] = _bin_runs(runs.levels, runs.lengths - 1, z, n_slices, ng, width)
    return _trim(out if per_slice else out[0])


def glrlm_matrices(
    levels: npt.NDArray[np.integer], ng: int, *, two_d: bool = False
) -> npt.NDArray[np.int64]:
    """Grey level run length matrices (IBSI 3.7), one per direction.

    Parameters
    ----------
    levels : ndarray of int, shape (z, y, x)
        Grey levels ``1..ng`` inside the ROI and 0 outside, cropped to the ROI bounding box.
    ng : int
        Number of grey levels; the matrices span ``1..ng`` even if some levels are absent.
    two_d : bool
        False: runs along the 13 directions of :data:`DIRECTIONS_3D`. True: runs along the 4
        in-plane directions of :data:`DIRECTIONS_2D`, counted per axial slice.

    Returns
    -------
    ndarray of int64
        ``R[k, i-1, j-1]``, the number of runs of grey level ``i`` and length ``j`` along
        direction ``k``: shape (13, ng, L) in 3D, (z, 4, ng, L) in 2D (slice first). ``L`` is
        the longest run found; zero-pad the last axis to merge matrices of different widths.

    Raises
    ------
    InputError
        `levels` is not a 3-D integer array with values in ``0..ng``.
    EmptyRoiError
        `levels` has no ROI voxel.

    Notes
    -----
    Not additive over arbitrary chunks (a run crossing a border would be split): 2D matrices
    concatenate over z-slabs; for 3D see :func:`glrlm_matrices_of_core`.

    Examples
    --------
    >>> levels = np.array([[[1, 1, 2, 0]]])
    >>> glrlm_matrices(levels, 2, two_d=True)[0, 3].tolist()  # slice 0, direction (0, 0, 1)
    [[0, 1], [1, 0]]
    """
    ng = check_ng(ng)
    arr = check_levels(levels, ng, require_roi=True)
    return _direction_matrices(arr, ng, DIRECTIONS_2D if two_d else DIRECTIONS_3D, per_slice=two_d)


def glrlm_matrices_of_core(
    levels: npt.NDArray[np.integer], ng: int, core: tuple[int, int]
) -> npt.NDArray[np.int64]:
    """3D run length matrices of the runs *owned* by the z-slab ``core`` of a block.

    A run is owned by the slice of its voxel with the smallest z. Summing the result over a
    partition of the bounding box into z-slabs reproduces :func:`glrlm_matrices` exactly
    (after zero-padding to a common width), provided each block holds its slab, the slice
    just before it (to tell a run that continues from below) and every later slice that a
    run owned by the slab reaches: the halo is 1 slice below and, in the worst case, the rest
    of the bounding box above.

    Parameters
    ----------
    levels : ndarray of int, shape (z, y, x)
        The block: grey levels ``1..ng`` inside the ROI, 0 outside.
    ng : int
        Number of grey levels.
    core : (int, int)
        ``[start, stop)``, the slab's slice indices within `levels`.

    Returns
    -------
    ndarray of int64, shape (13, ng, L)
        As :func:`glrlm_matrices` in 3D, restricted to the owned runs; ``L`` is the longest
        owned run (at least 1).

    Raises
    ------
    ConfigError
        `core` is not a slice range within the block.

    Examples
    --------
    >>> levels = np.array([[[1]], [[1]], [[1]]])
    >>> glrlm_matrices_of_core(levels, 1, (1, 3))[4].tolist()  # the z run is owned by z = 0
    [[0]]
    >>> glrlm_matrices_of_core(levels, 1, (0, 1))[4].tolist()
    [[0, 0, 1]]
    """
    ng = check_ng(ng)
    arr = check_levels(levels, ng, require_roi=True)
    start, stop = (int(c) for c in core)
    if not 0 <= start <= stop <= arr.shape[0]:
        raise ConfigError("core", f"must be a slice range within 0..{arr.shape[0]}, got {core!r}")
    width = max(arr.shape)
    out = np.zeros((len(DIRECTIONS_3D), ng, width), dtype=np.int64)
    for k, d in enumerate(DIRECTIONS_3D):
        runs = _runs(arr, d)
        z_first = runs.first_voxels()[0]
        z_low = np.minimum(z_first, z_first + (runs.lengths - 1) * runs.sheared.step[0])
        inside = (z_low >= start) & (z_low < stop)
        out[k] = _bin_runs(runs.levels[inside], runs.lengths[inside] - 1, None, 1, ng, width)[0]
    return _trim(out)


# --------------------------------------------------------------------------- feature step


def length_matrix_features(
    counts: npt.ArrayLike,
    *,
    lengths: npt.ArrayLike | None = None,
    entropy_eps: float | None = None,
) -> dict[str, FloatArray]:
    r"""The 16 run/zone features of a stack of grey level x length matrices.

    Shared by the GLRLM (lengths = run lengths) and the GLSZM (lengths = zone sizes), whose
    IBSI definitions coincide. With :math:`M(i,j)` the matrix, :math:`N = \sum M`,
    :math:`m_i = \sum_j M(i,j)`, :math:`m_j = \sum_i M(i,j)`, :math:`p = M/N`:

    * ``sre`` :math:`= \sum_j m_j / j^2 / N`, ``lre`` :math:`= \sum_j m_j j^2 / N`,
      ``lgre`` :math:`= \sum_i m_i / i^2 / N`, ``hgre`` :math:`= \sum_i m_i i^2 / N`,
    * ``srlge``, ``srhge``, ``lrlge``, ``lrhge``: :math:`\sum_{ij} M(i,j) w(i,j) / N` with
      :math:`w = i^{-2}j^{-2},\ i^2 j^{-2},\ i^{-2} j^2,\ i^2 j^2`,
    * ``glnu`` :math:`= \sum_i m_i^2 / N`, ``glnu.norm`` :math:`= \sum_i m_i^2 / N^2`,
      ``rlnu``, ``rlnu.norm`` likewise with :math:`m_j`,
    * ``r.perc`` :math:`= N / N_v` with :math:`N_v = \sum_j j\,m_j`,
    * ``gl.var`` :math:`= \sum_i p_i (i - \mu_i)^2`, ``rl.var`` :math:`= \sum_j p_j (j - \mu_j)^2`,
    * ``rl.entr`` :math:`= -\sum_{ij} p \log_2 p` (terms with :math:`p = 0` omitted), or
      :math:`-\sum p \log_2(p + \epsilon)` when `entropy_eps` is given (PyRadiomics).

    Parameters
    ----------
    counts : array_like, shape (..., ng, L)
        Matrices (counts, or weighted counts); row ``i-1`` is grey level ``i``, column ``k``
        length ``lengths[k]``.
    lengths : array_like of shape (L,), optional
        The length of each column; ``1..L`` by default (dense matrices).
    entropy_eps : float, optional
        :math:`\epsilon` of the PyRadiomics entropy.

    Returns
    -------
    dict of str to ndarray of float64
        Generic names above, each of shape ``counts.shape[:-2]``; NaN where :math:`N = 0`.

    Examples
    --------
    >>> f = length_matrix_features([[0, 1], [1, 0]])
    >>> float(f["sre"]), float(f["r.perc"])
    (0.625, 0.6666666666666666)
    """
    m = np.asarray(counts, dtype=np.float64)
    if m.ndim < 2:
        raise InputError("counts", f"expected (..., ng, L) matrices, got shape {m.shape}")
    ng, width = m.shape[-2:]
    lead = m.shape[:-2]
    i = np.arange(1, ng + 1, dtype=np.float64)
    j = (
        np.arange(1, width + 1, dtype=np.float64)
        if lengths is None
        else np.asarray(lengths, dtype=np.float64)
    )
    if j.shape != (width,):
        raise InputError("lengths", f"expected {width} column lengths, got shape {j.shape}")
    i2, j2 = i**2, j**2
    total = m.sum(axis=(-2, -1))
    safe = np.where(total > 0, total, np.nan)
    m_i = m.sum(axis=-1)
    m_j = m.sum(axis=-2)
    flat = m.reshape(-1, ng * width)
    joint = {
        "srlge": np.outer(1.0 / i2, 1.0 / j2),
        "srhge": np.outer(i2, 1.0 / j2),
        "lrlge": np.outer(1.0 / i2, j2),
        "lrhge": np.outer(i2, j2),
    }
    out: dict[str, FloatArray] = {
        "sre": (m_j / j2).sum(axis=-1) / safe,
        "lre": (m_j * j2).sum(axis=-1) / safe,
        "lgre": (m_i / i2).sum(axis=-1) / safe,
        "hgre": (m_i * i2).sum(axis=-1) / safe,
    }
    for name, weight in joint.items():
        # einsum, not a BLAS product: no thread pool for a small matrix-vector product
        out[name] = np.einsum("kn,n->k", flat, weight.ravel()).reshape(lead) / safe
    out["glnu"] = (m_i**2).sum(axis=-1) / safe
    out["glnu.norm"] = out["glnu"] / safe
    out["rlnu"] = (m_j**2).sum(axis=-1) / safe
    out["rlnu.norm"] = out["rlnu"] / safe
    out["r.perc"] = total / np.where(total > 0, (m_j * j).sum(axis=-1), np.nan)
    p_i = m_i / safe[..., None]
    p_j = m_j / safe[..., None]
    mu_i = (p_i * i).sum(axis=-1, keepdims=True)
    mu_j = (p_j * j).sum(axis=-1, keepdims=True)
    out["gl.var"] = (p_i * (i - mu_i) ** 2).sum(axis=-1)
    out["rl.var"] = (p_j * (j - mu_j) ** 2).sum(axis=-1)
    p = m / safe[..., None, None]
    if entropy_eps is None:
        logp = np.zeros_like(p)
        np.log2(p, out=logp, where=p > 0)
        entropy = -(p * logp).sum(axis=(-2, -1))
        out["rl.entr"] = np.where(total > 0, entropy, np.nan)
    else:
        out["rl.entr"] = -(p * np.log2(p + entropy_eps)).sum(axis=(-2, -1))
    return {name: np.asarray(out[name], dtype=np.float64) for name in _GENERIC}


def glrlm_features(counts: npt.ArrayLike) -> dict[str, FloatArray]:
    """The 16 IBSI GLRLM features of each matrix of a stack.

    Parameters
    ----------
    counts : array_like, shape (..., ng, L)
        Run length matrices from :func:`glrlm_matrices`, or their sums over directions or
        slices (merged aggregation).

    Returns
    -------
    dict of str to ndarray of float64
        Keyed by IBSI tag (:data:`GLRLM_TAGS`), each of shape ``counts.shape[:-2]``; NaN for
        an empty matrix. See :func:`length_matrix_features` for the formulas.

    Examples
    --------
    >>> float(glrlm_features([[2, 0], [0, 1]])["rlm.lre"])
    2.0
    """
    return {f"rlm.{name}": value for name, value in length_matrix_features(counts).items()}


def _mean(values: FloatArray) -> float:
    return float(np.mean(values)) if values.size else math.nan


def ibsi_glrlm_from_matrices(
    matrices_3d: npt.NDArray[np.integer], matrices_2d: npt.NDArray[np.integer]
) -> dict[str, float]:
    """The 96 IBSI GLRLM values (16 features x 6 aggregations) from the run length matrices.

    Parameters
    ----------
    matrices_3d : ndarray, shape (13, ng, L)
        :func:`glrlm_matrices` with ``two_d=False``.
    matrices_2d : ndarray, shape (z, 4, ng, L')
        :func:`glrlm_matrices` with ``two_d=True``.

    Returns
    -------
    dict of str to float
        Keyed ``"<tag> [<aggregation>]"``, e.g. ``"rlm.sre [3D, averaged]"``:

        * ``2D, averaged``: features of every (slice, direction) matrix, averaged;
        * ``2D, slice-merged``: each slice's four matrices summed, features averaged over slices;
        * ``2.5D, direction-merged``: each direction's matrices summed over slices, features
          averaged over the four directions;
        * ``2.5D, merged``: all 2D matrices summed;
        * ``3D, averaged``: features of the 13 matrices, averaged;
        * ``3D, merged``: the 13 matrices summed.

        Slices without ROI voxels take no part.
    """
    m3 = np.asarray(matrices_3d)
    m2 = np.asarray(matrices_2d)
    if m3.ndim != 3 or m2.ndim != 4:
        raise InputError("matrices", "expected (13, ng, L) 3D and (z, 4, ng, L) 2D matrices")
    j3 = np.arange(1, m3.shape[-1] + 1)
    j2 = np.arange(1, m2.shape[-1] + 1)
    return _ibsi_aggregate(m3, j3, m2, j2)


def _ibsi_aggregate(
    m3: npt.NDArray[np.integer],
    j3: IntArray,
    m2: npt.NDArray[np.integer],
    j2: IntArray,
) -> dict[str, float]:
    """The six IBSI aggregations of 3D (13, ng, L) and 2D (z, 4, ng, L') matrices.

    Column ``k`` of the 3D matrices holds runs of length ``j3[k]``, of the 2D ones ``j2[k]``.
    """
    m2 = m2[m2.sum(axis=(1, 2, 3)) > 0]  # slices holding ROI voxels
    if m2.shape[0] == 0 or not m3.any():
        raise EmptyRoiError("levels", "the ROI has no voxel")

    def features(m: npt.NDArray[np.integer], j: IntArray) -> dict[str, FloatArray]:
        return length_matrix_features(m, lengths=j)

    per_aggregation = {
        "2D, averaged": features(m2, j2),
        "2D, slice-merged": features(m2.sum(axis=1), j2),
        "2.5D, direction-merged": features(m2.sum(axis=0), j2),
        "2.5D, merged": features(m2.sum(axis=(0, 1)), j2),
        "3D, averaged": features(m3, j3),
        "3D, merged": features(m3.sum(axis=0), j3),
    }
    return {
        f"rlm.{name} [{aggregation}]": _mean(values[name])
        for aggregation, values in per_aggregation.items()
        for name in _GENERIC
    }


def ibsi_glrlm(levels: npt.NDArray[np.integer], ng: int) -> dict[str, float]:
    """IBSI grey level run length features, all six aggregation methods.

    Parameters
    ----------
    levels : ndarray of int, shape (z, y, x)
        Grey levels ``1..ng`` inside the ROI and 0 outside, cropped to the ROI bounding box.
    ng : int
        Number of grey levels after discretisation.

    Returns
    -------
    dict of str to float
        96 values keyed ``"<tag> [<aggregation>]"`` (see :func:`ibsi_glrlm_from_matrices`).

    Raises
    ------
    InputError, EmptyRoiError
        As :func:`glrlm_matrices`.

    References
    ----------
    Zwanenburg A. et al., The Image Biomarker Standardisation Initiative, arXiv:1612.07003,
    section 3.7.

    Examples
    --------
    >>> levels = np.array([[[1, 1], [2, 2]]])
    >>> ibsi_glrlm(levels, 2)["rlm.r.perc [2D, slice-merged]"]  # 14 runs of 16 voxels
    0.875
    """
    ng = check_ng(ng)
    arr = check_levels(levels, ng, require_roi=True)
    # the in-plane 3D directions are the 2D ones: find their runs once, bin them twice
    nz, width_3d, width_2d = arr.shape[0], max(arr.shape), max(arr.shape[1:])
    m3 = np.zeros((len(DIRECTIONS_3D), ng, width_3d), dtype=np.int64)
    m2 = np.zeros((nz, len(DIRECTIONS_2D), ng, width_2d), dtype=np.int64)
    for k, d in enumerate(DIRECTIONS_3D):
        runs = _runs(arr, d)
        columns = runs.lengths - 1
        m3[k] = _bin_runs(runs.levels, columns, None, 1, ng, width_3d)[0]
        if d in DIRECTIONS_2D:
            z = runs.first_voxels()[0]
            m2[:, DIRECTIONS_2D.index(d)] = _bin_runs(runs.levels, columns, z, nz, ng, width_2d)
    # features need only the run lengths that occur
    j3, m3 = _used_columns(m3)
    j2, m2 = _used_columns(m2)
    return _ibsi_aggregate(m3, j3, m2, j2)


# --------------------------------------------------------------------------- PyRadiomics


def _pyradiomics_angles(shape: tuple[int, ...], fixed_axis: int | None) -> tuple[Direction, ...]:
    """PyRadiomics' GLRLM angles: no move along an axis of size 1 or along the 2D axis."""
    angles = tuple(
        d
        for d in DIRECTIONS_3D
        if all(shape[ax] > 1 or d[ax] == 0 for ax in range(3))
        and (fixed_axis is None or d[fixed_axis] == 0)
    )
    if not angles:
        raise InputError("levels", f"a bounding box of shape {shape} has no neighbour direction")
    return angles


def pyradiomics_glrlm_matrices(
    levels: npt.NDArray[np.integer], *, force2D: bool = False, force2Ddimension: int = 0
) -> tuple[npt.NDArray[np.int64], tuple[Direction, ...]]:
    """Run length matrices as ``RadiomicsGLRLM`` builds them, with their angles.

    PyRadiomics runs along the 13 directions of :data:`DIRECTIONS_3D` (the 4 perpendicular to
    axis `force2Ddimension` with `force2D`), leaving out directions that move along an axis
    of size 1. The matrices span grey levels ``1..max(levels)``; with `force2D` runs stay in
    their plane and each direction's matrix covers all planes.

    Parameters
    ----------
    levels : ndarray of int, shape (z, y, x)
        PyRadiomics-discretised grey levels (``binImage``) inside the ROI, 0 outside, cropped
        to the ROI bounding box.
    force2D : bool
        PyRadiomics ``force2D``.
    force2Ddimension : int
        PyRadiomics ``force2Ddimension`` (0, 1 or 2; the axis normal to the planes).

    Returns
    -------
    matrices : ndarray of int64, shape (n_angles, Ng, L)
    angles : tuple of (dz, dy, dx)

    Raises
    ------
    InputError, EmptyRoiError
        Bad or empty `levels`, or a single-voxel bounding box (no direction).
    ConfigError
        `force2Ddimension` not in 0..2.
    """
    arr = check_levels(levels, None, require_roi=True)
    fixed = _check_force2d(force2D, force2Ddimension)
    angles = _pyradiomics_angles(arr.shape, fixed)
    matrices = _direction_matrices(arr, int(arr.max()), angles)
    for k, angle in enumerate(angles):
        # PyRadiomics zeroes an angle along which every line holds at most one ROI voxel
        # ("segmentation is 2D for this angle"); its features are then left out of the mean.
        if matrices[k, :, 1:].sum() == 0 and _lines_hold_one_voxel(arr, angle):
            matrices[k] = 0
    return matrices, angles


def _angle_weights(
    angles: Sequence[Direction], weighting_norm: str, spacing: Sequence[float] | None
) -> FloatArray:
    if weighting_norm not in _WEIGHTING_NORMS:
        raise ConfigError(
            "weightingNorm", f"must be one of {_WEIGHTING_NORMS} or None, got {weighting_norm!r}"
        )
    if weighting_norm == "no_weighting":
        return np.ones(len(angles))
    if spacing is None or len(spacing) != 3 or not all(float(s) > 0 for s in spacing):
        raise ConfigError(
            "spacing", f"weightingNorm={weighting_norm!r} needs a positive (z, y, x) spacing"
        )
    steps = np.abs(np.asarray(angles, dtype=np.float64)) * np.asarray(spacing, dtype=np.float64)
    if weighting_norm == "infinity":
        return np.asarray(steps.max(axis=1), dtype=np.float64)
    if weighting_norm == "euclidean":
        return np.asarray(np.sqrt((steps**2).sum(axis=1)), dtype=np.float64)
    return np.asarray(steps.sum(axis=1), dtype=np.float64)


def pyradiomics_glrlm_features(
    matrices: npt.NDArray[np.integer],
    angles: Sequence[Direction],
    *,
    weightingNorm: str | None = None,
    spacing: Sequence[float] | None = None,
) -> dict[str, float]:
    r"""``RadiomicsGLRLM`` features from :func:`pyradiomics_glrlm_matrices`.

    Without `weightingNorm` the features of each angle's matrix are averaged (NaN-ignoring);
    with it the matrices are summed with weights (the angle's length under the norm, in mm,
    or 1 for ``"no_weighting"``) and the features are those of the sum. The entropy is
    :math:`-\sum p \log_2(p + \epsilon)` with :math:`\epsilon` = ``np.spacing(1)``.
    Angles without runs (see :func:`pyradiomics_glrlm_matrices`) are left out; with none
    left every feature is NaN, except that PyRadiomics reports 0 for ``RunEntropy`` and
    ``RunVariance`` when that empty matrix is the only one (one angle, or `weightingNorm`).

    Parameters
    ----------
    matrices : ndarray, shape (n_angles, Ng, L)
    angles : sequence of (dz, dy, dx)
    weightingNorm : {"manhattan", "euclidean", "infinity", "no_weighting"}, optional
        PyRadiomics ``weightingNorm``. Unlike PyRadiomics (which warns and uses weight 1),
        an unknown norm is an error.
    spacing : sequence of 3 floats, optional
        Voxel size (z, y, x) in mm; required by the three distance norms.

    Returns
    -------
    dict of str to float
        The 16 features keyed by PyRadiomics name (:data:`PYRADIOMICS_GLRLM_FEATURES`).

    Raises
    ------
    ConfigError
        Unknown `weightingNorm`, or a distance norm without `spacing`.
    """
    m = np.asarray(matrices, dtype=np.float64)
    if m.ndim != 3 or m.shape[0] != len(angles):
        raise InputError(
            "matrices", f"expected ({len(angles)}, Ng, L) matrices, got shape {m.shape}"
        )
    if weightingNorm is not None:
        weights = _angle_weights(angles, weightingNorm, spacing)
        m = np.einsum("a,aij->ij", weights, m)[None]
    values = length_matrix_features(m, entropy_eps=float(np.spacing(1)))
    out: dict[str, float] = {}
    for name, value in values.items():
        finite = value[~np.isnan(value)]
        out[_PYRADIOMICS_NAMES[name]] = float(finite.mean()) if finite.size else math.nan
    if m.shape[0] == 1 and not m.any():
        # PyRadiomics quirk: a single matrix (one angle, or the weighted sum) is never deleted
        # when empty, but all its run-length columns are; entropy and run variance then sum
        # over nothing.
        out["RunEntropy"] = out["RunVariance"] = 0.0
    return out


def pyradiomics_glrlm(
    levels: npt.NDArray[np.integer],
    *,
    weightingNorm: str | None = None,
    force2D: bool = False,
    force2Ddimension: int = 0,
    spacing: Sequence[float] | None = None,
) -> dict[str, float]:
    """GLRLM features as PyRadiomics 3.0.1 ``RadiomicsGLRLM`` computes them.

    Parameters
    ----------
    levels : ndarray of int, shape (z, y, x)
        PyRadiomics-discretised grey levels (``binImage``, starting at 1) inside the ROI and
        0 outside, cropped to the ROI bounding box (as the extractor crops it).
    weightingNorm : str, optional
        See :func:`pyradiomics_glrlm_features`.
    force2D, force2Ddimension
        PyRadiomics settings; see :func:`pyradiomics_glrlm_matrices`.
    spacing : sequence of 3 floats, optional
        Voxel size (z, y, x) in mm, used by `weightingNorm`.

    Returns
    -------
    dict of str to float
        The 16 default features keyed by PyRadiomics name (``"ShortRunEmphasis"``, ...).

    Examples
    --------
    >>> levels = np.array([[[1, 1], [2, 2]]])
    >>> pyradiomics_glrlm(levels)["RunPercentage"]  # mean of 2/4, 4/4, 4/4, 4/4 runs/voxel
    0.875
    """
    matrices, angles = pyradiomics_glrlm_matrices(
        levels, force2D=force2D, force2Ddimension=force2Ddimension
    )
    return pyradiomics_glrlm_features(
        matrices, angles, weightingNorm=weightingNorm, spacing=spacing
    )
