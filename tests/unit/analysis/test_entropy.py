"""Entropy calibration against closed forms and scipy.

Oracles: scipy.stats.entropy of histogram counts (discrete), scipy.stats.differential_entropy
(Vasicek, same window rule), the closed-form differential entropies of the normal, uniform and
exponential laws, and exact bin probabilities from their CDFs.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import stats

from radgen.analysis.entropy import (
    bin_width_for_entropy,
    differential_entropy,
    discrete_entropy,
    vasicek_window,
)
from radgen.errors import InputError

values = hnp.arrays(
    np.float64,
    st.integers(1, 300),
    elements=st.floats(-1000, 1000, allow_nan=False, allow_infinity=False),
)


@given(values, st.floats(0.01, 200.0))
@settings(max_examples=50, deadline=None)
def test_discrete_entropy_matches_scipy_on_histogram_counts(x: np.ndarray, w: float) -> None:
    got = discrete_entropy(x, w)
    bins = np.floor((x - x.min()) / w).astype(np.int64)
    counts = np.bincount(bins - bins.min())
    assert got == pytest.approx(stats.entropy(counts[counts > 0]), abs=1e-12)
    assert 0.0 <= got <= math.log(x.size) + 1e-12


def test_discrete_entropy_closed_forms_and_origin() -> None:
    assert discrete_entropy([3.0] * 10, 1.0) == 0.0
    assert discrete_entropy(np.arange(8.0), 1.0) == pytest.approx(math.log(8))
    assert discrete_entropy(np.arange(8.0), 2.0) == pytest.approx(math.log(4))
    # origin moves the bin edges: {0.5, 1.5} share bin [0, 2) from 0, but not from 1
    assert discrete_entropy([0.5, 1.5], 2.0, origin=0.0) == 0.0
    assert discrete_entropy([0.5, 1.5], 2.0, origin=1.0) == pytest.approx(math.log(2))


@given(values, st.floats(-500, 500))
@settings(max_examples=30, deadline=None)
def test_discrete_entropy_is_shift_invariant_with_the_default_origin(
    x: np.ndarray, shift: float
) -> None:
    # shifting by whole bins keeps every value in the corresponding bin exactly
    w = 0.5
    assert discrete_entropy(x + w * round(shift), w) == pytest.approx(discrete_entropy(x, w))


@pytest.mark.parametrize(
    ("args", "where", "words"),
    [
        (([], 1.0), "values", "empty"),
        (([1.0, np.nan], 1.0), "values", "NaN"),
        (([1.0, 2.0], 0.0), "width", "positive"),
        (([1.0, 2.0], -1.0), "width", "positive"),
        (([1.0, 2.0], math.inf), "width", "positive"),
    ],
)
def test_discrete_entropy_errors(args: tuple[object, float], where: str, words: str) -> None:
    with pytest.raises(InputError) as info:
        discrete_entropy(*args)  # type: ignore[arg-type]
    assert info.value.path == where
    assert words in info.value.reason


@given(st.integers(5, 2000), st.integers(0, 2**31))
@settings(max_examples=30, deadline=None)
def test_vasicek_matches_scipy(n: int, seed: int) -> None:
    x = np.random.default_rng(seed).standard_t(3, n)
    assert vasicek_window(n) == math.floor(math.sqrt(n) + 0.5)
    want = stats.differential_entropy(x, method="vasicek")
    assert differential_entropy(x) == pytest.approx(want, rel=1e-12, abs=1e-12)
    m = max(1, vasicek_window(n) // 2)
    want_m = stats.differential_entropy(x, window_length=m, method="vasicek")
    assert differential_entropy(x, window=m) == pytest.approx(want_m, rel=1e-12, abs=1e-12)


LAWS: list[tuple[str, Callable[[np.random.Generator, int], np.ndarray], float, float]] = [
    # name, sampler, h in closed form, Var(ln f(X)) (the estimator's asymptotic variance x n)
    ("normal", lambda r, n: r.normal(3.0, 2.0, n), 0.5 * math.log(2 * math.pi * math.e * 4), 0.5),
    ("uniform", lambda r, n: r.uniform(1.0, 4.0, n), math.log(3.0), 0.0),
    ("exponential", lambda r, n: r.exponential(0.5, n), 1.0 - math.log(2.0), 1.0),
]


@pytest.mark.parametrize(("name", "sample", "h", "var"), LAWS, ids=[law[0] for law in LAWS])
def test_vasicek_recovers_closed_form_entropies(
    name: str, sample: Callable[[np.random.Generator, int], np.ndarray], h: float, var: float
) -> None:
    n = 20_000
    m = vasicek_window(n)
    est = differential_entropy(sample(np.random.default_rng(1), n))
    # sampling error (4 asymptotic SE) + the estimator's O(m / n) downward bias at the tails
    assert abs(est - h) < 4 * math.sqrt(var / n) + 2 * m / n


def test_vasicek_errors() -> None:
    with pytest.raises(InputError, match="at least 5 values"):
        differential_entropy([1.0, 2.0, 3.0, 4.0])
    with pytest.raises(InputError, match="window"):
        differential_entropy(np.arange(10.0), window=5)
    with pytest.raises(InputError, match="look discrete"):
        differential_entropy(np.repeat(np.arange(4.0), 30))  # binned values: ties span windows
    with pytest.raises(InputError, match="NaN"):
        differential_entropy([1.0, 2.0, np.inf, 3.0, 4.0, 5.0])


def exact_binned_entropy(
    cdf: Callable[[np.ndarray], np.ndarray], w: float, lo: float, hi: float
) -> float:
    """H(Q) of floor(Z / w) from the law's CDF, summed over bins covering [lo, hi]."""
    edges = np.arange(math.floor(lo / w), math.ceil(hi / w) + 1) * w
    p = np.diff(cdf(edges))
    p = p[p > 0]
    return float(-np.sum(p * np.log(p)))


@pytest.mark.parametrize(
    ("law", "h", "lo", "hi"),
    [
        (stats.norm(0.0, 1.5), 0.5 * math.log(2 * math.pi * math.e * 1.5**2), -15.0, 15.0),
        (stats.expon(scale=2.0), 1.0 + math.log(2.0), 0.0, 80.0),
    ],
    ids=["normal", "exponential"],
)
def test_binned_entropy_approaches_h_minus_log_w(
    law: stats.rv_continuous, h: float, lo: float, hi: float
) -> None:
    widths = [2.0, 1.0, 0.5, 0.25, 0.125]
    exact = [exact_binned_entropy(law.cdf, w, lo, hi) for w in widths]
    errors = [abs(hq + math.log(w) - h) for hq, w in zip(exact, widths, strict=True)]
    assert all(b < a for a, b in itertools.pairwise(errors)), errors
    assert errors[-1] < 0.01
    # discrete_entropy on a quantile sample of the law reproduces the exact H(Q) at each width
    n = 200_000
    x = law.ppf((np.arange(n) + 0.5) / n)
    for w, hq in zip(widths, exact, strict=True):
        assert discrete_entropy(x, w, origin=0.0) == pytest.approx(hq, abs=5e-3)


def test_bin_width_for_entropy_hits_the_target() -> None:
    x = np.random.default_rng(4).normal(100.0, 20.0, 20_000)
    for target in (2.0, 3.0, 4.0):
        w = bin_width_for_entropy(x, target)
        assert w == pytest.approx(math.exp(differential_entropy(x) - target))
        assert discrete_entropy(x, w) == pytest.approx(target, abs=0.03)
    # doubling the intensity scale doubles the width (h grows by ln 2)
    assert bin_width_for_entropy(2 * x, 3.0) == pytest.approx(2 * bin_width_for_entropy(x, 3.0))


def test_bin_width_for_entropy_errors() -> None:
    x = np.random.default_rng(0).normal(size=100)
    with pytest.raises(InputError, match=r"ln\(n\)"):
        bin_width_for_entropy(x, math.log(100))
    with pytest.raises(InputError, match=r"ln\(n\)"):
        bin_width_for_entropy(x, 0.0)
    with pytest.raises(InputError, match="empty"):
        bin_width_for_entropy([], 1.0)
