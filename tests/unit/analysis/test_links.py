"""Mechanistic links: planted correlations, Spearman truth, interval coverage, missing parts."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from radgen.analysis.links import (
    HIF_TARGETS,
    hypoxia_score,
    links_report,
    parse_maps,
    series_kind,
    spearman_ci,
)
from radgen.errors import ConfigError, InputError


def spearman_of_normal(r: float) -> float:
    """Spearman's rho of a bivariate normal with Pearson correlation r: (6/pi) asin(r/2)."""
    return float(6.0 / np.pi * np.arcsin(r / 2.0))


def cohort(
    n: int, seed: int, noise: float = 1.0
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, float]]:
    """Subjects with planted Pearson correlations between imaging and expression.

    ``adc_mean = -0.6 MKI67 + e``, ``rcbv = 0.5 VEGFA + e``, ``ktrans = 0.35 VEGFA + e``
    (unit variances), ``r2star = 0.6 H + e`` with a latent hypoxia ``H`` and every HIF
    target ``g = H + noise e_g``. The hypoxia score ``mean_g z_g`` is ``(H + ebar) /
    sqrt(1 + noise^2)`` up to sampling, so ``corr(r2star, score) = 0.6 / sqrt(1 +
    noise^2 / K)`` for K genes.
    """
    rng = np.random.default_rng(seed)
    ids = [f"sub-{i:04d}" for i in range(n)]

    def mix(source: np.ndarray, r: float) -> Any:
        return r * source + np.sqrt(1 - r * r) * rng.standard_normal(n)

    mki67 = rng.standard_normal(n)
    vegfa = rng.standard_normal(n)
    hyp = rng.standard_normal(n)
    genes = {g: hyp + noise * rng.standard_normal(n) for g in HIF_TARGETS if g != "VEGFA"}
    features = pd.DataFrame(
        {
            "subject_id": ids,
            "adc_mean": np.exp(mix(mki67, -0.6)),  # monotone transforms keep Spearman's rho
            "adc_p10": mix(mki67, -0.4),
            "rcbv": mix(vegfa, 0.5),
            "ktrans": mix(vegfa, 0.35),
            "r2star": mix(hyp, 0.6),
        }
    )
    expression = pd.DataFrame({"subject_id": ids, "MKI67": 5 + mki67, "VEGFA": vegfa, **genes})
    kp, ko = len(genes), 1  # the score also holds VEGFA, unrelated to H
    var_score = kp * (kp + noise**2) / (1 + noise**2) + ko
    truth = {
        "adc_mean": spearman_of_normal(-0.6),
        "adc_p10": spearman_of_normal(-0.4),
        "rcbv": spearman_of_normal(0.5),
        "ktrans": spearman_of_normal(0.35),
        "r2star": spearman_of_normal(kp * 0.6 / np.sqrt(1 + noise**2) / np.sqrt(var_score)),
    }
    return features, expression, truth


def test_planted_links_recover_signs_and_intervals_cover_the_truth() -> None:
    features, expression, truth = cohort(400, seed=0)
    report = links_report(features, expression, confidence=0.999).set_index("imaging")
    assert list(report.index) == ["adc_mean", "adc_p10", "rcbv", "ktrans", "r2star"]
    assert (report["status"] == "ok").all()
    assert report["agrees"].all()
    assert report["supported"].all()
    assert (report["n"] == 400).all()
    for name, rho in truth.items():
        assert report.loc[name, "ci_low"] <= rho <= report.loc[name, "ci_high"], name
    assert report.loc["adc_mean", "expected_sign"] == "negative"
    assert report.loc["r2star", "target"] == "hypoxia_score"
    assert report.loc["r2star", "detail"].startswith("8/8 genes")


def test_rho_and_p_value_match_an_independent_computation() -> None:
    """rho = Pearson correlation of the ranks; p from the t statistic with n - 2 df."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal(30)
    y = 0.4 * x + rng.standard_normal(30)
    rho, lo, hi, p, n = spearman_ci(x, y)
    rx, ry = stats.rankdata(x), stats.rankdata(y)
    expected = float(np.corrcoef(rx, ry)[0, 1])
    t = expected * np.sqrt((n - 2) / (1 - expected**2))
    assert rho == pytest.approx(expected, rel=1e-12)
    assert p == pytest.approx(2 * stats.t.sf(abs(t), n - 2), rel=1e-9)
    se = np.sqrt((1 + expected**2 / 2) / (n - 3))
    assert lo == pytest.approx(np.tanh(np.arctanh(expected) - 1.959963984540054 * se))
    assert hi == pytest.approx(np.tanh(np.arctanh(expected) + 1.959963984540054 * se))


def test_interval_coverage_is_nominal() -> None:
    """400 cohorts of n = 40 at r = 0.5: 95% intervals cover (6/pi) asin(r/2) about 95% of
    the time; tolerance 4 binomial standard errors, sqrt(0.95 * 0.05 / 400) = 0.011."""
    rng = np.random.default_rng(2)
    truth = spearman_of_normal(0.5)
    reps, n = 400, 40
    cov = np.array([[1.0, 0.5], [0.5, 1.0]])
    hits = 0
    for _ in range(reps):
        x, y = rng.multivariate_normal([0, 0], cov, size=n).T
        _, lo, hi, _, _ = spearman_ci(x, y)
        hits += lo <= truth <= hi
    se = np.sqrt(0.95 * 0.05 / reps)
    assert abs(hits / reps - 0.95) < 4 * se


def test_hypoxia_score_is_the_mean_z_score() -> None:
    rng = np.random.default_rng(3)
    expr = pd.DataFrame(rng.normal(5, 2, (12, 3)), columns=["CA9", "LDHA", "ACTB"])
    expr.index = [f"s{i}" for i in range(12)]
    expr.loc["s0", "CA9"] = np.nan
    score, used = hypoxia_score(expr, ["CA9", "LDHA", "MISSING"])
    assert used == ["CA9", "LDHA"]
    ca9 = (expr["CA9"] - expr["CA9"].mean()) / expr["CA9"].std()
    ldha = pd.Series(stats.zscore(expr["LDHA"], ddof=1), index=expr.index)
    expected = pd.concat([ca9, ldha], axis=1).mean(axis=1)
    np.testing.assert_allclose(score.to_numpy(), expected.to_numpy(), rtol=1e-12)
    assert score["s0"] == pytest.approx(ldha["s0"])  # only the measured gene counts


def test_missing_measures_and_genes_are_listed_not_raised() -> None:
    features, expression, _ = cohort(50, seed=4)
    report = links_report(
        features.drop(columns=["rcbv", "ktrans"]),
        expression.drop(columns=["MKI67"]),
        ["CA9", "LDHA"],
    ).set_index("imaging")
    assert report.loc["rcbv", "status"] == "missing imaging measure rcbv"
    assert report.loc["ktrans", "status"] == "missing imaging measure ktrans"
    assert report.loc["adc_mean", "status"] == "missing gene MKI67"
    assert pd.isna(report.loc["adc_mean", "rho"])
    assert pd.isna(report.loc["adc_mean", "agrees"])
    assert report.loc["r2star", "status"] == "ok"
    assert report.loc["r2star", "detail"] == "2/2 genes: CA9, LDHA"
    none = links_report(features, expression, ["NOPE1", "NOPE2"]).set_index("imaging")
    assert none.loc["r2star", "status"].startswith("missing hypoxia_score")


def test_small_or_constant_inputs_say_why_without_warnings() -> None:
    features, expression, _ = cohort(3, seed=5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report = links_report(features, expression).set_index("imaging")
    assert report.loc["rcbv", "status"] == "3 complete pair(s); at least 4 are needed"
    assert report.loc["rcbv", "n"] == 3
    features, expression, _ = cohort(20, seed=6)
    features["rcbv"] = 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report = links_report(features, expression).set_index("imaging")
    assert report.loc["rcbv", "status"] == "a variable is constant over the subjects"
    # perfectly monotone: rho = 1, a degenerate but finite interval, no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rho, lo, hi, p, _ = spearman_ci(np.arange(10.0), np.arange(10.0) ** 3)
    assert rho == pytest.approx(1.0)
    assert lo == pytest.approx(1.0)
    assert hi == pytest.approx(1.0)
    assert p < 1e-12


def test_inputs_that_cannot_be_joined_are_clear_errors() -> None:
    features, expression, _ = cohort(10, seed=7)
    other = expression.assign(subject_id=[f"x{i}" for i in range(10)])
    with pytest.raises(InputError, match="no subject has both"):
        links_report(features, other)
    with pytest.raises(InputError, match="one row per subject"):
        links_report(pd.concat([features, features]), expression)
    with pytest.raises(ConfigError):
        links_report(features, expression, confidence=1.5)


def test_series_kinds_and_map_options() -> None:
    assert series_kind("ADC map (radgen, from 3 series)") == "adc"
    assert series_kind("ep2d_diff Apparent Diffusion Coefficient") == "adc"
    assert series_kind("dwi", units="um2/s") == "adc"
    assert series_kind("R2* map (radgen)") == "r2star"
    assert series_kind("r2star_fit") == "r2star"
    assert series_kind("DSC rCBV leakage corrected") == "rcbv"
    assert series_kind("DCE Ktrans (Tofts)") == "ktrans"
    assert series_kind("T2* GRE") is None  # T2* is not R2*
    assert series_kind("CHEST W/O CONTRAST") is None
    assert parse_maps(["adc_mean=stat_mean", "rcbv=mean:perf.*"]) == {
        "adc_mean": ("stat_mean", None),
        "rcbv": ("mean", "perf.*"),
    }
    with pytest.raises(ConfigError, match="not one of"):
        parse_maps(["t1=stat_mean"])
    with pytest.raises(ConfigError, match="NAME=COLUMN"):
        parse_maps(["adc_mean"])
    with pytest.raises(ConfigError, match="regular expression"):
        parse_maps(["adc_mean=stat_mean:(["])
