"""GLDZM (IBSI 3.9) against a breadth-first-search brute force, closed forms and naive sums.

Oracles: a pure-Python BFS for the distance to the ROI edge (face-connected steps to the
nearest voxel outside the ROI or the array) and a flood fill for the zones (26- or
8-connected), concentric ROIs whose distances are known by hand, and sums written from the
IBSI formulas (features). PyRadiomics 3.0.1 has no GLDZM.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from radgen.errors import ConfigError, EmptyRoiError, InputError
from radgen.features.texture_gldzm import distance_map, gldzm_features, gldzm_matrix, ibsi_gldzm

SETTINGS = settings(max_examples=40, deadline=None)


@st.composite
def volumes(draw: st.DrawFn, max_side: int = 7, max_ng: int = 4) -> npt.NDArray[np.int64]:
    shape = tuple(draw(st.integers(1, max_side)) for _ in range(3))
    ng = draw(st.integers(1, max_ng))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    levels = rng.integers(1, ng + 1, shape)
    levels[rng.random(shape) < draw(st.floats(0.0, 0.5))] = 0
    if not levels.any():
        levels[tuple(int(rng.integers(n)) for n in shape)] = 1
    return levels


def _neighbours(two_d: bool, faces: bool) -> list[tuple[int, ...]]:
    out = []
    for o in itertools.product((-1, 0, 1), repeat=3):
        if o == (0, 0, 0) or (two_d and o[0] != 0):
            continue
        if faces and sum(map(abs, o)) != 1:
            continue
        out.append(o)
    return out


def brute_distance(roi: npt.NDArray[np.bool_], two_d: bool) -> npt.NDArray[np.int64]:
    """BFS from the outside: steps to the nearest non-ROI voxel (outside the array counts)."""
    steps = _neighbours(two_d, faces=True)
    shape = roi.shape
    dist = np.zeros(shape, dtype=np.int64)
    queue: deque[tuple[int, ...]] = deque()
    for v in itertools.product(*map(range, shape)):
        if not roi[v]:
            continue
        for o in steps:
            w = tuple(a + b for a, b in zip(v, o, strict=True))
            inside = all(0 <= c < n for c, n in zip(w, shape, strict=True))
            if not inside or not roi[w]:
                dist[v] = 1
                queue.append(v)
                break
    while queue:
        v = queue.popleft()
        for o in steps:
            w = tuple(a + b for a, b in zip(v, o, strict=True))
            if all(0 <= c < n for c, n in zip(w, shape, strict=True)) and roi[w] and not dist[w]:
                dist[w] = dist[v] + 1
                queue.append(w)
    return dist


def brute_gldzm(levels: npt.NDArray[np.int64], ng: int, two_d: bool) -> npt.NDArray[np.float64]:
    """Flood-fill zones; matrix over one slice (two_d) or the volume."""
    dist = brute_distance(levels > 0, two_d)
    steps = _neighbours(two_d, faces=False)
    seen = np.zeros(levels.shape, dtype=bool)
    zones: list[tuple[int, int]] = []
    for v in itertools.product(*map(range, levels.shape)):
        if levels[v] == 0 or seen[v]:
            continue
        g, best, stack = int(levels[v]), int(dist[v]), [v]
        seen[v] = True
        while stack:
            u = stack.pop()
            best = min(best, int(dist[u]))
            for o in steps:
                w = tuple(a + b for a, b in zip(u, o, strict=True))
                if (
                    all(0 <= c < n for c, n in zip(w, levels.shape, strict=True))
                    and not seen[w]
                    and levels[w] == g
                ):
                    seen[w] = True
                    stack.append(w)
        zones.append((g, best))
    dmax = max(d for _, d in zones)
    out = np.zeros((ng, dmax))
    for g, d in zones:
        out[g - 1, d - 1] += 1
    return out


def naive_features(x: npt.NDArray[np.float64], nv: float) -> dict[str, float]:
    ns = x.sum()
    cells = [(i + 1, d + 1, x[i, d]) for i in range(x.shape[0]) for d in range(x.shape[1])]
    cells = [c for c in cells if c[2] > 0]
    mu_i = sum(i * v for i, _, v in cells) / ns
    mu_d = sum(d * v for _, d, v in cells) / ns
    rows = [sum(v for i, _, v in cells if i == r) for r in range(1, x.shape[0] + 1)]
    cols = [sum(v for _, d, v in cells if d == c) for c in range(1, x.shape[1] + 1)]
    return {
        "dzm.sde": sum(v / d**2 for _, d, v in cells) / ns,
        "dzm.lde": sum(v * d**2 for _, d, v in cells) / ns,
        "dzm.lgze": sum(v / i**2 for i, _, v in cells) / ns,
        "dzm.hgze": sum(v * i**2 for i, _, v in cells) / ns,
        "dzm.sdlge": sum(v / (i * d) ** 2 for i, d, v in cells) / ns,
        "dzm.sdhge": sum(v * i**2 / d**2 for i, d, v in cells) / ns,
        "dzm.ldlge": sum(v * d**2 / i**2 for i, d, v in cells) / ns,
        "dzm.ldhge": sum(v * (i * d) ** 2 for i, d, v in cells) / ns,
        "dzm.glnu": sum(r**2 for r in rows) / ns,
        "dzm.glnu.norm": sum(r**2 for r in rows) / ns**2,
        "dzm.zdnu": sum(c**2 for c in cols) / ns,
        "dzm.zdnu.norm": sum(c**2 for c in cols) / ns**2,
        "dzm.z.perc": ns / nv,
        "dzm.gl.var": sum(v * (i - mu_i) ** 2 for i, _, v in cells) / ns,
        "dzm.zd.var": sum(v * (d - mu_d) ** 2 for _, d, v in cells) / ns,
        "dzm.zd.entr": -sum(v / ns * math.log2(v / ns) for _, _, v in cells),
    }


def _pad_to(a: npt.NDArray[np.float64], cols: int) -> npt.NDArray[np.float64]:
    return np.pad(a, [(0, 0)] * (a.ndim - 1) + [(0, cols - a.shape[-1])])


@SETTINGS
@given(levels=volumes(), two_d=st.booleans())
def test_distance_map_matches_bfs(levels: npt.NDArray[np.int64], two_d: bool) -> None:
    roi = levels > 0
    np.testing.assert_array_equal(distance_map(roi, two_d=two_d), brute_distance(roi, two_d))


@SETTINGS
@given(levels=volumes(), two_d=st.booleans())
def test_matrix_matches_brute_force(levels: npt.NDArray[np.int64], two_d: bool) -> None:
    ng = int(levels.max()) + 1  # an empty top level: rows span 1..ng regardless
    got = gldzm_matrix(levels, ng, two_d=two_d)
    if not two_d:
        np.testing.assert_array_equal(got, brute_gldzm(levels, ng, two_d=False))
        return
    assert got.shape[:2] == (levels.shape[0], ng)
    for z in range(levels.shape[0]):
        sl = levels[z : z + 1]
        if not sl.any():
            assert not got[z].any()
            continue
        expected = brute_gldzm(sl, ng, two_d=True)
        assert not got[z, :, expected.shape[1] :].any()
        np.testing.assert_array_equal(got[z, :, : expected.shape[1]], expected)


@SETTINGS
@given(levels=volumes())
def test_features_match_naive_formulas(levels: npt.NDArray[np.int64]) -> None:
    matrix = gldzm_matrix(levels, int(levels.max()))
    nv = float((levels > 0).sum())
    got = gldzm_features(matrix, nv)
    expected = naive_features(matrix, nv)
    assert set(got) == set(expected)
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key


@SETTINGS
@given(levels=volumes(max_side=6))
def test_ibsi_aggregations(levels: npt.NDArray[np.int64]) -> None:
    ng = int(levels.max())
    out = ibsi_gldzm(levels, ng)
    assert len(out) == 48
    nv = float((levels > 0).sum())
    slices = [
        (brute_gldzm(levels[z : z + 1], ng, True), float((levels[z] > 0).sum()))
        for z in range(levels.shape[0])
        if levels[z].any()
    ]
    width = max(m.shape[1] for m, _ in slices)
    merged = naive_features(np.sum([_pad_to(m, width) for m, _ in slices], axis=0), nv)
    per_slice = [naive_features(m, n) for m, n in slices]
    three_d = naive_features(brute_gldzm(levels, ng, False), nv)
    for tag in three_d:
        expected_2d = float(np.mean([f[tag] for f in per_slice]))
        assert out[f"{tag} [2D]"] == pytest.approx(expected_2d, rel=1e-9, abs=1e-12)
        assert out[f"{tag} [2.5D]"] == pytest.approx(merged[tag], rel=1e-9, abs=1e-12)
        assert out[f"{tag} [3D]"] == pytest.approx(three_d[tag], rel=1e-9, abs=1e-12)


def test_concentric_zones_closed_form() -> None:
    """A 5x5 slice / 5x5x5 cube of level 1 around one voxel of level 2 at the centre."""
    plane = np.ones((1, 5, 5), dtype=np.int64)
    plane[0, 2, 2] = 2
    # 2D: ring at distance 1, centre 3 steps from the edge.
    np.testing.assert_array_equal(gldzm_matrix(plane, 2, two_d=True)[0], [[1, 0, 0], [0, 0, 1]])
    # 3D: a single slice is all edge (the z neighbours lie outside the ROI).
    np.testing.assert_array_equal(gldzm_matrix(plane, 2), [[1], [1]])
    cube = np.ones((5, 5, 5), dtype=np.int64)
    cube[2, 2, 2] = 2
    np.testing.assert_array_equal(gldzm_matrix(cube, 2), [[1, 0, 0], [0, 0, 1]])
    f = gldzm_features(gldzm_matrix(cube, 2), 125)
    assert f["dzm.sde"] == pytest.approx((1 + 1 / 9) / 2)
    assert f["dzm.lde"] == pytest.approx((1 + 9) / 2)
    assert f["dzm.z.perc"] == pytest.approx(2 / 125)
    assert f["dzm.zd.var"] == pytest.approx(1.0)  # distances 1 and 3, mean 2
    assert f["dzm.zd.entr"] == pytest.approx(1.0)


def test_zones_connect_diagonally() -> None:
    """Diagonal neighbours join a zone (26-connected 3D, 8-connected in plane)."""
    levels = np.array([[[1, 2], [2, 1]]])
    np.testing.assert_array_equal(gldzm_matrix(levels, 2, two_d=True)[0], [[1], [1]])
    stacked = np.array([[[1, 2]], [[2, 1]]])  # diagonal across slices
    np.testing.assert_array_equal(gldzm_matrix(stacked, 2), [[1], [1]])
    np.testing.assert_array_equal(gldzm_matrix(stacked, 2, two_d=True).sum(axis=0), [[2], [2]])


def test_hole_in_roi_is_an_edge() -> None:
    """A voxel excluded from the ROI inside the volume counts as outside (IBSI phantom)."""
    levels = np.ones((1, 5, 5), dtype=np.int64)
    levels[0, 2, 2] = 0
    dist = distance_map(levels > 0, two_d=True)[0]
    assert dist[1, 2] == 1
    assert dist[2, 1] == 1
    assert dist[1, 1] == 2


@pytest.mark.parametrize(
    ("levels", "ng", "error"),
    [
        (np.zeros((2, 2, 2), dtype=np.int64), 3, EmptyRoiError),
        (np.ones((2, 2, 2)), 3, InputError),
        (np.ones((4,), dtype=np.int64), 3, InputError),
        (np.full((2, 2, 2), 5), 3, InputError),
        (np.ones((2, 2, 2), dtype=np.int64), -2, ConfigError),
    ],
)
def test_bad_input(levels: Any, ng: int, error: type[Exception]) -> None:
    with pytest.raises(error):
        gldzm_matrix(levels, ng)
