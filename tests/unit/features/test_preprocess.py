"""Pre-processing: closed forms for the IBSI resampling grid, z-scoring, re-segmentation,
PyRadiomics binning edges and normalisation, and the invariance of features to I -> aI + b."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import scipy.ndimage as ndi
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from radgen.errors import ConfigError, EmptyRoiError, InputError
from radgen.features.discretize import fixed_bin_number
from radgen.features.firstorder import intensity_histogram, intensity_statistics
from radgen.features.firstorder_pyradiomics import pyradiomics_bin_edges, pyradiomics_firstorder
from radgen.features.preprocess import (
    Normalization,
    check_roi,
    ibsi_grid,
    ibsi_resample,
    pyradiomics_normalization,
    pyradiomics_prepare,
    resegment_outliers,
    resegment_range,
    roi_bbox,
    zscore_within_roi,
)

HYPO = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SPACINGS = [0.4, 0.5, 0.75, 0.8, 1.0, 1.2, 2.0, 2.5, 3.0]


@st.composite
def images(draw: st.DrawFn, min_side: int = 3, max_side: int = 14) -> tuple[Any, ...]:
    shape = tuple(draw(st.integers(min_side, max_side)) for _ in range(3))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    image = rng.normal(draw(st.sampled_from([-500.0, 0.0, 40.0])), 100.0, shape)
    lo = [draw(st.integers(0, n - 1)) for n in shape]
    hi = [draw(st.integers(a, n - 1)) for a, n in zip(lo, shape, strict=True)]
    mask = np.zeros(shape, bool)
    box = tuple(slice(a, b + 1) for a, b in zip(lo, hi, strict=True))
    mask[box] = rng.random(mask[box].shape) < 0.7
    mask[tuple(lo)] = True
    spacing = tuple(float(draw(st.sampled_from(SPACINGS))) for _ in range(3))
    return image, mask, spacing


# ---------------------------------------------------------------------------------------------
# IBSI resampling grid (IBSI 2.4): n_b = ceil(n_a s_a / s_b), centres aligned


@HYPO
@given(
    shape=st.tuples(*[st.integers(1, 60)] * 3),
    spacing=st.tuples(*[st.sampled_from(SPACINGS)] * 3),
    new=st.tuples(*[st.sampled_from(SPACINGS)] * 3),
)
def test_ibsi_grid_aligns_centres(
    shape: tuple[int, int, int], spacing: tuple[float, ...], new: tuple[float, ...]
) -> None:
    n_b, start, step = ibsi_grid(shape, spacing, new)
    for n_a, s_a, s_b, nb, x0, r in zip(shape, spacing, new, n_b, start, step, strict=True):
        # exact rational count: n_a s_a / s_b with the spacings as fractions of 1/20 mm
        num, den = round(n_a * s_a * 20), round(s_b * 20)
        assert nb == -(-num // den)
        assert r == pytest.approx(s_b / s_a, rel=1e-15)
        # centre of the new grid (index units of the old) = centre of the old grid
        assert x0 + (nb - 1) * r / 2 == pytest.approx((n_a - 1) / 2, abs=1e-9)
        # physical extent of the new grid covers the old one (by at most one new voxel)
        assert nb * s_b >= n_a * s_a - 1e-9
        assert nb * s_b < n_a * s_a + s_b + 1e-9


def test_ibsi_grid_example_from_ibsi() -> None:
    # 5 voxels of 2 mm to 3 mm: 4 voxels, starting a quarter voxel before the first centre
    assert ibsi_grid((5, 5, 5), (2.0, 2.0, 2.0), (3.0, 3.0, 3.0)) == (
        (4, 4, 4),
        (-0.25, -0.25, -0.25),
        (1.5, 1.5, 1.5),
    )


@HYPO
@given(
    shape=st.tuples(*[st.integers(2, 12)] * 3),
    spacing=st.tuples(*[st.sampled_from(SPACINGS)] * 3),
    new=st.tuples(*[st.sampled_from(SPACINGS)] * 3),
    coef=st.tuples(*[st.floats(-5, 5)] * 4),
)
def test_ibsi_resample_linear_ramp_is_exact(
    shape: tuple[int, ...],
    spacing: tuple[float, ...],
    new: tuple[float, ...],
    coef: tuple[float, ...],
) -> None:
    """Trilinear interpolation reproduces a linear ramp; beyond the border the edge value."""
    idx = np.indices(shape, dtype=np.float64)
    image = coef[0] * idx[0] + coef[1] * idx[1] + coef[2] * idx[2] + coef[3]
    mask = np.ones(shape, bool)
    out = ibsi_resample(image, mask, spacing, new, order=1)
    n_b, start, step = ibsi_grid(shape, spacing, new)
    assert out.image.shape == n_b
    pos = [np.clip(start[k] + step[k] * np.arange(n_b[k]), 0, shape[k] - 1) for k in range(3)]
    z, y, x = np.meshgrid(*pos, indexing="ij")
    expected = coef[0] * z + coef[1] * y + coef[2] * x + coef[3]
    np.testing.assert_allclose(out.image, expected, rtol=1e-9, atol=1e-9)
    assert out.spacing == new
    assert out.offset == (0, 0, 0)


def test_ibsi_resample_cubic_reproduces_a_ramp_inside() -> None:
    """A cubic spline reproduces a linear function away from the border."""
    shape = (3, 4, 60)
    image = np.broadcast_to(3.0 * np.arange(60.0) - 7.0, shape).copy()
    out = ibsi_resample(image, np.ones(shape, bool), (1.0, 1.0, 1.0), (1.0, 1.0, 0.7))
    _, start, step = ibsi_grid(shape, (1.0, 1.0, 1.0), (1.0, 1.0, 0.7))
    pos = start[2] + step[2] * np.arange(out.image.shape[2])
    inside = (pos > 15) & (pos < 44)
    want = np.broadcast_to(3.0 * pos[inside] - 7.0, out.image[..., inside].shape)
    np.testing.assert_allclose(out.image[..., inside], want, rtol=1e-9)


def test_ibsi_resample_same_spacing_is_identity() -> None:
    rng = np.random.default_rng(1)
    image = rng.normal(size=(5, 6, 7))
    mask = rng.random(image.shape) < 0.5
    for order in (0, 1, 3):
        out = ibsi_resample(image, mask, (1.5, 0.8, 0.8), (1.5, 0.8, 0.8), order=order)
        np.testing.assert_allclose(out.image, image, rtol=1e-9, atol=1e-9)
        np.testing.assert_array_equal(out.mask, mask)


def test_ibsi_resample_mask_partial_volume_threshold() -> None:
    """A half-space ROI x < 4 (8 voxels of 1 mm) at 2 mm: new voxels at old x = 0.5 + 2j."""
    mask = np.zeros((2, 2, 8), bool)
    mask[..., :4] = True
    out = ibsi_resample(np.zeros(mask.shape), mask, (1, 1, 1), (1, 1, 2), order=1)
    # centres at 0.5, 2.5, 4.5, 6.5: linear mask values 1, 1, 0, 0
    np.testing.assert_array_equal(out.mask[0, 0], [True, True, False, False])
    mask[..., 4] = True  # x < 5: the voxel at 4.5 sees (1 + 0) / 2 = 0.5 -> kept at 0.5
    out = ibsi_resample(np.zeros(mask.shape), mask, (1, 1, 1), (1, 1, 2), order=1)
    np.testing.assert_array_equal(out.mask[0, 0], [True, True, True, False])
    out = ibsi_resample(
        np.zeros(mask.shape), mask, (1, 1, 1), (1, 1, 2), order=1, mask_threshold=0.6
    )
    np.testing.assert_array_equal(out.mask[0, 0], [True, True, False, False])


@HYPO
@given(
    case=images(), new=st.tuples(*[st.sampled_from(SPACINGS)] * 3), order=st.sampled_from([1, 3])
)
def test_ibsi_resample_roi_block_equals_full_grid(
    case: tuple[Any, ...], new: tuple[float, ...], order: int
) -> None:
    image, mask, spacing = case
    full = ibsi_resample(image, mask, spacing, new, order=order)
    part = ibsi_resample(image, mask, spacing, new, order=order, roi_margin=2)
    block = tuple(slice(o, o + n) for o, n in zip(part.offset, part.image.shape, strict=True))
    np.testing.assert_allclose(part.image, full.image[block], rtol=1e-9, atol=1e-9 * 500)
    np.testing.assert_array_equal(part.mask, full.mask[block])
    # the block holds every voxel of the resampled ROI
    assert part.mask.sum() == full.mask.sum()


def test_ibsi_resample_rejects_bad_settings() -> None:
    image = np.zeros((3, 3, 3))
    mask = np.ones((3, 3, 3), bool)
    with pytest.raises(ConfigError):
        ibsi_resample(image, mask, (1, 1, 1), (2, 2, 2), order=2)
    with pytest.raises(ConfigError):
        ibsi_resample(image, mask, (1, 1, 1), (2, 2, 2), mask_threshold=0)
    with pytest.raises(InputError):
        ibsi_resample(image, mask, (1, 1, 1), (2, 0, 2))
    with pytest.raises(InputError):
        ibsi_resample(image, mask[:2], (1, 1, 1), (2, 2, 2))


# ---------------------------------------------------------------------------------------------
# z-scoring within the ROI, and invariance to I -> aI + b


def test_zscore_within_roi_closed_form() -> None:
    image = np.array([[[1.0, 2.0, 3.0, 4.0, 100.0]]])
    mask = np.array([[[1, 1, 1, 1, 0]]], bool)
    z = zscore_within_roi(image, mask)
    sd = math.sqrt(1.25)  # population SD of 1..4
    np.testing.assert_allclose(z[0, 0], [(v - 2.5) / sd for v in (1, 2, 3, 4, 100)], rtol=1e-12)
    assert z[mask].mean() == pytest.approx(0.0, abs=1e-12)
    assert z[mask].std() == pytest.approx(1.0, rel=1e-12)
    with pytest.raises(InputError, match="constant"):
        zscore_within_roi(np.ones((2, 2, 2)), np.ones((2, 2, 2)))
    with pytest.raises(EmptyRoiError):
        zscore_within_roi(np.ones((2, 2, 2)), np.zeros((2, 2, 2)))


def _far_from_edges(values: np.ndarray, edges: np.ndarray, gap: float) -> bool:
    return bool(np.min(np.abs(values[:, None] - edges[None, :]), initial=np.inf) > gap)


@HYPO
@given(
    case=images(),
    a=st.floats(0.01, 1000.0),
    b=st.floats(-5000.0, 5000.0),
    width=st.sampled_from([0.1, 0.25, 0.5]),
    count=st.sampled_from([8, 32]),
)
def test_features_of_zscored_image_are_invariant_to_affine_maps(
    case: tuple[Any, ...], a: float, b: float, width: float, count: int
) -> None:
    image, mask, spacing = case
    assume(mask.sum() >= 3)
    base = zscore_within_roi(image, mask)
    mapped = zscore_within_roi(a * image + b, mask)
    np.testing.assert_allclose(mapped, base, rtol=1e-9, atol=1e-9)
    x, y = base[mask], mapped[mask]
    # continuous statistics
    s_x, s_y = intensity_statistics(x), intensity_statistics(y)
    # cov divides by the ROI mean, 0 after z-scoring, and qcod by P75 + P25, which can be near
    # 0: both amplify rounding without bound
    for key in set(s_x) - {"stat.cov", "stat.qcod"}:
        assert s_y[key] == pytest.approx(s_x[key], rel=1e-7, abs=1e-7), key
    # discretised features: equal when no value sits within rounding of a bin edge
    pyr_edges = pyradiomics_bin_edges(x, binWidth=width)
    assume(_far_from_edges(x, pyr_edges, 1e-9))
    fbn = (x - x.min()) / (x.max() - x.min()) * count
    inner = (x > x.min()) & (x < x.max())  # the extremes map to 1 and Ng by definition
    assume(_far_from_edges(fbn[inner], np.arange(count + 1.0), 1e-7))
    assert np.array_equal(fixed_bin_number(x, count), fixed_bin_number(y, count))
    h_x, h_y = (
        intensity_histogram(fixed_bin_number(x, count)),
        intensity_histogram(fixed_bin_number(y, count)),
    )
    assert h_x == h_y
    for binning in ({"binWidth": width}, {"binCount": count}):
        f_x = pyradiomics_firstorder(base, mask, spacing, **binning)
        f_y = pyradiomics_firstorder(mapped, mask, spacing, **binning)
        for key, value in f_x.items():
            assert f_y[key] == pytest.approx(value, rel=1e-7, abs=1e-7), (binning, key)


# ---------------------------------------------------------------------------------------------
# re-segmentation (IBSI 2.6)


def test_resegment_range_and_outliers_closed_form() -> None:
    values = np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 1000.0, -7.0])
    image = values.reshape(1, 3, 4)
    mask = np.ones(image.shape, bool)
    mask.flat[11] = False  # -7 is outside the ROI
    kept = resegment_range(image, mask, 0, 8)
    np.testing.assert_array_equal(kept.ravel(), [1] * 9 + [0, 0, 0])
    np.testing.assert_array_equal(resegment_range(image, mask, lower=5).ravel()[-2:], [1, 0])
    roi = values[:11]
    mean, sd = roi.mean(), roi.std()
    assert mean + 3 * sd < 1000  # 1000 is an outlier at 3 SD of the ROI
    out = resegment_outliers(image, mask, 3.0)
    np.testing.assert_array_equal(out.ravel(), [1] * 10 + [0, 0])
    # at 0.5 SD only the central values remain
    half = resegment_outliers(image, mask, 0.5).ravel()
    expected = (values >= mean - 0.5 * sd) & (values <= mean + 0.5 * sd) & mask.ravel()
    np.testing.assert_array_equal(half, expected)
    with pytest.raises(ConfigError):
        resegment_range(image, mask, 5, 1)


# ---------------------------------------------------------------------------------------------
# PyRadiomics conventions: bin edges, normalisation, mask checks


def test_pyradiomics_bin_edges_closed_forms() -> None:
    # edges from floor(min / W) W to below max + 2W (PyRadiomics' docstring example omits 200)
    assert pyradiomics_bin_edges([54, 166], binWidth=25).tolist() == [
        50,
        75,
        100,
        125,
        150,
        175,
        200,
    ]
    # the maximum on an edge opens its own bin (half-open bins)
    assert pyradiomics_bin_edges([0.0, 50.0], binWidth=25).tolist() == [0, 25, 50, 75]
    # negative values: floor towards minus infinity
    assert pyradiomics_bin_edges([-26.0, -1.0], binWidth=25).tolist() == [-50, -25, 0, 25]
    # flat ROI on a multiple of the width: one bin starting at it
    assert pyradiomics_bin_edges([50.0, 50.0], binWidth=25).tolist() == [50, 75]
    # fixed bin count: numpy.histogram edges, last one raised by 1
    np.testing.assert_allclose(pyradiomics_bin_edges([0.0, 10.0], binCount=4), [0, 2.5, 5, 7.5, 11])
    with pytest.raises(ConfigError):
        pyradiomics_bin_edges([1.0], binWidth=0)
    with pytest.raises(ConfigError):
        pyradiomics_bin_edges([1.0], binCount=0)
    with pytest.raises(EmptyRoiError):
        pyradiomics_bin_edges([], binWidth=1)


def test_pyradiomics_normalization_closed_form() -> None:
    rng = np.random.default_rng(4)
    image = rng.normal(30.0, 7.0, (4, 5, 6))
    norm = pyradiomics_normalization(image, normalizeScale=10, removeOutliers=1.5)
    assert norm.mean == pytest.approx(image.mean(), rel=1e-12)
    assert norm.sigma == pytest.approx(image.std(ddof=1), rel=1e-12)  # sample SD
    z = (image - image.mean()) / image.std(ddof=1)
    np.testing.assert_allclose(norm.apply(image), 10 * np.clip(z, -1.5, 1.5), rtol=1e-12)
    assert Normalization(1.0, 2.0).apply([5.0]).tolist() == [2.0]
    with pytest.raises(InputError, match="constant"):
        pyradiomics_normalization(np.ones((2, 2, 2)))
    with pytest.raises(ConfigError):
        pyradiomics_normalization(image, normalizeScale=0)


def test_prepare_applies_normalization_lazily() -> None:
    rng = np.random.default_rng(5)
    image = rng.normal(30.0, 7.0, (6, 7, 8)).astype(np.float32)
    mask = np.zeros(image.shape, np.uint8)
    mask[2:4, 2:5, 3:6] = 1
    prep = pyradiomics_prepare(image, mask, (1, 1, 1), normalize=True, normalizeScale=100)
    assert prep.image.dtype == np.float32  # the input, untouched
    whole = (
        100
        * (image.astype(np.float64) - image.astype(np.float64).mean())
        / image.astype(np.float64).std(ddof=1)
    )
    np.testing.assert_allclose(prep.values(), whole[prep.bbox], rtol=1e-9)
    assert prep.max_abs() == pytest.approx(np.abs(whole).max(), rel=1e-9)
    assert prep.bbox == roi_bbox(mask)


def test_check_roi_rules() -> None:
    mask = np.zeros((4, 4, 4), bool)
    mask[1, 1, 1:4] = True  # a line: 1 dimension
    assert check_roi(mask, minimumROIDimensions=1) == (slice(1, 2), slice(1, 2), slice(1, 4))
    with pytest.raises(InputError, match="dimensions"):
        check_roi(mask)
    with pytest.raises(InputError, match="too small"):
        check_roi(mask, minimumROIDimensions=1, minimumROISize=3)
    mask[:] = False
    mask[2, 2, 2] = True
    with pytest.raises(InputError, match="single voxel"):
        check_roi(mask, minimumROIDimensions=1)
    with pytest.raises(EmptyRoiError):
        check_roi(np.zeros((2, 2, 2), bool))
    with pytest.raises(ConfigError):
        check_roi(mask, minimumROIDimensions=4)


def test_prepare_label_and_settings_errors() -> None:
    image = np.zeros((3, 4, 5))
    mask = np.zeros((3, 4, 5), np.int16)
    mask[1, 1:3, 1:3] = 2
    assert pyradiomics_prepare(image, mask, (1, 1, 1), label=2).mask.sum() == 4
    with pytest.raises(EmptyRoiError, match="label 1"):
        pyradiomics_prepare(image, mask, (1, 1, 1))
    with pytest.raises(ConfigError, match="resegmentMode"):
        pyradiomics_prepare(
            image, mask, (1, 1, 1), label=2, resegmentRange=[0], resegmentMode="percent"
        )
    with pytest.raises(ConfigError, match="foo"):
        pyradiomics_prepare(image, mask, (1, 1, 1), foo=1)
    with pytest.raises(InputError, match="spacing"):
        pyradiomics_prepare(image, mask, (1, 1), label=2)
    with pytest.raises(InputError, match="integer labels"):
        pyradiomics_prepare(image, mask + 0.5, (1, 1, 1), label=2)
    with pytest.raises(ConfigError, match="interpolator"):
        pyradiomics_prepare(
            image, mask, (1, 1, 1), label=2, resampledPixelSpacing=[2, 2, 2], interpolator="cubic"
        )


def test_ibsi_resample_matches_map_coordinates() -> None:
    """The separable zoom-shift path equals scipy's general map_coordinates on the same grid."""
    rng = np.random.default_rng(8)
    image = ndi.gaussian_filter(rng.normal(size=(9, 11, 13)), 1.0)
    mask = np.ones(image.shape, bool)
    for order in (1, 3):
        out = ibsi_resample(image, mask, (2.0, 1.0, 0.8), (1.1, 0.7, 1.3), order=order)
        n_b, start, step = ibsi_grid(image.shape, (2.0, 1.0, 0.8), (1.1, 0.7, 1.3))
        coords = np.meshgrid(
            *[start[k] + step[k] * np.arange(n_b[k]) for k in range(3)], indexing="ij"
        )
        want = ndi.map_coordinates(image, coords, order=order, mode="nearest")
        np.testing.assert_allclose(out.image, want, rtol=1e-9, atol=1e-12)
