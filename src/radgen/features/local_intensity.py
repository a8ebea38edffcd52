"""Local intensity features (IBSI 3.2): local and global intensity peak.

Pure NumPy/SciPy kernels on an image (z, y, x) with an ROI mask and spacing (z, y, x) in mm.

The peak at a voxel is the mean intensity over the voxels whose centres lie within
``r = (3 / (4 pi) * 1000 mm^3)^(1/3) = 6.2035 mm`` of its centre (a sphere of 1 cm^3), taken
from the whole image, not only the ROI. Sphere voxels that fall outside the image array are
left out of the mean (as the IBSI digital phantom reference values require).

Notes
-----
Caller margin: the sphere reaches ``floor(r / s_a)`` voxels along axis ``a`` (``s_a`` the
spacing), so the image passed in must keep at least ``local_intensity_margin(spacing)`` voxels
of the original image around the ROI bounding box along each axis, wherever the original image
has them; where it stops earlier, the sphere is clipped exactly as at the original image's edge.

Chunking (Dask): the global peak is a maximum over ROI voxels, so it combines over chunks by
``max`` when each chunk carries a halo of ``local_intensity_margin(spacing)`` voxels; the local
peak needs the ROI maximum first (a ``max`` reduction), then the spheres around its voxels.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from scipy import signal

from radgen.errors import EmptyRoiError, InputError

__all__ = ["PEAK_RADIUS_MM", "local_intensity", "local_intensity_margin"]

FloatArray = npt.NDArray[np.float64]

#: Radius (mm) of a sphere of volume 1 cm^3: ``(3000 / (4 pi))^(1/3)``.
PEAK_RADIUS_MM = (3000.0 / (4.0 * math.pi)) ** (1.0 / 3.0)


def _spacing(spacing: npt.ArrayLike) -> FloatArray:
    s = np.asarray(spacing, dtype=np.float64).ravel()
    if s.size != 3 or not np.all(np.isfinite(s)) or not np.all(s > 0):
        raise InputError("spacing", f"expected 3 positive finite values, got {s.tolist()}")
    return s


def local_intensity_margin(spacing: npt.ArrayLike) -> tuple[int, int, int]:
    """Voxels of image the caller must keep around the ROI bounding box, per axis (z, y, x).

    Examples
    --------
    >>> local_intensity_margin((2.0, 0.5, 0.5))
    (3, 12, 12)
    """
    s = _spacing(spacing)
    z, y, x = (math.floor(PEAK_RADIUS_MM / float(v)) for v in s)
    return z, y, x


def _offsets(s: FloatArray) -> npt.NDArray[np.intp]:
    """Voxel offsets (k, 3) whose centres lie within the peak sphere."""
    half = local_intensity_margin(s)
    grids = np.meshgrid(*(np.arange(-h, h + 1) for h in half), indexing="ij")
    off = np.stack([g.ravel() for g in grids], axis=1)
    inside = np.sum((off * s) ** 2, axis=1) <= PEAK_RADIUS_MM**2
    kept: npt.NDArray[np.intp] = off[inside].astype(np.intp)
    return kept


def _exact_means(
    image: FloatArray, centres: npt.NDArray[np.intp], offsets: npt.NDArray[np.intp]
) -> FloatArray:
    """Sphere means at `centres` (c, 3), summing the voxels directly (no FFT rounding)."""
    pos = centres[:, None, :] + offsets[None, :, :]
    ok = np.all((pos >= 0) & (pos < np.array(image.shape)), axis=2)
    vals = np.where(ok, image[tuple(np.where(ok[..., None], pos, 0).transpose(2, 0, 1))], 0.0)
    means: FloatArray = vals.sum(axis=1) / ok.sum(axis=1)
    return means


def local_intensity(
    image: npt.ArrayLike, mask: npt.ArrayLike, spacing: npt.ArrayLike
) -> dict[str, float]:
    """IBSI local intensity features (family ``loc``, 2 features).

    Parameters
    ----------
    image : array_like, shape (z, y, x)
        Intensities (not discretised), with a margin around the ROI (see the module Notes and
        :func:`local_intensity_margin`).
    mask : array_like of bool, same shape
        The ROI (IBSI intensity mask).
    spacing : sequence of 3 float
        Voxel spacing (z, y, x) in mm.

    Returns
    -------
    dict of str to float
        ``loc.peak.local``: the sphere mean ``mean_{|r_j - r_k| <= 6.2035 mm} X_j`` centred on
        the ROI voxel(s) of maximum intensity (the largest of them when several share the
        maximum). ``loc.peak.global``: the largest sphere mean over all ROI voxels.

    Raises
    ------
    EmptyRoiError
        If the mask selects no voxel.
    InputError
        If shapes disagree, the image holds NaN, or the spacing is invalid.

    Notes
    -----
    Sphere sums are computed for the whole ROI with one FFT convolution; the voxels within
    ``1e-9`` (relative) of the largest mean are then summed again directly, so the returned
    values carry no FFT rounding.

    Examples
    --------
    >>> img = np.zeros((3, 3, 3)); img[1, 1, 1] = 27.0
    >>> local_intensity(img, img > 0, (10.0, 10.0, 10.0))["loc.peak.local"]
    27.0
    """
    s = _spacing(spacing)
    img = np.asarray(image, dtype=np.float64)
    m = np.asarray(mask, dtype=bool)
    if img.ndim != 3 or m.shape != img.shape:
        raise InputError("mask", f"image {img.shape} and mask {m.shape} must be equal 3-D shapes")
    if not m.any():
        raise EmptyRoiError("mask", "the ROI has no voxel")
    if not np.all(np.isfinite(img)):
        raise InputError("image", "the image holds NaN or infinite values")
    offsets = _offsets(s)
    # Work on the ROI bounding box plus the sphere's reach only.
    half = np.array(local_intensity_margin(s))
    idx = np.nonzero(m)
    lo = np.maximum([int(i.min()) for i in idx] - half, 0)
    hi = np.minimum([int(i.max()) + 1 for i in idx] + half, img.shape)
    box = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
    sub, msub = img[box], m[box]

    roi = np.argwhere(msub)
    values = sub[msub]
    top = roi[values == values.max()]
    local = float(np.max(_exact_means(sub, top, offsets)))

    kernel = np.zeros(tuple(2 * h + 1 for h in half))
    kernel[tuple((offsets + half).T)] = 1.0
    sums = signal.fftconvolve(sub, kernel, mode="same")
    if np.all(lo + half <= [int(i.min()) for i in idx]) and np.all(
        hi - half >= [int(i.max()) + 1 for i in idx]
    ):
        counts = float(len(offsets))  # no sphere around an ROI voxel leaves the image
        approx = sums[msub] / counts
    else:
        clipped = signal.fftconvolve(np.ones(sub.shape), kernel, mode="same")
        approx = sums[msub] / np.rint(clipped[msub])
    scale = float(np.max(np.abs(sub))) if sub.size else 0.0
    near = approx >= approx.max() - 1e-9 * max(scale, 1e-300)
    glob = float(np.max(_exact_means(sub, roi[near], offsets)))
    return {"loc.peak.local": local, "loc.peak.global": glob}
