"""ComBat against neuroCombat 0.2.12, the implementation users know.

neuroCombat needs two things to run here, neither touching its math: the `np.int` alias
NumPy 2 removed (it uses it on the reference-batch path) and numpy input (it casts a
DataFrame to float32). It casts continuous covariates to float32 itself, so the generated
covariates are float32-representable and both sides see the same numbers.
"""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from radgen.features.harmonize import combat

pytestmark = pytest.mark.conformance

if not hasattr(np, "int"):
    setattr(np, "int", int)  # noqa: B010 - shim for neuroCombat's ref_batch path on NumPy 2

from neuroCombat import neuroCombat  # noqa: E402


def cohort(seed: int, sizes: tuple[int, ...], n_features: int, with_covariates: bool = True):
    rng = np.random.default_rng(seed)
    batch = pd.Series(np.concatenate([[f"site{j}"] * k for j, k in enumerate(sizes)]))
    n = len(batch)
    geno = pd.Series(np.where(np.arange(n) % 2 == 0, "mut", "wt"))  # every level in every batch
    age = pd.Series(rng.uniform(40, 80, n).astype(np.float32).astype(np.float64))
    base = rng.normal(100, 25, n_features)
    y = (
        base
        + rng.normal(0, 6, (n, n_features))
        + (geno == "mut").to_numpy()[:, None] * rng.normal(6, 2, n_features)
    )
    y += (age.to_numpy()[:, None] - 60) * rng.normal(0.3, 0.1, n_features)
    for j in range(len(sizes)):
        rows = (batch == f"site{j}").to_numpy()
        y[rows] = y[rows] * rng.uniform(0.7, 1.5, n_features) + rng.normal(0, 12, n_features)
    # interleave the batches: nothing may depend on samples arriving grouped by batch
    order = rng.permutation(n)
    data = pd.DataFrame(y[order], columns=[f"f{i}" for i in range(n_features)])
    batch = batch.iloc[order].reset_index(drop=True)
    covariates = (
        pd.DataFrame({"geno": geno.iloc[order].to_numpy(), "age": age.iloc[order].to_numpy()})
        if with_covariates
        else None
    )
    return data, batch, covariates


def reference(data, batch, covariates, **kwargs):
    covars = pd.DataFrame({"batch": batch})
    cat, cont = [], []
    if covariates is not None:
        covars = pd.concat([covars, covariates], axis=1)
        cat, cont = ["geno"], ["age"]
    with contextlib.redirect_stdout(io.StringIO()):
        out = neuroCombat(
            data.to_numpy().T.copy(),
            covars,
            "batch",
            categorical_cols=cat,
            continuous_cols=cont,
            **kwargs,
        )
    return out["data"].T


MODES = {
    "parametric": {},
    "non-parametric": {"parametric": False},
    "no-eb": {"eb": False},
    "mean-only": {"mean_only": True},
    "ref-parametric": {"ref_batch": "site1"},
    "ref-non-parametric": {"ref_batch": "site0", "parametric": False},
    "ref-no-eb": {"ref_batch": "site2", "eb": False},
}


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("with_covariates", [True, False])
def test_matches_neurocombat(mode: str, with_covariates: bool) -> None:
    data, batch, covariates = cohort(3, (14, 21, 11), 25, with_covariates)
    kwargs = MODES[mode]
    expected = reference(data, batch, covariates, **kwargs)
    got = combat(data, batch, covariates, **kwargs).to_numpy()
    scale = data.std().to_numpy()
    assert np.max(np.abs(got - expected) / scale) < 1e-6
    if "ref_batch" in kwargs:
        keep = (batch == kwargs["ref_batch"]).to_numpy()
        np.testing.assert_array_equal(got[keep], data.to_numpy()[keep])


@given(
    seed=st.integers(0, 10_000),
    sizes=st.lists(st.integers(4, 25), min_size=2, max_size=4).map(tuple),
    n_features=st.integers(3, 30),
    mode=st.sampled_from(["parametric", "non-parametric", "no-eb", "ref-parametric"]),
)
@settings(max_examples=25, deadline=None)
def test_matches_neurocombat_on_random_cohorts(
    seed: int, sizes: tuple[int, ...], n_features: int, mode: str
) -> None:
    data, batch, covariates = cohort(seed, sizes, n_features)
    kwargs = MODES[mode]
    with np.errstate(all="ignore"):
        expected = reference(data, batch, covariates, **kwargs)
    got = combat(data, batch, covariates, **kwargs).to_numpy()
    assert np.isfinite(got).all()
    # neuroCombat's non-parametric likelihoods can underflow to 0/0 = NaN: compare where it works
    works = np.isfinite(expected)
    scale = np.broadcast_to(data.std().to_numpy(), expected.shape)
    assert np.all(np.abs(got - expected)[works] / scale[works] < 1e-6)


def test_non_parametric_stays_finite_where_neurocombat_underflows() -> None:
    data, batch, covariates = cohort(5, (25, 700), 12)
    with np.errstate(all="ignore"):
        theirs = reference(data, batch, covariates, parametric=False)
    ours = combat(data, batch, covariates, parametric=False)
    assert np.isnan(theirs).all()  # its raw likelihoods under/overflow: 0/0 and inf/inf
    assert np.isfinite(ours.to_numpy()).all()
    # the log-space weights themselves are checked against a direct computation in
    # tests/unit/features/test_harmonize.py
