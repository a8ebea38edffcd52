"""Biopsy detection probabilities and site planning against Monte Carlo and brute force.

Oracles: an explicit joint table over (enriched, map call), the rejection-sampling simulation of
the spatial model (tolerance 4 binomial standard errors), exhaustive search over site sets, and
a voxel-level Monte Carlo of clone presence at the planned sites.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from radgen.analysis.biopsy import (
    BiopsyPlan,
    best_split,
    detection_probability,
    hit_probability,
    p_enriched_given_negative,
    p_enriched_given_positive,
    plan,
    simulate,
)
from radgen.errors import InputError

prob = st.floats(0.02, 0.98)


@given(prob, prob, prob)
@settings(max_examples=50, deadline=None)
def test_enrichment_posteriors_match_the_joint_table(e: float, se: float, sp: float) -> None:
    joint = {  # P(E = a, S+ = b)
        (True, True): e * se,
        (True, False): e * (1 - se),
        (False, True): (1 - e) * (1 - sp),
        (False, False): (1 - e) * sp,
    }
    pos = joint[True, True] / (joint[True, True] + joint[False, True])
    neg = joint[True, False] / (joint[True, False] + joint[False, False])
    assert p_enriched_given_positive(e, se, sp) == pytest.approx(pos, rel=1e-12)
    assert p_enriched_given_negative(e, se, sp) == pytest.approx(neg, rel=1e-12)
    # a map better than chance (se + sp > 1) concentrates enrichment in S+
    if se + sp > 1:
        assert p_enriched_given_negative(e, se, sp) < e < p_enriched_given_positive(e, se, sp)


def test_closed_form_values() -> None:
    assert p_enriched_given_positive(0.2, 0.8, 0.9) == pytest.approx(0.16 / 0.24)
    assert hit_probability(0.5, 0.9, 0.1) == pytest.approx(0.5)
    kw = {"e": 0.2, "se": 0.8, "sp": 0.9, "c_e": 0.9, "c_n": 0.05}
    h_pos = (2 / 3) * 0.9 + (1 / 3) * 0.05
    h_neg_q = 0.2 * 0.2 / (0.2 * 0.2 + 0.9 * 0.8)
    h_neg = h_neg_q * 0.9 + (1 - h_neg_q) * 0.05
    h_rand = 0.2 * 0.9 + 0.8 * 0.05
    assert detection_probability("targeted", 3, **kw) == pytest.approx(1 - (1 - h_pos) ** 3)
    assert detection_probability("random", 3, **kw) == pytest.approx(1 - (1 - h_rand) ** 3)
    assert detection_probability("hedged", 3, k=2, **kw) == pytest.approx(
        1 - (1 - h_pos) ** 2 * (1 - h_neg)
    )
    assert detection_probability("hedged", 3, k=3, **kw) == detection_probability(
        "targeted", 3, **kw
    )
    assert detection_probability("random", 0, **kw) == 0.0
    # a perfect map sends every targeted core into the enriched region
    perfect = {**kw, "se": 1.0, "sp": 1.0}
    assert detection_probability("targeted", 2, **perfect) == pytest.approx(1 - 0.1**2)


SCENARIOS = [
    ("targeted", 3, None, {"e": 0.2, "se": 0.8, "sp": 0.9, "c_e": 0.7, "c_n": 0.02}),
    ("random", 3, None, {"e": 0.2, "se": 0.8, "sp": 0.9, "c_e": 0.7, "c_n": 0.02}),
    ("hedged", 4, 2, {"e": 0.3, "se": 0.6, "sp": 0.7, "c_e": 0.5, "c_n": 0.1}),
    ("hedged", 3, 0, {"e": 0.1, "se": 0.5, "sp": 0.95, "c_e": 0.9, "c_n": 0.2}),
    ("targeted", 1, None, {"e": 0.05, "se": 0.9, "sp": 0.99, "c_e": 0.6, "c_n": 0.0}),
]


@pytest.mark.parametrize(("strategy", "n", "k", "kw"), SCENARIOS)
def test_monte_carlo_agrees_with_closed_forms(
    strategy: str, n: int, k: int | None, kw: dict[str, float]
) -> None:
    want = detection_probability(strategy, n, k=k, **kw)  # type: ignore[arg-type]
    got = simulate(strategy, n, k=k, n_trials=60_000, seed=17, **kw)  # type: ignore[arg-type]
    assert got.n_trials == 60_000
    se = math.sqrt(want * (1 - want) / got.n_trials)
    assert abs(got.probability - want) < 4 * se
    assert got.standard_error == pytest.approx(se, rel=0.05)


def test_targeting_beats_random_with_an_informative_map() -> None:
    kw = {"e": 0.15, "se": 0.85, "sp": 0.9, "c_e": 0.8, "c_n": 0.05}
    for n in (1, 2, 5):
        assert detection_probability("targeted", n, **kw) > detection_probability("random", n, **kw)


@given(st.integers(0, 6), prob, prob, prob, prob, prob)
@settings(max_examples=40, deadline=None)
def test_best_split_is_the_brute_force_optimum(
    n: int, e: float, se: float, sp: float, c_e: float, c_n: float
) -> None:
    kw = {"e": e, "se": se, "sp": sp, "c_e": c_e, "c_n": c_n}
    k, p = best_split(n, **kw)
    values = [detection_probability("hedged", n, k=j, **kw) for j in range(n + 1)]
    assert p == pytest.approx(max(values), abs=1e-15)
    assert values[k] == p


KW = {"e": 0.2, "se": 0.8, "sp": 0.9, "c_e": 0.5, "c_n": 0.1}


@pytest.mark.parametrize(
    ("call", "where", "words"),
    [
        (lambda: detection_probability("sideways", 2, **KW), "strategy", "one of"),  # type: ignore[arg-type]
        (lambda: detection_probability("hedged", 2, **KW), "k", "needs k"),
        (lambda: detection_probability("hedged", 2, k=3, **KW), "k", "between 0 and n"),
        (lambda: detection_probability("random", 2, k=1, **KW), "k", "only to the hedged"),
        (lambda: detection_probability("random", -1, **KW), "n", "non-negative"),
        (lambda: detection_probability("random", 2, **{**KW, "e": 1.2}), "e", "[0, 1]"),
        (lambda: detection_probability("targeted", 2, **{**KW, "se": 0.0, "sp": 1.0}), "se", "no voxel S+"),
        (lambda: p_enriched_given_negative(0.2, 1.0, 0.0), "sp", "no voxel S-"),
        (lambda: hit_probability(0.5, np.nan, 0.1), "c_e", "[0, 1]"),
        (lambda: simulate("random", 2, n_trials=0, **KW), "n_trials", ">= 1"),
    ],
)  # fmt: skip
def test_errors_name_the_argument(call: object, where: str, words: str) -> None:
    with pytest.raises(InputError) as info:
        call()  # type: ignore[operator]
    assert info.value.path == where
    assert words in info.value.reason


def test_random_needs_no_map() -> None:
    # with a map that calls nothing S+, random biopsy is still defined
    kw = {"e": 0.2, "se": 0.0, "sp": 1.0, "c_e": 0.5, "c_n": 0.1}
    assert detection_probability("random", 2, **kw) == pytest.approx(1 - (1 - 0.18) ** 2)
    assert best_split(2, **kw) == (0, pytest.approx(detection_probability("hedged", 2, k=0, **kw)))


# ---------------------------------------------------------------- plan


def pairwise_mm(coords: np.ndarray) -> np.ndarray:
    d = np.sqrt(((coords[:, None, :] - coords[None, :, :]) ** 2).sum(-1))
    return d[np.triu_indices(len(coords), 1)]


@given(
    hnp.arrays(np.float64, st.tuples(st.integers(2, 7), st.integers(2, 7), st.integers(1, 5)),
               elements=st.floats(0.0, 1.0)),
    st.integers(1, 4),
    st.floats(0.0, 4.0),
    st.tuples(st.floats(0.5, 2.0), st.floats(0.5, 2.0), st.floats(0.5, 3.0)),
)  # fmt: skip
@settings(max_examples=50, deadline=None)
def test_plan_keeps_the_minimum_distance(
    p: np.ndarray, n: int, d: float, spacing: tuple[float, float, float]
) -> None:
    try:
        got = plan(p, n, d, spacing)
    except InputError as err:  # too many sites for the map: only that refusal is allowed
        reason = (err.path, "fit" in err.reason)
        assert reason == ("n", True)
        return
    assert isinstance(got, BiopsyPlan)
    assert got.indices.shape == (n, 3)
    assert np.all(pairwise_mm(got.coordinates_mm) >= d - 1e-9)
    np.testing.assert_allclose(got.coordinates_mm, got.indices * np.asarray(spacing))
    np.testing.assert_array_equal(got.probabilities, p[tuple(got.indices.T)])
    assert got.probabilities[0] == p.max()
    assert np.all(np.diff(got.probabilities) <= 0)
    assert got.detection_probability == pytest.approx(1 - np.prod(1 - got.probabilities))


def brute_force_best(p: np.ndarray, n: int, d: float, spacing: np.ndarray) -> float:
    """Best 1 - prod(1 - p_i) over every set of n voxels pairwise >= d mm apart."""
    coords = np.argwhere(np.ones(p.shape, bool)) * spacing
    dist = np.sqrt(((coords[:, None, :] - coords[None, :, :]) ** 2).sum(-1))
    combos = np.array(list(itertools.combinations(range(p.size), n)))
    ok = np.ones(len(combos), bool)
    for a, b in itertools.combinations(range(n), 2):
        ok &= dist[combos[:, a], combos[:, b]] >= d
    detect = 1 - np.prod(1 - p.ravel()[combos[ok]], axis=1)
    return float(detect.max())


def test_greedy_plan_is_optimal_with_isolated_peaks() -> None:
    rng = np.random.default_rng(3)
    p = rng.uniform(0.0, 0.05, size=(7, 7))  # low background
    peaks = {(1, 1): 0.6, (1, 5): 0.45, (5, 2): 0.7, (4, 6): 0.3}  # pairwise >= 3.2 voxels apart
    for (i, j), v in peaks.items():
        p[i, j] = v
        for di, dj in ((0, 1), (1, 0), (0, -1), (-1, 0)):  # shoulders around each peak
            if 0 <= i + di < 7 and 0 <= j + dj < 7:
                p[i + di, j + dj] = 0.8 * v
    spacing = np.array([1.5, 1.5])
    got = plan(p, 3, 4.5, spacing)
    assert {tuple(s) for s in got.indices.tolist()} == {(5, 2), (1, 1), (1, 5)}
    want = brute_force_best(p, 3, 4.5, spacing)
    assert got.detection_probability == pytest.approx(want, rel=1e-12)
    # without the distance constraint the greedy plan would stack cores on one peak's shoulders
    close = plan(p, 3, 0.0, spacing)
    assert pairwise_mm(close.coordinates_mm).min() < 4.5
    assert close.detection_probability == pytest.approx(brute_force_best(p, 3, 0.0, spacing))


def test_plan_detection_agrees_with_voxel_monte_carlo() -> None:
    rng = np.random.default_rng(8)
    zz, yy, xx = np.meshgrid(np.arange(12), np.arange(16), np.arange(16), indexing="ij")
    blob = np.exp(-((zz - 6) ** 2 / 8 + (yy - 5) ** 2 / 10 + (xx - 9) ** 2 / 12))
    p = 0.05 + 0.5 * blob + rng.uniform(0, 0.02, blob.shape)
    spacing = (3.0, 0.8, 0.8)
    origin = (-10.0, 20.0, 5.0)
    got = plan(p, 4, 5.0, spacing, origin=origin)
    # recover voxels from the reported mm coordinates and simulate clone presence at them
    idx = np.rint((got.coordinates_mm - np.asarray(origin)) / np.asarray(spacing)).astype(int)
    np.testing.assert_array_equal(idx, got.indices)
    trials = 100_000
    present = rng.random((trials, len(idx))) < p[tuple(idx.T)]
    freq = float(present.any(axis=1).mean())
    want = got.detection_probability
    assert abs(freq - want) < 4 * math.sqrt(want * (1 - want) / trials)


def test_plan_respects_mask_and_nan() -> None:
    p = np.array([[0.9, np.nan, 0.2], [0.1, 0.8, 0.3]])
    mask = np.array([[False, True, True], [True, True, True]])
    got = plan(p, 2, 1.4, spacing=(1.0, 1.0), mask=mask)  # (0, 2) is 1.414 from (1, 1)
    assert got.indices.tolist() == [[1, 1], [0, 2]]  # 0.9 is masked out, NaN never chosen
    assert got.detection_probability == pytest.approx(1 - 0.2 * 0.8)


@pytest.mark.parametrize(
    ("args", "kwargs", "where", "words"),
    [
        ((np.full((3, 3, 3), 0.5), 30, 2.0), {}, "n", "fit"),
        ((np.full((3, 3, 3), 1.5), 1, 2.0), {}, "prob_map", "outside [0, 1]"),
        ((np.full((3, 3), 0.5), 1, 2.0), {}, "spacing", "2 positive"),
        ((np.full((3, 3, 3), 0.5), 0, 2.0), {}, "n", "positive integer"),
        ((np.full((3, 3, 3), 0.5), 1, -1.0), {}, "min_distance_mm", ">= 0"),
        ((np.full((3, 3, 3), 0.5), 1, 1.0), {"mask": np.ones((2, 2), bool)}, "mask", "shape"),
        ((np.full((3, 3, 3), np.nan), 1, 1.0), {}, "n", "fit"),
    ],
)
def test_plan_errors(args: tuple, kwargs: dict, where: str, words: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(InputError) as info:
        plan(*args, **kwargs)
    assert info.value.path == where
    assert words in info.value.reason
