"""Bayes threshold, segmentation, two-class EM and genotype posteriors against independent oracles.

Oracles: numerical minimisation of the Bayes error (scipy.optimize), scikit-learn's tied-covariance
GaussianMixture, Monte Carlo frequencies, and an explicit Gaussian likelihood-ratio computation.
"""

from __future__ import annotations

import math
from typing import Any

import dask.array as da
import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import optimize, stats
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.linear_model import LogisticRegression
from sklearn.mixture import GaussianMixture

from radgen.analysis.bayes import (
    TwoClassFit,
    fit_two_class,
    optimal_threshold,
    posterior,
    posterior_from_model,
    segment,
)
from radgen.errors import EmptyRoiError, InputError


def bayes_error(t: float, mu_t: float, mu_n: float, sigma: float, p: float) -> float:
    """Misclassification rate of the rule 'tumour on the tumour side of t'."""
    if mu_t > mu_n:
        return p * stats.norm.cdf((t - mu_t) / sigma) + (1 - p) * stats.norm.sf((t - mu_n) / sigma)
    return p * stats.norm.sf((t - mu_t) / sigma) + (1 - p) * stats.norm.cdf((t - mu_n) / sigma)


# ---------------------------------------------------------------- optimal_threshold


def test_threshold_closed_form_values() -> None:
    assert optimal_threshold(100.0, 60.0, 10.0, 0.5) == 80.0
    assert optimal_threshold(100.0, 60.0, 10.0, 0.2) == pytest.approx(80.0 + 2.5 * math.log(4.0))
    # tumour darker (e.g. ADC): a rarer tumour moves the cut towards the tumour mean (down)
    assert optimal_threshold(60.0, 100.0, 10.0, 0.2) == pytest.approx(80.0 - 2.5 * math.log(4.0))


@given(
    st.floats(-100, 100),
    st.floats(1.0, 8.0),
    st.sampled_from([-1.0, 1.0]),
    st.floats(0.5, 20.0),
    st.floats(0.02, 0.98),
)
@settings(max_examples=50, deadline=None)
def test_threshold_minimises_the_bayes_error(
    mu_n: float, gap: float, sign: float, sigma: float, p: float
) -> None:
    mu_t = mu_n + sign * gap * sigma  # separation >= 1 sigma keeps the optimum within 4 sigma
    t = optimal_threshold(mu_t, mu_n, sigma, p)
    lo, hi = min(mu_t, mu_n) - 10 * sigma, max(mu_t, mu_n) + 10 * sigma
    res = optimize.minimize_scalar(
        bayes_error,
        bounds=(lo, hi),
        args=(mu_t, mu_n, sigma, p),
        method="bounded",
        options={"xatol": 1e-9 * sigma},
    )
    assert t == pytest.approx(res.x, abs=1e-4 * sigma)
    assert bayes_error(t, mu_t, mu_n, sigma, p) <= res.fun + 1e-12
    # at the optimum the weighted class densities are equal
    assert p * stats.norm.pdf(t, mu_t, sigma) == pytest.approx(
        (1 - p) * stats.norm.pdf(t, mu_n, sigma), rel=1e-9
    )


@pytest.mark.parametrize(
    ("args", "where", "words"),
    [
        ((100.0, 60.0, 10.0, 0.0), "purity", "strictly between 0 and 1"),
        ((100.0, 60.0, 10.0, 1.0), "purity", "strictly between 0 and 1"),
        ((100.0, 60.0, 10.0, 1.5), "purity", "strictly between 0 and 1"),
        ((100.0, 60.0, 10.0, math.nan), "purity", "finite"),
        ((80.0, 80.0, 10.0, 0.3), "mu_t", "cannot be told apart"),
        ((100.0, 60.0, 0.0, 0.3), "sigma", "> 0"),
        ((100.0, 60.0, -2.0, 0.3), "sigma", "> 0"),
        ((math.inf, 60.0, 10.0, 0.3), "mu_t", "finite"),
    ],
)
def test_threshold_rejects_degenerate_inputs(
    args: tuple[float, float, float, float], where: str, words: str
) -> None:
    with pytest.raises(InputError) as info:
        optimal_threshold(*args)
    assert info.value.path == where
    assert words in info.value.reason


# ---------------------------------------------------------------- segment


def planted_image(
    n: int, mu_t: float, mu_n: float, sigma: float, p: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    truth = rng.random(n) < p
    values = np.where(truth, rng.normal(mu_t, sigma, n), rng.normal(mu_n, sigma, n))
    return values, truth


@pytest.mark.parametrize(("mu_t", "mu_n"), [(100.0, 60.0), (60.0, 100.0)])
def test_segment_error_rate_matches_bayes_error(mu_t: float, mu_n: float) -> None:
    n, sigma, p = 200_000, 15.0, 0.15
    values, truth = planted_image(n, mu_t, mu_n, sigma, p, seed=3)
    labels = segment(values, mu_t, mu_n, sigma, p)
    assert labels.dtype == bool
    assert labels.shape == values.shape
    expected = bayes_error(optimal_threshold(mu_t, mu_n, sigma, p), mu_t, mu_n, sigma, p)
    observed = float(np.mean(labels != truth))
    se = math.sqrt(expected * (1 - expected) / n)
    assert abs(observed - expected) < 4 * se
    # the prior matters: the midpoint cut (purity ignored) misclassifies more voxels
    midpoint = segment(values, mu_t, mu_n, sigma, 0.5)
    assert float(np.mean(midpoint != truth)) > observed + 4 * se


def test_segment_marks_nan_voxels_normal_and_keeps_shape() -> None:
    image = np.array([[np.nan, 79.0], [81.0, 200.0]])
    got = segment(image, 100.0, 60.0, 10.0, 0.5)
    assert got.tolist() == [[False, False], [True, True]]


def test_segment_on_dask_stays_lazy_and_matches_numpy() -> None:
    rng = np.random.default_rng(0)
    data = rng.normal(80.0, 25.0, size=(8, 12, 10))
    calls = {"n": 0}

    def load(block: np.ndarray) -> np.ndarray:
        calls["n"] += block.size > 0  # dask may probe with an empty block for metadata
        return block

    lazy = da.from_array(data, chunks=(4, 6, 5)).map_blocks(load, dtype=float)
    got = segment(lazy, 60.0, 100.0, 12.0, 0.3)
    assert isinstance(got, da.Array)
    assert calls["n"] == 0, "segment computed its input"
    assert got.chunks == lazy.chunks
    assert got.dtype == bool
    np.testing.assert_array_equal(got.compute(), segment(data, 60.0, 100.0, 12.0, 0.3))
    assert calls["n"] == 8  # one call per chunk


def test_segment_keeps_xarray_coordinates() -> None:
    arr = xr.DataArray(
        np.array([[50.0, 90.0], [70.0, 95.0]]),
        dims=("y", "x"),
        coords={"y": [0.0, 0.7], "x": [0.0, 0.7]},
    )
    got = segment(arr, 100.0, 60.0, 10.0, 0.5)
    assert isinstance(got, xr.DataArray)
    assert got.dims == ("y", "x")
    assert got["x"].values.tolist() == [0.0, 0.7]
    assert got.values.tolist() == [[False, True], [False, True]]


def test_segment_refuses_bad_parameters_and_text() -> None:
    with pytest.raises(InputError, match="purity"):
        segment(np.zeros(3), 1.0, 0.0, 1.0, 1.0)
    with pytest.raises(InputError, match="numeric"):
        segment(np.array(["a", "b"]), 1.0, 0.0, 1.0, 0.5)


# ---------------------------------------------------------------- fit_two_class


def sklearn_tied(x: np.ndarray) -> tuple[float, float, float, float]:
    gm = GaussianMixture(2, covariance_type="tied", tol=1e-10, max_iter=2000, random_state=0)
    gm.fit(x[:, None])
    hi = int(np.argmax(gm.means_.ravel()))
    return (
        float(gm.means_.ravel()[hi]),
        float(gm.means_.ravel()[1 - hi]),
        float(math.sqrt(gm.covariances_.ravel()[0])),
        float(gm.weights_[hi]),
    )


def test_fit_agrees_with_sklearn_tied_gaussian_mixture() -> None:
    values, _ = planted_image(20_000, 100.0, 60.0, 10.0, 0.3, seed=1)
    fit = fit_two_class(values)
    assert isinstance(fit, TwoClassFit)
    assert fit.converged
    assert fit.n_voxels == 20_000
    mu_t, mu_n, sigma, w = sklearn_tied(values)
    assert fit.mu_t == pytest.approx(mu_t, rel=1e-5)
    assert fit.mu_n == pytest.approx(mu_n, rel=1e-5)
    assert fit.sigma == pytest.approx(sigma, rel=1e-5)
    assert fit.purity == pytest.approx(w, rel=1e-4)
    assert fit.separation == pytest.approx((fit.mu_t - fit.mu_n) / fit.sigma)
    assert fit.threshold() == optimal_threshold(fit.mu_t, fit.mu_n, fit.sigma, fit.purity)


def test_fit_recovers_planted_parameters_within_monte_carlo_error() -> None:
    truth = np.array([100.0, 70.0, 10.0, 0.35])  # mu_t, mu_n, sigma, purity: separation 3
    reps = np.array(
        [
            [
                (f := fit_two_class(planted_image(3000, 100.0, 70.0, 10.0, 0.35, s)[0])).mu_t,
                f.mu_n,
                f.sigma,
                f.purity,
            ]
            for s in range(24)
        ]
    )
    spread = reps.std(axis=0, ddof=1)
    # unbiased: the mean of 24 fits is within 4 standard errors of the truth ...
    assert np.all(np.abs(reps.mean(axis=0) - truth) < 4 * spread / math.sqrt(len(reps)))
    # ... and each fit is within 4 of its own standard deviations (a loose sanity bound too)
    assert np.all(np.abs(reps - truth) < 4 * spread)
    assert np.all(spread < np.array([1.5, 1.0, 0.6, 0.03]))


def test_fit_uses_only_roi_voxels_and_tumour_side() -> None:
    values, truth = planted_image(8000, 40.0, 90.0, 8.0, 0.4, seed=5)  # tumour darker
    image = np.concatenate([values, np.full(500, 1e4)]).reshape(-1, 100)
    roi = np.concatenate([np.ones(8000, bool), np.zeros(500, bool)]).reshape(-1, 100)
    fit = fit_two_class(image, roi, tumour="lower")
    assert fit.n_voxels == 8000
    assert fit.mu_t == pytest.approx(40.0, abs=1.0)
    assert fit.mu_n == pytest.approx(90.0, abs=1.0)
    assert fit.purity == pytest.approx(0.4, abs=0.03)
    labels = segment(values, fit.mu_t, fit.mu_n, fit.sigma, fit.purity)
    expected = bayes_error(optimal_threshold(40.0, 90.0, 8.0, 0.4), 40.0, 90.0, 8.0, 0.4)
    assert float(np.mean(labels != truth)) < expected + 4 * math.sqrt(expected / 8000) + 0.002


def test_fit_says_when_classes_cannot_be_separated() -> None:
    one_class = np.random.default_rng(2).normal(50.0, 5.0, 5000)
    with pytest.raises(InputError, match="cannot be separated"):
        fit_two_class(one_class)
    values, _ = planted_image(5000, 100.0, 60.0, 10.0, 0.3, seed=4)
    with pytest.raises(InputError, match="overlap too much"):
        fit_two_class(values, min_separation=6.0)


@pytest.mark.parametrize(
    ("image", "roi", "error", "words"),
    [
        (np.ones((3, 3)), np.zeros((3, 3), bool), EmptyRoiError, "no voxel"),
        (np.ones((3, 3)), np.ones((2, 3), bool), InputError, "shape"),
        (np.full(50, 7.0), None, InputError, "same value"),
        (np.r_[np.arange(20.0), np.nan], None, InputError, "NaN"),
        (np.arange(5.0), None, InputError, "at least 10"),
    ],
)
def test_fit_rejects_bad_rois(image: Any, roi: Any, error: type[Exception], words: str) -> None:
    with pytest.raises(error, match=words):
        fit_two_class(image, roi)


# ---------------------------------------------------------------- posterior


def test_posterior_closed_form_and_broadcasting() -> None:
    assert float(posterior(0.01, 0.9, 0.05)) == pytest.approx(0.009 / (0.009 + 0.99 * 0.05))
    got = posterior([[0.1], [0.5]], [0.8, 0.6], 0.2)
    assert got.shape == (2, 2)
    odds = got / (1 - got)
    prior_odds = np.array([[0.1 / 0.9], [1.0]])
    np.testing.assert_allclose(odds, prior_odds * np.array([0.8, 0.6]) / 0.2)
    assert posterior(0.0, 0.5, 0.5) == 0.0
    assert posterior(1.0, 0.5, 0.5) == 1.0
    assert posterior(0.3, 0.0, 0.4) == 0.0


@given(st.floats(0.05, 0.95), st.floats(0.05, 0.95), st.floats(0.05, 0.95))
@settings(max_examples=20, deadline=None)
def test_posterior_matches_monte_carlo_frequency(prior: float, a: float, b: float) -> None:
    rng = np.random.default_rng(11)
    n = 100_000
    g = rng.random(n) < prior
    f = rng.random(n) < np.where(g, a, b)
    freq = float(g[f].mean())
    p = float(posterior(prior, a, b))
    assert abs(freq - p) < 4 * math.sqrt(p * (1 - p) / f.sum()) + 1e-9


def test_posterior_errors_are_clear() -> None:
    with pytest.raises(InputError, match="outside"):
        posterior(1.2, 0.5, 0.5)
    with pytest.raises(InputError, match="outside"):
        posterior(0.5, [0.5, np.nan], 0.5)
    with pytest.raises(InputError, match="impossible under both"):
        posterior(0.5, [0.5, 0.0], [0.5, 0.0])
    with pytest.raises(InputError, match="broadcast"):
        posterior([0.1, 0.2], [0.5, 0.5, 0.5], 0.5)


# ---------------------------------------------------------------- posterior_from_model

MU1, MU0 = np.array([1.0, 0.5]), np.array([-0.5, 0.0])  # unit-covariance Gaussians


def explicit_posterior(x: np.ndarray, prevalence: float) -> np.ndarray:
    """P(G | x) for x | G ~ N(MU1, I), x | not G ~ N(MU0, I) at prior `prevalence`."""
    lr = np.exp(stats.multivariate_normal(MU1).logpdf(x) - stats.multivariate_normal(MU0).logpdf(x))
    return prevalence * lr / (prevalence * lr + 1 - prevalence)


class ExactModel:
    """The Bayes classifier of the planted model, calibrated at a training prevalence."""

    classes_ = np.array(["wt", "mut"])

    def __init__(self, training_prevalence: float) -> None:
        self.pi = training_prevalence

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        q = explicit_posterior(np.asarray(x), self.pi)
        return np.column_stack([1 - q, q])


def test_prior_shift_is_exact_for_the_bayes_classifier() -> None:
    x = np.random.default_rng(0).normal(size=(300, 2)) * 2
    for pi_train in (0.5, 0.3):
        got = posterior_from_model(ExactModel(pi_train), x, 0.08, pi_train)
        np.testing.assert_allclose(got, explicit_posterior(x, 0.08), rtol=1e-9, atol=1e-12)
    # the other class as positive: P(wt | x) at a wild-type prevalence of 0.92
    got = posterior_from_model(ExactModel(0.5), x, 0.92, 0.5, positive_class="wt")
    np.testing.assert_allclose(got, 1 - explicit_posterior(x, 0.08), rtol=1e-9, atol=1e-12)


def test_prior_shift_on_a_fitted_lda_recovers_the_planted_posterior() -> None:
    rng = np.random.default_rng(1)
    n = 20_000
    y = rng.random(n) < 0.5  # balanced training set
    x = np.where(y[:, None], MU1, MU0) + rng.normal(size=(n, 2))
    lda = LinearDiscriminantAnalysis().fit(x, y)
    test = rng.normal(size=(500, 2))
    got = posterior_from_model(lda, test, prevalence=0.1)  # training prevalence from priors_
    want = explicit_posterior(test, 0.1)
    assert np.max(np.abs(got - want)) < 0.02
    naive = lda.predict_proba(test)[:, 1]  # the uncorrected probabilities are far off
    assert np.max(np.abs(naive - want)) > 0.2


def test_posterior_from_model_errors() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=(60, 2))
    y = (x[:, 0] > 0).astype(int)
    logit = LogisticRegression().fit(x, y)
    with pytest.raises(InputError, match="training class balance"):
        posterior_from_model(logit, x, 0.1)
    assert posterior_from_model(logit, x, 0.1, 0.5).shape == (60,)
    with pytest.raises(InputError, match="strictly between"):
        posterior_from_model(logit, x, 1.0, 0.5)
    with pytest.raises(InputError, match="strictly between"):
        posterior_from_model(logit, x, 0.1, 0.0)
    three = LogisticRegression().fit(x, np.arange(60) % 3)
    with pytest.raises(InputError, match="binary"):
        posterior_from_model(three, x, 0.1, 0.5)
    with pytest.raises(InputError, match="predict_proba"):
        posterior_from_model(object(), x, 0.1, 0.5)
    with pytest.raises(InputError, match="not one of"):
        posterior_from_model(logit, x, 0.1, 0.5, positive_class="mut")
