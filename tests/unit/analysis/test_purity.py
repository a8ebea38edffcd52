"""CCF from VAF, purity and copy number: closed forms, planted simulations and scipy oracles.

Oracles: hand-computed closed forms, the inverse map (expected VAF), binomial read simulations
with a planted CCF, and scipy.stats.binomtest (one-sided p-value, exact Clopper-Pearson interval).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from radgen.analysis.purity import ccf, ccf_over_one, ccf_table, expected_vaf, invalid_reason
from radgen.errors import InputError


def test_ccf_closed_forms() -> None:
    # diploid, purity 0.5, heterozygous: a clonal mutation sits at VAF 0.25
    assert ccf(0.25, 0.5, 2).item() == pytest.approx(1.0)
    # CCF = v ((1 - pi) CN_n + pi CN_t) / (pi m) = 0.3 (0.4 * 2 + 0.6 * 3) / (0.6 * 2)
    assert ccf(0.3, 0.6, 3, 2, 2).item() == pytest.approx(0.3 * 2.6 / 1.2)
    # male chrX: one normal copy
    assert ccf(0.4, 0.8, 1, cn_normal=1).item() == pytest.approx(0.4 * (0.2 + 0.8) / 0.8)
    # pure tumour, single copy: CCF is the VAF
    assert ccf(0.7, 1.0, 1).item() == pytest.approx(0.7)


def test_ccf_broadcasts() -> None:
    got = ccf([[0.1], [0.2]], [0.5, 1.0], 2)
    assert got.shape == (2, 2)
    np.testing.assert_allclose(got, [[0.4, 0.2], [0.8, 0.4]])


@given(
    st.floats(0.05, 1.0),
    st.integers(1, 6),
    st.integers(0, 3),
    st.floats(0.0, 1.0),
    st.data(),
)
@settings(max_examples=50, deadline=None)
def test_ccf_inverts_expected_vaf(
    purity: float, cn_t: int, cn_n: int, truth: float, data: st.DataObject
) -> None:
    m = data.draw(st.integers(1, cn_t))
    v = expected_vaf(purity, cn_t, cn_n, m, ccf=truth)
    assert 0.0 <= v.item() <= 1.0
    assert ccf(v, purity, cn_t, cn_n, m).item() == pytest.approx(truth, abs=1e-12)


def test_ccf_estimate_is_unbiased_on_simulated_reads() -> None:
    rng = np.random.default_rng(7)
    n, depth, purity, cn_t, m, truth = 4000, 150, 0.55, 3, 1, 0.6
    f = expected_vaf(purity, cn_t, 2, m, ccf=truth).item()
    alt = rng.binomial(depth, f, n)
    est = ccf(alt / depth, purity, cn_t, 2, m)
    k = (0.45 * 2 + 0.55 * 3) / 0.55
    se = k * math.sqrt(f * (1 - f) / depth) / math.sqrt(n)
    assert abs(est.mean() - truth) < 4 * se


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        ((1.2, 0.5, 2, 2, 1), "vaf outside [0, 1] or missing"),
        ((-0.1, 0.5, 2, 2, 1), "vaf outside [0, 1] or missing"),
        ((np.nan, 0.5, 2, 2, 1), "vaf outside [0, 1] or missing"),
        ((0.2, 0.0, 2, 2, 1), "purity outside (0, 1] or missing"),
        ((0.2, 1.1, 2, 2, 1), "purity outside (0, 1] or missing"),
        ((0.2, 0.5, -1, 2, 1), "cn_tumor negative or missing"),
        ((0.2, 0.5, 2, -2, 1), "cn_normal negative or missing"),
        ((0.2, 0.5, 2, 2, 0), "multiplicity below 1 or missing"),
        ((0.2, 0.5, 2, 2, 3), "multiplicity above cn_tumor"),
    ],
)
def test_impossible_inputs_give_nan_with_a_reason(
    args: tuple[float, float, float, float, float], reason: str
) -> None:
    assert np.isnan(ccf(*args).item())
    assert invalid_reason(*args).item() == reason


def test_valid_inputs_have_no_reason_and_fractional_copy_number_is_allowed() -> None:
    # a subclonal loss averaging 0.5 copies: m = 1 > cn_t is allowed below one copy
    got = ccf([0.2, 0.1], 0.5, [2, 0.5])
    assert np.isfinite(got).all()
    assert got[1] == pytest.approx(0.1 * (1.0 + 0.25) / 0.5)
    assert invalid_reason([0.2, 0.1], 0.5, [2, 0.5]).tolist() == [None, None]
    with pytest.raises(InputError, match="broadcast"):
        ccf([0.1, 0.2], [0.5, 0.5, 0.5], 2)


def test_over_one_p_value_matches_scipy_binomtest() -> None:
    alt = np.array([10, 30, 45, 0, 100])
    depth = np.array([100, 100, 120, 50, 100])
    got = ccf_over_one(alt, depth, 0.5, 2)  # f1 = 0.25
    for a, d, p in zip(alt, depth, got.p_value, strict=True):
        want = stats.binomtest(int(a), int(d), 0.25, alternative="greater").pvalue
        assert p == pytest.approx(want, rel=1e-9)
    assert got.flag.tolist() == [False, False, True, False, True]


def test_over_one_false_positive_rate_and_power() -> None:
    rng = np.random.default_rng(5)
    n, depth, alpha = 20_000, 80, 0.05
    f1 = expected_vaf(0.6, 3, 2, 2).item()
    clonal = rng.binomial(depth, f1, n)  # CCF exactly 1: H0 holds at its boundary
    rate = ccf_over_one(clonal, depth, 0.6, 3, 2, 2, alpha=alpha).flag.mean()
    assert rate <= alpha + 4 * math.sqrt(alpha * (1 - alpha) / n)
    # a wrong purity (true 0.9, assumed 0.6) pushes the CCF well over 1: flagged
    # (VAF 0.62 against 0.46 expected at CCF = 1; z ~ 4.5 at depth 200)
    wrong = rng.binomial(200, expected_vaf(0.9, 3, 2, 2).item(), 500)
    assert np.isfinite(ccf(wrong / 200, 0.6, 3, 2, 2)).all()
    assert ccf_over_one(wrong, 200, 0.6, 3, 2, 2).flag.mean() > 0.95


def test_over_one_handles_bad_counts_and_alpha() -> None:
    got = ccf_over_one([5, 3, 3, 2.5], [4, 10, 0, 10], 0.5, 2)
    assert np.isnan(got.p_value[[0, 2, 3]]).all()
    assert got.flag.tolist() == [False, False, False, False]
    assert np.isfinite(got.p_value[1])
    with pytest.raises(InputError, match="alpha"):
        ccf_over_one(5, 10, 0.5, 2, alpha=0.0)


def mutations() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "gene": ["TP53", "KRAS", "EGFR", "BAD"],
            "t_alt_count": [25, 12, 60, 5],
            "t_depth": [100, 100, 100, 100],
            "cn_tumor": [2, 2, 2, 2],
            "multiplicity": [1, 1, 1, 3],
            "purity": [0.5, 0.5, 0.5, 0.5],
        }
    )


def test_ccf_table_columns_interval_and_flags() -> None:
    frame = mutations()
    out = ccf_table(frame, multiplicity="multiplicity")
    assert list(frame.columns) == list(out.columns[: len(frame.columns)])
    k = 4.0  # ((1 - 0.5) 2 + 0.5 * 2) / 0.5
    np.testing.assert_allclose(out["ccf"][:3], np.array([0.25, 0.12, 0.6]) * k)
    for row in range(3):
        ci = stats.binomtest(int(frame.t_alt_count[row]), 100).proportion_ci(0.95, "exact")
        assert out.ccf_ci_low[row] == pytest.approx(ci.low * k, rel=1e-9)
        assert out.ccf_ci_high[row] == pytest.approx(ci.high * k, rel=1e-9)
    assert out["clonal"].tolist()[:3] == [True, False, True]
    assert out["over1_flag"].tolist()[:3] == [False, False, True]
    assert out["over1_p_value"][2] == pytest.approx(
        stats.binomtest(60, 100, 0.25, alternative="greater").pvalue
    )
    # the impossible row: NaN CCF, missing flags, and the reason
    assert np.isnan(out.ccf[3])
    assert np.isnan(out.ccf_ci_low[3])
    assert out.clonal.isna()[3]
    assert out.over1_flag.isna()[3]
    assert out.ccf_invalid[3] == "multiplicity above cn_tumor"
    assert out.ccf_invalid[:3].isna().all()


def test_ccf_table_vaf_only_constants_and_errors() -> None:
    frame = pd.DataFrame({"vaf": [0.25, 0.1], "cn": [2, 4]})
    out = ccf_table(frame, purity=0.5, cn_tumor="cn")
    np.testing.assert_allclose(out.ccf, [1.0, 0.1 * 3.0 / 0.5])
    assert out.ccf_ci_low.isna().all()
    assert out.clonal.isna().all()
    assert out.over1_flag.isna().all()
    with pytest.raises(InputError, match="no such column"):
        ccf_table(frame, purity="imaging_purity", cn_tumor="cn")
    with pytest.raises(InputError, match="no read counts"):
        ccf_table(frame.drop(columns="vaf"), purity=0.5, cn_tumor="cn")
    with pytest.raises(InputError, match="confidence"):
        ccf_table(frame, purity=0.5, cn_tumor="cn", confidence=1.0)
    empty = ccf_table(frame.iloc[:0], purity=0.5, cn_tumor="cn")
    assert len(empty) == 0
    assert "ccf" in empty.columns


def test_ccf_interval_covers_the_planted_ccf() -> None:
    rng = np.random.default_rng(9)
    n, depth, truth = 4000, 60, 0.7
    f = expected_vaf(0.4, 2, 2, 1, ccf=truth).item()
    frame = pd.DataFrame({"t_alt_count": rng.binomial(depth, f, n), "t_depth": depth})
    out = ccf_table(frame, purity=0.4, cn_tumor=2.0)
    covered = ((out.ccf_ci_low <= truth) & (truth <= out.ccf_ci_high)).mean()
    assert covered >= 0.95 - 4 * math.sqrt(0.95 * 0.05 / n)  # exact intervals are conservative


def test_ccf_table_accepts_nullable_columns_with_missing_values() -> None:
    frame = pd.DataFrame(
        {
            "t_alt_count": pd.array([10, pd.NA], dtype="Int64"),
            "t_depth": pd.array([50, 60], dtype="Int64"),
            "purity": pd.array([0.5, 0.5], dtype="Float64"),
            "cn_tumor": [2, 2],
        }
    )
    out = ccf_table(frame)
    assert out.ccf[0] == pytest.approx(10 / 50 * 4.0)
    assert np.isnan(out.ccf[1])
    assert out.ccf_invalid[1] == "vaf outside [0, 1] or missing"
    assert out.clonal.isna()[1]
