"""Grey level size zone matrices and features against independent oracles.

Oracles: the worked example of the PyRadiomics GLSZM documentation, a brute-force flood fill
on tiny volumes, and closed forms (voxel counts, checkerboards, feature identities with the
run length features).
"""

from __future__ import annotations

import itertools
from collections import deque

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from radgen.errors import ConfigError, EmptyRoiError, InputError
from radgen.features.texture_glrlm import length_matrix_features
from radgen.features.texture_glszm import (
    GLSZM_TAGS,
    IBSI_GLSZM_AGGREGATIONS,
    glszm_features,
    glszm_matrix,
    ibsi_glszm,
    ibsi_glszm_from_matrices,
    pyradiomics_glszm,
    pyradiomics_glszm_matrix,
)

NG = 3

volumes = hnp.arrays(
    np.int64,
    st.tuples(st.integers(1, 4), st.integers(1, 6), st.integers(1, 6)),
    elements=st.integers(0, NG),
).filter(lambda a: bool(a.any()))


def flood_fill_zones(levels: np.ndarray, planar: bool) -> list[tuple[int, int, int]]:
    """(grey level, size, slice) of every zone by breadth-first search over neighbours."""
    offsets = [
        o for o in itertools.product((-1, 0, 1), repeat=3) if any(o) and not (planar and o[0] != 0)
    ]
    seen = np.zeros(levels.shape, dtype=bool)
    zones = []
    for start in itertools.product(*(range(n) for n in levels.shape)):
        if levels[start] == 0 or seen[start]:
            continue
        grey, size = int(levels[start]), 0
        queue = deque([start])
        seen[start] = True
        while queue:
            p = queue.popleft()
            size += 1
            for o in offsets:
                q = tuple(int(a + b) for a, b in zip(p, o, strict=True))
                inside = all(0 <= c < n for c, n in zip(q, levels.shape, strict=True))
                if inside and not seen[q] and levels[q] == grey:
                    seen[q] = True
                    queue.append(q)
        zones.append((grey, size, start[0]))
    return zones


def _dense(zones: list[tuple[int, int, int]], n_slices: int | None, width: int) -> np.ndarray:
    out = np.zeros((n_slices or 1, NG, width), dtype=np.int64)
    for grey, size, z in zones:
        out[z if n_slices else 0, grey - 1, size - 1] += 1
    return out if n_slices else out[0]


def _pad(matrix: np.ndarray, width: int) -> np.ndarray:
    pad = [(0, 0)] * (matrix.ndim - 1) + [(0, width - matrix.shape[-1])]
    return np.pad(matrix, pad)


# --------------------------------------------------------------------------- matrices


def test_pyradiomics_documentation_example() -> None:
    # PyRadiomics GLSZM docs: 5x5 image, 5 grey levels, 8-connected zones.
    image = np.array(
        [
            [5, 2, 5, 4, 4],
            [3, 3, 3, 1, 3],
            [2, 1, 1, 1, 3],
            [4, 2, 2, 2, 3],
            [3, 5, 3, 3, 2],
        ]
    )
    expected = [
        [0, 0, 0, 1, 0],
        [1, 0, 0, 0, 1],
        [1, 0, 1, 0, 1],
        [1, 1, 0, 0, 0],
        [3, 0, 0, 0, 0],
    ]
    assert _pad(glszm_matrix(image[None], 5, two_d=True)[0], 5).tolist() == expected
    assert _pad(glszm_matrix(image[None], 5), 5).tolist() == expected  # one slice: same zones


@given(volumes)
@settings(max_examples=60, deadline=None)
def test_3d_matrix_matches_flood_fill(levels: np.ndarray) -> None:
    width = levels.size
    got = glszm_matrix(levels, NG)
    assert np.array_equal(_pad(got, width), _dense(flood_fill_zones(levels, False), None, width))


@given(volumes)
@settings(max_examples=60, deadline=None)
def test_2d_matrices_match_flood_fill_per_slice(levels: np.ndarray) -> None:
    width = levels.size
    got = glszm_matrix(levels, NG, two_d=True)
    expected = _dense(flood_fill_zones(levels, True), levels.shape[0], width)
    assert np.array_equal(_pad(got, width), expected)


@given(volumes)
@settings(max_examples=40, deadline=None)
def test_zones_cover_every_roi_voxel_once(levels: np.ndarray) -> None:
    m3 = glszm_matrix(levels, NG)
    assert (m3 * np.arange(1, m3.shape[-1] + 1)).sum() == np.count_nonzero(levels)
    m2 = glszm_matrix(levels, NG, two_d=True)
    per_slice = (m2 * np.arange(1, m2.shape[-1] + 1)).sum(axis=(1, 2))
    assert np.array_equal(per_slice, np.count_nonzero(levels, axis=(1, 2)))


@given(volumes, st.sampled_from([0, 1, 2]))
@settings(max_examples=30, deadline=None)
def test_pyradiomics_force2d_planes(levels: np.ndarray, axis: int) -> None:
    # force2D along `axis` is the IBSI 2.5D matrix of the volume with `axis` moved first.
    assume(sum(n > 1 for i, n in enumerate(levels.shape) if i != axis) > 0)
    moved = np.moveaxis(levels, axis, 0)
    ng = int(levels.max())
    got = pyradiomics_glszm_matrix(levels, force2D=True, force2Ddimension=axis)
    expected = _dense(flood_fill_zones(moved, True), None, levels.size)[:ng]
    assert np.array_equal(_pad(got, levels.size), expected)


def test_checkerboard_closed_form() -> None:
    # A 3x3x3 checkerboard: same-colour voxels touch along face diagonals, so 26-connectivity
    # gives one zone per colour (14 and 13 voxels); 8-connectivity in a slice gives one per
    # colour and slice (5 + 4 voxels).
    board = (np.indices((3, 3, 3)).sum(axis=0) % 2 + 1).astype(np.int64)
    m3 = glszm_matrix(board, 2)
    assert m3.sum() == 2
    assert m3[0, 13] == 1  # even coordinate sums: level 1, 14 voxels
    assert m3[1, 12] == 1
    m2 = glszm_matrix(board, 2, two_d=True)
    # slices 0 and 2 hold 5 voxels of level 1 and 4 of level 2; slice 1 the opposite
    assert _pad(m2.sum(axis=0), 5).tolist() == [[0, 0, 0, 1, 2], [0, 0, 0, 2, 1]]
    f = ibsi_glszm(board, 2)
    assert f["szm.z.perc [3D]"] == pytest.approx(2 / 27)
    assert f["szm.sze [3D]"] == pytest.approx((1 / 13**2 + 1 / 14**2) / 2)
    assert f["szm.z.perc [2D]"] == pytest.approx(2 / 9)
    p = np.array([1, 2, 2, 1]) / 6
    assert f["szm.zs.entr [2.5D]"] == pytest.approx(-np.sum(p * np.log2(p)))


# --------------------------------------------------------------------------- features


def test_features_are_the_run_length_formulas_under_zone_names() -> None:
    m = np.array([[0, 2, 1], [3, 0, 0]])
    generic = length_matrix_features(m)
    f = glszm_features(m)
    assert set(f) == set(GLSZM_TAGS)
    assert float(f["szm.sze"]) == pytest.approx(float(generic["sre"]))
    assert float(f["szm.zsnu.norm"]) == pytest.approx(float(generic["rlnu.norm"]))
    # hand-computed: 6 zones of 1*3 + 2*2 + 3*1 = 10 voxels
    assert float(f["szm.z.perc"]) == pytest.approx(6 / 10)
    assert float(f["szm.lze"]) == pytest.approx((3 * 1 + 2 * 4 + 1 * 9) / 6)
    assert float(f["szm.glnu"]) == pytest.approx((3**2 + 3**2) / 6)
    assert float(f["szm.zs.var"]) == pytest.approx(
        np.average((np.array([1, 2, 3]) - 10 / 6) ** 2, weights=[3, 2, 1])
    )


def test_ibsi_keys_and_single_slice_identity() -> None:
    rng = np.random.default_rng(5)
    levels = rng.integers(0, NG + 1, size=(1, 7, 6))
    levels[0, 0, 0] = 1
    f = ibsi_glszm(levels, NG)
    assert set(f) == {f"{t} [{a}]" for t in GLSZM_TAGS for a in IBSI_GLSZM_AGGREGATIONS}
    for tag in GLSZM_TAGS:
        assert f[f"{tag} [2D]"] == pytest.approx(f[f"{tag} [2.5D]"], rel=1e-12)
        assert f[f"{tag} [2D]"] == pytest.approx(f[f"{tag} [3D]"], rel=1e-12)


def test_pyradiomics_grey_levels_start_at_one_and_entropy_has_epsilon() -> None:
    levels = np.array([[[1, 1], [3, 3]]])
    got = pyradiomics_glszm(levels)
    assert got["ZonePercentage"] == pytest.approx(0.5)
    assert got["HighGrayLevelZoneEmphasis"] == pytest.approx((1 + 9) / 2)  # absent level 2
    assert got["ZoneEntropy"] == pytest.approx(1.0, rel=1e-12)


# --------------------------------------------------------------------------- errors


def test_errors() -> None:
    with pytest.raises(EmptyRoiError):
        glszm_matrix(np.zeros((2, 2, 2), dtype=np.int64), 2)
    with pytest.raises(InputError):
        glszm_matrix(np.full((2, 2, 2), 5), 2)
    with pytest.raises(InputError):
        glszm_matrix(np.ones((2, 2), dtype=np.int64), 2)
    with pytest.raises(ConfigError):
        glszm_matrix(np.ones((2, 2, 2), dtype=np.int64), -1)
    with pytest.raises(ConfigError):
        pyradiomics_glszm(np.ones((2, 2, 2), dtype=np.int64), force2D=True, force2Ddimension=5)


@given(volumes)
@settings(max_examples=30, deadline=None)
def test_ibsi_values_from_the_public_matrices(levels: np.ndarray) -> None:
    direct = ibsi_glszm(levels, NG)
    staged = ibsi_glszm_from_matrices(
        glszm_matrix(levels, NG), glszm_matrix(levels, NG, two_d=True)
    )
    assert staged.keys() == direct.keys()
    for key, value in direct.items():
        assert staged[key] == pytest.approx(value, rel=1e-12, abs=1e-15), key
