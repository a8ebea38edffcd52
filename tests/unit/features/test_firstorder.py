"""Intensity statistics and histogram features against independent implementations.

Oracles: scipy.stats (moments, skewness, excess kurtosis), numpy (percentiles), closed forms.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import stats

from radgen.errors import EmptyRoiError
from radgen.features.firstorder import intensity_histogram, intensity_statistics

values = hnp.arrays(
    np.float64,
    st.integers(2, 200),
    elements=st.floats(-2000, 4000, allow_nan=False, allow_infinity=False),
)


@given(values)
@settings(max_examples=60, deadline=None)
def test_statistics_match_scipy_and_numpy(x: np.ndarray) -> None:
    got = intensity_statistics(x)
    assert got["stat.mean"] == pytest.approx(np.mean(x), rel=1e-9, abs=1e-9)
    assert got["stat.var"] == pytest.approx(np.var(x), rel=1e-9, abs=1e-6)
    if np.var(x) > 1e-6 * max(1.0, float(np.mean(x**2))):
        assert got["stat.skew"] == pytest.approx(stats.skew(x, bias=True), rel=1e-6, abs=1e-6)
        assert got["stat.kurt"] == pytest.approx(
            stats.kurtosis(x, fisher=True, bias=True), rel=1e-6, abs=1e-6
        )
    p10, p25, p50, p75, p90 = np.percentile(x, [10, 25, 50, 75, 90])
    assert got["stat.median"] == pytest.approx(p50)
    assert got["stat.P10"] == pytest.approx(p10)
    assert got["stat.P90"] == pytest.approx(p90)
    assert got["stat.iqr"] == pytest.approx(p75 - p25, abs=1e-9)
    assert got["stat.range"] == pytest.approx(np.ptp(x))
    assert got["stat.energy"] == pytest.approx(np.sum(x**2), rel=1e-12)
    assert got["stat.rms"] == pytest.approx(math.sqrt(np.mean(x**2)), rel=1e-12)
    assert got["stat.medad"] == pytest.approx(np.mean(np.abs(x - p50)), rel=1e-9, abs=1e-9)


@given(values, st.floats(-500, 500))
@settings(max_examples=40, deadline=None)
def test_spread_is_shift_invariant(x: np.ndarray, shift: float) -> None:
    a, b = intensity_statistics(x), intensity_statistics(x + shift)
    for tag in ("stat.var", "stat.iqr", "stat.range", "stat.mad", "stat.medad"):
        assert b[tag] == pytest.approx(a[tag], rel=1e-6, abs=1e-4)


def test_constant_roi_has_zero_skew_and_kurtosis() -> None:
    got = intensity_statistics(np.full(10, 7.0))
    assert (got["stat.var"], got["stat.skew"], got["stat.kurt"]) == (0.0, 0.0, 0.0)
    assert got["stat.cov"] == 0.0


def test_closed_forms_on_a_small_vector() -> None:
    # x = 1..4: mean 2.5, population variance 1.25, MAD 1, energy 30, qcod (3.25-1.75)/(3.25+1.75).
    got = intensity_statistics([1.0, 2.0, 3.0, 4.0])
    assert got["stat.mean"] == 2.5
    assert got["stat.var"] == 1.25
    assert got["stat.mad"] == 1.0
    assert got["stat.energy"] == 30.0
    assert got["stat.qcod"] == pytest.approx(1.5 / 5.0)
    assert got["stat.cov"] == pytest.approx(math.sqrt(1.25) / 2.5)


def test_robust_mad_uses_values_between_p10_and_p90() -> None:
    x = np.arange(1.0, 12.0)  # P10 = 2, P90 = 10 -> robust set 2..10, mean 6, mean |dev| = 20/9
    assert intensity_statistics(x)["stat.rmad"] == pytest.approx(20 / 9)


def test_histogram_entropy_uniformity_and_gradients() -> None:
    levels = np.array([1, 1, 1, 1, 2, 2, 4])  # counts [4, 2, 0, 1] over bins 1..4
    got = intensity_histogram(levels)
    p = np.array([4, 2, 1]) / 7
    assert got["ih.entropy"] == pytest.approx(-np.sum(p * np.log2(p)))
    assert got["ih.uniformity"] == pytest.approx(np.sum(p**2))
    # gradient: [2-4, (0-4)/2, (1-2)/2, 1-0] = [-2, -2, -0.5, 1]
    assert got["ih.max.grad"] == 1.0
    assert got["ih.max.grad.gl"] == 4.0
    assert got["ih.min.grad"] == -2.0
    assert got["ih.min.grad.gl"] == 1.0
    assert got["ih.mode"] == 1.0


def test_histogram_mode_tie_takes_the_bin_closest_to_the_mean() -> None:
    # counts: level 1 -> 2, level 5 -> 2, level 4 -> 1; mean 3.2: 4 is not a mode, 5 is closer than 1.
    assert intensity_histogram([1, 1, 5, 5, 4])["ih.mode"] == 5.0


def test_empty_roi_is_an_error() -> None:
    with pytest.raises(EmptyRoiError, match="no voxel"):
        intensity_statistics(np.array([]))
    with pytest.raises(EmptyRoiError, match="no voxel"):
        intensity_histogram(np.array([], dtype=int))


def test_histogram_rejects_levels_below_one() -> None:
    with pytest.raises(ValueError, match="grey levels"):
        intensity_histogram([0, 1, 2])


def test_coefficient_of_variation_is_nan_only_for_a_mean_at_rounding_level() -> None:
    x = np.array([-1.0, 1.0, -2.0, 2.0, 1e-17])  # mean 2e-18: rounding noise of the sum
    assert math.isnan(intensity_statistics(x)["stat.cov"])
    y = np.array([-1.0, 1.0, -2.0, 2.0, 1e-3])  # a small but real mean
    expected = float(np.std(y) / np.mean(y))
    assert intensity_statistics(y)["stat.cov"] == pytest.approx(expected, rel=1e-12)
