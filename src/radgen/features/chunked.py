"""IBSI features of one very large ROI from Dask arrays, slab by slab: :func:`extract_chunked`.

Same keys and values as :func:`radgen.features.extract` with the ``ibsi`` convention, computed
so that no task holds more than one z-slab (plus its halo) of float intensities. The volume is
cropped exactly as ``extract`` crops it (ROI bounding box plus the margin of the filters and
of the local-intensity sphere) and cut into slabs of ``slab`` whole slices aligned on the ROI
bounding box.

Passes (each one ``dask.compute``; Zarr chunks are read again and filters recomputed in each)
----------------------------------------------------------------------------------------------
1. The mask: per-axis projections of ``mask == label`` give the ROI bounding box.
2. The original image on the crop: non-finite ROI intensities, the re-segmented voxel count
   (and with ``normalizeWithinROI`` the ROI values, see below).
3. Morphology, then local intensity (original image only), when enabled.
4. For every image type: statistics of the intensity-mask values (count, min, max, finite,
   integral), which fix the discretisation; then one pass for the histograms, the texture
   matrices and the zone/run chains.

What is exact and what is not
-----------------------------
* Bit-identical to ``extract``: the filtered intensities (LoG: ``da.map_overlap`` of
  ``scipy.ndimage.gaussian_laplace`` with a z halo of the kernel radius, mirror only at the
  true image border, as ``dask_image.ndfilters.gaussian_laplace`` does but without its
  overlap of the unchunked y and x axes, which fails when the radius exceeds their size;
  wavelets: ``ibsi_wavelet`` on each slab with a halo of the filter support), hence the grey
  levels; every integer texture matrix (GLCM, NGLDM, GLRLM, GLSZM, GLDZM counts); the
  intensity histogram and IVH; min, max, percentiles, median and range; the local intensity
  peaks; the mesh vertices, hence diameter, hull, OMBB and MVEE densities.
* Equal to rounding (well within 1e-9 relative; the summation order differs): moments, mean
  absolute deviations and energy (from the value histogram of an integer-valued image, or
  block sums over the sorted ROI values of any other), NGTDM ``s_i`` sums, per-slice
  texture features averaged, mesh area and volume, PCA axes (from exact integer coordinate
  moments), centre of mass, integrated intensity, Moran's I and Geary's C (FFT over pairs of
  slabs instead of the whole box). Values that cancel to about zero agree to an absolute
  1e-9, not relatively.
* Where ``extract`` reports rounding noise, so do these, differently: with
  ``normalizeWithinROI`` the ROI mean is zero up to rounding (unless re-segmentation drops
  voxels), and ``stat.cov`` and ``morph.com`` divide by it. For a planar or linear ROI the smallest PCA
  eigenvalues are exactly 0 here (the integer scatter matrix has that rank), while
  ``extract`` gets 0 or about 1e-16 mm^2 (``morph.pca.least`` 0 or 1e-8 mm, the AEE
  densities NaN or huge).

What holds more than one slab, and per-task memory
---------------------------------------------------
==================================  ==============================================================
where                               bytes
==================================  ==============================================================
a slab task                         the float64 slab with its halo (8 B/voxel), and inside the
                                    texture kernels of ``texture_*`` their int64 copies and
                                    padded buffers: about 100 B per slab voxel at the peak
grey levels of the ROI box          1 B/voxel (``ng <= 255``), 2 B (``<= 65535``), else 4 B; a
                                    slab each, but Dask keeps every slab's levels until the
                                    sequential GLRLM/zone chains have consumed it: at worst the
                                    whole ROI box at that size (never the float image)
ROI values of a non-integer image   8 B per intensity-mask voxel (float64), gathered for the
(filters always; ``normalizeWith-   percentiles, one image type at a time; an integer-valued image
inROI`` once for the mean and SD)   (integer dtype, or floats that are all integers, range below
                                    4 M values) is summarised by a histogram of its values
mesh vertices                       24 B per surface vertex (int64 keys) gathered to the client,
                                    reduced per slab to its convex-hull vertices above
                                    :data:`HULL_REDUCE_VERTICES`
open zones and runs                 per chain step: a few 2D (y, x) arrays and the zones touching
                                    the slab's top slice
Moran's I / Geary's C               each of the S (S + 1) / 2 slab-pair tasks holds two slabs and
                                    three complex FFT buffers of (2 slab) x 2 ny x (nx + 1):
                                    about 24 slabs of float64; time is quadratic in S. Leave
                                    ``morph.moran.i`` and ``morph.geary.c`` out of
                                    ``featureClass.shape`` for very large ROIs (``extract``
                                    needs the same FFT over the whole box at once)
==================================  ==============================================================

Every pass recomputes the filters: a wavelet level's 8 sub-bands come from one task per slab,
but the sub-bands are processed one at a time, two passes each, so the transform of a level
runs 16 times (the price of never holding a filtered image, or its ROI values, twice).

Texture matrices are accumulated per slab and summed: GLCM 3D counts of each slab extended by
the next slice minus those of that slice; NGTDM and NGLDM 3D with a one-slice halo and
``core``; 2D matrices of every family per slab (their per-slice features concatenated, the
2.5D sums added). GLRLM 3D runs along the 9 directions that cross slices, and the 3D zones of
the GLSZM and GLDZM, are followed slab by slab by a chain that carries the runs and zones open
at the slab's top slice (zones merged by connected components across the boundary; the 3D
distance to the ROI edge is the separable city-block transform: a per-slice 2D transform, then
forward and backward passes along z carrying one slice). ``glrlm_matrices_of_core`` is not
used: its halo reaches the end of the bounding box, which is the whole ROI for a long run.

Unsupported settings (``ConfigError`` naming the setting, so a caller can fall back to
``extract``): ``resampledPixelSpacing`` (resampling needs the whole grid) and the
``pyradiomics`` convention.
"""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dask
import dask.array as da
import numpy as np
import numpy.typing as npt

from radgen.errors import ConfigError, EmptyRoiError, InputError
from radgen.features.extract_ibsi import _TEXTURE, _select, ibsi_margin
from radgen.features.firstorder import coefficient_of_variation
from radgen.features.preprocess import as_spacing
from radgen.features.settings import Settings, load_settings

if TYPE_CHECKING:
    from radgen.platform.storage import Root

__all__ = ["HULL_REDUCE_VERTICES", "extract_chunked", "open_roi_arrays"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
Array = npt.NDArray[Any]

#: A slab with more mesh vertices than this sends only its convex-hull vertices to the client.
HULL_REDUCE_VERTICES = 200_000

#: Largest ``max - min + 1`` of an integer-valued image summarised by a value histogram; a wider
#: range gathers the ROI values instead.
_MAX_HISTOGRAM_BINS = 1 << 22

#: The 9 IBSI run directions (dz = 1, dy, dx) that cross slices, in ``DIRECTIONS_3D`` order.
_Z_DIRECTIONS: tuple[tuple[int, int], ...] = tuple(
    (dy, dx) for dy in (1, 0, -1) for dx in (1, 0, -1)
)
#: In-plane neighbour offsets (dy, dx) of 26-connectivity between two consecutive slices.
_PLANE_OFFSETS: tuple[tuple[int, int], ...] = tuple(
    (dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)
)


# ------------------------------------------------------------------------------------------
# public API


def open_roi_arrays(root: Root, image_rel: str, mask_rel: str) -> tuple[da.Array, da.Array]:
    """The image and mask volumes of a catalog as lazy Dask arrays (no voxel is read).

    Parameters
    ----------
    root : radgen.platform.storage.Root
        Catalog root.
    image_rel, mask_rel : str
        Zarr group paths relative to the root (``series.zarr_path``, ``rois.mask_path``);
        the groups hold arrays named ``image`` and ``mask``.

    Returns
    -------
    (image, mask) : tuple of dask.array.Array
        Chunked as stored. Slice them to :func:`radgen.features.extract.roi_region` before
        :func:`extract_chunked` so that only the ROI's region is ever read.

    Raises
    ------
    NotFoundError
        A group does not exist.
    """
    import zarr

    from radgen.errors import NotFoundError
    from radgen.platform.volumes import volume_exists, zarr_store

    out = []
    for rel, name in ((image_rel, "image"), (mask_rel, "mask")):
        if not volume_exists(root, rel):
            raise NotFoundError(root.uri(rel), "no such volume in this catalog")
        group = zarr.open_group(zarr_store(root, rel), mode="r", zarr_format=3)
        out.append(da.from_zarr(group[name]))
    return out[0], out[1]


def extract_chunked(
    image: Any,
    mask: Any,
    spacing: Sequence[float],
    settings: Settings | Mapping[str, Any] | str | Path | None = None,
    *,
    slab: int = 64,
    scheduler: str | None = None,
) -> dict[str, float]:
    """IBSI features of one ROI held in Dask arrays, computed slab by slab.

    Parameters
    ----------
    image : dask.array.Array or array_like, shape (z, y, x)
        Intensities, any real dtype, any chunking (e.g. ``da.from_zarr``).
    mask : dask.array.Array or array_like, shape (z, y, x)
        ROI where ``mask == label`` (setting ``label``).
    spacing : sequence of 3 floats
        Voxel size (z, y, x) in mm.
    settings : Settings, mapping, path to YAML, or None
        As :func:`radgen.features.extract`; the ``ibsi`` convention only.
    slab : int, default 64
        Slices per slab: the most any task holds of float intensities, plus its halo (a LoG
        kernel radius longer than a slab makes Dask merge slabs up to the radius).
    scheduler : str, optional
        Passed to ``dask.compute`` (``"threads"``, ``"sync"``, ...); by default the active
        scheduler (a ``distributed.Client`` if one is set as default).

    Returns
    -------
    dict of str to float
        The keys and values of ``extract(np.asarray(image), np.asarray(mask), spacing,
        settings)`` (see the module docstring for what is exact and what equal to rounding).

    Raises
    ------
    ConfigError
        Settings the chunked path does not support (``resampledPixelSpacing``, the
        ``pyradiomics`` convention), a bad `slab`, or invalid settings.
    EmptyRoiError, InputError
        As :func:`radgen.features.extract`.

    Examples
    --------
    >>> import dask.array as da
    >>> img = da.arange(4 * 3 * 3, chunks=2).reshape(4, 3, 3).astype("int16")
    >>> mask = da.ones((4, 3, 3), dtype="uint8", chunks=(2, 3, 3))
    >>> cfg = {"featureClass": {"firstorder": ["stat.mean"], "glcm": ["cm.contrast"]}}
    >>> out = extract_chunked(img, mask, (1.0, 1.0, 1.0), cfg, slab=2, scheduler="sync")
    >>> out["stat.mean"], round(out["cm.contrast [3D, merged]"], 6)
    (17.5, 0.242291)
    >>> from radgen.features import extract
    >>> out == extract(img.compute(), mask.compute(), (1.0, 1.0, 1.0), cfg)
    True
    """
    cfg = load_settings(settings)
    sp = as_spacing(spacing)
    if cfg.convention != "ibsi":
        raise ConfigError("convention", "the chunked path computes the ibsi convention only")
    if cfg.setting.resampled_pixel_spacing is not None:
        raise ConfigError(
            "setting.resampledPixelSpacing",
            "resampling needs the whole grid; not supported by the chunked path",
        )
    if isinstance(slab, bool) or int(slab) != slab or slab < 1:
        raise ConfigError("slab", f"must be a positive number of slices, got {slab!r}")
    img, msk = _as_dask(image, "image"), _as_dask(mask, "mask")
    if img.ndim != 3:
        raise InputError("image", f"expected a 3D (z, y, x) array, got {img.ndim} dimension(s)")
    if img.shape != msk.shape:
        raise InputError("mask", f"mask shape {msk.shape} differs from image shape {img.shape}")
    if not (np.issubdtype(img.dtype, np.integer) or np.issubdtype(img.dtype, np.floating)):
        raise InputError("image", f"expected real intensities, got dtype {img.dtype}")
    run = _Runner(cfg, sp, int(slab), scheduler)
    return run.extract(img, msk)


def _as_dask(arr: Any, name: str) -> da.Array:
    if isinstance(arr, da.Array):
        return arr
    data = np.asarray(arr)
    if data.ndim != 3:
        raise InputError(name, f"expected a 3D (z, y, x) array, got {data.ndim} dimension(s)")
    return da.from_array(data, chunks=(max(1, min(64, data.shape[0])), -1, -1))


# ------------------------------------------------------------------------------------------
# geometry


@dataclass(frozen=True)
class _Plan:
    """Where the crop lies in the volume, where the ROI box lies in the crop, and the slabs."""

    crop: tuple[slice, slice, slice]  # absolute
    box: tuple[slice, slice, slice]  # ROI bounding box, crop coordinates
    crop_chunks: tuple[int, ...]  # z chunk sizes of the crop (cuts aligned on box + k slab)
    slabs: tuple[tuple[int, int], ...]  # [start, stop) of each slab, box coordinates

    @property
    def box_shape(self) -> tuple[int, int, int]:
        z, y, x = (b.stop - b.start for b in self.box)
        return z, y, x

    @property
    def box_chunks(self) -> tuple[int, ...]:
        return tuple(b - a for a, b in self.slabs)


def _plan(
    bbox: tuple[slice, slice, slice], margin: Sequence[int], shape: Sequence[int], slab: int
) -> _Plan:
    crop = tuple(
        slice(max(b.start - m, 0), min(b.stop + m, n))
        for b, m, n in zip(bbox, margin, shape, strict=True)
    )
    box = tuple(slice(b.start - c.start, b.stop - c.start) for b, c in zip(bbox, crop, strict=True))
    nz = crop[0].stop - crop[0].start
    b0, b1 = box[0].start, box[0].stop
    cuts = sorted({0, nz, *(p for p in range(b0 % slab, nz, slab) if 0 < p < nz)})
    crop_chunks = tuple(b - a for a, b in itertools.pairwise(cuts))
    starts = list(range(0, b1 - b0, slab))
    slabs = tuple((s, min(s + slab, b1 - b0)) for s in starts)
    return _Plan((crop[0], crop[1], crop[2]), (box[0], box[1], box[2]), crop_chunks, slabs)


def _delayed_blocks(arr: da.Array) -> list[Any]:
    """The Delayed blocks of an array chunked along z only, in z order."""
    blocks = arr.to_delayed()
    return [blocks[k, 0, 0] for k in range(blocks.shape[0])]


# ------------------------------------------------------------------------------------------
# histograms: first-order statistics, intensity histogram and IVH from value counts

_PERCENTILES = np.true_divide(np.array([10, 25, 50, 75, 90]), 100)


#: Values per block when summing over a sample (bounds the temporaries to a few MiB).
_BLOCK = 1 << 20


@dataclass(frozen=True)
class _Sample:
    """A sample as ascending values with multiplicities (None: each value once).

    A histogram (integer intensities, grey levels) or the sorted ROI values of a non-integer
    image; every sum runs over blocks of :data:`_BLOCK` values, so no temporary is as large
    as the sample.
    """

    values: FloatArray
    counts: IntArray | None = None

    @classmethod
    def histogram(cls, values: FloatArray, counts: IntArray) -> _Sample:
        keep = counts > 0
        return cls(np.asarray(values[keep], dtype=np.float64), counts[keep].astype(np.int64))

    @property
    def n(self) -> int:
        return self.values.size if self.counts is None else int(self.counts.sum())

    def order_stat(self, k: IntArray) -> FloatArray:
        """The values at 0-based positions `k` of the sorted sample."""
        if self.counts is None:
            picked: FloatArray = self.values[k]
            return picked
        out: FloatArray = self.values[np.searchsorted(np.cumsum(self.counts), k, side="right")]
        return out

    def between(self, low: float, high: float) -> tuple[int, int]:
        """Index range ``[i, j)`` of the values in ``[low, high]``."""
        i = int(np.searchsorted(self.values, low, side="left"))
        return i, int(np.searchsorted(self.values, high, side="right"))

    def count(self, i: int = 0, j: int | None = None) -> int:
        j = self.values.size if j is None else j
        return j - i if self.counts is None else int(self.counts[i:j].sum())

    def total(self, f: Callable[[FloatArray], Array], i: int = 0, j: int | None = None) -> float:
        """``sum f(x)`` over the voxels whose values are ``values[i:j]``."""
        j = self.values.size if j is None else j
        out = 0.0
        for a in range(i, j, _BLOCK):
            b = min(a + _BLOCK, j)
            fx = f(self.values[a:b])
            out += float(np.sum(fx if self.counts is None else fx * self.counts[a:b]))
        return out


def _percentiles(h: _Sample) -> FloatArray:
    """``np.percentile(x, [10, 25, 50, 75, 90])`` (linear) of the sample `h` describes."""
    n = h.n
    virtual = (n - 1) * _PERCENTILES
    previous = np.floor(virtual)
    nxt = previous + 1
    above = virtual >= n - 1
    previous[above] = -1
    nxt[above] = -1
    prev_i = previous.astype(np.intp)
    next_i = nxt.astype(np.intp)
    gamma = np.asarray(virtual - prev_i, dtype=np.float64)
    a = h.order_stat(np.where(prev_i < 0, n - 1, prev_i))
    b = h.order_stat(np.where(next_i < 0, n - 1, next_i))
    diff = b - a
    out: FloatArray = np.add(a, diff * gamma)
    np.subtract(b, diff * (1 - gamma), out=out, where=gamma >= 0.5)
    return out


def _dispersion(h: _Sample, prefix: str) -> dict[str, float]:
    """``radgen.features.firstorder._dispersion`` of a sample."""
    n = h.n
    mean = h.total(lambda v: v) / n
    var = h.total(lambda v: (v - mean) ** 2) / n
    if var <= 0.0 or var**2 == 0.0:
        skew, kurt = 0.0, 0.0
    else:
        skew = (h.total(lambda v: (v - mean) ** 3) / n) / var**1.5
        kurt = (h.total(lambda v: (v - mean) ** 4) / n) / var**2 - 3.0
    p10, p25, median, p75, p90 = (float(p) for p in _percentiles(h))
    i, j = h.between(p10, p90)
    rn = h.count(i, j)
    if rn:
        rmean = h.total(lambda v: v, i, j) / rn
        rmad = h.total(lambda v: np.abs(v - rmean), i, j) / rn
    else:
        rmad = math.nan
    lo, hi = float(h.values[0]), float(h.values[-1])
    out = {
        "mean": mean,
        "var": var,
        "skew": skew,
        "kurt": kurt,
        "median": median,
        "min": lo,
        "P10": p10,
        "P90": p90,
        "max": hi,
        "iqr": p75 - p25,
        "range": hi - lo,
        "mad": h.total(lambda v: np.abs(v - mean)) / n,
        "rmad": rmad,
        "medad": h.total(lambda v: np.abs(v - median)) / n,
        "cov": coefficient_of_variation(mean, var, n, max(abs(lo), abs(hi))),
        "qcod": (p75 - p25) / (p75 + p25) if (p75 + p25) != 0 else math.nan,
    }
    return {f"{prefix}.{k}": val for k, val in out.items()}


def _statistics(h: _Sample) -> dict[str, float]:
    """``intensity_statistics`` of the sample `h` describes."""
    out = _dispersion(h, "stat")
    energy = h.total(lambda v: v**2)
    out["stat.energy"] = energy
    out["stat.rms"] = math.sqrt(energy / h.n)
    return out


def _intensity_histogram(level_counts: IntArray) -> dict[str, float]:
    """``intensity_histogram`` from the voxel count of each grey level (index = level)."""
    present = np.flatnonzero(level_counts)
    top = int(present[-1])
    counts = level_counts[1 : top + 1].astype(np.float64)
    grey = np.arange(1, top + 1, dtype=np.float64)
    out = _dispersion(_Sample.histogram(grey, level_counts[1 : top + 1]), "ih")
    p = counts / counts.sum()
    modes = np.flatnonzero(counts == counts.max())
    out["ih.mode"] = float(grey[modes[np.argmin(np.abs(grey[modes] - out["ih.mean"]))]])
    nz = p[p > 0]
    out["ih.entropy"] = float(-np.sum(nz * np.log2(nz)))
    out["ih.uniformity"] = float(np.sum(p**2))
    grad = np.gradient(counts) if counts.size > 1 else np.zeros(1)
    out["ih.max.grad"] = float(grad.max())
    out["ih.max.grad.gl"] = float(grey[int(np.argmax(grad))])
    out["ih.min.grad"] = float(grad.min())
    out["ih.min.grad.gl"] = float(grey[int(np.argmin(grad))])
    return out


def _ivh_from(grid: _Sample, lo: float, hi: float, step: float) -> dict[str, float]:
    """``radgen.features.ivh.ivh`` once every voxel's value is on the grid (`grid`)."""
    n = grid.n
    if hi > lo:
        v10 = grid.total(lambda v: (v - lo) / (hi - lo) >= 0.1 - 1e-12) / n
        v90 = grid.total(lambda v: (v - lo) / (hi - lo) >= 0.9 - 1e-12) / n
    else:
        v10 = v90 = math.nan

    def intensity_at(fraction: float) -> float:
        allowed = math.floor(fraction * n + 1e-9)
        if allowed >= n:
            return lo
        t = float(grid.order_stat(np.array([n - 1 - allowed]))[0])
        k = math.floor((t - lo) / step + 1e-9) + 1
        return lo + k * step

    i10, i90 = intensity_at(0.1), intensity_at(0.9)
    return {
        "ivh.V10": v10,
        "ivh.V90": v90,
        "ivh.I10": i10,
        "ivh.I90": i90,
        "ivh.V10minusV90": v10 - v90,
        "ivh.I10minusI90": i10 - i90,
    }


# ------------------------------------------------------------------------------------------
# discretisation


@dataclass(frozen=True)
class _Stats:
    """What pass 1 learns about the intensity-mask values of one image type."""

    n: int
    low: float
    high: float
    finite: bool
    integral: bool


def _block_stats(values: Array, inside: Array) -> tuple[int, float, float, bool, bool]:
    x = np.asarray(values, dtype=np.float64)[np.asarray(inside, dtype=bool)]
    if x.size == 0:
        return 0, math.inf, -math.inf, True, True
    finite = bool(np.all(np.isfinite(x)))
    integral = finite and bool(np.all(x == np.round(x)))
    return int(x.size), float(x.min()), float(x.max()), finite, integral


def _merge_stats(parts: Sequence[tuple[int, float, float, bool, bool]]) -> _Stats:
    return _Stats(
        n=sum(p[0] for p in parts),
        low=min(p[1] for p in parts),
        high=max(p[2] for p in parts),
        finite=all(p[3] for p in parts),
        integral=all(p[4] for p in parts),
    )


@dataclass(frozen=True)
class _Binning:
    """Grey levels from global statistics, voxel by voxel as ``extract_ibsi._discretise``."""

    ng: int
    bin_count: int | None
    width: float
    low: float  # FBS lower bound, or FBN minimum
    high: float  # FBN maximum

    @classmethod
    def of(cls, settings: Settings, stats: _Stats) -> _Binning:
        from radgen.features.discretize import fixed_bin_size

        s = settings.setting
        if s.bin_count is not None:
            return cls(int(s.bin_count), int(s.bin_count), 0.0, stats.low, stats.high)
        assert s.bin_width is not None
        low = s.resegment_range[0] if s.resegment_range else stats.low
        top = fixed_bin_size(np.array([stats.high]), s.bin_width, min_bound=low)
        return cls(int(top[0]), None, float(s.bin_width), float(low), stats.high)

    @property
    def dtype(self) -> type[np.unsignedinteger[Any]]:
        for dtype in (np.uint8, np.uint16, np.uint32):
            if self.ng <= np.iinfo(dtype).max:
                return dtype
        return np.uint64

    def levels(self, x: FloatArray) -> IntArray:
        from radgen.features.discretize import fixed_bin_size

        if self.bin_count is None:
            return fixed_bin_size(x, self.width, min_bound=self.low)
        n, lo, hi = self.bin_count, self.low, self.high
        if hi == lo:
            return np.ones(x.shape, dtype=np.int64)
        levels = np.floor(n * (x - lo) / (hi - lo)).astype(np.int64) + 1
        return np.minimum(levels, int(n))

    def grid(self, values: Array, inside: Array) -> Array:
        """Grey levels on the block, 0 outside the intensity mask, in the smallest dtype."""
        m = np.asarray(inside, dtype=bool)
        out = np.zeros(m.shape, dtype=self.dtype)
        out[m] = self.levels(np.asarray(values, dtype=np.float64)[m])
        return out


# ------------------------------------------------------------------------------------------
# per-slab texture matrices (additive parts and per-slice features)


def _pad_to(a: Array, shape: Sequence[int]) -> Array:
    if tuple(a.shape) == tuple(shape):
        return a
    return np.pad(a, [(0, t - s) for s, t in zip(a.shape, shape, strict=True)])


@dataclass
class _Columns:
    """A matrix whose last axis holds the columns ``lengths`` (ascending), summed by column."""

    lengths: IntArray
    matrix: Array

    def __add__(self, other: _Columns) -> _Columns:
        union = np.union1d(self.lengths, other.lengths)
        out = np.zeros((*self.matrix.shape[:-1], union.size), dtype=np.result_type(self.matrix))
        out[..., np.searchsorted(union, self.lengths)] += self.matrix
        out[..., np.searchsorted(union, other.lengths)] += other.matrix
        return _Columns(union, out)


@dataclass
class _Parts:
    """Additive texture parts of consecutive slabs: ``sums`` add up, ``rows`` concatenate."""

    sums: dict[str, Any] = field(default_factory=dict)
    rows: dict[str, list[Array]] = field(default_factory=dict)

    def add(self, key: str, value: Any) -> None:
        if key not in self.sums:
            self.sums[key] = value
        elif isinstance(value, _Columns):
            self.sums[key] = self.sums[key] + value
        else:
            old = self.sums[key]
            shape = np.maximum(old.shape, value.shape)
            self.sums[key] = _pad_to(old, shape) + _pad_to(value, shape)

    def append(self, key: str, value: Array) -> None:
        self.rows.setdefault(key, []).append(value)

    def merge(self, other: _Parts) -> _Parts:
        out = _Parts(dict(self.sums), {k: list(v) for k, v in self.rows.items()})
        for key, value in other.sums.items():
            out.add(key, value)
        for key, values in other.rows.items():
            out.rows.setdefault(key, []).extend(values)
        return out

    def stacked(self, key: str, width: int) -> Array:
        values = self.rows.get(key, [])
        return np.concatenate(values) if values else np.zeros((0, width))


def _merge_parts(left: _Parts, right: _Parts) -> _Parts:
    return left.merge(right)


def _tree(items: list[Any], combine: Callable[[Any, Any], Any]) -> Any:
    """Pairwise (order-keeping) reduction of Delayed objects."""
    while len(items) > 1:
        nxt = [dask.delayed(combine)(a, b) for a, b in zip(items[::2], items[1::2], strict=False)]
        if len(items) % 2:
            nxt.append(items[-1])
        items = nxt
    return items[0]


def _slab_textures(block: Array, ng: int, classes: frozenset[str]) -> _Parts:
    """Texture parts of one slab; `block` has one slice of halo on each side (0 outside)."""
    from radgen.features import texture_glcm as glcm
    from radgen.features import texture_gldzm as gldzm
    from radgen.features import texture_glrlm as glrlm
    from radgen.features import texture_glszm as glszm
    from radgen.features import texture_ngldm as ngldm
    from radgen.features import texture_ngtdm as ngtdm

    parts = _Parts()
    core = block[1:-1]
    nb = core.shape[0]
    inner = (slice(1, nb + 1), slice(None), slice(None))
    any_core = bool(core.any())
    if "glcm" in classes:
        ext = block[1:]
        m3 = glcm.glcm_matrices(ext, ng) - glcm.glcm_matrices(block[-1:], ng)
        m2 = glcm.glcm_matrices(core, ng, two_d=True)  # (nb, 4, ng, ng)
        parts.add("glcm.3d", m3)
        parts.add("glcm.25d", m2.sum(axis=0))
        f_avg = glcm.glcm_features(m2, ng)
        f_merged = glcm.glcm_features(m2.sum(axis=1), ng)
        parts.append("glcm.2d.avg", np.stack([f_avg[t] for t in glcm.GLCM_TAGS], axis=-1))
        parts.append("glcm.2d.avg.has", m2.sum(axis=(-2, -1)) > 0)
        parts.append("glcm.2d.merged", np.stack([f_merged[t] for t in glcm.GLCM_TAGS], axis=-1))
        parts.append("glcm.2d.merged.has", m2.sum(axis=(-3, -2, -1)) > 0)
    if not any_core:
        return parts
    occupied = np.count_nonzero(core, axis=(1, 2)) > 0
    if "glrlm" in classes:
        m2 = glrlm.glrlm_matrices(core, ng, two_d=True)[occupied]  # (nz', 4, ng, L)
        parts.add("glrlm.25d", m2.sum(axis=0))
        f_avg = glrlm.length_matrix_features(m2)
        f_merged = glrlm.length_matrix_features(m2.sum(axis=1))
        parts.append("glrlm.2d.avg", np.stack(list(f_avg.values()), axis=-1))
        parts.append("glrlm.2d.merged", np.stack(list(f_merged.values()), axis=-1))
    if "glszm" in classes:
        lv, sizes, planes = glszm._zones(core.astype(np.int64), ng, fixed_axis=0)
        j2, (cols,) = glrlm._compact_columns([sizes])
        m2 = glszm._bin_zones(lv, cols, planes, nb, ng, j2.size)[occupied]
        parts.add("glszm.25d", _Columns(j2, m2.sum(axis=0)))
        f2 = glrlm.length_matrix_features(m2, lengths=j2)
        parts.append("glszm.2d", np.stack(list(f2.values()), axis=-1))
    if "gldzm" in classes:
        slices = gldzm.gldzm_matrix(core, ng, two_d=True)
        nv = np.count_nonzero(core, axis=(1, 2))
        rows = [
            [gldzm.gldzm_features(m, float(v))[t] for t in gldzm.IBSI_TAGS]
            for m, v in zip(slices, nv, strict=True)
            if v > 0
        ]
        parts.add("gldzm.25d", slices.sum(axis=0))
        parts.append("gldzm.2d", np.array(rows, dtype=np.float64).reshape(-1, 16))
    if "ngtdm" in classes:
        parts.add("ngtdm.3d", ngtdm.ngtdm_matrix(block, ng, core=inner))
        slices = ngtdm.ngtdm_matrix(core, ng, two_d=True)
        rows = [[ngtdm.ngtdm_features(m)[t] for t in ngtdm.IBSI_TAGS] for m in slices]
        parts.add("ngtdm.25d", slices.sum(axis=0))
        parts.append("ngtdm.2d", np.array(rows, dtype=np.float64).reshape(-1, 5))
    if "gldm" in classes:
        parts.add("ngldm.3d", ngldm.ngldm_matrix(block, ng, core=inner))
        slices = ngldm.ngldm_matrix(core, ng, two_d=True)
        rows = [
            [ngldm.ngldm_features(m)[t] for t in ngldm.IBSI_TAGS] for m in slices if m.sum() > 0
        ]
        parts.add("ngldm.25d", slices.sum(axis=0))
        parts.append("ngldm.2d", np.array(rows, dtype=np.float64).reshape(-1, 17))
    return parts


# ------------------------------------------------------------------------------------------
# chains: GLRLM runs across slices, 3D zones (GLSZM, GLDZM) and the distance to the ROI edge


def _shift(a: Array, dy: int, dx: int, fill: Any) -> Array:
    """``out[y, x] = a[y - dy, x - dx]``, `fill` where that falls outside."""
    ny, nx = a.shape
    out = np.full_like(a, fill)
    out[max(dy, 0) : ny + min(dy, 0), max(dx, 0) : nx + min(dx, 0)] = a[
        max(-dy, 0) : ny - max(dy, 0), max(-dx, 0) : nx - max(dx, 0)
    ]
    return out


class _KeyCounts:
    """Counts of integer keys, merged with ``np.unique`` (compact however large the keys)."""

    def __init__(self) -> None:
        self.keys = np.zeros(0, dtype=np.int64)
        self.counts = np.zeros(0, dtype=np.int64)

    def add(self, keys: IntArray, counts: IntArray | None = None) -> None:
        if keys.size == 0:
            return
        weights = np.ones(keys.size, dtype=np.int64) if counts is None else counts
        allk = np.concatenate([self.keys, keys.astype(np.int64)])
        allc = np.concatenate([self.counts, weights.astype(np.int64)])
        self.keys, inverse = np.unique(allk, return_inverse=True)
        self.counts = np.bincount(inverse, weights=allc).astype(np.int64)


#: Largest dense run accumulator (entries: 9 directions x ng x slices); beyond, runs are
#: counted by distinct (direction, level, length) keys.
_DENSE_RUNS = 1 << 24


@dataclass
class _RunChain:
    """Runs along the 9 slice-crossing directions, open at the last slice seen.

    Per slice and direction, a voxel continues the run of its predecessor ``v - d`` when both
    hold the same grey level; a run ends at a voxel of the previous slice whose successor does
    not continue it (and at the last slice of the box). Ended runs are binned at once.
    """

    ng: int
    width: int  # longest possible run: the number of slices of the box
    level: Array | None = None  # (ny, nx) grey levels of the last slice
    length: Array | None = None  # (9, ny, nx) length of the run ending there
    dense: IntArray | None = None  # (9 * ng * width) counts, when small enough
    sparse: _KeyCounts = field(default_factory=_KeyCounts)  # otherwise

    def _close(self, k: int, mask: BoolArray) -> None:
        assert self.level is not None
        assert self.length is not None
        lv = self.level[mask].astype(np.int64)
        ln = self.length[k][mask].astype(np.int64)
        key = (k * self.ng + lv - 1) * self.width + ln - 1
        size = 9 * self.ng * self.width
        if size <= _DENSE_RUNS:
            if self.dense is None:
                self.dense = np.zeros(size, dtype=np.int64)
            self.dense += np.bincount(key, minlength=size)
        else:
            uniq, counts = np.unique(key, return_counts=True)
            self.sparse.add(uniq, counts.astype(np.int64))

    def step(self, block: Array) -> _RunChain:
        dtype = np.int16 if self.width < np.iinfo(np.int16).max else np.int32
        for z in range(block.shape[0]):
            cur = block[z]
            inside = cur > 0
            if self.level is None or self.length is None:
                self.level = np.zeros_like(cur)
                self.length = np.zeros((len(_Z_DIRECTIONS), *cur.shape), dtype=dtype)
            new_length = np.empty_like(self.length)
            for k, (dy, dx) in enumerate(_Z_DIRECTIONS):
                cont = inside & (cur == _shift(self.level, dy, dx, 0))
                grown = _shift(self.length[k], dy, dx, 0)
                grown += 1
                new_length[k] = np.where(cont, grown, inside)
                self._close(k, (self.level > 0) & ~_shift(cont, -dy, -dx, False))
            self.level, self.length = cur, new_length
        return self

    def finish(self) -> IntArray:
        """(9, ng, width) run length matrices once every slice has been seen."""
        if self.level is not None:
            ended = self.level > 0
            for k in range(len(_Z_DIRECTIONS)):
                self._close(k, ended)
        out = np.zeros(9 * self.ng * self.width, dtype=np.int64)
        if self.dense is not None:
            out += self.dense
        out[self.sparse.keys] += self.sparse.counts
        return out.reshape(9, self.ng, self.width)


def _slice_distances(block: Array) -> IntArray:
    from radgen.features.texture_gldzm import distance_map

    return distance_map(np.asarray(block) > 0, two_d=True)


def _backward_step(block: Array, after: IntArray | None) -> IntArray:
    """Backward city-block pass along z: the distance bound at the slab's first slice."""
    d2 = _slice_distances(block)
    b = np.zeros(d2.shape[1:], dtype=np.int64) if after is None else after
    for z in range(d2.shape[0] - 1, -1, -1):
        b = np.minimum(d2[z], b + 1)
    return b


@dataclass
class _ZoneChain:
    """26-connected zones of equal grey level, merged across slabs; open ones carried."""

    ng: int
    distances: bool
    top_ids: IntArray | None = None  # (ny, nx) open zone of each voxel of the last slice, -1
    top_level: Array | None = None
    level: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    size: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    dmin: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    forward: IntArray | None = None  # forward distance bound at the last slice
    sizes: _KeyCounts = field(default_factory=_KeyCounts)  # size * (ng + 1) + level
    dists: _KeyCounts = field(default_factory=_KeyCounts)  # dmin * (ng + 1) + level

    def _distance(self, block: Array, after: IntArray | None) -> IntArray:
        """3D city-block distance to the ROI edge on the slab (0 outside the ROI)."""
        d = _slice_distances(block)
        f = np.zeros(d.shape[1:], dtype=np.int64) if self.forward is None else self.forward
        for z in range(d.shape[0]):
            f = np.minimum(d[z], f + 1)
            d[z] = f
        self.forward = f
        b = np.zeros(d.shape[1:], dtype=np.int64) if after is None else after
        for z in range(d.shape[0] - 1, -1, -1):
            b = np.minimum(d[z], b + 1)
            d[z] = b
        return d

    def step(self, block: Array, after: IntArray | None, last: bool) -> _ZoneChain:
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import connected_components
        from skimage.measure import label

        labels, n = label(block, background=0, connectivity=3, return_num=True)
        if self.distances:
            dist = self._distance(block, after)
        k = self.level.size
        if k + n == 0:
            self.top_ids = np.full(block.shape[1:], -1, dtype=np.int64)
            self.top_level = block[-1]
            return self
        flat = labels.ravel()
        size = np.bincount(flat, minlength=n + 1)[1:].astype(np.int64)
        level = np.zeros(n + 1, dtype=np.int64)
        level[flat] = block.ravel()
        dmin = np.zeros(n, dtype=np.int64)
        if self.distances:
            low = np.full(n + 1, np.iinfo(np.int64).max, dtype=np.int64)
            np.minimum.at(low, flat, dist.ravel())
            dmin = low[1:]
        heads: list[IntArray] = []
        tails: list[IntArray] = []
        if k and self.top_ids is not None and self.top_level is not None:
            for dy, dx in _PLANE_OFFSETS:
                ids = _shift(self.top_ids, dy, dx, -1)
                lv = _shift(self.top_level, dy, dx, 0)
                match = (lv > 0) & (lv == block[0])
                heads.append(ids[match])
                tails.append(labels[0][match] + k - 1)
        a = np.concatenate(heads) if heads else np.zeros(0, dtype=np.int64)
        b = np.concatenate(tails) if tails else np.zeros(0, dtype=np.int64)
        nodes = k + n
        graph = coo_matrix((np.ones(a.size, dtype=np.int8), (a, b)), shape=(nodes, nodes))
        ncc, cc = connected_components(graph, directed=False)
        all_size = np.concatenate([self.size, size])
        merged_size = np.zeros(ncc, dtype=np.int64)
        np.add.at(merged_size, cc, all_size)
        merged_level = np.zeros(ncc, dtype=np.int64)
        merged_level[cc] = np.concatenate([self.level, level[1:]])
        merged_dmin = np.full(ncc, np.iinfo(np.int64).max, dtype=np.int64)
        np.minimum.at(merged_dmin, cc, np.concatenate([self.dmin, dmin]))
        top = labels[-1]
        open_ = np.zeros(ncc, dtype=bool)
        if not last:
            open_[cc[top[top > 0] + k - 1]] = True
        closed = ~open_
        base = self.ng + 1
        self.sizes.add(merged_size[closed] * base + merged_level[closed])
        if self.distances:
            self.dists.add(merged_dmin[closed] * base + merged_level[closed])
        new_id = np.cumsum(open_) - 1
        ids = np.full(top.shape, -1, dtype=np.int64)
        ids[top > 0] = new_id[cc[top[top > 0] + k - 1]]
        self.top_ids, self.top_level = ids, block[-1]
        self.level = merged_level[open_]
        self.size = merged_size[open_]
        self.dmin = merged_dmin[open_]
        return self


def _run_step(chain: _RunChain, block: Array) -> _RunChain:
    # a copy: a task must not change its input (Dask may run it again after a worker loss)
    return copy.deepcopy(chain).step(block)


def _run_finish(chain: _RunChain) -> IntArray:
    return copy.deepcopy(chain).finish()


def _zone_step(chain: _ZoneChain, block: Array, after: IntArray | None, last: bool) -> _ZoneChain:
    return copy.deepcopy(chain).step(block, after, last)


# ------------------------------------------------------------------------------------------
# morphology


@dataclass
class _MorphParts:
    """Additive morphology sums of consecutive slabs (mesh, voxel moments, intensities)."""

    area: float = 0.0
    volume6: float = 0.0
    keys: list[list[IntArray]] = field(default_factory=lambda: [[], [], []])
    n: int = 0
    first: IntArray = field(default_factory=lambda: np.zeros(3, dtype=np.int64))
    second: IntArray = field(default_factory=lambda: np.zeros((3, 3), dtype=np.int64))
    n_int: int = 0
    x_sum: float = 0.0
    xr_sum: FloatArray = field(default_factory=lambda: np.zeros(3))

    def merge(self, other: _MorphParts) -> _MorphParts:
        return _MorphParts(
            self.area + other.area,
            self.volume6 + other.volume6,
            [a + b for a, b in zip(self.keys, other.keys, strict=True)],
            self.n + other.n,
            self.first + other.first,
            self.second + other.second,
            self.n_int + other.n_int,
            self.x_sum + other.x_sum,
            self.xr_sum + other.xr_sum,
        )


def _merge_morph(left: _MorphParts, right: _MorphParts) -> _MorphParts:
    return left.merge(right)


def _hull_candidates(keys: list[IntArray], spacing: FloatArray) -> list[IntArray]:
    """The keys of each axis that are vertices of the convex hull of all of them."""
    from scipy.spatial import ConvexHull, QhullError

    allk = np.concatenate(keys)
    if len(allk) <= HULL_REDUCE_VERTICES:
        return keys
    try:
        keep = np.zeros(len(allk), dtype=bool)
        keep[ConvexHull(allk * 0.5 * spacing).vertices] = True
    except QhullError:  # degenerate (flat) piece: keep all of it
        return keys
    out = []
    start = 0
    for k in keys:
        out.append(k[keep[start : start + len(k)]])
        start += len(k)
    return out


def _slab_morphology(
    roi: Array,
    image: Array,
    inside: Array,
    start: int,
    last: bool,
    spacing: FloatArray,
) -> _MorphParts:
    """Morphology parts of one slab; `roi` has one slice of halo on each side (0 outside).

    Cubes are those whose upper slice is in the slab (and, for the last slab, the cube above
    it); in-plane vertex edges those of the slab's own slices. Coordinates are in the padded
    frame of ``morphology._mesh`` (box start - 1), in half-voxel units for the vertex keys.
    """
    from radgen.features.morphology import _CORNERS, _config_terms

    core = np.asarray(roi[1:-1], dtype=bool)
    nb = core.shape[0]
    cubes = np.pad(np.asarray(roi[: nb + 1 + int(last)], dtype=np.uint8), ((0, 0), (1, 1), (1, 1)))
    mz, my, mx = (n - 1 for n in cubes.shape)
    config = np.zeros((mz, my, mx), dtype=np.uint8)
    for bit, (dz, dy, dx) in enumerate(_CORNERS):
        config |= cubes[dz : dz + mz, dy : dy + my, dx : dx + mx] << np.uint8(bit)
    flat = np.flatnonzero((config != 0) & (config != 255))
    cfg = config.ravel()[flat]
    flipped = cfg >= 128
    cfg = np.where(flipped, cfg ^ np.uint8(255), cfg).astype(np.intp)
    sign = np.where(flipped, -1.0, 1.0)
    idx = np.stack(np.unravel_index(flat, config.shape), axis=1)
    idx[:, 0] += start
    origin = idx * spacing
    area_c, det_c, normal_c = _config_terms(spacing)
    parts = _MorphParts()
    parts.area = float(np.sum(area_c[cfg]))
    parts.volume6 = float(np.sum(sign * (det_c[cfg] + np.sum(origin * normal_c[cfg], axis=1))))
    keys = []
    pz = cubes.astype(bool)
    k0 = np.argwhere(pz[:-1] != pz[1:]).astype(np.int64) * 2
    k0[:, 0] += 2 * start + 1
    keys.append(k0)
    own = np.pad(core, ((0, 0), (1, 1), (1, 1)))
    for axis in (1, 2):
        lo = [slice(None)] * 3
        hi = [slice(None)] * 3
        lo[axis] = slice(None, -1)
        hi[axis] = slice(1, None)
        kk = np.argwhere(own[tuple(lo)] != own[tuple(hi)]).astype(np.int64) * 2
        kk[:, 0] += 2 * (start + 1)
        kk[:, axis] += 1
        keys.append(kk)
    parts.keys = [[k] for k in _hull_candidates(keys, spacing)]
    coords = np.argwhere(core).astype(np.int64)
    coords[:, 0] += start
    parts.n = len(coords)
    parts.first = coords.sum(axis=0)
    parts.second = coords.T @ coords
    m = np.asarray(inside, dtype=bool)
    x = np.asarray(image, dtype=np.float64)[m]
    icoords = np.argwhere(m).astype(np.float64)
    icoords[:, 0] += start
    parts.n_int = int(x.size)
    parts.x_sum = float(x.sum())
    parts.xr_sum = (x[:, None] * (icoords * spacing)).sum(axis=0)
    return parts


def _moran_pair(
    dev_a: Array,
    in_a: Array,
    dev_b: Array,
    in_b: Array,
    offset: int,
    spacing: FloatArray,
) -> tuple[float, float, float, float]:
    """Inverse-distance pair sums between slab A and slab B (A at `offset` slices after B).

    With ``w = 1 / r`` and ``(w * f)`` the sum over B: ``<1_A, w * 1_B>``,
    ``<d_A, w * d_B>``, ``<d_A^2, w * 1_B>`` and ``<1_A, w * d_B^2>`` (the pair itself, at
    zero distance, weighs 0).
    """
    from scipy import fft as sfft

    na, ny, nx = dev_a.shape
    nb = dev_b.shape[0]
    size = [
        sfft.next_fast_len(na + nb - 1, real=True),
        sfft.next_fast_len(2 * ny - 1, real=True),
        sfft.next_fast_len(2 * nx - 1, real=True),
    ]
    grids = []
    for n_lo, n_hi, length, step, shift in (
        (nb, na, size[0], spacing[0], offset),
        (ny, ny, size[1], spacing[1], 0),
        (nx, nx, size[2], spacing[2], 0),
    ):
        k = np.arange(length)
        rel = np.where(k <= n_hi - 1, k, k - length).astype(np.float64)
        used = (k <= n_hi - 1) | (k >= length - (n_lo - 1))
        rel[~used] = np.nan
        grids.append((rel + shift) * step)
    gz, gy, gx = np.meshgrid(*grids, indexing="ij", sparse=True)
    r = np.sqrt(gz**2 + gy**2 + gx**2)
    kernel = np.zeros(r.shape)
    ok = np.isfinite(r) & (r > 0)
    kernel[ok] = 1.0 / r[ok]
    kf = sfft.rfftn(kernel, s=size)
    del kernel, r
    ia = np.asarray(in_a, dtype=bool)
    ib = np.asarray(in_b, dtype=bool)
    da_ = np.where(ia, dev_a, 0.0)
    db = np.where(ib, dev_b, 0.0)

    def conv(f: FloatArray) -> FloatArray:
        out: FloatArray = sfft.irfftn(sfft.rfftn(f, s=size) * kf, s=size)[:na, :ny, :nx]
        return out

    w1 = conv(ib.astype(np.float64))
    t_ab = float(np.sum(w1[ia]))
    q_ab = float(np.sum(da_[ia] ** 2 * w1[ia]))
    del w1
    c_ab = float(np.sum(da_[ia] * conv(db)[ia]))
    q_ba = float(np.sum(conv(db**2)[ia]))
    return t_ab, c_ab, q_ab, q_ba


# ------------------------------------------------------------------------------------------
# local intensity


def _local_block(
    image: Array, inside: Array, lo: int, hi: int, spacing: tuple[float, float, float]
) -> tuple[float, float, float] | None:
    """(largest ROI intensity, local peak, global peak) of the core ``[lo, hi)`` of a block."""
    from radgen.features.local_intensity import local_intensity

    core = np.zeros(inside.shape, dtype=bool)
    core[lo:hi] = np.asarray(inside[lo:hi], dtype=bool)
    if not core.any():
        return None
    img = np.asarray(image, dtype=np.float64)
    out = local_intensity(img, core, spacing)
    return float(img[core].max()), out["loc.peak.local"], out["loc.peak.global"]


# ------------------------------------------------------------------------------------------
# filters


def _log(image: da.Array, sigma: tuple[float, ...]) -> da.Array:
    """``scipy.ndimage.gaussian_laplace`` (mirror, 4 sigma) of a z-chunked array.

    As ``dask_image.ndfilters.gaussian_laplace``, but the overlap is only along z, the one
    chunked axis: dask-image overlaps every axis by the kernel radius and fails when that
    exceeds the in-plane size. The halo is the kernel radius; at the true border of the array
    scipy's mirror applies, so every voxel equals filtering the whole array.
    """
    import scipy.ndimage as ndi

    depth = int(4.0 * sigma[0] + 0.5)
    kwargs = {"sigma": sigma, "mode": "mirror", "truncate": 4.0}
    if depth >= image.shape[0]:
        whole = image.rechunk({0: -1})
        out: da.Array = whole.map_blocks(ndi.gaussian_laplace, dtype=np.float64, **kwargs)
        return out.rechunk({0: image.chunks[0]})
    depth_map = {0: depth, 1: 0, 2: 0}
    out = da.map_overlap(
        ndi.gaussian_laplace,
        image,
        depth=depth_map,
        boundary="none",
        dtype=np.float64,
        meta=np.array((), dtype=np.float64),
        **kwargs,
    )
    return out


def _wavelet_block(
    block: Array, lo: int, hi: int, box: tuple[slice, slice], wavelet: str, level: int
) -> Array:
    """The 8 sub-bands (sorted by name) of the core ``[lo, hi)`` of a block, on the ROI box."""
    from radgen.features.filters import ibsi_wavelet

    sel = np.zeros(block.shape, dtype=bool)
    sel[lo:hi, box[0], box[1]] = True
    bands = ibsi_wavelet(np.asarray(block, dtype=np.float64), sel, wavelet=wavelet, level=level)
    return np.stack([bands[k] for k in sorted(bands)])


# ------------------------------------------------------------------------------------------
# the runner


def _gather(values: Array, inside: Array) -> FloatArray:
    out: FloatArray = np.asarray(values, dtype=np.float64)[np.asarray(inside, dtype=bool)]
    return out


def _value_counts(values: Array, inside: Array, low: float, nbins: int) -> IntArray:
    x = np.asarray(values, dtype=np.float64)[np.asarray(inside, dtype=bool)]
    idx = (x - low).astype(np.int64)
    return np.bincount(idx, minlength=nbins).astype(np.int64)


def _level_counts(grid: Array, ng: int) -> IntArray:
    return np.bincount(np.asarray(grid).ravel().astype(np.int64), minlength=ng + 1).astype(np.int64)


def _sum_arrays(left: Array, right: Array) -> Array:
    return left + right


def _finite_inside(values: Array, inside: Array) -> bool:
    x = np.asarray(values)[np.asarray(inside, dtype=bool)]
    return bool(np.all(np.isfinite(x)))


def _all_finite(values: Array) -> bool:
    return bool(np.all(np.isfinite(np.asarray(values))))


def _count(inside: Array) -> int:
    return int(np.count_nonzero(inside))


class _Runner:
    """One call of :func:`extract_chunked`: settings, spacing, slab size, scheduler."""

    def __init__(
        self,
        settings: Settings,
        spacing: tuple[float, float, float],
        slab: int,
        scheduler: str | None,
    ) -> None:
        self.cfg = settings
        self.sp = spacing
        self.slab = slab
        self.scheduler = scheduler

    def compute(self, *objs: Any) -> tuple[Any, ...]:
        if self.scheduler is None:
            return tuple(dask.compute(*objs))
        return tuple(dask.compute(*objs, scheduler=self.scheduler))

    # -- setup --------------------------------------------------------------------------

    def extract(self, image: da.Array, mask: da.Array) -> dict[str, float]:
        s = self.cfg.setting
        roi_full = mask == s.label
        zs, ys, xs = self.compute(
            roi_full.any(axis=(1, 2)), roi_full.any(axis=(0, 2)), roi_full.any(axis=(0, 1))
        )
        if not np.any(zs):
            raise EmptyRoiError("mask", f"no voxel has label {s.label}")
        bbox = tuple(
            slice(int(np.flatnonzero(p)[0]), int(np.flatnonzero(p)[-1]) + 1) for p in (zs, ys, xs)
        )
        plan = _plan(
            (bbox[0], bbox[1], bbox[2]), ibsi_margin(self.cfg, self.sp), image.shape, self.slab
        )
        chunks = {0: plan.crop_chunks, 1: -1, 2: -1}
        img = image[plan.crop].rechunk(chunks).astype(np.float64)
        roi = roi_full[plan.crop].rechunk(chunks)
        self.plan = plan
        if s.normalize_within_roi:
            img = self._normalise(img, roi)
        inside = roi
        if s.resegment_range is not None:
            low, high = s.resegment_range
            inside = roi & (img >= low)
            if high is not None:
                inside = inside & (img <= high)
        checks = [
            dask.delayed(_finite_inside)(v, m)
            for v, m in zip(_delayed_blocks(img), _delayed_blocks(roi), strict=True)
        ]
        counts = [dask.delayed(_count)(m) for m in _delayed_blocks(inside)]
        crop_ok = []
        if "localintensity" in self.cfg.feature_classes:
            crop_ok = [dask.delayed(_all_finite)(v) for v in _delayed_blocks(img)]
        ok, n, crop_finite = self.compute(checks, counts, crop_ok)
        if not all(ok):
            raise InputError("image", "non-finite intensities inside the ROI")
        if sum(n) == 0:
            raise EmptyRoiError(
                "mask",
                f"no voxel has label {s.label} inside resegmentRange {list(s.resegment_range or [])}",
            )
        box = plan.box
        box_chunks = {0: plan.box_chunks, 1: -1, 2: -1}
        self.img, self.inside = img, inside
        self.img_box = img[box].rechunk(box_chunks)
        self.roi_box = roi[box].rechunk(box_chunks)
        self.inside_box = inside[box].rechunk(box_chunks)
        out: dict[str, float] = {}
        classes = self.cfg.feature_classes
        if "shape" in classes:
            out.update(_select(self._morphology(), self.cfg, "shape"))
        if "localintensity" in classes:
            if not all(crop_finite):
                raise InputError("image", "the image holds NaN or infinite values")
            out.update(_select(self._local_intensity(), self.cfg, "localintensity"))
        intensity = {"firstorder", "ivh", *_TEXTURE} & set(classes)
        if intensity:
            for prefix, filtered in self._image_types():
                feats = self._intensity_families(filtered)
                if prefix == "original":
                    out.update(feats)
                else:
                    out.update({f"{prefix}_{k}": v for k, v in feats.items()})
        return out

    def _normalise(self, img: da.Array, roi: da.Array) -> da.Array:
        """``zscore_within_roi``: mean and SD of the gathered ROI values (8 B per voxel)."""
        parts = [
            dask.delayed(_gather)(v, m)
            for v, m in zip(_delayed_blocks(img), _delayed_blocks(roi), strict=True)
        ]
        (values,) = self.compute(parts)
        vals = np.concatenate(values)
        if not np.all(np.isfinite(vals)):
            raise InputError("image", "non-finite intensities inside the ROI")
        mean, sd = float(np.mean(vals)), float(np.std(vals))
        del vals, values
        if not sd > 0:
            raise InputError("image", "cannot standardise a constant ROI (SD 0)")
        out: da.Array = (img - mean) / sd
        return out

    # -- image types ----------------------------------------------------------------------

    def _image_types(self) -> Iterator[tuple[str, da.Array]]:
        """(key prefix, response on the ROI box chunked in slabs) of every image type."""
        box_chunks = {0: self.plan.box_chunks, 1: -1, 2: -1}
        for name in self.cfg.image_types:
            args = self.cfg.image_type_setting(name)
            if name == "Original":
                yield "original", self.img_box
            elif name == "LoG":
                if not args.sigma:
                    raise ConfigError("imageType.LoG", "give sigma (mm), e.g. sigma: [1.0, 2.0]")
                for sigma in args.sigma:
                    prefix = f"log-sigma-{str(sigma).replace('.', '-')}-mm-3D"
                    response = _log(self.img, tuple(float(sigma) / s for s in self.sp))
                    yield prefix, response[self.plan.box].rechunk(box_chunks)
            elif name == "Wavelet":
                for level in range(args.start_level + 1, args.start_level + args.level + 1):
                    tag = "wavelet" if level == 1 else f"wavelet{level}"
                    bands = self._wavelet(args.wavelet, level)
                    names = sorted(f"{a}{b}{c}" for a in "LH" for b in "LH" for c in "LH")
                    for k, band in enumerate(names):
                        yield f"{tag}-{band}", bands[k]
            else:
                raise ConfigError(f"imageType.{name}", "exists in the pyradiomics convention only")

    def _wavelet(self, wavelet: str, level: int) -> da.Array:
        """The 8 sub-bands of one level on the ROI box, (8, z, y, x), one task per slab."""
        from radgen.features.filters import _wavelet as check_wavelet

        half = math.ceil(check_wavelet(wavelet).dec_len / 2)
        reach = half * (2**level - 1)
        plan = self.plan
        nz = plan.crop[0].stop - plan.crop[0].start
        b0 = plan.box[0].start
        _, by, bx = plan.box_shape
        pieces = []
        for a, b in plan.slabs:
            lo, hi = max(b0 + a - reach, 0), min(b0 + b + reach, nz)
            block = self.img[lo:hi].rechunk({0: -1})
            task = dask.delayed(_wavelet_block)(
                block.to_delayed()[0, 0, 0],
                b0 + a - lo,
                b0 + b - lo,
                (plan.box[1], plan.box[2]),
                wavelet,
                level,
            )
            pieces.append(da.from_delayed(task, shape=(8, b - a, by, bx), dtype=np.float64))
        return da.concatenate(pieces, axis=1)

    # -- first order and textures ----------------------------------------------------------

    def _intensity_families(self, values: da.Array) -> dict[str, float]:
        cfg = self.cfg
        classes = cfg.feature_classes
        vblocks = _delayed_blocks(values)
        mblocks = _delayed_blocks(self.inside_box)
        pairs = list(zip(vblocks, mblocks, strict=True))
        (parts,) = self.compute([dask.delayed(_block_stats)(v, m) for v, m in pairs])
        stats = _merge_stats(parts)
        if not stats.finite:
            raise InputError("image", "non-finite intensities inside the ROI")
        binning = _Binning.of(cfg, stats)
        ng = binning.ng
        grid = da.map_blocks(binning.grid, values, self.inside_box, dtype=binning.dtype)
        wanted_textures = [c for c in _TEXTURE if c in classes]
        integer = stats.integral and stats.high - stats.low + 1 <= _MAX_HISTOGRAM_BINS
        nbins = int(stats.high - stats.low) + 1
        todo: dict[str, Any] = {}
        todo["levels"] = _tree(
            [dask.delayed(_level_counts)(g, ng) for g in _delayed_blocks(grid)], _sum_arrays
        )
        if "firstorder" in classes or "ivh" in classes:
            if integer:
                todo["values"] = _tree(
                    [dask.delayed(_value_counts)(v, m, stats.low, nbins) for v, m in pairs],
                    _sum_arrays,
                )
            else:
                todo["values"] = [dask.delayed(_gather)(v, m) for v, m in pairs]
        if wanted_textures:
            todo.update(self._texture_tasks(grid, ng, frozenset(wanted_textures)))
        keys = list(todo)
        done = dict(zip(keys, self.compute(*(todo[k] for k in keys)), strict=True))
        level_counts: IntArray = done["levels"]
        level_counts[0] = 0
        out: dict[str, float] = {}
        sample: _Sample | None = None
        if "values" in done:
            if integer:
                grid_values = stats.low + np.arange(nbins, dtype=np.float64)
                sample = _Sample.histogram(grid_values, done["values"])
            else:
                gathered = np.concatenate(done.pop("values"))
                gathered.sort()  # in place: the sample is these 8 B per voxel, nothing more
                sample = _Sample(gathered)
                del gathered
        if "firstorder" in classes:
            assert sample is not None
            fo = _statistics(sample)
            fo.update(_intensity_histogram(level_counts))
            out.update(_select(fo, cfg, "firstorder"))
        if "ivh" in classes:
            assert sample is not None
            out.update(_select(self._ivh(stats, level_counts, sample), cfg, "ivh"))
        del sample
        for cls in wanted_textures:
            out.update(_select(_texture_features(cls, done, ng, stats.n), cfg, cls))
        return out

    def _ivh(self, stats: _Stats, level_counts: IntArray, sample: _Sample) -> dict[str, float]:
        """``extract_ibsi._ivh`` from the level histogram or the intensity sample."""
        from radgen.features.discretize import fixed_bin_size

        s = self.cfg.setting
        levels = np.arange(level_counts.size, dtype=np.float64)
        if s.bin_count is not None:
            return _ivh_from(_Sample.histogram(levels, level_counts), 1.0, float(s.bin_count), 1.0)
        assert s.bin_width is not None
        if s.resegment_range is not None:
            low, high = s.resegment_range
            lo, hi = float(low), float(stats.high if high is None else high)
        else:
            lo, hi = stats.low, stats.high
        if stats.integral and s.bin_width == 1:
            return _ivh_from(sample, lo, hi, 1.0)
        step = float(s.bin_width)
        top = float(fixed_bin_size(np.array([hi]), step, min_bound=lo)[0])
        centres = lo + (levels - 0.5) * step
        return _ivh_from(
            _Sample.histogram(centres, level_counts), lo + 0.5 * step, lo + (top - 0.5) * step, step
        )

    def _texture_tasks(self, grid: da.Array, ng: int, classes: frozenset[str]) -> dict[str, Any]:
        halo = da.overlap.overlap(grid, depth={0: 1, 1: 0, 2: 0}, boundary=0)
        parts = [dask.delayed(_slab_textures)(b, ng, classes) for b in _delayed_blocks(halo)]
        todo: dict[str, Any] = {"parts": _tree(parts, _merge_parts)}
        blocks = _delayed_blocks(grid)
        nz = self.plan.box_shape[0]
        if "glrlm" in classes:
            chain: Any = dask.delayed(_RunChain)(ng, nz)
            for b in blocks:
                chain = dask.delayed(_run_step)(chain, b)
            todo["runs"] = dask.delayed(_run_finish)(chain)
        if {"glszm", "gldzm"} & classes:
            distances = "gldzm" in classes
            after: list[Any] = [None] * len(blocks)
            if distances:
                for k in range(len(blocks) - 1, 0, -1):
                    after[k - 1] = dask.delayed(_backward_step)(blocks[k], after[k])
            zones: Any = dask.delayed(_ZoneChain)(ng, distances)
            for k, b in enumerate(blocks):
                zones = dask.delayed(_zone_step)(zones, b, after[k], k == len(blocks) - 1)
            todo["zones"] = zones
        return todo

    # -- morphology and local intensity -----------------------------------------------------

    def _morphology(self) -> dict[str, float]:
        s = np.asarray(self.sp, dtype=np.float64)
        roi = da.overlap.overlap(
            self.roi_box.astype(np.uint8), depth={0: 1, 1: 0, 2: 0}, boundary=0
        )
        rblocks = _delayed_blocks(roi)
        vblocks = _delayed_blocks(self.img_box)
        mblocks = _delayed_blocks(self.inside_box)
        slabs = self.plan.slabs
        tasks = [
            dask.delayed(_slab_morphology)(r, v, m, a, k == len(slabs) - 1, s)
            for k, (r, v, m, (a, _)) in enumerate(
                zip(rblocks, vblocks, mblocks, slabs, strict=True)
            )
        ]
        (parts,) = self.compute(_tree(tasks, _merge_morph))
        wanted = self.cfg.feature_classes.get("shape")
        moran = not wanted or bool({"morph.moran.i", "morph.geary.c"} & set(wanted))
        pair_sums = self._moran_sums(parts) if moran else None
        return _morphology_features(parts, s, pair_sums)

    def _moran_sums(self, parts: _MorphParts) -> tuple[float, float, float, float] | None:
        if parts.n_int < 2:
            return None
        mean = parts.x_sum / parts.n_int
        s = np.asarray(self.sp, dtype=np.float64)
        dev = self.img_box - mean
        dblocks = _delayed_blocks(dev)
        mblocks = _delayed_blocks(self.inside_box)
        slabs = self.plan.slabs
        tasks = []
        for i in range(len(slabs)):
            for j in range(i + 1):
                offset = slabs[i][0] - slabs[j][0]
                tasks.append(
                    (
                        i == j,
                        dask.delayed(_moran_pair)(
                            dblocks[i], mblocks[i], dblocks[j], mblocks[j], offset, s
                        ),
                    )
                )
        (results,) = self.compute([t for _, t in tasks])
        total_w = cross = sq = 0.0
        for (same, _), (t_ab, c_ab, q_ab, q_ba) in zip(tasks, results, strict=True):
            if same:
                total_w += t_ab
                cross += c_ab
                sq += q_ab
            else:
                total_w += 2.0 * t_ab
                cross += 2.0 * c_ab
                sq += q_ab + q_ba
        (ss_parts,) = self.compute(
            [dask.delayed(_sum_sq)(d, m) for d, m in zip(dblocks, mblocks, strict=True)]
        )
        ss = float(sum(ss_parts))
        return total_w, cross, sq, ss

    def _local_intensity(self) -> dict[str, float]:
        from radgen.features.local_intensity import local_intensity_margin

        half = local_intensity_margin(self.sp)[0]
        plan = self.plan
        nz = plan.crop[0].stop - plan.crop[0].start
        b0 = plan.box[0].start
        tasks = []
        for a, b in plan.slabs:
            lo, hi = max(b0 + a - half, 0), min(b0 + b + half, nz)
            img = self.img[lo:hi].rechunk({0: -1}).to_delayed()[0, 0, 0]
            inside = self.inside[lo:hi].rechunk({0: -1}).to_delayed()[0, 0, 0]
            tasks.append(dask.delayed(_local_block)(img, inside, b0 + a - lo, b0 + b - lo, self.sp))
        (results,) = self.compute(tasks)
        found = [r for r in results if r is not None]
        top = max(r[0] for r in found)
        return {
            "loc.peak.local": max(r[1] for r in found if r[0] == top),
            "loc.peak.global": max(r[2] for r in found),
        }


def _sum_sq(dev: Array, inside: Array) -> float:
    d = np.asarray(dev, dtype=np.float64)[np.asarray(inside, dtype=bool)]
    return float(np.sum(d**2))


# ------------------------------------------------------------------------------------------
# features from merged parts


def _texture_features(
    cls: str, done: Mapping[str, Any], ng: int, n_voxels: int
) -> dict[str, float]:
    parts: _Parts = done["parts"]
    if cls == "glcm":
        return _glcm_features(parts, ng)
    if cls == "glrlm":
        return _glrlm_features(parts, done["runs"])
    if cls == "glszm":
        return _glszm_features(parts, done["zones"], ng)
    if cls == "gldzm":
        return _gldzm_features(parts, done["zones"], ng, n_voxels)
    if cls == "ngtdm":
        return _ngtdm_features(parts)
    return _ngldm_features(parts)


def _mean_where(values: Array, keep: Array) -> float:
    sel = values[keep]
    return float(np.mean(sel)) if sel.size else math.nan


def _glcm_features(parts: _Parts, ng: int) -> dict[str, float]:
    from radgen.features.texture_glcm import GLCM_TAGS, glcm_features

    out: dict[str, float] = {}
    width = len(GLCM_TAGS)
    avg = parts.stacked("glcm.2d.avg", width).reshape(-1, 4, width)
    avg_has = parts.stacked("glcm.2d.avg.has", 4).reshape(-1, 4).astype(bool)
    merged = parts.stacked("glcm.2d.merged", width).reshape(-1, width)
    merged_has = np.concatenate(parts.rows.get("glcm.2d.merged.has", [np.zeros(0, bool)]))
    for k, tag in enumerate(GLCM_TAGS):
        out[f"{tag} [2D, averaged]"] = _mean_where(avg[..., k], avg_has)
    for k, tag in enumerate(GLCM_TAGS):
        out[f"{tag} [2D, slice-merged]"] = _mean_where(merged[..., k], merged_has)
    m25, m3 = parts.sums["glcm.25d"], parts.sums["glcm.3d"]
    for aggregation, counts in (
        ("2.5D, direction-merged", m25),
        ("2.5D, merged", m25.sum(axis=0)),
        ("3D, averaged", m3),
        ("3D, merged", m3.sum(axis=0)),
    ):
        has = np.asarray(counts.sum(axis=(-2, -1)) > 0)
        feats = glcm_features(counts, ng)
        for tag in GLCM_TAGS:
            out[f"{tag} [{aggregation}]"] = _mean_where(np.asarray(feats[tag]), has)
    return out


def _rows_mean(rows: Array, names: Sequence[str], suffix: str) -> dict[str, float]:
    return {
        f"{name} [{suffix}]": (float(np.mean(rows[..., k])) if rows.shape[0] else math.nan)
        for k, name in enumerate(names)
    }


def _glrlm_features(parts: _Parts, runs: IntArray) -> dict[str, float]:
    from radgen.features.texture_glrlm import GLRLM_TAGS, length_matrix_features

    out: dict[str, float] = {}
    m25 = parts.sums["glrlm.25d"]  # (4, ng, L)
    width = max(m25.shape[-1], runs.shape[-1])
    m3 = np.concatenate(
        [_pad_to(runs, (9, runs.shape[1], width)), _pad_to(m25, (4, m25.shape[1], width))]
    )
    out.update(
        _rows_mean(parts.stacked("glrlm.2d.avg", 16).reshape(-1, 4, 16), GLRLM_TAGS, "2D, averaged")
    )
    out.update(_rows_mean(parts.stacked("glrlm.2d.merged", 16), GLRLM_TAGS, "2D, slice-merged"))
    for aggregation, counts in (
        ("2.5D, direction-merged", m25),
        ("2.5D, merged", m25.sum(axis=0)),
        ("3D, averaged", m3),
        ("3D, merged", m3.sum(axis=0)),
    ):
        feats = length_matrix_features(counts)
        for tag, values in zip(GLRLM_TAGS, feats.values(), strict=True):
            out[f"{tag} [{aggregation}]"] = float(np.mean(values))
    return out


def _glszm_features(parts: _Parts, zones: _ZoneChain, ng: int) -> dict[str, float]:
    from radgen.features.texture_glrlm import length_matrix_features
    from radgen.features.texture_glszm import GLSZM_TAGS

    out = _rows_mean(parts.stacked("glszm.2d", 16), GLSZM_TAGS, "2D")
    m25: _Columns = parts.sums["glszm.25d"]
    base = ng + 1
    size, level = np.divmod(zones.sizes.keys, base)
    j3, col = np.unique(size, return_inverse=True)
    m3 = np.zeros((ng, j3.size), dtype=np.int64)
    np.add.at(m3, (level - 1, col), zones.sizes.counts)
    for aggregation, columns in (("2.5D", m25), ("3D", _Columns(j3, m3))):
        feats = length_matrix_features(columns.matrix, lengths=columns.lengths)
        for tag, values in zip(GLSZM_TAGS, feats.values(), strict=True):
            out[f"{tag} [{aggregation}]"] = float(values)
    return out


def _gldzm_features(parts: _Parts, zones: _ZoneChain, ng: int, n_voxels: int) -> dict[str, float]:
    from radgen.features.texture_gldzm import IBSI_TAGS, gldzm_features

    rows = parts.stacked("gldzm.2d", 16)
    out = _rows_mean(rows, IBSI_TAGS, "2D")
    nv = float(n_voxels)
    base = ng + 1
    dist, level = np.divmod(zones.dists.keys, base)
    m3 = np.zeros((ng, int(dist.max())), dtype=np.float64)
    np.add.at(m3, (level - 1, dist - 1), zones.dists.counts)
    for aggregation, matrix in (("2.5D", parts.sums["gldzm.25d"]), ("3D", m3)):
        for tag, value in gldzm_features(matrix, nv).items():
            out[f"{tag} [{aggregation}]"] = value
    return out


def _ngtdm_features(parts: _Parts) -> dict[str, float]:
    from radgen.features.texture_ngtdm import IBSI_TAGS, ngtdm_features

    rows = parts.stacked("ngtdm.2d", 5)
    out: dict[str, float] = {}
    for k, tag in enumerate(IBSI_TAGS):
        values = rows[:, k]
        values = values[~np.isnan(values)]
        out[f"{tag} [2D]"] = float(values.mean()) if values.size else math.nan
    for aggregation, matrix in (("2.5D", parts.sums["ngtdm.25d"]), ("3D", parts.sums["ngtdm.3d"])):
        for tag, value in ngtdm_features(matrix).items():
            out[f"{tag} [{aggregation}]"] = value
    return out


def _ngldm_features(parts: _Parts) -> dict[str, float]:
    from radgen.features.texture_ngldm import IBSI_TAGS, ngldm_features

    out = _rows_mean(parts.stacked("ngldm.2d", 17), IBSI_TAGS, "2D")
    for aggregation, matrix in (("2.5D", parts.sums["ngldm.25d"]), ("3D", parts.sums["ngldm.3d"])):
        for tag, value in ngldm_features(matrix).items():
            out[f"{tag} [{aggregation}]"] = value
    return out


def _rank(m: list[list[int]]) -> int:
    """Rank of a 3 x 3 integer matrix, exactly."""
    det = (
        m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
        - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
        + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
    )
    if det != 0:
        return 3
    rows, cols = ((0, 1), (0, 2), (1, 2)), ((0, 1), (0, 2), (1, 2))
    for r in rows:
        for c in cols:
            if m[r[0]][c[0]] * m[r[1]][c[1]] - m[r[0]][c[1]] * m[r[1]][c[0]] != 0:
                return 2
    return 1 if any(v != 0 for row in m for v in row) else 0


def _morphology_features(
    parts: _MorphParts,
    s: FloatArray,
    pair_sums: tuple[float, float, float, float] | None,
) -> dict[str, float]:
    """The tail of ``ibsi_morphology`` from the merged slab parts."""
    from radgen.features.morphology import (
        _SPHERE,
        IBSI_MORPHOLOGY_TAGS,
        shape_from_geometry,
    )

    v, a = parts.volume6 / 6.0, parts.area
    sph = (_SPHERE * v**2) ** (1.0 / 3.0)
    out: dict[str, float] = {
        "morph.vol": v,
        "morph.approx.vol": float(parts.n * np.prod(s)),
        "morph.area": a,
        "morph.av": a / v if v != 0 else math.nan,
        "morph.comp.1": v / (math.sqrt(math.pi) * a**1.5),
        "morph.comp.2": _SPHERE * v**2 / a**3,
        "morph.sph.dispr": a / sph if sph > 0 else math.nan,
        "morph.sphericity": sph / a,
        "morph.asphericity": a / sph - 1.0 if sph > 0 else math.nan,
    }
    n = parts.n
    geo = parts.first.astype(np.float64) * s / n
    if parts.x_sum != 0:
        out["morph.com"] = float(np.linalg.norm(geo - parts.xr_sum / parts.x_sum))
    else:
        out["morph.com"] = math.nan
    keys = np.concatenate([np.concatenate(k) for k in parts.keys])
    points = (keys * 0.5) * s
    if n > 1:
        first = [int(c) for c in parts.first]
        scatter = [
            [n * int(parts.second[i, j]) - first[i] * first[j] for j in range(3)] for i in range(3)
        ]
        cov = np.array([[v / (n * (n - 1)) for v in row] for row in scatter]) * np.outer(s, s)
        eig = np.clip(np.linalg.eigvalsh(cov), 0.0, None)[::-1]
        # the scatter matrix is exact (integers): a planar or linear ROI has exact zeros
        eig[_rank(scatter) :] = 0.0
    else:
        eig = np.full(3, math.nan)
    out.update(shape_from_geometry(v, a, points, eig))
    out["morph.integ.int"] = v * (parts.x_sum / parts.n_int)
    out["morph.moran.i"], out["morph.geary.c"] = math.nan, math.nan
    if pair_sums is not None:
        total_w, cross, sq, ss = pair_sums
        m = parts.n_int
        if m >= 2 and total_w > 0 and ss > 0:
            out["morph.moran.i"] = m / total_w * cross / ss
            out["morph.geary.c"] = (m - 1) * (2.0 * sq - 2.0 * cross) / (2.0 * total_w * ss)
    return {tag: out[tag] for tag in IBSI_MORPHOLOGY_TAGS}
