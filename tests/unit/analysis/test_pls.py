"""PLS-SVD and PLS regression against scikit-learn (independent implementation) and planted truth."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.cross_decomposition import PLSSVD as SkPLSSVD
from sklearn.cross_decomposition import PLSRegression as SkPLSRegression

from radgen.analysis.pls import PLSSVD, PLSRegression
from radgen.errors import ConfigError, InputError

Arr = npt.NDArray[np.float64]


def regression_data(
    n: int, p: int, q: int, rng: np.random.Generator, *, rank: int = 2, noise: float = 1.0
) -> tuple[Arr, Arr, Arr]:
    """Y = X B + e with B of rank `rank`, X standard normal."""
    b = rng.normal(size=(p, rank)) @ rng.normal(size=(rank, q)) / np.sqrt(p)
    x = rng.normal(size=(n, p))
    return x, x @ b + noise * rng.normal(size=(n, q)), b


def same_up_to_sign(a: Arr, b: Arr, atol: float) -> bool:
    signs = np.sign((a * b).sum(axis=0))
    return bool(np.allclose(a, b * signs, atol=atol))


# -- PLS-SVD ----------------------------------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), k=st.integers(1, 3))
def test_pls_svd_matches_sklearn(seed: int, k: int) -> None:
    rng = np.random.default_rng(seed)
    x, y, _ = regression_data(40, 7, 5, rng)
    ours = PLSSVD(k).fit(x, y)
    sk = SkPLSSVD(k).fit(x, y)
    assert same_up_to_sign(ours.x_weights_, sk.x_weights_, 1e-8)
    assert same_up_to_sign(ours.y_weights_, sk.y_weights_, 1e-8)
    t_sk, s_sk = sk.transform(x, y)
    t, s = ours.transform(x, y)
    assert same_up_to_sign(t, t_sk, 1e-8)
    assert same_up_to_sign(s, s_sk, 1e-8)


def test_pls_svd_singular_values_are_the_score_covariances() -> None:
    rng = np.random.default_rng(0)
    x, y, _ = regression_data(60, 6, 4, rng)
    model = PLSSVD(3).fit(x, y)
    xs = (x - x.mean(0)) / x.std(0, ddof=1)
    ys = (y - y.mean(0)) / y.std(0, ddof=1)
    assert np.allclose(model.singular_values_, np.linalg.svd(xs.T @ ys, compute_uv=False)[:3])
    t, s = model.x_scores_, model.y_scores_
    cov = [np.cov(t[:, j], s[:, j])[0, 1] for j in range(3)]
    assert np.allclose(model.covariances_, cov)
    assert np.allclose(model.correlations_, [np.corrcoef(t[:, j], s[:, j])[0, 1] for j in range(3)])
    assert np.allclose(np.linalg.norm(model.x_weights_, axis=0), 1.0)


def test_pls_svd_planted_link_is_held_out_and_significant() -> None:
    rng = np.random.default_rng(1)
    z = rng.normal(size=(120, 1))
    x = z @ rng.normal(size=(1, 8)) + rng.normal(size=(120, 8))
    y = z @ rng.normal(size=(1, 6)) + rng.normal(size=(120, 6))
    model = PLSSVD(2).assess(x, y, n_permutations=49, seed=0)
    assert model.heldout_correlations_[0] > 0.6
    assert model.p_values_[0] == pytest.approx(1 / 50)
    # independent blocks: held-out correlation within sampling noise of 0
    null = PLSSVD(1).assess(rng.normal(size=(200, 8)), rng.normal(size=(200, 6)), n_permutations=19)
    assert abs(null.heldout_correlations_[0]) < 4 / np.sqrt(200)


# -- PLS regression ---------------------------------------------------------------------------


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), k=st.integers(1, 4))
def test_pls_regression_matches_sklearn(seed: int, k: int) -> None:
    rng = np.random.default_rng(seed)
    x, y, _ = regression_data(50, 8, 3, rng)
    ours = PLSRegression(k).fit(x, y)
    sk = SkPLSRegression(k, tol=1e-15, max_iter=100_000).fit(x, y)  # converged NIPALS
    assert np.allclose(ours.predict(x), sk.predict(x), atol=1e-6)
    assert np.allclose(ours.x_weights_, sk.x_weights_, atol=1e-6)
    assert np.allclose(ours.x_loadings_, sk.x_loadings_, atol=1e-6)
    assert np.allclose(ours.y_loadings_, sk.y_loadings_, atol=1e-6)
    assert np.allclose(ours.x_rotations_, sk.x_rotations_, atol=1e-5)
    coef = sk.coef_.T if sk.coef_.shape == (3, 8) else sk.coef_  # (q, p) in recent releases
    assert np.allclose(ours.coef_, coef, atol=1e-6)
    t_sk, u_sk = sk.transform(x, y)
    t, u = ours.transform(x, y)
    assert np.allclose(t, t_sk, atol=1e-5)
    assert np.allclose(u, u_sk, atol=1e-4)


def test_pls_regression_held_out_r2_matches_the_population_r2() -> None:
    rng = np.random.default_rng(2)
    noise = 1.0
    x, y, b = regression_data(2000, 10, 4, rng, noise=noise)
    model = PLSRegression(2).assess(x, y, n_permutations=9, seed=0)
    signal = (b**2).sum(axis=0)  # var(x b_j) for standard-normal x
    r2_population = float(np.mean(signal / (signal + noise**2)))  # columns are standardized
    assert model.heldout_r2_ == pytest.approx(r2_population, abs=0.03)
    assert model.p_values_[0] == pytest.approx(1 / 10)


def test_full_rank_pls_regression_is_ordinary_least_squares() -> None:
    rng = np.random.default_rng(3)
    x, y, _ = regression_data(40, 5, 2, rng)
    model = PLSRegression(5).fit(x, y)
    design = np.column_stack([np.ones(len(x)), x])
    beta = np.linalg.lstsq(design, y, rcond=None)[0]
    assert np.allclose(model.predict(x), design @ beta, atol=1e-8)


# -- edge cases -------------------------------------------------------------------------------


def test_collinear_x_runs_out_of_covariance_with_a_clear_error() -> None:
    rng = np.random.default_rng(4)
    col = rng.normal(size=(30, 1))
    x = np.hstack([col, 2 * col + 1])  # rank 1
    y = rng.normal(size=(30, 2))
    with pytest.raises(InputError, match="no covariance left"):
        PLSRegression(2).fit(x, y)
    assert PLSRegression(2, on_degenerate="ignore").fit(x, y).x_weights_.shape == (2, 1)
    with pytest.raises(InputError, match="rank below 2"):
        PLSSVD(2).fit(x, y)


@pytest.mark.parametrize("cls", [PLSSVD, PLSRegression])
def test_bad_input_is_a_clear_error(cls: type[PLSSVD] | type[PLSRegression]) -> None:
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(20, 4)), rng.normal(size=(20, 3))
    with pytest.raises(InputError, match="constant"):
        cls(1).fit(np.column_stack([x, np.ones(20)]), y)
    with pytest.raises(InputError, match="missing"):
        cls(1).fit(np.where(x > 2, np.nan, x), y)
    with pytest.raises(InputError, match="row counts"):
        cls(1).fit(x, y[:-1])
    with pytest.raises(InputError, match="at most"):
        cls(5).fit(x, y)
    with pytest.raises(ConfigError, match="n_components"):
        cls(0).fit(x, y)
    with pytest.raises(ConfigError, match="not fitted"):
        cls(1).transform(x)
    with pytest.raises(ConfigError, match="on_degenerate"):
        cls(1, on_degenerate="skip").fit(x, y)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="columns"):
        cls(1).fit(x, y).transform(x[:, :3])
