"""``extract_chunked`` (Dask, slab by slab) against ``extract`` (in memory)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import pytest
import scipy.ndimage as ndi
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from radgen.errors import ConfigError, EmptyRoiError, InputError
from radgen.features import chunked, extract
from radgen.features.chunked import extract_chunked, open_roi_arrays

#: Relative agreement where only the summation order differs.
RTOL = 1e-9


def assert_same(
    got: dict[str, float], ref: dict[str, float], *, skip: set[str] | frozenset[str] = frozenset()
) -> None:
    """Same keys; values equal to `RTOL` (absolute 1e-9 for values that cancel to ~0)."""
    assert sorted(got) == sorted(ref)
    bad = []
    for key, expected in ref.items():
        if key in skip:
            continue
        value = got[key]
        if math.isnan(expected) and math.isnan(value):
            continue
        if not math.isclose(value, expected, rel_tol=RTOL, abs_tol=1e-9):
            bad.append(f"{key}: {value!r} != {expected!r}")
    assert not bad, "; ".join(bad[:20])


#: Features of the smallest PCA eigenvalues of the ROI's voxel positions.
PCA_KEYS = frozenset(
    "morph." + k
    for k in (
        "pca.minor",
        "pca.least",
        "pca.elongation",
        "pca.flatness",
        "v.dens.aee",
        "a.dens.aee",
    )
)


def flat_roi_keys(mask: np.ndarray, label: int = 1) -> frozenset[str]:
    """PCA keys to skip when the ROI's voxels are coplanar (or collinear).

    A zero eigenvalue is exact here (integer moments) but rounding noise in ``extract``
    (0 after clipping, or about 1e-16 mm^2, i.e. an axis of 1e-8 mm).
    """
    coords = np.argwhere(mask == label)
    if len(coords) < 2:
        return frozenset()
    centred = coords - coords.mean(axis=0)
    return PCA_KEYS if np.linalg.matrix_rank(centred.T @ centred) < 3 else frozenset()


def lazy(arr: np.ndarray, chunks: tuple[int, int, int]) -> da.Array:
    return da.from_array(arr, chunks=chunks)


@st.composite
def cases(draw: st.DrawFn, *, integer: bool) -> tuple[np.ndarray, np.ndarray, tuple[float, ...]]:
    """An image, a mask whose ROI may touch any border, and a spacing."""
    shape = (draw(st.integers(8, 20)), draw(st.integers(3, 8)), draw(st.integers(3, 8)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if integer:
        image = rng.integers(-20, draw(st.integers(-19, 120)), shape).astype(np.int16)
    else:
        image = rng.normal(10.0, draw(st.floats(0.5, 40.0)), shape).astype(np.float32)
    lo = [draw(st.integers(0, n - 1)) for n in shape]
    hi = [draw(st.integers(a + 1, n)) for a, n in zip(lo, shape, strict=True)]
    mask = np.zeros(shape, dtype=np.uint8)
    box = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
    mask[box] = rng.random(mask[box].shape) < draw(st.floats(0.3, 1.0))
    mask[tuple(a for a in lo)] = 1
    spacing = tuple(draw(st.sampled_from([0.8, 1.0, 1.5, 2.5])) for _ in range(3))
    return image, mask, spacing


binnings = st.one_of(
    st.sampled_from([1, 5, 25]).map(lambda w: {"binWidth": w}),
    st.sampled_from([2, 7, 16]).map(lambda n: {"binCount": n}),
)


@given(
    case=cases(integer=True),
    binning=binnings,
    slab=st.integers(2, 5),
    reseg=st.booleans(),
    as_float=st.booleans(),
)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_integer_images_every_family(
    case: tuple[np.ndarray, np.ndarray, tuple[float, ...]],
    binning: dict[str, Any],
    slab: int,
    reseg: bool,
    as_float: bool,
) -> None:
    """Integer-valued images (int16, or float32 holding integers) take the histogram path."""
    image, mask, spacing = case
    if as_float:
        image = image.astype(np.float32)
    setting = dict(binning)
    if reseg:
        setting["resegmentRange"] = [-10, 200]
        if not np.any((mask == 1) & (image >= -10)):
            return
    cfg = {"setting": setting}
    ref = extract(image, mask, spacing, cfg)
    got = extract_chunked(
        lazy(image, (3, 4, 5)), lazy(mask, (7, -1, -1)), spacing, cfg, slab=slab, scheduler="sync"
    )
    assert_same(got, ref, skip=flat_roi_keys(mask))


filters = st.sampled_from(
    [
        {"Original": {}, "LoG": {"sigma": [1.0, 2.5]}},
        {"Wavelet": {}},
        {"Original": {}, "Wavelet": {"start_level": 1, "wavelet": "haar"}},
    ]
)


@given(case=cases(integer=False), binning=binnings, slab=st.integers(2, 5), types=filters)
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_float_images_and_filters(
    case: tuple[np.ndarray, np.ndarray, tuple[float, ...]],
    binning: dict[str, Any],
    slab: int,
    types: dict[str, Any],
) -> None:
    image, mask, spacing = case
    cfg = {
        "setting": binning,
        "imageType": types,
        "featureClass": {c: None for c in ("firstorder", "ivh", "glcm", "glrlm", "gldzm", "gldm")},
    }
    ref = extract(image, mask, spacing, cfg)
    got = extract_chunked(
        lazy(image, (5, -1, -1)), lazy(mask, (5, -1, -1)), spacing, cfg, slab=slab
    )
    assert_same(got, ref)


def test_float_image_shape_local_intensity_and_zones() -> None:
    rng = np.random.default_rng(3)
    image = rng.normal(0.0, 30.0, (14, 9, 8))
    mask = np.zeros(image.shape, dtype=np.uint8)
    mask[1:13, 1:8, 0:6] = rng.random((12, 7, 6)) < 0.7
    cfg = {
        "setting": {"binWidth": 12.5},
        "featureClass": {c: None for c in ("shape", "localintensity", "glszm", "ngtdm")},
    }
    ref = extract(image, mask, (2.0, 0.7, 0.7), cfg)
    for slab in (1, 3, 14):
        got = extract_chunked(lazy(image, (4, 9, 8)), mask, (2.0, 0.7, 0.7), cfg, slab=slab)
        assert_same(got, ref)


def test_zones_and_distances_across_slabs() -> None:
    """Zones deep inside a solid ROI whose nearest edge is below / above them, cut by slabs.

    Their GLDZM distance needs both the forward and the backward pass along z, and the
    large surrounding zone spans every slab.
    """
    image = np.full((13, 21, 21), 100, dtype=np.int16)
    image[2:5, 8:13, 8:13] = 10  # nearest ROI edge: below (3 slices), in-plane it is 7 away
    image[8:11, 8:13, 8:13] = 50  # nearest ROI edge: above
    image[6, 1:20, 1:20] = 70  # a sheet across the whole ROI
    mask = np.zeros(image.shape, dtype=np.uint8)
    mask[:, 1:20, 1:20] = 1
    cfg = {"setting": {"binWidth": 1}, "featureClass": {"glszm": None, "gldzm": None}}
    ref = extract(image, mask, (1.0, 1.0, 1.0), cfg)
    assert ref["dzm.lde [3D]"] > 1.0  # distances beyond 1 occur
    for slab in (2, 3, 5):
        got = extract_chunked(lazy(image, (4, 21, 21)), mask, (1, 1, 1), cfg, slab=slab)
        assert_same(got, ref)


def test_normalize_within_roi_and_resegmentation() -> None:
    rng = np.random.default_rng(4)
    image = rng.integers(0, 400, (12, 7, 7)).astype(np.int16)
    mask = (rng.random(image.shape) < 0.6).astype(np.uint8)
    cfg = {"setting": {"normalizeWithinROI": True, "binCount": 8, "resegmentRange": [-1.5, 3]}}
    got = extract_chunked(lazy(image, (5, 7, 7)), lazy(mask, (5, 7, 7)), (1, 1, 1), cfg, slab=4)
    # the centre of mass and the coefficient of variation of a standardised ROI divide by a
    # mean that is 0 up to rounding, in extract and here alike: noise, not comparable
    skip = {"morph.com", "stat.cov"} | flat_roi_keys(mask)
    assert_same(got, extract(image, mask, (1, 1, 1), cfg), skip=skip)


def test_label_selects_the_roi_and_unused_labels_are_ignored() -> None:
    rng = np.random.default_rng(5)
    image = rng.integers(-5, 30, (9, 6, 6)).astype(np.int16)
    mask = rng.integers(0, 3, image.shape).astype(np.uint8)
    cfg = {
        "setting": {"label": 2, "binWidth": 3},
        "featureClass": {"firstorder": None, "ivh": None},
    }
    got = extract_chunked(lazy(image, (2, 6, 6)), lazy(mask, (9, 3, 3)), (1, 1, 1), cfg, slab=2)
    assert_same(got, extract(image, mask, (1, 1, 1), cfg))


def test_sparse_run_counts_and_hull_reduction_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fall-backs for a huge run matrix and for many mesh vertices give the same values."""
    rng = np.random.default_rng(6)
    image = rng.integers(0, 6, (10, 8, 9)).astype(np.int16)
    mask = np.zeros(image.shape, dtype=np.uint8)
    mask[1:9, 1:7, 1:8] = 1
    mask[4, 3, 3] = 0
    cfg = {"setting": {"binWidth": 1}, "featureClass": {"shape": None, "glrlm": None}}
    ref = extract(image, mask, (1.2, 1.0, 1.0), cfg)
    monkeypatch.setattr(chunked, "_DENSE_RUNS", 0)
    monkeypatch.setattr(chunked, "HULL_REDUCE_VERTICES", 10)
    got = extract_chunked(lazy(image, (3, 8, 9)), mask, (1.2, 1.0, 1.0), cfg, slab=3)
    # only the hull-based densities may see a different (equal) vertex set from qhull
    hull = {k for k in ref if "ombb" in k or "mvee" in k}
    assert_same(got, ref, skip=hull)
    for key in hull:
        assert got[key] == pytest.approx(ref[key], rel=1e-6)


def test_dask_image_log_equals_scipy_on_the_whole_array() -> None:
    """Slab chunks with a halo of the kernel radius: bit-identical to one scipy call."""
    from dask_image.ndfilters import gaussian_laplace

    image = np.random.default_rng(7).normal(size=(23, 17, 19))
    sigma = (1.25, 0.8, 2.0)
    expected = ndi.gaussian_laplace(image, sigma, mode="mirror", truncate=4.0)
    for slab in (3, 8, 23):
        got = gaussian_laplace(lazy(image, (slab, -1, -1)), sigma, mode="mirror", truncate=4.0)
        np.testing.assert_array_equal(got.compute(scheduler="sync"), expected)


def test_errors_and_unsupported_settings() -> None:
    image = np.arange(27, dtype=np.int16).reshape(3, 3, 3)
    mask = np.ones((3, 3, 3), dtype=np.uint8)
    with pytest.raises(ConfigError, match="resampledPixelSpacing"):
        extract_chunked(image, mask, (1, 1, 1), {"setting": {"resampledPixelSpacing": [2, 2, 2]}})
    with pytest.raises(ConfigError, match="convention"):
        extract_chunked(image, mask, (1, 1, 1), {"convention": "pyradiomics"})
    with pytest.raises(ConfigError, match="slab"):
        extract_chunked(image, mask, (1, 1, 1), slab=0)
    with pytest.raises(EmptyRoiError):
        extract_chunked(image, np.zeros_like(mask), (1, 1, 1))
    with pytest.raises(EmptyRoiError, match="resegmentRange"):
        extract_chunked(image, mask, (1, 1, 1), {"setting": {"resegmentRange": [100, 200]}})
    with pytest.raises(InputError, match="shape"):
        extract_chunked(image, mask[:2], (1, 1, 1))
    bad = image.astype(float)
    bad[1, 1, 1] = np.nan
    with pytest.raises(InputError, match="non-finite"):
        extract_chunked(bad, mask, (1, 1, 1))
    with pytest.raises(ConfigError, match="unknown feature"):
        extract_chunked(image, mask, (1, 1, 1), {"featureClass": {"glcm": ["cm.nope"]}})


def test_open_roi_arrays_reads_the_catalog_volumes(tmp_path: Path) -> None:
    from radgen.features.extract import roi_region
    from radgen.platform.storage import Root
    from radgen.platform.volumes import write_volume

    root = Root.from_string(str(tmp_path))
    rng = np.random.default_rng(8)
    image = rng.integers(-100, 100, (16, 12, 12)).astype(np.int16)
    mask = np.zeros(image.shape, dtype=np.uint8)
    mask[5:11, 3:9, 4:10] = 1
    attrs = {"spacing": [2.0, 1.0, 1.0], "origin": [0, 0, 0], "direction": np.eye(3).tolist()}
    write_volume(root, "images/a.zarr", image, name="image", attrs=attrs, chunks=(4, 12, 12))
    write_volume(root, "masks/m.zarr", mask, name="mask", attrs=attrs, chunks=(4, 12, 12))
    lazy_image, lazy_mask = open_roi_arrays(root, "images/a.zarr", "masks/m.zarr")
    cfg = {"imageType": {"Original": {}, "LoG": {"sigma": [2.0]}}, "featureClass": {"glcm": None}}
    z0, z1, y0, y1, x0, x1 = roi_region(cfg, [5, 11, 3, 9, 4, 10], image.shape, (2.0, 1.0, 1.0))
    region = (slice(z0, z1), slice(y0, y1), slice(x0, x1))
    got = extract_chunked(lazy_image[region], lazy_mask[region], (2.0, 1.0, 1.0), cfg, slab=2)
    assert_same(got, extract(image, mask, (2.0, 1.0, 1.0), cfg))


_MEMORY_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np, dask.array as da
    from radgen.features.chunked import extract_chunked

    def peak_mib():
        # VmHWM: peak RSS of this address space (ru_maxrss would carry the forked parent's
        # peak across exec, so a large test runner would hide the child's own)
        with open("/proc/self/status") as status:
            line = next(line for line in status if line.startswith("VmHWM:"))
        return int(line.split()[1]) / 1024

    shape = (256, 512, 512)
    image = da.random.default_rng(7).integers(
        -50, 130, size=shape, chunks=(8, 512, 512), dtype=np.int16
    )

    def ball(block_info=None):
        (z0, z1), (y0, y1), (x0, x1) = block_info[None]["array-location"]
        z, y, x = np.ogrid[z0:z1, y0:y1, x0:x1]
        r = ((z - 128) / 110.0) ** 2 + ((y - 256) / 200.0) ** 2 + ((x - 256) / 200.0) ** 2
        return (r <= 1).astype(np.uint8)

    mask = da.map_blocks(ball, chunks=((8,) * 32, (512,), (512,)), dtype=np.uint8)
    classes = ["firstorder", "ivh", "glcm", "glrlm"]
    before = peak_mib()
    out = extract_chunked(image, mask, (1.0, 1.0, 1.0),
                          {"featureClass": {c: None for c in classes}},
                          slab=4, scheduler="threads")
    json.dump({"before": before, "after": peak_mib(), "n": len(out), "mean": out["stat.mean"]},
              sys.stdout)
    """
)


def test_large_lazy_volume_stays_below_one_float_copy_of_the_roi_box() -> None:
    """A 256 x 512 x 512 volume generated lazily, ROI box 221 x 401 x 401 (18.4 M voxels).

    The ROI box alone in float64, which ``extract`` holds before any feature, is 284 MiB
    (and its int64 grey levels as much again). The chunked run with slabs of 4 slices, on the
    threaded scheduler, must raise the peak RSS by less than that.
    """
    if not Path("/proc/self/status").exists():
        pytest.skip("needs Linux /proc for the peak RSS of the child process")
    proc = subprocess.run(
        [sys.executable, "-c", _MEMORY_SCRIPT], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    box_float64_mib = 221 * 401 * 401 * 8 / 2**20
    assert result["n"] == 293
    assert 39.0 < result["mean"] < 40.0  # uniform on -50..129
    assert result["after"] - result["before"] < 0.85 * box_float64_mib, result
