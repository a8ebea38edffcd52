"""Regularized CCA and the shared cross-validation helpers against independent oracles.

Oracles: population canonical correlations of a planted latent-factor model (generalized
eigenproblem solved by scipy.linalg.eigh), scikit-learn's CCA, numpy's corrcoef, and
closed-form permutation p-values.
"""

from __future__ import annotations

import warnings

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import linalg
from sklearn.cross_decomposition import CCA

from radgen.analysis.cca import RegularizedCCA, cca_from_covariances
from radgen.analysis.crossval import (
    aligned,
    column_correlations,
    heldout_correlations,
    kfold_indices,
    match_components,
    permutation_pvalues,
    standardize,
)
from radgen.errors import ConfigError, InputError

Arr = npt.NDArray[np.float64]


def planted(
    n: int, p: int, q: int, rng: np.random.Generator, *, k: int = 2, noise: float = 1.0
) -> tuple[Arr, Arr, Arr, Arr]:
    """Two blocks from k shared standard-normal factors: X = Z Ax + e, Y = Z Ay + f."""
    ax = rng.normal(size=(k, p))
    ay = rng.normal(size=(k, q))
    z = rng.normal(size=(n, k))
    x = z @ ax + noise * rng.normal(size=(n, p))
    y = z @ ay + noise * rng.normal(size=(n, q))
    return x, y, ax, ay


def population_canonical(ax: Arr, ay: Arr, noise: float) -> Arr:
    """rho_k^2 = eigenvalues of Sxy Syy^-1 Syx a = rho^2 Sxx a (scipy generalized eigh)."""
    sxx = ax.T @ ax + noise**2 * np.eye(ax.shape[1])
    syy = ay.T @ ay + noise**2 * np.eye(ay.shape[1])
    sxy = ax.T @ ay
    vals = linalg.eigh(sxy @ np.linalg.solve(syy, sxy.T), sxx, eigvals_only=True)
    return np.asarray(np.sqrt(np.clip(np.sort(vals)[::-1], 0, None)), dtype=np.float64)


# -- planted truth ----------------------------------------------------------------------------


def test_known_canonical_correlations_are_recovered_at_large_n() -> None:
    rng = np.random.default_rng(0)
    noise, n = 2.0, 4000
    x, y, ax, ay = planted(n, 8, 6, rng, noise=noise)
    truth = population_canonical(ax, ay, noise)[:2]
    model = RegularizedCCA(2, penalty=0.0).fit(x, y)
    se = (1 - truth**2) / np.sqrt(n)  # asymptotic SE of a canonical correlation
    assert np.all(np.abs(model.canonical_correlations_ - truth) < 4 * se)
    # the closed form of the module agrees with the independent eigen-solution
    sxx = ax.T @ ax + noise**2 * np.eye(8)
    syy = ay.T @ ay + noise**2 * np.eye(6)
    assert np.allclose(cca_from_covariances(sxx, syy, ax.T @ ay)[:2], truth, atol=1e-10)


def test_ridge_solution_matches_the_generalized_eigenproblem() -> None:
    rng = np.random.default_rng(1)
    x, y, _, _ = planted(50, 8, 5, rng)
    lx, ly = 0.3, 0.7
    model = RegularizedCCA(3, penalty=(lx, ly)).fit(x, y)
    xs = (x - x.mean(0)) / x.std(0, ddof=1)
    ys = (y - y.mean(0)) / y.std(0, ddof=1)
    n = len(x)
    cxx = xs.T @ xs / (n - 1) + lx * np.eye(8)
    cyy = ys.T @ ys / (n - 1) + ly * np.eye(5)
    cxy = xs.T @ ys / (n - 1)
    vals, vecs = linalg.eigh(cxy @ np.linalg.solve(cyy, cxy.T), cxx)
    order = np.argsort(vals)[::-1][:3]
    assert np.allclose(model.singular_values_, np.sqrt(vals[order]), atol=1e-10)
    for j, col in enumerate(order):  # same direction up to sign and scale
        cos = abs(vecs[:, col] @ model.x_weights_[:, j]) / (
            np.linalg.norm(vecs[:, col]) * np.linalg.norm(model.x_weights_[:, j])
        )
        assert cos == pytest.approx(1.0, abs=1e-8)
    u, v = xs @ model.x_weights_, ys @ model.y_weights_
    assert np.allclose(
        model.canonical_correlations_, [np.corrcoef(u[:, j], v[:, j])[0, 1] for j in range(3)]
    )
    assert np.allclose(u.std(0, ddof=1), 1.0)  # unit-variance training scores
    assert np.allclose(
        model.x_structure_,
        [[np.corrcoef(xs[:, i], u[:, j])[0, 1] for j in range(3)] for i in range(8)],
    )


def test_unregularized_first_pair_matches_sklearn_cca() -> None:
    rng = np.random.default_rng(2)
    x, y, _, _ = planted(300, 5, 4, rng)
    ours = RegularizedCCA(1, penalty=0.0).fit(x, y)
    sk = CCA(1, max_iter=20000, tol=1e-14).fit(x, y)
    a, b = ours.x_weights_[:, 0], sk.x_weights_[:, 0]
    assert abs(a @ b) / (np.linalg.norm(a) * np.linalg.norm(b)) == pytest.approx(1.0, abs=1e-6)
    su, sv = sk.transform(x, y)
    assert ours.canonical_correlations_[0] == pytest.approx(
        abs(np.corrcoef(su[:, 0], sv[:, 0])[0, 1]), abs=1e-6
    )


def test_regularized_cca_beats_plain_cca_on_held_out_correlation_when_p_q_near_n() -> None:
    rng = np.random.default_rng(3)
    noise = 3.0
    x, y, ax, ay = planted(60, 50, 45, rng, noise=noise)
    truth = population_canonical(ax, ay, noise)[0]
    model = RegularizedCCA(2).assess(x, y, n_permutations=19, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn's NIPALS convergence warnings in this regime
        plain_in = CCA(2, max_iter=2000).fit(x, y)
        u, v = plain_in.transform(x, y)
        plain = heldout_correlations(
            lambda: CCA(2, max_iter=2000), x, y, n_components=2, n_splits=5, seed=0
        )
    assert np.corrcoef(u[:, 0], v[:, 0])[0, 1] > 0.95  # plain CCA overfits in-sample
    assert model.heldout_correlations_[0] > plain.correlations[0] + 0.2
    assert model.heldout_correlations_[0] > 0.6
    assert model.heldout_correlations_[0] < truth + 0.1  # held-out is not optimistic
    assert min(model.penalties_) > 0.0
    assert model.p_values_[0] == pytest.approx(1 / 20)  # no permutation reaches the signal


def test_cv_picks_small_penalties_when_n_is_large() -> None:
    rng = np.random.default_rng(4)
    x, y, _, _ = planted(400, 4, 4, rng, noise=0.5)
    model = RegularizedCCA(1, penalty_grid=(1e-3, 100.0)).fit(x, y)
    assert model.penalties_ == (1e-3, 1e-3)
    assert model.cv_scores_ is not None
    assert model.cv_scores_.shape == (2, 2)


def test_transform_reproduces_training_scores_and_scales_new_data() -> None:
    rng = np.random.default_rng(5)
    x, y, _, _ = planted(80, 6, 5, rng)
    model = RegularizedCCA(2, penalty=0.1)
    u, v = model.fit_transform(x, y)
    u2, v2 = model.transform(x, y)
    assert np.allclose(u, u2)
    assert np.allclose(v, v2)
    assert np.allclose(model.transform(x[:5]), u[:5])


@settings(max_examples=30, deadline=None)
@given(
    scale=st.floats(0.01, 100.0),
    shift=st.floats(-1e3, 1e3),
    seed=st.integers(0, 10_000),
)
def test_canonical_correlations_ignore_the_units_of_each_column(
    scale: float, shift: float, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    x, y, _, _ = planted(40, 4, 3, rng)
    base = RegularizedCCA(2, penalty=0.5).fit(x, y)
    moved = RegularizedCCA(2, penalty=0.5).fit(x * scale + shift, y)
    assert np.allclose(base.canonical_correlations_, moved.canonical_correlations_, atol=1e-8)
    assert np.all(np.abs(base.canonical_correlations_) <= 1.0)


# -- edge cases -------------------------------------------------------------------------------


def test_collinear_block_without_penalty_is_a_clear_error() -> None:
    rng = np.random.default_rng(6)
    x, y, _, _ = planted(30, 40, 3, rng)  # p > n: X'X is singular
    with pytest.raises(InputError, match="collinear"):
        RegularizedCCA(1, penalty=0.0).fit(x, y)
    dup = np.column_stack([y, y[:, 0] * 2 + 1])  # an exactly collinear Y column
    with pytest.raises(InputError, match="collinear"):
        RegularizedCCA(1, penalty=0.0).fit(x[:, :3], dup)
    ok = RegularizedCCA(1, penalty=1.0).fit(x, dup)  # the ridge makes it well posed
    assert np.isfinite(ok.canonical_correlations_).all()


@pytest.mark.parametrize(
    ("x", "y", "match"),
    [
        (np.ones((20, 3)), np.random.default_rng(0).normal(size=(20, 2)), "constant"),
        (np.full((20, 3), np.nan), np.zeros((20, 2)), "missing"),
        (np.random.default_rng(0).normal(size=(20, 3)), np.zeros((19, 2)), "row counts"),
        (np.zeros((2, 3)), np.zeros((2, 2)), "at least 3"),
        (np.array([[np.inf, 1.0]] * 5), np.zeros((5, 2)), "infinite"),
        (np.zeros((0, 3)), np.zeros((0, 2)), "empty"),
    ],
)
def test_bad_blocks_are_clear_errors(x: Arr, y: Arr, match: str) -> None:
    with pytest.raises(InputError, match=match):
        RegularizedCCA(1, penalty=0.1).fit(x, y)


def test_bad_settings_and_unfitted_use_are_clear_errors() -> None:
    rng = np.random.default_rng(7)
    x, y, _, _ = planted(30, 3, 2, rng)
    with pytest.raises(InputError, match="only 2 canonical pair"):
        RegularizedCCA(3, penalty=0.1).fit(x, y)
    with pytest.raises(ConfigError, match="penalty"):
        RegularizedCCA(1, penalty=-1.0).fit(x, y)
    with pytest.raises(ConfigError, match="penalty"):
        RegularizedCCA(1, penalty="auto").fit(x, y)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="n_components"):
        RegularizedCCA(0).fit(x, y)
    with pytest.raises(ConfigError, match="not fitted"):
        RegularizedCCA(1).transform(x)
    model = RegularizedCCA(1, penalty=0.1).fit(x, y)
    with pytest.raises(InputError, match="columns"):
        model.transform(x[:, :2])


# -- cross-validation helpers -----------------------------------------------------------------


@settings(max_examples=50, deadline=None)
@given(n=st.integers(2, 60), k=st.integers(2, 10), seed=st.integers(0, 1000))
def test_kfold_holds_every_sample_out_exactly_once(n: int, k: int, seed: int) -> None:
    if k > n:
        with pytest.raises(ConfigError):
            kfold_indices(n, k, seed)
        return
    splits = kfold_indices(n, k, seed)
    held = np.concatenate([test for _, test in splits])
    assert sorted(held.tolist()) == list(range(n))
    for train, test in splits:
        assert set(train.tolist()) | set(test.tolist()) == set(range(n))
        assert not set(train.tolist()) & set(test.tolist())
        assert abs(len(test) - n / k) < 1


def test_column_correlations_match_numpy_and_give_zero_without_variance() -> None:
    rng = np.random.default_rng(8)
    u, v = rng.normal(size=(30, 4)), rng.normal(size=(30, 4))
    expected = [np.corrcoef(u[:, j], v[:, j])[0, 1] for j in range(4)]
    assert np.allclose(column_correlations(u, v), expected)
    v[:, 2] = 5.0
    assert column_correlations(u, v)[2] == 0.0


def test_match_components_undoes_a_permutation_and_sign_flips() -> None:
    rng = np.random.default_rng(9)
    ref = rng.normal(size=(50, 3))
    shuffled = np.column_stack([-ref[:, 2], ref[:, 0], -ref[:, 1], rng.normal(size=50)])
    cols, signs = match_components(ref, shuffled)
    assert cols.tolist() == [1, 2, 0]
    assert signs.tolist() == [1.0, -1.0, -1.0]
    assert np.allclose(aligned(shuffled, cols, signs), ref)
    cols, signs = match_components(ref, shuffled[:, :2])  # fewer columns: one left unmatched
    assert (cols == -1).sum() == 1
    assert np.all(aligned(shuffled[:, :2], cols, signs)[:, cols == -1] == 0.0)


def test_permutation_pvalues_follow_the_closed_form() -> None:
    values = iter(np.arange(10, dtype=float))  # permutation b returns b (sorted: itself)

    def stat(rng: np.random.Generator) -> Arr:
        return np.array([next(values)])

    result = permutation_pvalues(stat, np.array([6.5]), n_permutations=10)
    assert result.p_values[0] == pytest.approx((1 + 3) / 11)  # 7, 8, 9 reach 6.5


def test_permutation_pvalues_are_uniform_under_the_null() -> None:
    observed = np.array([0.8, 0.3])
    b = 400

    def stat(rng: np.random.Generator) -> Arr:
        return rng.uniform(size=2)

    result = permutation_pvalues(stat, observed, n_permutations=b, seed=1)
    # component of rank 1 is compared with the maximum of 2 uniforms: P(max >= 0.8) = 0.36
    # component of rank 2 with the minimum: P(min >= 0.3) = 0.49
    for p_hat, p_true in zip(result.p_values, (0.36, 0.49), strict=True):
        se = np.sqrt(p_true * (1 - p_true) / b)
        assert abs(p_hat - p_true) < 4 * se
    with pytest.raises(ConfigError):
        permutation_pvalues(stat, observed, n_permutations=0)


def test_standardize_matches_numpy_and_keeps_missing_values() -> None:
    rng = np.random.default_rng(10)
    x = rng.normal(3.0, 2.0, size=(25, 3))
    x[4, 1] = np.nan
    z, mean, scale = standardize(x, "X")
    assert np.allclose(mean, np.nanmean(x, axis=0))
    assert np.allclose(scale, np.nanstd(x, axis=0, ddof=1))
    assert np.isnan(z[4, 1])
    assert np.isfinite(np.delete(z.ravel(), 4 * 3 + 1)).all()
    x[:, 2] = 1.0
    with pytest.raises(InputError, match="constant"):
        standardize(x, "X")
    z, _, scale = standardize(x, "X", strict=False)
    assert scale[2] == 1.0
    assert np.allclose(z[:, 2], 0.0)


def test_held_out_correlation_of_independent_blocks_is_near_zero() -> None:
    rng = np.random.default_rng(11)
    x, y = rng.normal(size=(200, 5)), rng.normal(size=(200, 4))
    model = RegularizedCCA(1).assess(x, y, n_permutations=19, seed=0)
    assert abs(model.heldout_correlations_[0]) < 4 / np.sqrt(200)
    assert model.canonical_correlations_[0] > model.heldout_correlations_[0]
    assert model.p_values_[0] > 0.05
