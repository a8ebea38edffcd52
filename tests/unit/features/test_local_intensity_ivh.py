"""Local intensity peaks and the intensity-volume histogram against brute-force oracles.

Oracles: an explicit loop over every (ROI voxel, image voxel) pair for the sphere means, and an
explicit enumeration of the IVH grid for the volume and intensity fractions (IBSI 3.2, 3.5).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from radgen.errors import ConfigError, EmptyRoiError, InputError
from radgen.features.discretize import fixed_bin_number
from radgen.features.ivh import ivh
from radgen.features.local_intensity import (
    PEAK_RADIUS_MM,
    local_intensity,
    local_intensity_margin,
)

images = hnp.arrays(
    np.float64,
    st.tuples(*(st.integers(1, 7) for _ in range(3))),
    elements=st.floats(-1000, 3000, allow_nan=False, width=32),
)
spacings = st.tuples(*(st.floats(0.8, 5.0) for _ in range(3)))


def _brute_peaks(image: np.ndarray, mask: np.ndarray, spacing: tuple) -> tuple[float, float]:
    s = np.asarray(spacing)
    every = np.argwhere(np.ones(image.shape, bool))
    values = image.ravel()  # C order, as argwhere lists the voxels
    means = {}
    for centre in map(tuple, np.argwhere(mask)):
        inside = np.sum(((every - np.array(centre)) * s) ** 2, axis=1) <= PEAK_RADIUS_MM**2
        means[centre] = float(np.sum(values[inside])) / int(np.sum(inside))
    top = image[mask].max()
    local = max(v for c, v in means.items() if image[c] == top)
    return local, max(means.values())


def test_radius_is_that_of_one_cubic_centimetre() -> None:
    assert 4 / 3 * math.pi * PEAK_RADIUS_MM**3 == pytest.approx(1000.0)
    assert abs(PEAK_RADIUS_MM - 6.2035) < 1e-4


@given(images, st.data(), spacings)
@settings(max_examples=40, deadline=None)
def test_peaks_match_brute_force(image: np.ndarray, data: st.DataObject, spacing: tuple) -> None:
    mask = data.draw(hnp.arrays(bool, image.shape))
    if not mask.any():
        return
    got = local_intensity(image, mask, spacing)
    local, glob = _brute_peaks(image, mask, spacing)
    assert got["loc.peak.local"] == pytest.approx(local, rel=1e-12, abs=1e-9)
    assert got["loc.peak.global"] == pytest.approx(glob, rel=1e-12, abs=1e-9)


def test_peaks_use_intensities_outside_the_roi_and_ties_take_the_largest() -> None:
    image = np.zeros((1, 1, 7))
    image[0, 0, [1, 5]] = 10.0  # two maxima
    image[0, 0, 6] = 100.0  # outside the ROI, next to the second maximum
    mask = np.zeros(image.shape, bool)
    mask[0, 0, :6] = True
    got = local_intensity(image, mask, (10.0, 10.0, 4.0))  # sphere: centre +-1 voxel along x
    assert got["loc.peak.local"] == pytest.approx((10 + 100) / 3)
    assert got["loc.peak.global"] == pytest.approx((10 + 100) / 3)


def test_margin_is_enough() -> None:
    rng = np.random.default_rng(0)
    spacing = (3.0, 1.5, 1.0)
    image = rng.normal(size=(20, 30, 30)) * 100
    mask = np.zeros(image.shape, bool)
    mask[8:12, 12:17, 11:18] = rng.random((4, 5, 7)) < 0.7
    full = local_intensity(image, mask, spacing)
    mz, my, mx = local_intensity_margin(spacing)
    assert (mz, my, mx) == (2, 4, 6)
    box = np.s_[8 - mz : 12 + mz, 12 - my : 17 + my, 11 - mx : 18 + mx]
    assert local_intensity(image[box], mask[box], spacing) == pytest.approx(full, rel=1e-12)
    short = np.s_[8:12, 12:17, 11:18]  # no margin: the spheres are clipped, values change
    assert local_intensity(image[short], mask[short], spacing) != pytest.approx(full)


def test_local_intensity_errors() -> None:
    with pytest.raises(EmptyRoiError):
        local_intensity(np.ones((2, 2, 2)), np.zeros((2, 2, 2), bool), (1, 1, 1))
    with pytest.raises(InputError):
        local_intensity(np.ones((2, 2, 2)), np.ones((2, 2, 1), bool), (1, 1, 1))
    with pytest.raises(InputError):
        local_intensity(np.full((2, 2, 2), np.nan), np.ones((2, 2, 2), bool), (1, 1, 1))
    with pytest.raises(InputError):
        local_intensity(np.ones((2, 2, 2)), np.ones((2, 2, 2), bool), (1, -1, 1))


def _ivh_oracle(x: np.ndarray, lo: float, hi: float, step: float) -> dict[str, float]:
    """Enumerate the grid lo, lo + step, ... (one step past hi) and read the IVH off it."""
    grid = [lo + k * step for k in range(round((hi - lo) / step) + 2)]
    nu = [float(np.mean(x >= g - 1e-9 * step)) for g in grid]
    i10 = min(g for g, v in zip(grid, nu, strict=True) if v <= 0.1 + 1e-12)
    i90 = min(g for g, v in zip(grid, nu, strict=True) if v <= 0.9 + 1e-12)
    if hi > lo:
        gamma = (x - lo) / (hi - lo)
        v10, v90 = float(np.mean(gamma >= 0.1 - 1e-12)), float(np.mean(gamma >= 0.9 - 1e-12))
    else:
        v10 = v90 = math.nan
    return {
        "ivh.V10": v10,
        "ivh.V90": v90,
        "ivh.I10": i10,
        "ivh.I90": i90,
        "ivh.V10minusV90": v10 - v90,
        "ivh.I10minusI90": i10 - i90,
    }


def _assert_same(got: dict[str, float], want: dict[str, float]) -> None:
    assert set(got) == set(want)
    for key, value in want.items():
        assert got[key] == pytest.approx(value, rel=1e-9, abs=1e-9, nan_ok=True), key


@given(hnp.arrays(np.int64, st.integers(1, 300), elements=st.integers(-50, 50)))
@settings(max_examples=60, deadline=None)
def test_discrete_ivh_matches_grid_enumeration(x: np.ndarray) -> None:
    _assert_same(ivh(x), _ivh_oracle(x.astype(float), float(x.min()), float(x.max()), 1.0))


@given(
    hnp.arrays(np.int64, st.integers(1, 200), elements=st.integers(0, 40)),
    st.sampled_from([0.5, 2.0, 2.5]),
)
@settings(max_examples=40, deadline=None)
def test_discrete_ivh_with_step_and_range(k: np.ndarray, step: float) -> None:
    x = -10.0 + step * k  # values on a grid of the given step
    got = ivh(x, bin_width=step, value_range=(-10.0, -10.0 + 45 * step))
    _assert_same(got, _ivh_oracle(x, -10.0, -10.0 + 45 * step, step))


@given(
    hnp.arrays(np.float64, st.integers(1, 200), elements=st.floats(-500, 500, width=32)),
    st.sampled_from([1.0, 2.5, 25.0]),
)
@settings(max_examples=40, deadline=None)
def test_fixed_bin_size_ivh_uses_bin_centres(x: np.ndarray, width: float) -> None:
    lo = -500.0
    centres = np.array([lo + (math.floor((v - lo) / width) + 0.5) * width for v in x])
    top = math.floor((x.max() - lo) / width) + 1
    want = _ivh_oracle(centres, lo + 0.5 * width, lo + (top - 0.5) * width, width)
    got = ivh(x, bin_width=width, value_range=(lo, float(x.max())), discretised=False)
    _assert_same(got, want)


@given(
    hnp.arrays(np.float64, st.integers(1, 200), elements=st.floats(-500, 500, width=32)),
    st.integers(1, 64),
)
@settings(max_examples=40, deadline=None)
def test_fixed_bin_number_ivh_is_in_grey_levels(x: np.ndarray, n: int) -> None:
    levels = fixed_bin_number(x, n).astype(float)
    want = _ivh_oracle(levels, 1.0, float(n), 1.0)
    _assert_same(ivh(x, n_bins=n, discretised=False), want)
    _assert_same(ivh(levels, n_bins=n), want)


def test_ivh_worked_example() -> None:
    # ROI 1,1,1,1,1,1,3,4,5,6: nu(6) = 0.1 so I10 = 6; nu(2) = 0.4 <= 0.9 < nu(1) so I90 = 2;
    # intensity fraction >= 0.1 means X >= 1.5: 4 of 10 voxels; >= 0.9 means X >= 5.5: 1.
    got = ivh([1, 1, 1, 1, 1, 1, 3, 4, 5, 6])
    assert got == pytest.approx(
        {
            "ivh.V10": 0.4,
            "ivh.V90": 0.1,
            "ivh.I10": 6.0,
            "ivh.I90": 2.0,
            "ivh.V10minusV90": 0.3,
            "ivh.I10minusI90": 4.0,
        }
    )


def test_constant_roi() -> None:
    got = ivh([7, 7, 7])
    assert math.isnan(got["ivh.V10"])
    assert math.isnan(got["ivh.V10minusV90"])
    assert got["ivh.I10"] == 8.0  # only X > 7 is in at most 10 % (or 90 %) of the volume
    assert got["ivh.I90"] == 8.0


def test_ivh_errors() -> None:
    with pytest.raises(EmptyRoiError):
        ivh([])
    with pytest.raises(ConfigError):
        ivh([1.0, 2.0], discretised=False)
    with pytest.raises(ConfigError):
        ivh([1.0, 2.0], bin_width=1.0, n_bins=4)
    with pytest.raises(ConfigError):
        ivh([1.0, 2.0], bin_width=0.0)
    with pytest.raises(InputError):
        ivh([1.0, 2.0], value_range=(1.5, 3.0))
    with pytest.raises(InputError):
        ivh([1.0, np.nan])
