"""Grey level distance zone matrix (GLDZM, IBSI 3.9).

A zone is a connected group of ROI voxels of equal grey level (26-connected in 3D,
8-connected in the axial plane in 2D). Its distance is the smallest distance to the ROI edge
among its voxels, where the distance of a voxel is the number of face-connected steps
(6-connected in 3D, 4-connected in 2D) to the nearest voxel outside the ROI, so a voxel on
the edge has distance 1. The ROI of the distance map is the morphological mask
``levels > 0``, and everything outside the array counts as outside the ROI.

Pure NumPy/SciPy: ``scipy.ndimage.distance_transform_cdt`` (taxicab metric) for the distance
map, ``scipy.ndimage.label`` once per grey level for the zones.

Chunked computation: the GLDZM is **not** additive over chunks. A zone can cross a chunk
border and the distance map needs the whole ROI (a halo would have to reach the deepest
voxel), so compute it on the whole ROI bounding box.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from radgen.features.texture_ngldm import _check_levels

__all__ = ["distance_map", "gldzm_features", "gldzm_matrix", "ibsi_gldzm"]

#: IBSI GLDZM tags in reference-table order.
IBSI_TAGS = (
    "dzm.sde",
    "dzm.lde",
    "dzm.lgze",
    "dzm.hgze",
    "dzm.sdlge",
    "dzm.sdhge",
    "dzm.ldlge",
    "dzm.ldhge",
    "dzm.glnu",
    "dzm.glnu.norm",
    "dzm.zdnu",
    "dzm.zdnu.norm",
    "dzm.z.perc",
    "dzm.gl.var",
    "dzm.zd.var",
    "dzm.zd.entr",
)


def _structure(connectivity: int, two_d: bool) -> npt.NDArray[np.bool_]:
    """3x3x3 structuring element; in 2D the z neighbours are removed."""
    st = np.asarray(ndimage.generate_binary_structure(3, connectivity), dtype=bool)
    if two_d:
        st[0] = False
        st[2] = False
    return st


def distance_map(roi: npt.ArrayLike, *, two_d: bool = False) -> npt.NDArray[np.int64]:
    """Distance of every ROI voxel to the ROI edge (IBSI 3.9), 0 outside the ROI.

    The number of face-connected steps (6-connected, or 4-connected in the axial plane when
    `two_d`) to the nearest voxel outside the ROI; the array is padded with voxels outside
    the ROI, so an edge voxel has distance 1.

    Parameters
    ----------
    roi : array_like of bool, shape (z, y, x)
        The morphological ROI mask.
    two_d : bool
        Distances within each axial slice.

    Returns
    -------
    ndarray of int64
        Same shape as `roi`.

    Examples
    --------
    >>> distance_map(np.ones((1, 3, 5), dtype=bool), two_d=True)[0].tolist()
    [[1, 1, 1, 1, 1], [1, 2, 2, 2, 1], [1, 1, 1, 1, 1]]
    """
    mask = np.asarray(roi, dtype=bool)
    padded = np.pad(mask, 1)
    dist = ndimage.distance_transform_cdt(padded, metric=_structure(1, two_d))
    out = np.asarray(dist, dtype=np.int64)[1:-1, 1:-1, 1:-1]
    out[~mask] = 0
    return out


def _zones(
    levels: npt.NDArray[np.integer[Any]], dist: npt.NDArray[np.int64], two_d: bool
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Grey level, distance and slice of every zone.

    The ROI voxels are sorted by grey level once, so each level's labelling is read back at
    that level's voxels only.
    """
    structure = _structure(3, two_d)
    flat = levels.ravel()
    roi = np.flatnonzero(flat)
    order = roi[np.argsort(flat[roi], kind="stable")]
    grey = flat[order]
    present, starts = np.unique(grey, return_index=True)
    ends = np.append(starts[1:], grey.size)
    dist_sorted = dist.ravel()[order]
    z_sorted = order // (levels.shape[1] * levels.shape[2])
    gl_parts: list[npt.NDArray[np.int64]] = []
    d_parts: list[npt.NDArray[np.int64]] = []
    z_parts: list[npt.NDArray[np.int64]] = []
    for g, lo, hi in zip(present.tolist(), starts.tolist(), ends.tolist(), strict=True):
        lab, n = ndimage.label(levels == g, structure=structure)
        n = int(n)
        ids = np.asarray(lab).ravel()[order[lo:hi]] - 1
        dmin = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
        np.minimum.at(dmin, ids, dist_sorted[lo:hi])
        zone_z = np.empty(n, dtype=np.int64)
        zone_z[ids] = z_sorted[lo:hi]
        gl_parts.append(np.full(n, g, dtype=np.int64))
        d_parts.append(dmin)
        z_parts.append(zone_z)
    return np.concatenate(gl_parts), np.concatenate(d_parts), np.concatenate(z_parts)


def gldzm_matrix(
    levels: npt.NDArray[np.integer[Any]], ng: int, *, two_d: bool = False
) -> npt.NDArray[np.float64]:
    """Grey level distance zone matrix (IBSI 3.9).

    ``x(i, d)`` counts the zones of grey level ``i`` whose smallest distance to the ROI edge
    is ``d``.

    Parameters
    ----------
    levels : ndarray of int, shape (z, y, x)
        Grey levels ``1..ng`` inside the ROI, 0 outside, cropped to the ROI bounding box.
    ng : int
        Number of grey levels after discretisation; the matrix has `ng` rows.
    two_d : bool
        Zones (8-connected) and distances (4-connected) within each axial slice; one matrix
        per slice.

    Returns
    -------
    ndarray of float64
        Shape ``(ng, d_max)`` in 3D, ``(n_slices, ng, d_max)`` when `two_d` (the 2.5D merged
        matrix is the sum over axis 0), with ``d_max`` the largest zone distance. Column
        ``d - 1`` holds distance ``d``.

    Notes
    -----
    Not additive over chunks: zones and the distance map need the whole ROI.

    Examples
    --------
    >>> gldzm_matrix(np.array([[[1, 1, 2]]]), 2).tolist()
    [[1.0], [1.0]]
    """
    arr = _check_levels(levels, ng)
    dist = distance_map(arr > 0, two_d=two_d)
    gl, dz, zz = _zones(arr, dist, two_d)
    dmax = int(dz.max())
    nslice = arr.shape[0] if two_d else 1
    idx = ((zz * ng if two_d else 0) + gl - 1) * dmax + dz - 1
    counts = np.bincount(idx, minlength=nslice * ng * dmax).astype(np.float64)
    return counts.reshape((nslice, ng, dmax) if two_d else (ng, dmax))


def gldzm_features(matrix: npt.ArrayLike, n_voxels: float) -> dict[str, float]:
    """The 16 IBSI GLDZM features of one matrix.

    With ``x(i, d)`` the matrix, ``N_s = sum x`` zones, ``p = x / N_s``, ``x_i. = sum_d x``
    and ``x_.d = sum_i x``:

    - ``dzm.sde = sum p / d^2``, ``dzm.lde = sum p d^2``
    - ``dzm.lgze = sum p / i^2``, ``dzm.hgze = sum p i^2``
    - ``dzm.sdlge``, ``dzm.sdhge``, ``dzm.ldlge``, ``dzm.ldhge``: ``p / (i^2 d^2)``,
      ``p i^2 / d^2``, ``p d^2 / i^2``, ``p i^2 d^2`` summed
    - ``dzm.glnu = sum_i x_i.^2 / N_s`` (``.norm``: over ``N_s^2``), ``dzm.zdnu`` likewise
      with ``x_.d``
    - ``dzm.z.perc = N_s / N_v``
    - ``dzm.gl.var = sum p (i - mu_i)^2``, ``dzm.zd.var = sum p (d - mu_d)^2``
    - ``dzm.zd.entr = -sum p log2 p``

    Parameters
    ----------
    matrix : array_like, shape (ng, d_max)
        A GLDZM from :func:`gldzm_matrix`.
    n_voxels : float
        ``N_v``, the number of ROI voxels the matrix was computed from.

    Returns
    -------
    dict of str to float
        Keyed by IBSI tag. All NaN for an empty matrix.
    """
    x = np.asarray(matrix, dtype=np.float64)
    ns = float(x.sum())
    if ns <= 0:
        return dict.fromkeys(IBSI_TAGS, math.nan)
    i = np.arange(1, x.shape[0] + 1, dtype=np.float64)[:, None]
    d = np.arange(1, x.shape[1] + 1, dtype=np.float64)[None, :]
    p = x / ns
    xi = x.sum(axis=1)
    xd = x.sum(axis=0)
    mu_i = float(np.sum(p * i))
    mu_d = float(np.sum(p * d))
    nz = p[p > 0]
    return {
        "dzm.sde": float(np.sum(p / d**2)),
        "dzm.lde": float(np.sum(p * d**2)),
        "dzm.lgze": float(np.sum(p / i**2)),
        "dzm.hgze": float(np.sum(p * i**2)),
        "dzm.sdlge": float(np.sum(p / (i**2 * d**2))),
        "dzm.sdhge": float(np.sum(p * i**2 / d**2)),
        "dzm.ldlge": float(np.sum(p * d**2 / i**2)),
        "dzm.ldhge": float(np.sum(p * i**2 * d**2)),
        "dzm.glnu": float(np.sum(xi**2)) / ns,
        "dzm.glnu.norm": float(np.sum(xi**2)) / ns**2,
        "dzm.zdnu": float(np.sum(xd**2)) / ns,
        "dzm.zdnu.norm": float(np.sum(xd**2)) / ns**2,
        "dzm.z.perc": ns / float(n_voxels),
        "dzm.gl.var": float(np.sum(p * (i - mu_i) ** 2)),
        "dzm.zd.var": float(np.sum(p * (d - mu_d) ** 2)),
        "dzm.zd.entr": float(-np.sum(nz * np.log2(nz))),
    }


def ibsi_gldzm(levels: npt.NDArray[np.integer[Any]], ng: int) -> dict[str, float]:
    """IBSI GLDZM features for the 2D, 2.5D and 3D aggregations.

    - ``[2D]``: zones and distances per axial slice, features averaged over the slices that
      hold ROI voxels (``N_v`` = the slice's ROI voxels);
    - ``[2.5D]``: the per-slice matrices summed, ``N_v`` = all ROI voxels;
    - ``[3D]``: 26-connected zones, 6-connected distances.

    Parameters
    ----------
    levels : ndarray of int, shape (z, y, x)
        Grey levels ``1..ng`` inside the ROI, 0 outside, cropped to the ROI bounding box.
    ng : int
        Number of grey levels after discretisation.

    Returns
    -------
    dict of str to float
        ``"<tag> [<aggregation>]"``, e.g. ``"dzm.sde [3D]"``: 16 features x 3 aggregations.

    References
    ----------
    Zwanenburg A. et al., The Image Biomarker Standardisation Initiative, arXiv:1612.07003,
    section 3.9.
    """
    slices = gldzm_matrix(levels, ng, two_d=True)
    nv_slice = np.count_nonzero(np.asarray(levels) > 0, axis=(1, 2))
    per_slice = [gldzm_features(m, nv) for m, nv in zip(slices, nv_slice, strict=True) if nv > 0]
    nv = float(nv_slice.sum())
    out: dict[str, float] = {}
    for tag in IBSI_TAGS:
        out[f"{tag} [2D]"] = float(np.mean([f[tag] for f in per_slice]))
    for tag, value in gldzm_features(slices.sum(axis=0), nv).items():
        out[f"{tag} [2.5D]"] = value
    for tag, value in gldzm_features(gldzm_matrix(levels, ng), nv).items():
        out[f"{tag} [3D]"] = value
    return out
