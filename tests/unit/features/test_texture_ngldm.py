"""NGLDM (IBSI 3.11) against a per-voxel brute force, closed forms and naive feature formulas.

Oracles: a pure-Python loop over voxels and neighbour offsets (matrix), the worked 5x5 example
of PyRadiomics' GLDM docstring, the dependence counts of a uniform cube (corner 7, edge 11,
face 17, centre 26 neighbours), and sums written from the IBSI formulas (features).
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
from radgen.features.texture_ngldm import (
    ibsi_ngldm,
    ngldm_features,
    ngldm_matrix,
    pyradiomics_gldm,
)

SETTINGS = settings(max_examples=40, deadline=None)

PYRADIOMICS_NAMES = {
    "SmallDependenceEmphasis": "ngl.lde",
    "LargeDependenceEmphasis": "ngl.hde",
    "GrayLevelNonUniformity": "ngl.glnu",
    "DependenceNonUniformity": "ngl.dcnu",
    "DependenceNonUniformityNormalized": "ngl.dcnu.norm",
    "GrayLevelVariance": "ngl.gl.var",
    "DependenceVariance": "ngl.dc.var",
    "DependenceEntropy": "ngl.dc.entr",
    "LowGrayLevelEmphasis": "ngl.lgce",
    "HighGrayLevelEmphasis": "ngl.hgce",
    "SmallDependenceLowGrayLevelEmphasis": "ngl.ldlge",
    "SmallDependenceHighGrayLevelEmphasis": "ngl.ldhge",
    "LargeDependenceLowGrayLevelEmphasis": "ngl.hdlge",
    "LargeDependenceHighGrayLevelEmphasis": "ngl.hdhge",
}


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


def brute_ngldm(
    levels: npt.NDArray[np.int64], ng: int, offsets: list[tuple[int, int, int]], alpha: float
) -> npt.NDArray[np.float64]:
    """s(i, j): voxels of level i with j - 1 dependent ROI neighbours, by a loop over voxels."""
    out = np.zeros((ng, len(offsets) + 1))
    nz, ny, nx = levels.shape
    for z, y, x in itertools.product(range(nz), range(ny), range(nx)):
        g = int(levels[z, y, x])
        if g == 0:
            continue
        k = 0
        for dz, dy, dx in offsets:
            zz, yy, xx = z + dz, y + dy, x + dx
            if 0 <= zz < nz and 0 <= yy < ny and 0 <= xx < nx:
                other = int(levels[zz, yy, xx])
                k += other > 0 and abs(other - g) <= alpha
        out[g - 1, k] += 1
    return out


def naive_features(s: npt.NDArray[np.float64]) -> dict[str, float]:
    """IBSI formulas as explicit sums over the non-zero cells."""
    ns = s.sum()
    cells = [(i + 1, j + 1, s[i, j]) for i in range(s.shape[0]) for j in range(s.shape[1])]
    cells = [c for c in cells if c[2] > 0]
    mu_i = sum(i * v for i, _, v in cells) / ns
    mu_j = sum(j * v for _, j, v in cells) / ns
    rows = [sum(v for i, _, v in cells if i == r) for r in range(1, s.shape[0] + 1)]
    cols = [sum(v for _, j, v in cells if j == c) for c in range(1, s.shape[1] + 1)]
    return {
        "ngl.lde": sum(v / j**2 for _, j, v in cells) / ns,
        "ngl.hde": sum(v * j**2 for _, j, v in cells) / ns,
        "ngl.lgce": sum(v / i**2 for i, _, v in cells) / ns,
        "ngl.hgce": sum(v * i**2 for i, _, v in cells) / ns,
        "ngl.ldlge": sum(v / (i * j) ** 2 for i, j, v in cells) / ns,
        "ngl.ldhge": sum(v * i**2 / j**2 for i, j, v in cells) / ns,
        "ngl.hdlge": sum(v * j**2 / i**2 for i, j, v in cells) / ns,
        "ngl.hdhge": sum(v * (i * j) ** 2 for i, j, v in cells) / ns,
        "ngl.glnu": sum(r**2 for r in rows) / ns,
        "ngl.glnu.norm": sum(r**2 for r in rows) / ns**2,
        "ngl.dcnu": sum(c**2 for c in cols) / ns,
        "ngl.dcnu.norm": sum(c**2 for c in cols) / ns**2,
        "ngl.dc.perc": 1.0,
        "ngl.gl.var": sum(v * (i - mu_i) ** 2 for i, _, v in cells) / ns,
        "ngl.dc.var": sum(v * (j - mu_j) ** 2 for _, j, v in cells) / ns,
        "ngl.dc.entr": -sum(v / ns * math.log2(v / ns) for _, _, v in cells),
        "ngl.dc.energy": sum((v / ns) ** 2 for _, _, v in cells),
    }


def assert_features_equal(got: dict[str, float], expected: dict[str, float]) -> None:
    assert set(got) == set(expected)
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key


@SETTINGS
@given(
    levels=volumes(),
    distance=st.integers(1, 2),
    alpha=st.integers(0, 3),
    two_d=st.booleans(),
)
def test_matrix_matches_brute_force(
    levels: npt.NDArray[np.int64], distance: int, alpha: int, two_d: bool
) -> None:
    ng = int(levels.max()) + 1
    offsets = _offsets(set(range(1, distance + 1)), 0 if two_d else None)
    got = ngldm_matrix(levels, ng, two_d=two_d, alpha=alpha, distance=distance)
    assert got.shape[-1] == len(offsets) + 1
    if two_d:
        assert got.shape[:2] == (levels.shape[0], ng)
        for z in range(levels.shape[0]):
            expected = brute_ngldm(levels[z : z + 1], ng, offsets, alpha)
            np.testing.assert_array_equal(got[z], expected)
    else:
        np.testing.assert_array_equal(got, brute_ngldm(levels, ng, offsets, alpha))


@SETTINGS
@given(levels=volumes())
def test_features_match_naive_formulas(levels: npt.NDArray[np.int64]) -> None:
    matrix = ngldm_matrix(levels, int(levels.max()))
    assert_features_equal(ngldm_features(matrix), naive_features(matrix))


@SETTINGS
@given(
    levels=volumes(),
    distances=st.lists(st.integers(1, 3), min_size=1, max_size=3, unique=True),
    plane=st.sampled_from([None, 0, 1, 2]),
    alpha=st.integers(0, 2),
)
def test_pyradiomics_neighbourhood_is_union_of_shells(
    levels: npt.NDArray[np.int64], distances: list[int], plane: int | None, alpha: int
) -> None:
    ng = int(levels.max())
    matrix = brute_ngldm(levels, ng, _offsets(set(distances), plane), alpha)
    expected = naive_features(matrix)
    got = pyradiomics_gldm(
        levels,
        distances=distances,
        gldm_a=alpha,
        force2D=plane is not None,
        force2Ddimension=plane or 0,
    )
    assert_features_equal(got, {name: expected[tag] for name, tag in PYRADIOMICS_NAMES.items()})


def test_pyradiomics_docstring_example() -> None:
    """The 5x5 example of PyRadiomics' GLDM docstring (alpha 0, delta 1)."""
    image = np.array(
        [
            [5, 2, 5, 4, 4],
            [3, 3, 3, 1, 3],
            [2, 1, 1, 1, 3],
            [4, 2, 2, 2, 3],
            [3, 5, 3, 3, 2],
        ]
    )[None]
    expected = [[0, 1, 2, 1], [1, 2, 3, 0], [1, 4, 4, 0], [1, 2, 0, 0], [3, 0, 0, 0]]
    m = ngldm_matrix(image, 5)
    np.testing.assert_array_equal(m[:, :4], expected)
    assert not m[:, 4:].any()


def test_uniform_cube_closed_form() -> None:
    """3x3x3 of one level: 8 corners (7 neighbours), 12 edges (11), 6 faces (17), 1 centre."""
    m = ngldm_matrix(np.ones((3, 3, 3), dtype=np.int64), 1)
    expected = np.zeros(27)
    expected[[7, 11, 17, 26]] = [8, 12, 6, 1]
    np.testing.assert_array_equal(m[0], expected)
    f = ngldm_features(m)
    assert f["ngl.hde"] == pytest.approx((8 * 64 + 12 * 144 + 6 * 324 + 729) / 27)
    assert f["ngl.glnu"] == 27.0
    assert f["ngl.gl.var"] == 0.0


@SETTINGS
@given(levels=volumes(max_side=5))
def test_alpha_is_floored_and_saturates(levels: npt.NDArray[np.int64]) -> None:
    ng = int(levels.max())
    np.testing.assert_array_equal(
        ngldm_matrix(levels, ng, alpha=1.5), ngldm_matrix(levels, ng, alpha=1)
    )
    np.testing.assert_array_equal(
        ngldm_matrix(levels, ng, alpha=0.9), ngldm_matrix(levels, ng, alpha=0)
    )
    # alpha >= ng - 1: every ROI neighbour is dependent.
    every = brute_ngldm(levels, ng, _offsets({1}, None), math.inf)
    np.testing.assert_array_equal(ngldm_matrix(levels, ng, alpha=1000), every)


@SETTINGS
@given(levels=volumes(max_side=6))
def test_ibsi_aggregations(levels: npt.NDArray[np.int64]) -> None:
    ng = int(levels.max())
    out = ibsi_ngldm(levels, ng)
    assert len(out) == 51
    plane = _offsets({1}, 0)
    slices = [brute_ngldm(levels[z : z + 1], ng, plane, 0) for z in range(levels.shape[0])]
    per_slice = [naive_features(m) for m in slices if m.sum() > 0]
    merged = naive_features(np.sum(slices, axis=0))
    three_d = naive_features(brute_ngldm(levels, ng, _offsets({1}, None), 0))
    for tag in three_d:
        assert out[f"{tag} [2D]"] == pytest.approx(np.mean([f[tag] for f in per_slice]), rel=1e-9)
        assert out[f"{tag} [2.5D]"] == pytest.approx(merged[tag], rel=1e-9, abs=1e-12)
        assert out[f"{tag} [3D]"] == pytest.approx(three_d[tag], rel=1e-9, abs=1e-12)


@SETTINGS
@given(
    levels=volumes(max_side=8),
    distance=st.integers(1, 2),
    alpha=st.integers(0, 1),
    two_d=st.booleans(),
    cuts=st.lists(st.floats(0.0, 1.0), min_size=3, max_size=3),
)
def test_chunks_with_halo_sum_to_whole(
    levels: npt.NDArray[np.int64], distance: int, alpha: int, two_d: bool, cuts: list[float]
) -> None:
    """Additive over chunks: chunk + halo of `distance`, centres restricted to the chunk."""
    ng = int(levels.max())
    kw: dict[str, Any] = {"two_d": two_d, "alpha": alpha, "distance": distance}
    whole = ngldm_matrix(levels, ng, **kw)
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
        m = ngldm_matrix(chunk, ng, core=core, **kw)
        if two_d:
            total[outer[0][0] : outer[0][1]] += m
        else:
            total += m
    np.testing.assert_array_equal(total, whole)


@pytest.mark.parametrize(
    ("levels", "ng", "error"),
    [
        (np.zeros((2, 2, 2), dtype=np.int64), 3, EmptyRoiError),
        (np.ones((2, 2, 2)), 3, InputError),  # float grey levels
        (np.ones((2, 2), dtype=np.int64), 3, InputError),  # not 3-D
        (np.full((2, 2, 2), 4), 3, InputError),  # above ng
        (np.ones((2, 2, 2), dtype=np.int64), 0, ConfigError),
    ],
)
def test_bad_input(levels: Any, ng: int, error: type[Exception]) -> None:
    with pytest.raises(error):
        ngldm_matrix(levels, ng)


def test_bad_settings() -> None:
    levels = np.ones((2, 2, 2), dtype=np.int64)
    with pytest.raises(ConfigError):
        ngldm_matrix(levels, 1, distance=0)
    with pytest.raises(ConfigError):
        ngldm_matrix(levels, 1, alpha=-1)
    with pytest.raises(ConfigError):
        ngldm_matrix(levels, 1, alpha=math.nan)
    with pytest.raises(ConfigError):
        pyradiomics_gldm(levels, distances=[0])
    with pytest.raises(ConfigError):
        pyradiomics_gldm(levels, force2D=True, force2Ddimension=-1)
