"""ComBat and moment matching: closed forms, error messages, fit/transform, persistence."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import softmax

from radgen.errors import ValidationFailed
from radgen.features.harmonize import ComBat, ComBatParams, _int_eprior, combat, moment_match
from radgen.validation.gate import run_suite


def _data(
    seed: int = 0, sizes: tuple[int, ...] = (12, 15, 10), p: int = 6
) -> tuple[pd.DataFrame, pd.Series, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    batch = pd.Series(np.concatenate([[f"b{j}"] * k for j, k in enumerate(sizes)]))
    n = len(batch)
    geno = pd.Series(np.arange(n) % 2 == 0)
    age = pd.Series(rng.uniform(30, 80, n))
    y = rng.normal(50, 5, (n, p)) + geno.to_numpy()[:, None] * 4 + age.to_numpy()[:, None] * 0.1
    for j in range(len(sizes)):
        rows = (batch == f"b{j}").to_numpy()
        y[rows] = y[rows] * (1 + 0.2 * j) + 7 * j
    order = rng.permutation(n)  # batches interleaved: nothing may rely on grouped samples
    return (
        pd.DataFrame(y[order], columns=[f"f{i}" for i in range(p)]),
        pd.Series(batch.to_numpy()[order]),
        pd.DataFrame({"geno": geno.to_numpy()[order], "age": age.to_numpy()[order]}),
    )


def test_nonparametric_weights_equal_a_direct_leave_one_out_computation() -> None:
    rng = np.random.default_rng(1)
    p, n = 40, 900  # large enough that raw likelihoods underflow
    sdat = rng.normal(rng.normal(0, 0.3, p)[:, None], rng.uniform(0.5, 1.5, p)[:, None], (p, n))
    g_hat, d_hat = sdat.mean(axis=1), sdat.var(axis=1, ddof=1)
    got_g, got_d = _int_eprior(sdat, g_hat, d_hat)
    for i in range(p):
        others = np.arange(p) != i
        sum2 = ((sdat[i][None, :] - g_hat[others][:, None]) ** 2).sum(axis=1)
        loglik = -0.5 * n * np.log(2 * np.pi * d_hat[others]) - sum2 / (2 * d_hat[others])
        w = softmax(loglik)
        assert got_g[i] == pytest.approx(w @ g_hat[others], rel=1e-9, abs=1e-12)
        assert got_d[i] == pytest.approx(w @ d_hat[others], rel=1e-9)


def test_location_scale_closed_form_with_missing_values() -> None:
    # eb=False, no covariates: y* = (y - mean_j) / sd_j * sqrt(v) + grand_mean, per feature, where
    # grand_mean weights batch means by batch sizes and v is the pooled residual variance.
    data, batch, _ = _data()
    data.iloc[3, 0] = np.nan
    data.iloc[20, 0] = np.nan
    out = combat(data, batch, eb=False)
    assert np.isnan(out.iloc[3, 0])
    assert np.isnan(out.iloc[20, 0])
    assert np.isfinite(out.drop(index=[3, 20]).to_numpy()).all()
    y = data["f0"]
    means = y.groupby(batch).mean()
    sds = y.groupby(batch).std(ddof=1)
    counts = batch.value_counts()
    grand = float((means * counts / len(batch)).sum())
    v = float(((y - batch.map(means)) ** 2).mean())
    expected = (y - batch.map(means)) / batch.map(sds) * np.sqrt(v) + grand
    np.testing.assert_allclose(out["f0"], expected, rtol=1e-12)


def test_fit_then_transform_equals_fit_transform_and_applies_to_new_samples() -> None:
    data, batch, cov = _data()
    model = ComBat().fit(data.iloc[:30], batch.iloc[:30], cov.iloc[:30])
    both = ComBat().fit_transform(data.iloc[:30], batch.iloc[:30], cov.iloc[:30])
    pd.testing.assert_frame_equal(
        model.transform(data.iloc[:30], batch.iloc[:30], cov.iloc[:30]), both
    )
    # new samples of seen batches, with their own covariates, one at a time or together
    new = model.transform(data.iloc[30:], batch.iloc[30:], cov.iloc[30:])
    one = model.transform(data.iloc[[33]], batch.iloc[[33]], cov.iloc[[33]])
    np.testing.assert_allclose(one.to_numpy(), new.loc[[33]].to_numpy())


def test_parameters_survive_a_round_trip() -> None:
    data, batch, cov = _data()
    model = ComBat(ref_batch="b1").fit(
        data, batch, cov.assign(geno=cov["geno"].map({True: "mut", False: "wt"}))
    )
    assert model.params_ is not None
    params = model.params_
    again = ComBat.from_params(
        ComBatParams.from_frame(params.to_frame().replace({np.nan: None}), params.spec())
    )
    covariates = cov.assign(geno=cov["geno"].map({True: "mut", False: "wt"}))
    pd.testing.assert_frame_equal(
        again.transform(data, batch, covariates),
        model.transform(data, batch, covariates),
        rtol=1e-12,
    )
    kept = (batch == "b1").to_numpy()
    np.testing.assert_array_equal(
        model.transform(data, batch, covariates).to_numpy()[kept], data.to_numpy()[kept]
    )


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d, b, c: (d, b.where(b.index != 0, "lonely"), c), "single sample"),
        (lambda d, b, c: (d, b, c.assign(site=b)), "occurs only in batch"),
        (lambda d, b, c: (d, b, c.assign(age2=c["age"] * 2)), "collinear"),
        (lambda d, b, c: (d, b, c.assign(age=c["age"].where(c.index != 4))), "missing values"),
        (lambda d, b, c: (d.assign(txt="x"), b, c), "numeric"),
    ],
)
def test_problems_are_named(mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    data, batch, cov = _data()
    d, b, c = mutate(data, batch, cov)
    with pytest.raises(ValueError, match=message):
        combat(d, b, c)


def test_batch_confounded_with_a_continuous_covariate() -> None:
    data, batch, cov = _data()
    cov = cov.assign(
        site_code=batch.map({"b0": 0.0, "b1": 1.0, "b2": 2.0}), b2=(batch == "b2").astype(float)
    )
    with pytest.raises(ValueError, match=r"confounded: .*b2"):
        combat(data, batch, cov[["b2"]])


def test_transform_rejects_unknown_batch_and_level() -> None:
    data, batch, cov = _data()
    cov = cov.assign(geno=cov["geno"].map({True: "mut", False: "wt"}))
    model = ComBat().fit(data, batch, cov)
    with pytest.raises(ValueError, match="unknown batch"):
        model.transform(data.iloc[:2], pd.Series(["b9", "b0"], index=data.index[:2]), cov.iloc[:2])
    with pytest.raises(ValueError, match="were not seen when fitting"):
        model.transform(data.iloc[:2], batch.iloc[:2], cov.iloc[:2].assign(geno="other"))
    with pytest.raises(ValueError, match="not fitted"):
        ComBat().transform(data, batch, cov)
    with pytest.raises(ValueError, match="reference batch 'zz'"):
        combat(data, batch, cov, ref_batch="zz")


def test_moment_matching_maps_location_and_scale_and_keeps_the_genotype_effect() -> None:
    rng = np.random.default_rng(3)
    n = 200
    batch = pd.Series(np.where(np.arange(n) < 90, "A", "B"))
    g = pd.Series((rng.random(n) < 0.4).astype(float))
    y = pd.DataFrame({"f": 10 + 3 * g + rng.normal(0, 1, n)})
    b = (batch == "B").to_numpy()
    y.loc[b, "f"] = y.loc[b, "f"] * 2.0 + 5.0
    out = moment_match(y, batch, g, target="A")["f"].to_numpy()
    np.testing.assert_array_equal(out[~b], y.loc[~b, "f"])
    # the model of the formula: y ~ batch + g by least squares, residual SD per batch (ddof 1)
    x = np.column_stack([~b, b, g.to_numpy()]).astype(float)
    (mu_a, mu_b, theta), *_ = np.linalg.lstsq(x, y["f"].to_numpy(), rcond=None)
    resid = y["f"].to_numpy() - x @ np.array([mu_a, mu_b, theta])
    sd_a, sd_b = resid[~b].std(ddof=1), resid[b].std(ddof=1)
    gb = g.to_numpy()[b]
    expected = (mu_a + gb * theta) + (y.loc[b, "f"].to_numpy() - (mu_b + gb * theta)) / sd_b * sd_a
    np.testing.assert_allclose(out[b], expected, rtol=1e-12)
    # consequences: genotype-adjusted mean and residual spread of B are now A's
    assert np.mean(out[b] - gb * theta) == pytest.approx(mu_a, rel=1e-9)
    assert np.std(out[b] - mu_a - gb * theta, ddof=1) == pytest.approx(sd_a, rel=1e-9)


def test_harmonization_suite_blocks_when_the_covariate_effect_is_lost() -> None:
    checks = pd.DataFrame(
        {
            "feature": [f"f{i}" for i in range(10)],
            "eta2_batch_before": 0.5,
            "eta2_batch_after": 0.01,
            "batch_effect_reduced": True,
            "covariate_preserved": [False] * 5 + [True] * 5,
        }
    )
    result = run_suite("harmonization", checks, target="features_x_harmonized")
    with pytest.raises(ValidationFailed, match="covariate_preserved"):
        result.raise_if_blocking()
    ok = run_suite("harmonization", checks.assign(covariate_preserved=True), target="t")
    ok.raise_if_blocking()
    worse = run_suite(
        "harmonization", checks.assign(eta2_batch_after=0.8, batch_effect_reduced=False), target="t"
    )
    assert worse.status == "failed"
