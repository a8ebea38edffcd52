r"""Grey level size zone matrix (GLSZM) features (IBSI 3.8, family ``szm``).

Two steps:

1. :func:`glszm_matrix` counts zones: connected groups of ROI voxels sharing a grey level
   (26-connected in 3D, 8-connected within an axial slice in 2D), one ``scipy.ndimage.label``
   call per grey level.
2. :func:`glszm_features` turns size zone matrices into the 16 IBSI features.

:func:`ibsi_glszm` runs both and aggregates as IBSI does (``2D``: features per slice,
averaged; ``2.5D``: slice matrices summed; ``3D``: one volumetric matrix).
:func:`pyradiomics_glszm` reproduces ``radiomics.glszm.RadiomicsGLSZM`` (PyRadiomics 3.0.1)
from PyRadiomics-discretised grey levels.

Notation: :math:`S(i, j)` counts zones of grey level :math:`i` and size :math:`j` voxels;
:math:`N_s = \sum S` zones, :math:`N_v = \sum_j j\, s_j` voxels, :math:`p = S / N_s`. The
features have the same definitions as the run length features with zones in place of runs
(:func:`radgen.features.texture_glrlm.length_matrix_features`).

Chunked computation
-------------------
Size zone matrices are **not** additive over chunks: a zone crossing a chunk border would be
counted as two smaller zones, and a zone can wind through the whole bounding box, so no
finite halo makes chunks exact. The 2D matrices (``two_d=True``) are per axial slice and
concatenate exactly over z-slabs of whole slices (no halo; zero-pad the size axis to a common
width). The 3D matrix needs the whole bounding box in one piece.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from radgen.errors import EmptyRoiError, InputError
from radgen.features.texture_glrlm import (
    _check_force2d,
    _compact_columns,
    _pyradiomics_angles,
    length_matrix_features,
)
from radgen.features.texture_input import check_levels, check_ng

__all__ = [
    "GLSZM_TAGS",
    "IBSI_GLSZM_AGGREGATIONS",
    "PYRADIOMICS_GLSZM_FEATURES",
    "glszm_features",
    "glszm_matrix",
    "ibsi_glszm",
    "ibsi_glszm_from_matrices",
    "pyradiomics_glszm",
    "pyradiomics_glszm_features",
    "pyradiomics_glszm_matrix",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: IBSI tag of each generic run/zone feature name, in the order of the IBSI reference manual.
_IBSI_NAMES: dict[str, str] = {
    "sre": "szm.sze",
    "lre": "szm.lze",
    "lgre": "szm.lgze",
    "hgre": "szm.hgze",
    "srlge": "szm.szlge",
    "srhge": "szm.szhge",
    "lrlge": "szm.lzlge",
    "lrhge": "szm.lzhge",
    "glnu": "szm.glnu",
    "glnu.norm": "szm.glnu.norm",
    "rlnu": "szm.zsnu",
    "rlnu.norm": "szm.zsnu.norm",
    "r.perc": "szm.z.perc",
    "gl.var": "szm.gl.var",
    "rl.var": "szm.zs.var",
    "rl.entr": "szm.zs.entr",
}

#: The 16 IBSI GLSZM feature tags.
GLSZM_TAGS: tuple[str, ...] = tuple(_IBSI_NAMES.values())

#: The three IBSI aggregation methods for the GLSZM.
IBSI_GLSZM_AGGREGATIONS: tuple[str, ...] = ("2D", "2.5D", "3D")

#: PyRadiomics feature name of each generic feature (all 16 are enabled by default).
_PYRADIOMICS_NAMES: dict[str, str] = {
    "sre": "SmallAreaEmphasis",
    "lre": "LargeAreaEmphasis",
    "lgre": "LowGrayLevelZoneEmphasis",
    "hgre": "HighGrayLevelZoneEmphasis",
    "srlge": "SmallAreaLowGrayLevelEmphasis",
    "srhge": "SmallAreaHighGrayLevelEmphasis",
    "lrlge": "LargeAreaLowGrayLevelEmphasis",
    "lrhge": "LargeAreaHighGrayLevelEmphasis",
    "glnu": "GrayLevelNonUniformity",
    "glnu.norm": "GrayLevelNonUniformityNormalized",
    "rlnu": "SizeZoneNonUniformity",
    "rlnu.norm": "SizeZoneNonUniformityNormalized",
    "r.perc": "ZonePercentage",
    "gl.var": "GrayLevelVariance",
    "rl.var": "ZoneVariance",
    "rl.entr": "ZoneEntropy",
}

#: The features ``RadiomicsGLSZM`` enables by default (none is deprecated).
PYRADIOMICS_GLSZM_FEATURES: tuple[str, ...] = tuple(sorted(_PYRADIOMICS_NAMES.values()))


# --------------------------------------------------------------------------- matrix step


def _structure(fixed_axis: int | None) -> npt.NDArray[np.bool_]:
    """Full (26-) connectivity, or 8-connectivity within planes normal to `fixed_axis`."""
    structure = np.ones((3, 3, 3), dtype=bool)
    if fixed_axis is not None:
        off_plane = [slice(None)] * 3
        for side in (0, 2):
            off_plane[fixed_axis] = slice(side, side + 1)
            structure[tuple(off_plane)] = False
    return structure


def _level_boxes(levels: IntArray, ng: int) -> tuple[IntArray, IntArray]:
    """Bounding box ``[lo, hi)`` of every grey level 0..ng along each axis, shape (ng+1, 3)."""
    lo = np.zeros((ng + 1, 3), dtype=np.int64)
    hi = np.zeros((ng + 1, 3), dtype=np.int64)
    for ax, n in enumerate(levels.shape):
        shape = [1, 1, 1]
        shape[ax] = n
        coord = np.arange(n, dtype=np.int64).reshape(shape) * (ng + 1)
        table = np.bincount((coord + levels).ravel(), minlength=n * (ng + 1)).reshape(n, ng + 1)
        occupied = table > 0
        lo[:, ax] = np.argmax(occupied, axis=0)
        hi[:, ax] = n - np.argmax(occupied[::-1], axis=0)
    return lo, hi


def _zones(
    levels: IntArray, ng: int, fixed_axis: int | None
) -> tuple[IntArray, IntArray, IntArray | None]:
    """Grey level, size and (for planar zones) plane index of every zone.

    3D zones: one pass of ``skimage.measure.label`` over all grey levels at once (it joins
    26-connected voxels of equal value; about 5x faster than a ``scipy.ndimage.label`` per
    grey level). Planar zones: one ``ndimage.label`` per grey level present, on that level's
    own bounding box, with the in-plane structure.
    """
    if fixed_axis is None:
        from skimage.measure import label as label_equal_values

        zone_ids, count = label_equal_values(levels, background=0, connectivity=3, return_num=True)
        ids = zone_ids.ravel()
        size_of = np.bincount(ids, minlength=count + 1)[1:].astype(np.int64)
        grey_of = np.zeros(count + 1, dtype=np.int64)
        grey_of[ids] = levels.ravel()
        return grey_of[1:], size_of, None
    structure = _structure(fixed_axis)
    zone_levels: list[IntArray] = []
    zone_sizes: list[IntArray] = []
    zone_planes: list[IntArray] = []
    present = np.flatnonzero(np.bincount(levels.ravel(), minlength=ng + 1)[1:]) + 1
    lo, hi = _level_boxes(levels, ng)
    for grey in present:
        box = tuple(slice(int(a), int(b)) for a, b in zip(lo[grey], hi[grey], strict=True))
        labels, n = ndimage.label(levels[box] == grey, structure=structure)
        flat = labels.ravel()
        sizes = np.bincount(flat, minlength=n + 1)[1:]
        zone_levels.append(np.full(n, grey, dtype=np.int64))
        zone_sizes.append(sizes.astype(np.int64))
        if fixed_axis is not None:
            # every voxel of a planar zone lies in one plane: the mean plane index is exact
            shape = [1, 1, 1]
            shape[fixed_axis] = labels.shape[fixed_axis]
            plane = np.arange(labels.shape[fixed_axis], dtype=np.float64).reshape(shape)
            weights = np.broadcast_to(plane, labels.shape).ravel()
            sums = np.bincount(flat, weights=weights, minlength=n + 1)[1:]
            zone_planes.append(np.rint(sums / sizes).astype(np.int64) + lo[grey, fixed_axis])
    return (
        np.concatenate(zone_levels),
        np.concatenate(zone_sizes),
        np.concatenate(zone_planes) if fixed_axis is not None else None,
    )


def _bin_zones(
    zone_levels: IntArray,
    columns: IntArray,
    planes: IntArray | None,
    n_planes: int,
    ng: int,
    width: int,
) -> IntArray:
    """Count (plane, grey level, column) triples into an (n_planes, ng, width) array."""
    index = (zone_levels - 1) * width + columns
    if planes is not None:
        index = index + planes * (ng * width)
    counts = np.bincount(index, minlength=n_planes * ng * width)
    return counts.reshape(n_planes, ng, width)


def _dense(
    zone_levels: IntArray, sizes: IntArray, planes: IntArray | None, n_planes: int, ng: int
) -> IntArray:
    return _bin_zones(zone_levels, sizes - 1, planes, n_planes, ng, int(sizes.max()))


def glszm_matrix(
    levels: npt.NDArray[np.integer], ng: int, *, two_d: bool = False
) -> npt.NDArray[np.int64]:
    """Grey level size zone matrix (IBSI 3.8).

    Parameters
    ----------
    levels : ndarray of int, shape (z, y, x)
        Grey levels ``1..ng`` inside the ROI and 0 outside, cropped to the ROI bounding box.
    ng : int
        Number of grey levels; the matrix spans ``1..ng`` even if some levels are absent.
    two_d : bool
        False: 26-connected zones in the volume. True: 8-connected zones within each axial
        slice, one matrix per slice.

    Returns
    -------
    ndarray of int64
        ``S[i-1, j-1]`` = number of zones of grey level ``i`` and ``j`` voxels: shape
        (ng, J) in 3D, (z, ng, J) in 2D. ``J`` is the largest zone found; zero-pad the last
        axis to merge matrices of different widths.

    Raises
    ------
    InputError
        `levels` is not a 3-D integer array with values in ``0..ng``.
    EmptyRoiError
        `levels` has no ROI voxel.

    Notes
    -----
    Not additive over chunks in 3D (see the module notes); 2D matrices concatenate over
    z-slabs of whole slices. The size axis is dense, so ``J`` can be as large as the ROI for
    a homogeneous region; :func:`ibsi_glszm` and :func:`pyradiomics_glszm` bin over the zone
    sizes that occur instead.

    Examples
    --------
    >>> levels = np.array([[[1, 0, 1], [0, 1, 2]]])
    >>> glszm_matrix(levels, 2).tolist()  # the three 1s touch diagonally: one zone of 3
    [[0, 0, 1], [1, 0, 0]]
    """
    ng = check_ng(ng)
    arr = check_levels(levels, ng, require_roi=True)
    if two_d:
        lv, sizes, planes = _zones(arr, ng, fixed_axis=0)
        return _dense(lv, sizes, planes, arr.shape[0], ng)
    lv, sizes, _ = _zones(arr, ng, fixed_axis=None)
    matrix: IntArray = _dense(lv, sizes, None, 1, ng)[0]
    return matrix


# --------------------------------------------------------------------------- feature step


def glszm_features(counts: npt.ArrayLike) -> dict[str, FloatArray]:
    r"""The 16 IBSI GLSZM features of each matrix of a stack.

    With :math:`S(i,j)` the matrix, :math:`N_s = \sum S`, :math:`s_i = \sum_j S(i,j)`,
    :math:`s_j = \sum_i S(i,j)`, :math:`N_v = \sum_j j\,s_j`, :math:`p = S / N_s`:
    ``sze`` :math:`= \sum_j s_j j^{-2} / N_s`, ``lze`` :math:`= \sum_j s_j j^2 / N_s`,
    ``lgze`` :math:`= \sum_i s_i i^{-2} / N_s`, ``hgze`` :math:`= \sum_i s_i i^2 / N_s`,
    ``szlge``/``szhge``/``lzlge``/``lzhge`` :math:`= \sum_{ij} S(i,j)\,w(i,j) / N_s` with
    :math:`w = i^{-2}j^{-2},\ i^2j^{-2},\ i^{-2}j^2,\ i^2j^2`, ``glnu`` :math:`= \sum_i s_i^2/N_s`
    (``.norm``: :math:`/N_s^2`), ``zsnu`` :math:`= \sum_j s_j^2/N_s` (``.norm``: :math:`/N_s^2`),
    ``z.perc`` :math:`= N_s / N_v`, ``gl.var`` and ``zs.var`` the variances of :math:`i` and
    :math:`j` under :math:`p`, ``zs.entr`` :math:`= -\sum p \log_2 p`.

    Parameters
    ----------
    counts : array_like, shape (..., ng, J)
        Size zone matrices from :func:`glszm_matrix`, or their sum over slices.

    Returns
    -------
    dict of str to ndarray of float64
        Keyed by IBSI tag (:data:`GLSZM_TAGS`), each of shape ``counts.shape[:-2]``; NaN for
        an empty matrix.

    Examples
    --------
    >>> float(glszm_features([[0, 0, 1], [1, 0, 0]])["szm.z.perc"])
    0.5
    """
    return {_IBSI_NAMES[name]: value for name, value in length_matrix_features(counts).items()}


def ibsi_glszm_from_matrices(
    matrix_3d: npt.NDArray[np.integer], matrices_2d: npt.NDArray[np.integer]
) -> dict[str, float]:
    """The 48 IBSI GLSZM values (16 features x 3 aggregations) from the size zone matrices.

    Parameters
    ----------
    matrix_3d : ndarray, shape (ng, J)
        :func:`glszm_matrix` with ``two_d=False``.
    matrices_2d : ndarray, shape (z, ng, J')
        :func:`glszm_matrix` with ``two_d=True``.

    Returns
    -------
    dict of str to float
        Keyed ``"<tag> [<aggregation>]"``: ``2D`` averages the features of the slices holding
        ROI voxels, ``2.5D`` uses the sum of the slice matrices, ``3D`` the volumetric matrix.
    """
    m3 = np.asarray(matrix_3d)
    m2 = np.asarray(matrices_2d)
    if m3.ndim != 2 or m2.ndim != 3:
        raise InputError("matrices", "expected (ng, J) 3D and (z, ng, J) 2D matrices")
    return _ibsi_aggregate(m3, np.arange(1, m3.shape[-1] + 1), m2, np.arange(1, m2.shape[-1] + 1))


def _ibsi_aggregate(
    m3: npt.NDArray[np.integer], j3: IntArray, m2: npt.NDArray[np.integer], j2: IntArray
) -> dict[str, float]:
    """The three IBSI aggregations; column ``k`` holds zones of size ``j3[k]`` (``j2[k]``)."""
    m2 = m2[m2.sum(axis=(1, 2)) > 0]  # slices holding ROI voxels
    if m2.shape[0] == 0 or not m3.any():
        raise EmptyRoiError("levels", "the ROI has no voxel")
    per_aggregation = {
        "2D": length_matrix_features(m2, lengths=j2),
        "2.5D": length_matrix_features(m2.sum(axis=0), lengths=j2),
        "3D": length_matrix_features(m3, lengths=j3),
    }
    return {
        f"{_IBSI_NAMES[name]} [{aggregation}]": float(np.mean(values[name]))
        for aggregation, values in per_aggregation.items()
        for name in _IBSI_NAMES
    }


def ibsi_glszm(levels: npt.NDArray[np.integer], ng: int) -> dict[str, float]:
    """IBSI grey level size zone features, all three aggregation methods.

    Parameters
    ----------
    levels : ndarray of int, shape (z, y, x)
        Grey levels ``1..ng`` inside the ROI and 0 outside, cropped to the ROI bounding box.
    ng : int
        Number of grey levels after discretisation.

    Returns
    -------
    dict of str to float
        48 values keyed ``"<tag> [<aggregation>]"``, e.g. ``"szm.sze [3D]"`` (see
        :func:`ibsi_glszm_from_matrices`).

    Raises
    ------
    InputError, EmptyRoiError
        As :func:`glszm_matrix`.

    References
    ----------
    Zwanenburg A. et al., The Image Biomarker Standardisation Initiative, arXiv:1612.07003,
    section 3.8.

    Examples
    --------
    >>> levels = np.array([[[1, 1], [2, 2]]])
    >>> ibsi_glszm(levels, 2)["szm.z.perc [3D]"]
    0.5
    """
    ng = check_ng(ng)
    arr = check_levels(levels, ng, require_roi=True)
    lv3, sizes3, _ = _zones(arr, ng, fixed_axis=None)
    lv2, sizes2, planes = _zones(arr, ng, fixed_axis=0)
    # matrices over the zone sizes that occur only: small even for very large zones
    j3, (cols3,) = _compact_columns([sizes3])
    j2, (cols2,) = _compact_columns([sizes2])
    m3 = _bin_zones(lv3, cols3, None, 1, ng, j3.size)[0]
    m2 = _bin_zones(lv2, cols2, planes, arr.shape[0], ng, j2.size)
    return _ibsi_aggregate(m3, j3, m2, j2)


# --------------------------------------------------------------------------- PyRadiomics


def pyradiomics_glszm_matrix(
    levels: npt.NDArray[np.integer], *, force2D: bool = False, force2Ddimension: int = 0
) -> npt.NDArray[np.int64]:
    """Size zone matrix as ``RadiomicsGLSZM`` builds it.

    Zones are 26-connected, or with `force2D` 8-connected within the planes normal to axis
    `force2Ddimension`, all planes counted in one matrix. Rows span grey levels
    ``1..max(levels)``.

    Parameters
    ----------
    levels : ndarray of int, shape (z, y, x)
        PyRadiomics-discretised grey levels (``binImage``) inside the ROI, 0 outside.
    force2D, force2Ddimension
        PyRadiomics settings.

    Returns
    -------
    ndarray of int64, shape (Ng, J)

    Raises
    ------
    InputError, EmptyRoiError
        Bad or empty `levels`, or no neighbour direction (a single-voxel bounding box, or
        with `force2D` a box of extent 1 along both in-plane axes), where PyRadiomics fails.
    ConfigError
        `force2Ddimension` not in 0..2.
    """
    arr = check_levels(levels, None, require_roi=True)
    fixed = _check_force2d(force2D, force2Ddimension)
    _pyradiomics_angles(arr.shape, fixed)  # PyRadiomics fails without a neighbour direction
    ng = int(arr.max())
    lv, sizes, _ = _zones(arr, ng, fixed_axis=fixed)
    matrix: IntArray = _dense(lv, sizes, None, 1, ng)[0]
    return matrix


def pyradiomics_glszm_features(matrix: npt.NDArray[np.integer]) -> dict[str, float]:
    r"""``RadiomicsGLSZM`` features of a size zone matrix.

    The formulas are those of :func:`glszm_features`; the entropy is
    :math:`-\sum p \log_2(p + \epsilon)` with :math:`\epsilon` = ``np.spacing(1)``.

    Parameters
    ----------
    matrix : ndarray, shape (Ng, J)
        From :func:`pyradiomics_glszm_matrix`.

    Returns
    -------
    dict of str to float
        The 16 features keyed by PyRadiomics name (:data:`PYRADIOMICS_GLSZM_FEATURES`).
    """
    m = np.asarray(matrix)
    if m.ndim != 2:
        raise InputError("matrix", f"expected an (Ng, J) matrix, got shape {m.shape}")
    return _pyradiomics_values(m, np.arange(1, m.shape[-1] + 1))


def _pyradiomics_values(m: npt.NDArray[np.integer], j: IntArray) -> dict[str, float]:
    values = length_matrix_features(m, lengths=j, entropy_eps=float(np.spacing(1)))
    return {_PYRADIOMICS_NAMES[name]: float(value) for name, value in values.items()}


def pyradiomics_glszm(
    levels: npt.NDArray[np.integer], *, force2D: bool = False, force2Ddimension: int = 0
) -> dict[str, float]:
    """GLSZM features as PyRadiomics 3.0.1 ``RadiomicsGLSZM`` computes them.

    Parameters
    ----------
    levels : ndarray of int, shape (z, y, x)
        PyRadiomics-discretised grey levels (``binImage``, starting at 1) inside the ROI and
        0 outside, cropped to the ROI bounding box.
    force2D, force2Ddimension
        PyRadiomics settings; see :func:`pyradiomics_glszm_matrix`.

    Returns
    -------
    dict of str to float
        The 16 default features keyed by PyRadiomics name (``"SmallAreaEmphasis"``, ...).

    Examples
    --------
    >>> levels = np.array([[[1, 1], [2, 2]]])
    >>> pyradiomics_glszm(levels)["ZonePercentage"]
    0.5
    """
    arr = check_levels(levels, None, require_roi=True)
    fixed = _check_force2d(force2D, force2Ddimension)
    _pyradiomics_angles(arr.shape, fixed)  # PyRadiomics fails without a neighbour direction
    ng = int(arr.max())
    lv, sizes, _ = _zones(arr, ng, fixed_axis=fixed)
    j, (cols,) = _compact_columns([sizes])  # the zone sizes that occur only
    return _pyradiomics_values(_bin_zones(lv, cols, None, 1, ng, j.size)[0], j)
