"""The MOFA-like factor model on planted factors: variance pattern, recovery, projection, ELBO.

Oracles: the planted factors (compared up to rotation and sign by canonical correlations
computed with QR + SVD), the population variance explained, scikit-learn's maximum-likelihood
FactorAnalysis for a one-view model, and the exact Gaussian posterior of z.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from sklearn.decomposition import FactorAnalysis

from radgen.analysis.factors import FactorModel
from radgen.errors import ConfigError, InputError

Arr = npt.NDArray[np.float64]


def canonical_correlations(a: Arr, b: Arr) -> Arr:
    """Cosines of the principal angles between the centred column spaces (QR + SVD)."""
    qa, _ = np.linalg.qr(a - a.mean(axis=0))
    qb, _ = np.linalg.qr(b - b.mean(axis=0))
    return np.asarray(np.linalg.svd(qa.T @ qb, compute_uv=False), dtype=np.float64)


def planted(
    n: int, seed: int, dims: tuple[int, ...] = (20, 30, 25), noise: float = 1.0
) -> tuple[Arr, dict[str, Arr], dict[str, float]]:
    """Factors 1-2 load on every view, factor 3 only on view v0.

    Returns the factors, the views and each view's population variance explained after
    standardization, ``mean_d |w_d|^2 / (|w_d|^2 + noise^2)``.
    """
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 3))
    views, r2 = {}, {}
    for m, d in enumerate(dims):
        w = rng.normal(size=(3, d))
        if m != 0:
            w[2] = 0.0
        views[f"v{m}"] = z @ w + noise * rng.normal(size=(n, d))
        signal = (w**2).sum(axis=0)
        r2[f"v{m}"] = float(np.mean(signal / (signal + noise**2)))
    return z, views, r2


Fitted = tuple[FactorModel, Arr, dict[str, Arr], dict[str, float]]


@pytest.fixture(scope="module")
def fitted() -> Fitted:
    z, views, r2 = planted(200, seed=0)
    train = {k: v[:160].copy() for k, v in views.items()}
    train["v1"][:20] = np.nan  # 20 samples lack view v1
    train["v2"][20:35] = np.nan  # 15 others lack view v2
    model = FactorModel(8).fit(train)
    test = {k: v[160:] for k, v in views.items()}
    return model, z, test, r2


def test_variance_explained_separates_shared_and_view_specific_factors(
    fitted: Fitted,
) -> None:
    model, _, _, truth = fitted
    r2 = model.r2_
    assert r2.shape == (3, 3)  # the 5 spare factors were switched off and dropped
    assert sorted(model.factor_kind_) == ["shared", "shared", "specific"]
    for j, kind in enumerate(model.factor_kind_):
        col = r2.iloc[:, j]
        if kind == "shared":
            assert (col > 0.10).all()
        else:
            assert col["v0"] > 0.10
            assert (col[["v1", "v2"]] < 0.01).all()
            assert model.active_views_[j] == ["v0"]
            # ARD switched it off where it is absent: precision far above the active views'
            alpha = dict(zip(model.view_names_, model.alpha_[:, j], strict=True))
            assert min(alpha["v1"], alpha["v2"]) > 50 * alpha["v0"]
    # all factors together: the population share of signal in each view
    for view, value in truth.items():
        assert model.r2_total_[view] == pytest.approx(value, abs=0.05)


def test_factors_are_recovered_up_to_rotation_and_sign(
    fitted: Fitted,
) -> None:
    model, z, _, _ = fitted
    assert canonical_correlations(z[:160], model.Z_).min() > 0.9


def test_transform_projects_held_out_samples_onto_their_true_factors(
    fitted: Fitted,
) -> None:
    model, z, test, _ = fitted
    z_test = z[160:]
    projected = model.transform(test)
    assert canonical_correlations(z_test, projected).min() > 0.9
    # from one view only: v1 carries the two shared factors, not the v0-specific one
    from_v1 = model.transform({"v1": test["v1"]})
    cc = canonical_correlations(z_test[:, :2], from_v1)
    assert cc.min() > 0.85
    specific = model.factor_kind_.index("specific")
    assert np.abs(from_v1[:, specific]).max() < 0.2 * np.abs(projected[:, specific]).max()
    # an absent view is the same as a view of NaN rows
    nan_rows = {"v0": test["v0"], "v1": np.full_like(test["v1"], np.nan)}
    assert np.allclose(model.transform({"v0": test["v0"]}), model.transform(nan_rows))
    assert np.allclose(model.transform({"v1": np.full((2, 30), np.nan)}), 0.0)  # prior mean


def test_elbo_never_decreases(fitted: Fitted) -> None:
    model, _, _, _ = fitted
    steps = np.diff(model.elbo_)
    assert np.all(steps >= -1e-8 * np.abs(model.elbo_[1:]))
    assert model.converged_
    assert model.n_iter_ >= model.elbo_.size


def test_one_view_model_agrees_with_maximum_likelihood_factor_analysis() -> None:
    rng = np.random.default_rng(1)
    n, d = 3000, 12
    w = rng.uniform(0.5, 1.5, size=d)
    sigma = rng.uniform(0.5, 1.0, size=d)
    y = rng.normal(size=(n, 1)) * w + rng.normal(size=(n, d)) * sigma
    model = FactorModel(3).fit({"only": y})
    assert model.r2_.shape[1] == 1  # the two spare factors were switched off
    ys = (y - y.mean(0)) / y.std(0, ddof=1)
    fa = FactorAnalysis(1, tol=1e-6, max_iter=5000).fit(ys)  # ML oracle, same model
    z_fa = fa.transform(ys)[:, 0]
    r2_fa = 1 - ((ys - np.outer(z_fa, fa.components_[0])) ** 2).sum() / (ys**2).sum()
    assert model.r2_total_["only"] == pytest.approx(r2_fa, abs=0.005)
    assert abs(np.corrcoef(model.Z_[:, 0], z_fa)[0, 1]) > 0.9999
    loading = model.weights_["only"][:, 0]
    target = w / np.sqrt(w**2 + sigma**2)  # planted loadings in standardized units
    assert abs(loading @ target) / (np.linalg.norm(loading) * np.linalg.norm(target)) > 0.999
    assert np.allclose(1 / model.tau_["only"], fa.noise_variance_, rtol=0.02)
    # the posterior mean of z is the exact Gaussian one given the fitted loadings and noise
    tau = model.tau_["only"]
    post_var = 1.0 / (1.0 + np.sum(tau * loading**2))
    exact = post_var * (ys[:5] * tau) @ loading
    assert np.allclose(model.transform({"only": y[:5]})[:, 0], exact, rtol=0.01)


def test_assess_reports_held_out_cross_view_correlations_and_p_values() -> None:
    z, views, _ = planted(120, seed=2, dims=(30, 40))
    model = FactorModel(6).assess(views, n_splits=4, n_permutations=9, seed=0)
    shared = [j for j, k in enumerate(model.factor_kind_) if k == "shared"]
    specific = [j for j, k in enumerate(model.factor_kind_) if k == "specific"]
    assert len(shared) == 2
    assert len(specific) == 1
    assert (model.heldout_correlations_[shared] > 0.8).all()
    assert abs(model.heldout_correlations_[specific[0]]) < 0.3
    assert np.allclose(model.p_values_[shared], 1 / 10)  # no permutation reaches them
    assert model.heldout_view_correlations_.shape == (2, len(model.factor_kind_))
    assert canonical_correlations(z, model.Z_).min() > 0.9


# -- edge cases -------------------------------------------------------------------------------


def test_bad_views_are_clear_errors() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(30, 4)), rng.normal(size=(30, 5))
    with pytest.raises(InputError, match="rows"):
        FactorModel(2).fit({"a": a, "b": b[:-1]})
    with pytest.raises(InputError, match="constant"):
        FactorModel(2).fit({"a": np.column_stack([a, np.ones(30)]), "b": b})
    gap_a, gap_b = a.copy(), b.copy()
    gap_a[3], gap_b[3] = np.nan, np.nan
    with pytest.raises(InputError, match="no observed value"):
        FactorModel(2).fit({"a": gap_a, "b": gap_b})
    with pytest.raises(InputError, match="infinite"):
        FactorModel(2).fit({"a": np.where(a > 2, np.inf, a)})
    with pytest.raises(InputError, match="no view"):
        FactorModel(2).fit({})
    with pytest.raises(ConfigError, match="n_factors"):
        FactorModel(0).fit({"a": a})
    with pytest.raises(ConfigError, match="not fitted"):
        FactorModel(2).transform({"a": a})
    model = FactorModel(2).fit([a, b])
    assert model.view_names_ == ["view0", "view1"]
    with pytest.raises(InputError, match="unknown view"):
        model.transform({"c": a})
    with pytest.raises(InputError, match="columns"):
        model.transform({"view0": a[:, :3]})
    with pytest.raises(InputError, match="at least 2 views"):
        FactorModel(2).assess({"a": a}, n_permutations=1)
