"""GLCM matrices and features against brute-force counting, explicit formulas and closed forms.

Oracles: a voxel-by-voxel loop over the 13 IBSI directions (written out by hand below), the IBSI
feature formulas evaluated element by element with Python loops, and hand-computed values on
checkerboards and constant images.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from radgen.errors import ConfigError, EmptyRoiError, InputError
from radgen.features.discretize import fixed_bin_number
from radgen.features.texture_glcm import (
    GLCM_TAGS,
    IBSI_GLCM_AGGREGATIONS,
    glcm_directions,
    glcm_features,
    glcm_matrices,
    ibsi_glcm,
    pyradiomics_glcm,
    pyradiomics_glcm_features,
)

#: The 13 directions of a 26-neighbourhood, one of each +/- pair, (dz, dy, dx).
DIRECTIONS_3D = {
    (0, 0, 1), (0, 1, 0), (0, 1, 1), (0, 1, -1),
    (1, 0, 0), (1, 0, 1), (1, 0, -1), (1, 1, 0), (1, -1, 0),
    (1, 1, 1), (1, 1, -1), (1, -1, 1), (1, -1, -1),
}  # fmt: skip
DIRECTIONS_2D = {(0, 0, 1), (0, 1, 0), (0, 1, 1), (0, 1, -1)}


def brute_counts(levels: np.ndarray, ng: int, offset: tuple[int, int, int]) -> np.ndarray:
    """Asymmetric co-occurrence counts by looping over every voxel."""
    out = np.zeros((ng, ng), dtype=np.int64)
    shape = levels.shape
    for v in np.ndindex(shape):
        w = tuple(a + b for a, b in zip(v, offset, strict=True))
        if all(0 <= c < n for c, n in zip(w, shape, strict=True)) and levels[v] and levels[w]:
            out[levels[v] - 1, levels[w] - 1] += 1
    return out


def naive_features(counts: np.ndarray, ng: int) -> dict[str, float]:
    """IBSI GLCM features of one matrix, element by element, in exact rational arithmetic
    (floating point only for the logarithms and square roots)."""
    n = counts.shape[0]
    total = int(counts.sum())
    p = [[Fraction(int(counts[i, j]), total) for j in range(n)] for i in range(n)]
    idx = range(n)
    pairs = [(i, j) for i in idx for j in idx]
    px = [sum(p[i][j] for j in idx) for i in idx]
    py = [sum(p[i][j] for i in idx) for j in idx]
    mu = sum((i + 1) * p[i][j] for i, j in pairs)
    muy = sum((j + 1) * p[i][j] for i, j in pairs)
    pd = [sum(p[i][j] for i, j in pairs if abs(i - j) == k) for k in range(n)]
    ps = {k: sum(p[i][j] for i, j in pairs if i + j + 2 == k) for k in range(2, 2 * n + 1)}

    def h(values: Sequence[Fraction | int]) -> float:
        return -sum(float(v) * math.log2(v) for v in values if v > 0)

    hxy = h([p[i][j] for i, j in pairs])
    hx, hy = h(px), h(py)
    hxy1 = -sum(float(p[i][j]) * math.log2(px[i] * py[j]) for i, j in pairs if p[i][j] > 0)
    hxy2 = -sum(float(px[i] * py[j]) * math.log2(px[i] * py[j]) for i, j in pairs if px[i] * py[j])
    var_x = sum((i + 1 - mu) ** 2 * px[i] for i in idx)
    var_y = sum((j + 1 - muy) ** 2 * py[j] for j in idx)
    cov = sum((i + 1 - mu) * (j + 1 - muy) * p[i][j] for i, j in pairs)
    da = sum(k * pd[k] for k in range(n))
    sa = sum(k * v for k, v in ps.items())

    def clust(power: int) -> float:
        return float(sum((i + j + 2 - mu - muy) ** power * p[i][j] for i, j in pairs))

    return {
        "cm.joint.max": float(max(max(row) for row in p)),
        "cm.joint.avg": float(mu),
        "cm.joint.var": float(sum((i + 1 - mu) ** 2 * p[i][j] for i, j in pairs)),
        "cm.joint.entr": hxy,
        "cm.diff.avg": float(da),
        "cm.diff.var": float(sum((k - da) ** 2 * pd[k] for k in range(n))),
        "cm.diff.entr": h(pd),
        "cm.sum.avg": float(sa),
        "cm.sum.var": float(sum((k - sa) ** 2 * v for k, v in ps.items())),
        "cm.sum.entr": h([*ps.values()]),
        "cm.energy": float(sum(p[i][j] ** 2 for i, j in pairs)),
        "cm.contrast": float(sum((i - j) ** 2 * p[i][j] for i, j in pairs)),
        "cm.dissimilarity": float(sum(abs(i - j) * p[i][j] for i, j in pairs)),
        "cm.inv.diff": float(sum(p[i][j] / (1 + abs(i - j)) for i, j in pairs)),
        "cm.inv.diff.norm": float(sum(p[i][j] / (1 + Fraction(abs(i - j), ng)) for i, j in pairs)),
        "cm.inv.diff.mom": float(sum(p[i][j] / (1 + (i - j) ** 2) for i, j in pairs)),
        "cm.inv.diff.mom.norm": float(
            sum(p[i][j] / (1 + Fraction((i - j) ** 2, ng**2)) for i, j in pairs)
        ),
        "cm.inv.var": float(sum(p[i][j] / (i - j) ** 2 for i, j in pairs if i != j)),
        "cm.corr": float(cov) / math.sqrt(var_x * var_y) if var_x * var_y > 0 else math.nan,
        "cm.auto.corr": float(sum((i + 1) * (j + 1) * p[i][j] for i, j in pairs)),
        "cm.clust.tend": clust(2),
        "cm.clust.shade": clust(3),
        "cm.clust.prom": clust(4),
        "cm.info.corr.1": (hxy - hxy1) / max(hx, hy) if max(hx, hy) > 0 else math.nan,
        "cm.info.corr.2": math.sqrt(1 - math.exp(-2 * max(hxy2 - hxy, 0.0))),
    }


def roi_levels(max_side: int = 6, max_ng: int = 6) -> st.SearchStrategy[tuple[np.ndarray, int]]:
    """Small (z, y, x) grey-level arrays, 0 outside the ROI, with their ng."""

    @st.composite
    def build(draw: st.DrawFn) -> tuple[np.ndarray, int]:
        ng = draw(st.integers(1, max_ng))
        shape = draw(st.tuples(*[st.integers(1, max_side)] * 3))
        levels = draw(hnp.arrays(np.int64, shape, elements=st.integers(0, ng)))
        return levels, ng

    return build()


# --------------------------------------------------------------------------- directions


def test_directions_are_the_13_and_4_neighbourhood_directions() -> None:
    assert set(glcm_directions((1,))) == DIRECTIONS_3D
    assert len(glcm_directions((1,))) == 13
    assert glcm_directions((1,), fixed_axis=0) == [(0, 1, 1), (0, 1, 0), (0, 1, -1), (0, 0, 1)]


def test_directions_for_two_distances() -> None:
    # Chebyshev shell of radius 2 has 5^3 - 3^3 = 98 offsets, 49 up to sign; plus 13.
    dirs = glcm_directions((1, 2))
    assert len(dirs) == 62
    assert len(set(dirs)) == 62
    assert all(next(c for c in d if c) > 0 for d in dirs)
    assert len(glcm_directions((2,), fixed_axis=0)) == 8  # 5^2 - 3^2 = 16 in-plane, /2


# --------------------------------------------------------------------------- matrices


@given(roi_levels())
@settings(max_examples=40, deadline=None)
def test_matrices_match_brute_force_counting(case: tuple[np.ndarray, int]) -> None:
    levels, ng = case
    dirs = glcm_directions((1,))
    asym = glcm_matrices(levels, ng, symmetric=False)
    sym = glcm_matrices(levels, ng)
    for k, off in enumerate(dirs):
        expected = brute_counts(levels, ng, off)
        np.testing.assert_array_equal(asym[k], expected)
        np.testing.assert_array_equal(sym[k], expected + expected.T)
    # Total pairs per direction: voxel pairs both in the ROI.
    roi = levels > 0
    assert sym[dirs.index((1, 0, 0))].sum() == 2 * np.sum(roi[1:] & roi[:-1])


@given(roi_levels())
@settings(max_examples=30, deadline=None)
def test_2d_matrices_are_per_slice_in_plane_counts(case: tuple[np.ndarray, int]) -> None:
    levels, ng = case
    m2 = glcm_matrices(levels, ng, two_d=True)
    assert m2.shape == (levels.shape[0], 4, ng, ng)
    for z in range(levels.shape[0]):
        for k, off in enumerate(glcm_directions((1,), fixed_axis=0)):
            expected = brute_counts(levels[z : z + 1], ng, off)
            np.testing.assert_array_equal(m2[z, k], expected + expected.T)
    # In-plane 3D matrices are the 2D ones summed over slices.
    m3 = glcm_matrices(levels, ng)
    dirs = glcm_directions((1,))
    for k, off in enumerate(glcm_directions((1,), fixed_axis=0)):
        np.testing.assert_array_equal(m3[dirs.index(off)], m2[:, k].sum(axis=0))


@given(roi_levels(max_side=9), st.sampled_from([(1,), (1, 2), (2,)]), st.data())
@settings(max_examples=40, deadline=None)
def test_counts_are_additive_over_z_slabs_with_halo(
    case: tuple[np.ndarray, int], distances: tuple[int, ...], data: st.DataObject
) -> None:
    """The chunking rule of the docstring: sum(slabs with halo) - sum(overlaps) = whole."""
    levels, ng = case
    halo = max(distances)
    nz = levels.shape[0]
    cuts = sorted(set(data.draw(st.lists(st.integers(1, max(1, nz - 1)), max_size=3))))
    cuts = [c for c in cuts if 0 < c < nz]
    # slabs must be at least `halo` slices thick so that no pair spans three slabs
    bounds = [0]
    for c in cuts:
        if c - bounds[-1] >= halo:
            bounds.append(c)
    bounds.append(nz)
    whole = glcm_matrices(levels, ng, distances=distances)
    total = np.zeros_like(whole)
    for lo, hi in itertools.pairwise(bounds):
        total += glcm_matrices(levels[lo : min(hi + halo, nz)], ng, distances=distances)
        if hi < nz:
            total -= glcm_matrices(levels[hi : min(hi + halo, nz)], ng, distances=distances)
    np.testing.assert_array_equal(total, whole)
    # 2D matrices are per slice: disjoint slabs concatenate.
    parts = [glcm_matrices(levels[lo:hi], ng, two_d=True) for lo, hi in itertools.pairwise(bounds)]
    np.testing.assert_array_equal(np.concatenate(parts), glcm_matrices(levels, ng, two_d=True))


def test_zero_padding_changes_nothing() -> None:
    rng = np.random.default_rng(3)
    levels = rng.integers(0, 5, (4, 5, 6))
    padded = np.pad(levels, 2)
    np.testing.assert_array_equal(glcm_matrices(levels, 4), glcm_matrices(padded, 4))
    assert glcm_matrices(np.zeros((3, 3, 3), dtype=int), 4).sum() == 0


# --------------------------------------------------------------------------- features


@st.composite
def count_matrices(draw: st.DrawFn) -> np.ndarray:
    n = draw(st.integers(1, 6))
    counts = draw(hnp.arrays(np.int64, (n, n), elements=st.integers(0, 20)))
    if draw(st.booleans()):
        counts = counts + counts.T
    if counts.sum() == 0:
        counts[draw(st.integers(0, n - 1)), draw(st.integers(0, n - 1))] = 1
    return counts


@given(count_matrices(), st.integers(0, 4))
@settings(max_examples=60, deadline=None)
def test_features_match_elementwise_formulas(counts: np.ndarray, extra: int) -> None:
    ng = counts.shape[0] + extra  # normalising Ng may exceed the matrix size
    got = glcm_features(counts, ng)
    expected = naive_features(counts, ng)
    assert set(got) == set(GLCM_TAGS) == set(expected)
    for tag in GLCM_TAGS:
        value = float(got[tag])
        if math.isnan(expected[tag]):
            assert math.isnan(value), tag
        elif tag == "cm.info.corr.2":  # sqrt(1 - e^(-2x)) near x = 0 amplifies rounding: compare x
            assert value**2 == pytest.approx(expected[tag] ** 2, rel=1e-9, abs=1e-12)
        else:
            assert value == pytest.approx(expected[tag], rel=1e-9, abs=1e-9), tag


def test_features_of_a_stack_are_featurewise() -> None:
    rng = np.random.default_rng(7)
    stack = rng.integers(0, 9, (3, 2, 5, 5))
    stack[1, 1] = 0  # an empty matrix gives NaN everywhere
    got = glcm_features(stack, 5)
    for tag in GLCM_TAGS:
        assert got[tag].shape == (3, 2)
        assert math.isnan(got[tag][1, 1])
        single = glcm_features(stack[2, 0], 5)[tag]
        assert got[tag][2, 0] == pytest.approx(float(single), rel=1e-12, abs=1e-15)


def test_checkerboard_closed_forms() -> None:
    # One slice, levels 1 and 2 alternating: horizontal and vertical neighbours always differ,
    # diagonal neighbours never do.
    board = (np.indices((1, 6, 6)).sum(axis=0) % 2 + 1).astype(np.int64)
    m = glcm_matrices(board, 2, two_d=True)[0]
    horizontal = glcm_features(m[3], 2)  # direction (0, 0, 1)
    diagonal = glcm_features(m[0], 2)  # direction (0, 1, 1)
    assert float(horizontal["cm.contrast"]) == 1.0
    assert float(horizontal["cm.energy"]) == 0.5
    assert float(horizontal["cm.joint.avg"]) == 1.5
    assert float(horizontal["cm.corr"]) == pytest.approx(-1.0)
    assert float(horizontal["cm.info.corr.1"]) == pytest.approx(-1.0)
    assert float(horizontal["cm.info.corr.2"]) == pytest.approx(math.sqrt(1 - math.exp(-2)))
    assert float(horizontal["cm.inv.var"]) == 1.0
    assert float(horizontal["cm.inv.diff.norm"]) == pytest.approx(1 / 1.5)
    assert float(diagonal["cm.contrast"]) == 0.0
    assert float(diagonal["cm.corr"]) == pytest.approx(1.0)
    # 25 diagonal pairs, 13 of them (1, 1) and 12 (2, 2): p = (0.52, 0.48) on the diagonal.
    assert float(diagonal["cm.joint.entr"]) == pytest.approx(
        -(0.52 * math.log2(0.52) + 0.48 * math.log2(0.48))
    )
    assert float(diagonal["cm.energy"]) == pytest.approx(0.52**2 + 0.48**2)
    assert float(diagonal["cm.diff.entr"]) == 0.0
    assert float(diagonal["cm.inv.var"]) == 0.0


def test_constant_roi() -> None:
    got = ibsi_glcm(np.full((3, 4, 4), 2, dtype=np.int64), 3)
    for agg in IBSI_GLCM_AGGREGATIONS:
        assert got[f"cm.contrast [{agg}]"] == 0.0
        assert got[f"cm.energy [{agg}]"] == 1.0
        assert got[f"cm.joint.avg [{agg}]"] == 2.0
        assert got[f"cm.sum.avg [{agg}]"] == 4.0
        assert got[f"cm.joint.entr [{agg}]"] == 0.0
        assert got[f"cm.joint.var [{agg}]"] == 0.0
        assert got[f"cm.info.corr.2 [{agg}]"] == 0.0
        assert math.isnan(got[f"cm.corr [{agg}]"])  # 0/0
        assert math.isnan(got[f"cm.info.corr.1 [{agg}]"])  # 0/0


# --------------------------------------------------------------------------- aggregation


def test_ibsi_returns_every_tag_and_aggregation() -> None:
    rng = np.random.default_rng(0)
    got = ibsi_glcm(rng.integers(1, 5, (3, 4, 5)), 4)
    assert set(got) == {f"{t} [{a}]" for t in GLCM_TAGS for a in IBSI_GLCM_AGGREGATIONS}
    assert len(got) == 150
    assert all(np.isfinite(v) for v in got.values())


@given(roi_levels(max_side=6, max_ng=5))
@settings(max_examples=30, deadline=None)
def test_single_slice_2d_equals_2p5d(case: tuple[np.ndarray, int]) -> None:
    levels, ng = case
    levels = levels[:1]
    if not np.any(levels > 0):
        levels[0, 0, 0] = 1
    got = ibsi_glcm(levels, ng)
    for tag in GLCM_TAGS:
        for a, b in (
            ("2D, averaged", "2.5D, direction-merged"),
            ("2D, slice-merged", "2.5D, merged"),
        ):
            x, y = got[f"{tag} [{a}]"], got[f"{tag} [{b}]"]
            assert (math.isnan(x) and math.isnan(y)) or x == pytest.approx(y, rel=1e-12, abs=1e-12)


def test_2d_averages_skip_slices_without_pairs() -> None:
    rng = np.random.default_rng(5)
    part = rng.integers(1, 4, (1, 5, 5))
    lone = np.zeros((1, 5, 5), dtype=np.int64)
    lone[0, 2, 2] = 3  # one voxel: no in-plane pair
    both = np.concatenate([part, np.zeros_like(part), lone])  # slices 1 and 2 never touch slice 0
    alone, got = ibsi_glcm(part, 3), ibsi_glcm(both, 3)
    for tag in GLCM_TAGS:
        for agg in ("2D, averaged", "2D, slice-merged", "2.5D, direction-merged", "2.5D, merged"):
            assert got[f"{tag} [{agg}]"] == pytest.approx(alone[f"{tag} [{agg}]"], rel=1e-12)


def test_no_pair_at_all_gives_nan() -> None:
    levels = np.zeros((3, 3, 3), dtype=np.int64)
    levels[0, 0, 0] = levels[2, 2, 2] = 1
    assert all(math.isnan(v) for v in ibsi_glcm(levels, 2).values())


@given(
    hnp.arrays(np.int64, (3, 4, 4), elements=st.integers(0, 13)),
    st.floats(0.1, 20),
    st.floats(-300, 300),
)
@settings(max_examples=30, deadline=None)
def test_invariant_to_affine_intensity_maps_under_fixed_bin_number(
    raw: np.ndarray, scale: float, shift: float
) -> None:
    """I' = aI + b (a > 0), z-scored within the ROI, discretises to the same levels.

    Intensities are integers 0..13 (both ends present) and Ng = 8: 8k/13 is never an integer
    for 0 < k < 13, so rounding of the z-scores cannot move a value across a bin edge.
    """
    raw = raw.copy()
    raw.flat[0], raw.flat[-1] = 0, 13
    image = raw.astype(np.float64)

    def z_scored_levels(x: np.ndarray) -> np.ndarray:
        z = (x - x.mean()) / x.std()
        return fixed_bin_number(z, 8).reshape(x.shape)

    a, b = z_scored_levels(image), z_scored_levels(scale * image + shift)
    np.testing.assert_array_equal(a, b)
    fa, fb = ibsi_glcm(a, 8), ibsi_glcm(b, 8)
    for key, value in fa.items():
        assert (math.isnan(value) and math.isnan(fb[key])) or fb[key] == value


# --------------------------------------------------------------------------- errors


def test_input_errors() -> None:
    good = np.ones((2, 2, 2), dtype=np.int64)
    with pytest.raises(InputError, match="3-D"):
        glcm_matrices(np.ones((2, 2), dtype=np.int64), 2)
    with pytest.raises(InputError, match="integer"):
        glcm_matrices(good.astype(float), 2)
    with pytest.raises(InputError, match="exceeds ng"):
        glcm_matrices(good * 3, 2)
    with pytest.raises(InputError, match=">= 1"):
        glcm_matrices(-good, 2)
    with pytest.raises(ConfigError, match="ng"):
        glcm_matrices(good, 0)
    with pytest.raises(ConfigError, match="distances"):
        glcm_matrices(good, 2, distances=(0,))
    with pytest.raises(ConfigError, match="distances"):
        glcm_matrices(good, 2, distances=())
    with pytest.raises(EmptyRoiError):
        ibsi_glcm(np.zeros((2, 2, 2), dtype=np.int64), 2)
    with pytest.raises(InputError, match="square"):
        glcm_features(np.ones((2, 3)))


def test_pyradiomics_settings_errors() -> None:
    levels = np.array([[[1, 2], [2, 1]]])
    with pytest.raises(ConfigError, match="weightingNorm"):
        pyradiomics_glcm(levels, weightingNorm="chebyshev")
    with pytest.raises(ConfigError, match="spacing"):
        pyradiomics_glcm(levels, weightingNorm="euclidean")
    with pytest.raises(ConfigError, match="spacing"):
        pyradiomics_glcm(levels, weightingNorm="euclidean", spacing=(1.0, 0.0, 1.0))
    with pytest.raises(ConfigError, match="force2Ddimension"):
        pyradiomics_glcm(levels, force2D=True, force2Ddimension=3)
    with pytest.raises(EmptyRoiError):
        pyradiomics_glcm(np.zeros((2, 2, 2), dtype=np.int64))
    offsets = glcm_directions((1,))
    with pytest.raises(InputError, match="counts"):
        pyradiomics_glcm_features(np.zeros((4, 2, 2)), [1, 2], offsets=offsets)
    with pytest.raises(InputError, match="present"):
        pyradiomics_glcm_features(np.zeros((13, 2, 2)), [2, 1], offsets=offsets)
    with pytest.raises(InputError, match="present"):
        pyradiomics_glcm_features(np.zeros((13, 2, 2)), [1, 3], offsets=offsets)
