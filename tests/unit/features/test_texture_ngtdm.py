"""NGTDM (IBSI 3.10) against a per-voxel brute force, closed forms and naive feature formulas.

Oracles: a pure-Python loop over voxels and neighbour offsets (matrix), the worked example of
PyRadiomics' NGTDM docstring (Amadasun & King's neighbourhood mean), double loops over grey
levels written from the IBSI formulas (features), and hand-computed degenerate ROIs.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from radgen.errors import ConfigError, EmptyRoiError, InputError
from radgen.features.texture_ngtdm import (
    ibsi_ngtdm,
    ngtdm_features,
    ngtdm_matrix,
    pyradiomics_ngtdm,
)

SETTINGS = settings(max_examples=40, deadline=None)


@st.composite
def volumes(draw: st.DrawFn, max_side: int = 7, max_ng: int = 5) -> npt.NDArray[np.int64]:
    shape = tuple(draw(st.integers(1, max_side)) for _ in range(3))
    ng = draw(st.integers(1, max_ng))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    levels = rng.integers(1, ng + 1, shape)
    levels[rng.random(shape) < draw(st.floats(0.0, 0.7))] = 0
    if not levels.any():
        levels[tuple(int(rng.integers(n)) for n in shape)] = 1
    return levels


def _offsets(norms: set[int], plane_axis: int | None) -> list[tuple[int, int, int]]:
    reach = max(norms)
    rng = range(-reach, reach + 1)
    return [
        o
        for o in itertools.product(rng, rng, rng)
        if max(map(abs, o)) in norms and (plane_axis is None or o[plane_axis] == 0)
    ]


def brute_ngtdm(
    levels: npt.NDArray[np.int64], ng: int, offsets: list[tuple[int, int, int]]
) -> npt.NDArray[np.float64]:
    """Columns n_valid, s, n_all by a loop over voxels (3D matrix)."""
    out = np.zeros((ng, 3))
    nz, ny, nx = levels.shape
    for z, y, x in itertools.product(range(nz), range(ny), range(nx)):
        g = int(levels[z, y, x])
        if g == 0:
            continue
        neigh = []
        for dz, dy, dx in offsets:
            zz, yy, xx = z + dz, y + dy, x + dx
            if 0 <= zz < nz and 0 <= yy < ny and 0 <= xx < nx and levels[zz, yy, xx] > 0:
                neigh.append(int(levels[zz, yy, xx]))
        out[g - 1, 2] += 1
        if neigh:
            out[g - 1, 0] += 1
            out[g - 1, 1] += abs(g - sum(neigh) / len(neigh))
    return out


def naive_features(matrix: npt.NDArray[np.float64], col: int) -> dict[str, float]:
    """IBSI formulas with explicit loops over the grey levels present."""
    n = matrix[:, col]
    s = matrix[:, 1]
    nvc = n.sum()
    levels = [k for k in range(len(n)) if n[k] > 0]
    p = {k: n[k] / nvc for k in levels}
    ngp = len(levels)
    ps = sum(p[k] * s[k] for k in levels)
    con = sum(p[a] * p[b] * (a - b) ** 2 for a in levels for b in levels)
    busy = sum(abs((a + 1) * p[a] - (b + 1) * p[b]) for a in levels for b in levels)
    comp = sum(
        abs(a - b) * (p[a] * s[a] + p[b] * s[b]) / (p[a] + p[b]) for a in levels for b in levels
    )
    stre = sum((p[a] + p[b]) * (a - b) ** 2 for a in levels for b in levels)
    return {
        "ngt.coarseness": 1 / ps if ps else math.nan,
        "ngt.contrast": con / (ngp * (ngp - 1)) * s.sum() / nvc if ngp > 1 else math.nan,
        "ngt.busyness": ps / busy if busy else math.nan,
        "ngt.complexity": comp / nvc,
        "ngt.strength": stre / s.sum() if s.sum() else math.nan,
    }


def assert_features_equal(got: dict[str, float], expected: dict[str, float]) -> None:
    assert set(got) == set(expected)
    for key, value in expected.items():
        if math.isnan(value):
            assert math.isnan(got[key]), key
        else:
            assert got[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key


@SETTINGS
@given(levels=volumes(), distance=st.integers(1, 3), two_d=st.booleans())
def test_matrix_matches_brute_force(
    levels: npt.NDArray[np.int64], distance: int, two_d: bool
) -> None:
    ng = int(levels.max()) + 1  # one empty top level: rows span 1..ng regardless
    offsets = _offsets(set(range(1, distance + 1)), 0 if two_d else None)
    got = ngtdm_matrix(levels, ng, two_d=two_d, distance=distance)
    if two_d:
        assert got.shape == (levels.shape[0], ng, 3)
        for z in range(levels.shape[0]):
            expected = brute_ngtdm(levels[z : z + 1], ng, offsets)
            np.testing.assert_allclose(got[z], expected, rtol=1e-12, atol=1e-12)
    else:
        np.testing.assert_allclose(got, brute_ngtdm(levels, ng, offsets), rtol=1e-12, atol=1e-12)


@SETTINGS
@given(
    levels=volumes(),
    distances=st.lists(st.integers(1, 3), min_size=1, max_size=3, unique=True),
    plane=st.sampled_from([None, 0, 1, 2]),
)
def test_pyradiomics_neighbourhood_is_union_of_shells(
    levels: npt.NDArray[np.int64], distances: list[int], plane: int | None
) -> None:
    ng = int(levels.max())
    matrix = brute_ngtdm(levels, ng, _offsets(set(distances), plane))
    got = pyradiomics_ngtdm(
        levels, distances=distances, force2D=plane is not None, force2Ddimension=plane or 0
    )
    expected = naive_features(matrix, col=2)
    if matrix[:, 1].sum() == 0:  # PyRadiomics' replacements for undefined values
        expected.update({"ngt.coarseness": 1e6, "ngt.strength": 0.0})
    for key in ("ngt.contrast", "ngt.busyness"):
        if math.isnan(expected[key]):
            expected[key] = 0.0
    names = {
        "Coarseness": "ngt.coarseness",
        "Contrast": "ngt.contrast",
        "Busyness": "ngt.busyness",
        "Complexity": "ngt.complexity",
        "Strength": "ngt.strength",
    }
    assert_features_equal(got, {name: expected[tag] for name, tag in names.items()})


@SETTINGS
@given(levels=volumes())
def test_features_match_naive_formulas(levels: npt.NDArray[np.int64]) -> None:
    ng = int(levels.max())
    matrix = ngtdm_matrix(levels, ng)
    if matrix[:, 0].sum() == 0:
        assert all(math.isnan(v) for v in ngtdm_features(matrix).values())
        return
    assert_features_equal(ngtdm_features(matrix), naive_features(matrix, col=0))


def test_pyradiomics_docstring_example() -> None:
    """The 4x4 example of PyRadiomics' NGTDM docstring (s_3 = 3.03: its table's 2.63 is a typo)."""
    image = np.array([[1, 2, 5, 2], [3, 5, 1, 3], [1, 3, 5, 5], [3, 1, 1, 1]])[None]
    m = ngtdm_matrix(image, 5)
    np.testing.assert_array_equal(m[:, 0], [6, 2, 4, 0, 4])
    expected_s = [
        7 / 3 + 22 / 8 + 2 + 8 / 5 + 2 + 8 / 3,  # 13.35
        1 + 1,
        3 / 5 + 3 / 5 + 1 / 2 + 4 / 3,
        0,
        12 / 5 + 19 / 8 + 5 / 2 + 14 / 5,  # 10.075 (the docstring's own terms are off)
    ]
    np.testing.assert_allclose(m[:, 1], expected_s, rtol=1e-12)


def test_isolated_voxel_counts_only_for_pyradiomics() -> None:
    levels = np.zeros((1, 4, 4), dtype=np.int64)
    levels[0, :2, :2] = [[1, 2], [2, 1]]
    levels[0, 3, 3] = 2  # no neighbour in the ROI
    m = ngtdm_matrix(levels, 2)
    np.testing.assert_array_equal(m[:, 0], [2, 2])  # IBSI: voxels with a valid neighbour
    np.testing.assert_array_equal(m[:, 2], [2, 3])  # PyRadiomics: every ROI voxel
    # Each voxel of the 2x2 block has 3 neighbours: two of the other level, one of its own.
    np.testing.assert_allclose(m[:, 1], [2 * abs(1 - 5 / 3), 2 * abs(2 - 4 / 3)])
    # Complexity divides by N_v: 4 (IBSI) vs 5 (PyRadiomics).
    ibsi = ngtdm_features(m)
    pyrad = pyradiomics_ngtdm(levels)
    p_ibsi, p_py = np.array([0.5, 0.5]), np.array([0.4, 0.6])
    s = m[:, 1]
    # Two orders (i, j) of |1 - 2| (p1 s1 + p2 s2) / (p1 + p2), with p1 + p2 = 1.
    assert ibsi["ngt.complexity"] == pytest.approx(2 * (p_ibsi @ s) / 4)
    assert pyrad["Complexity"] == pytest.approx(2 * (p_py @ s) / 5)


def test_uniform_roi_is_degenerate() -> None:
    levels = np.full((3, 3, 3), 2)
    ibsi = ngtdm_features(ngtdm_matrix(levels, 4))
    assert math.isnan(ibsi["ngt.coarseness"])
    assert math.isnan(ibsi["ngt.contrast"])
    assert math.isnan(ibsi["ngt.busyness"])
    assert math.isnan(ibsi["ngt.strength"])
    assert ibsi["ngt.complexity"] == 0.0
    assert pyradiomics_ngtdm(levels) == {
        "Coarseness": 1e6,
        "Contrast": 0.0,
        "Busyness": 0.0,
        "Complexity": 0.0,
        "Strength": 0.0,
    }


@SETTINGS
@given(levels=volumes(max_side=6))
def test_ibsi_aggregations(levels: npt.NDArray[np.int64]) -> None:
    ng = int(levels.max())
    out = ibsi_ngtdm(levels, ng)
    assert len(out) == 15
    plane = _offsets({1}, 0)
    slices = [brute_ngtdm(levels[z : z + 1], ng, plane) for z in range(levels.shape[0])]
    per_slice = [naive_features(m, 0) for m in slices if m[:, 0].sum() > 0]
    merged_matrix = np.sum(slices, axis=0)
    merged = naive_features(merged_matrix, 0) if merged_matrix[:, 0].sum() else None
    full = brute_ngtdm(levels, ng, _offsets({1}, None))
    three_d = naive_features(full, 0) if full[:, 0].sum() else None
    for tag in ("ngt.coarseness", "ngt.contrast", "ngt.busyness", "ngt.complexity", "ngt.strength"):
        values = [f[tag] for f in per_slice if not math.isnan(f[tag])]
        expected = float(np.mean(values)) if values else math.nan
        assert_features_equal({tag: out[f"{tag} [2D]"]}, {tag: expected})
        expected_25 = merged[tag] if merged else math.nan
        assert_features_equal({tag: out[f"{tag} [2.5D]"]}, {tag: expected_25})
        expected_3 = three_d[tag] if three_d else math.nan
        assert_features_equal({tag: out[f"{tag} [3D]"]}, {tag: expected_3})


@SETTINGS
@given(
    levels=volumes(max_side=8),
    distance=st.integers(1, 2),
    two_d=st.booleans(),
    cuts=st.lists(st.floats(0.0, 1.0), min_size=3, max_size=3),
)
def test_chunks_with_halo_sum_to_whole(
    levels: npt.NDArray[np.int64], distance: int, two_d: bool, cuts: list[float]
) -> None:
    """Additive over chunks: chunk + halo of `distance`, centres restricted to the chunk."""
    ng = int(levels.max())
    whole = ngtdm_matrix(levels, ng, two_d=two_d, distance=distance)
    bounds = [(0, round(c * n), n) for c, n in zip(cuts, levels.shape, strict=True)]
    total = np.zeros_like(whole)
    for parts in itertools.product(*[[(b[0], b[1]), (b[1], b[2])] for b in bounds]):
        if any(lo == hi for lo, hi in parts):
            continue
        outer = [
            (max(0, lo - distance), min(n, hi + distance))
            for (lo, hi), n in zip(parts, levels.shape, strict=True)
        ]
        chunk = levels[tuple(slice(a, b) for a, b in outer)]
        cz, cy, cx = (slice(lo - a, hi - a) for (lo, hi), (a, _) in zip(parts, outer, strict=True))
        core = (cz, cy, cx)
        if not chunk.any():
            continue
        m = ngtdm_matrix(chunk, ng, two_d=two_d, distance=distance, core=core)
        if two_d:
            total[outer[0][0] : outer[0][1]] += m
        else:
            total += m
    np.testing.assert_allclose(total, whole, rtol=1e-12, atol=1e-9)


@pytest.mark.parametrize(
    ("levels", "ng", "error"),
    [
        (np.zeros((2, 2, 2), dtype=np.int64), 3, EmptyRoiError),
        (np.ones((2, 2, 2)), 3, InputError),  # float grey levels
        (np.ones((2, 2), dtype=np.int64), 3, InputError),  # not 3-D
        (np.full((2, 2, 2), 4), 3, InputError),  # above ng
        (np.full((2, 2, 2), -1), 3, InputError),
        (np.ones((2, 2, 2), dtype=np.int64), 0, ConfigError),
    ],
)
def test_bad_input(levels: Any, ng: int, error: type[Exception]) -> None:
    with pytest.raises(error):
        ngtdm_matrix(levels, ng)


def test_bad_settings() -> None:
    levels = np.ones((2, 2, 2), dtype=np.int64)
    with pytest.raises(ConfigError):
        ngtdm_matrix(levels, 1, distance=0)
    with pytest.raises(ConfigError):
        pyradiomics_ngtdm(levels, distances=())
    with pytest.raises(ConfigError):
        pyradiomics_ngtdm(levels, force2D=True, force2Ddimension=3)
