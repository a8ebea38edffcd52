"""Grey level run length matrices and features against independent oracles.

Oracles: the worked example of the PyRadiomics GLRLM documentation, a brute-force walk along
every line of tiny volumes, hand-computed feature values and closed forms (voxel counts,
symmetries of the direction sets).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from radgen.errors import ConfigError, EmptyRoiError, InputError
from radgen.features.texture_glrlm import (
    DIRECTIONS_2D,
    DIRECTIONS_3D,
    GLRLM_TAGS,
    IBSI_GLRLM_AGGREGATIONS,
    glrlm_features,
    glrlm_matrices,
    glrlm_matrices_of_core,
    ibsi_glrlm,
    ibsi_glrlm_from_matrices,
    length_matrix_features,
)

NG = 4

volumes = hnp.arrays(
    np.int64,
    st.tuples(st.integers(1, 5), st.integers(1, 6), st.integers(1, 6)),
    elements=st.integers(0, NG),
).filter(lambda a: bool(a.any()))


def brute_force_runs(levels: np.ndarray, direction: tuple[int, int, int], width: int) -> np.ndarray:
    """Walk every line along `direction` from its first voxel and count the runs."""
    d = np.array(direction)
    shape = np.array(levels.shape)
    out = np.zeros((NG, width), dtype=np.int64)
    for start in itertools.product(*(range(n) for n in levels.shape)):
        p = np.array(start)
        before = p - d
        if np.all(before >= 0) and np.all(before < shape):
            continue  # not the first voxel of its line
        run_level, run_length = 0, 0
        while np.all(p >= 0) and np.all(p < shape):
            value = int(levels[tuple(p)])
            if value == run_level and value > 0:
                run_length += 1
            else:
                if run_level > 0:
                    out[run_level - 1, run_length - 1] += 1
                run_level, run_length = value, 1
            p = p + d
        if run_level > 0:
            out[run_level - 1, run_length - 1] += 1
    return out


def _pad(matrix: np.ndarray, width: int) -> np.ndarray:
    pad = [(0, 0)] * (matrix.ndim - 1) + [(0, width - matrix.shape[-1])]
    return np.pad(matrix, pad)


# --------------------------------------------------------------------------- matrices


def test_pyradiomics_documentation_example() -> None:
    # PyRadiomics GLRLM docs: 5x5 image, 5 grey levels, matrix for the horizontal direction.
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
        [1, 0, 1, 0, 0],
        [3, 0, 1, 0, 0],
        [4, 1, 1, 0, 0],
        [1, 1, 0, 0, 0],
        [3, 0, 0, 0, 0],
    ]
    m2 = glrlm_matrices(image[None], 5, two_d=True)
    horizontal = DIRECTIONS_2D.index((0, 0, 1))
    assert _pad(m2[0, horizontal], 5).tolist() == expected
    m3 = glrlm_matrices(image[None], 5)
    assert _pad(m3[DIRECTIONS_3D.index((0, 0, 1))], 5).tolist() == expected


@given(volumes)
@settings(max_examples=60, deadline=None)
def test_3d_matrices_match_brute_force(levels: np.ndarray) -> None:
    got = glrlm_matrices(levels, NG)
    width = max(levels.shape)
    assert got.shape[:2] == (13, NG)
    for k, d in enumerate(DIRECTIONS_3D):
        assert np.array_equal(_pad(got[k], width), brute_force_runs(levels, d, width)), d


@given(volumes)
@settings(max_examples=40, deadline=None)
def test_2d_matrices_are_per_slice_in_plane_runs(levels: np.ndarray) -> None:
    got = glrlm_matrices(levels, NG, two_d=True)
    width = max(levels.shape)
    assert got.shape[:3] == (levels.shape[0], 4, NG)
    for z in range(levels.shape[0]):
        for k, d in enumerate(DIRECTIONS_2D):
            expected = brute_force_runs(levels[z : z + 1], d, width)
            assert np.array_equal(_pad(got[z, k], width), expected), (z, d)


@given(volumes)
@settings(max_examples=60, deadline=None)
def test_every_direction_covers_every_roi_voxel_once(levels: np.ndarray) -> None:
    n_voxels = int(np.count_nonzero(levels))
    j = np.arange(1, 1 + glrlm_matrices(levels, NG).shape[-1])
    assert np.all((glrlm_matrices(levels, NG) * j).sum(axis=(1, 2)) == n_voxels)
    per_slice = np.count_nonzero(levels, axis=(1, 2))
    m2 = glrlm_matrices(levels, NG, two_d=True)
    j2 = np.arange(1, 1 + m2.shape[-1])
    assert np.array_equal((m2 * j2).sum(axis=(2, 3)), np.repeat(per_slice[:, None], 4, axis=1))


@given(volumes, st.sampled_from([0, 1, 2]))
@settings(max_examples=40, deadline=None)
def test_flips_permute_directions_and_keep_3d_features(levels: np.ndarray, axis: int) -> None:
    # Flipping an axis maps the 13 directions onto themselves (up to sign): the merged 3D
    # matrix and the direction-averaged features are unchanged.
    a, b = glrlm_matrices(levels, NG), glrlm_matrices(np.flip(levels, axis), NG)
    width = max(a.shape[-1], b.shape[-1])
    assert np.array_equal(_pad(a, width).sum(axis=0), _pad(b, width).sum(axis=0))
    fa, fb = ibsi_glrlm(levels, NG), ibsi_glrlm(np.flip(levels, axis), NG)
    for tag in GLRLM_TAGS:
        for agg in ("3D, averaged", "3D, merged", "2.5D, merged", "2D, slice-merged"):
            key = f"{tag} [{agg}]"
            assert fb[key] == pytest.approx(fa[key], rel=1e-9, abs=1e-12), key


@given(volumes)
@settings(max_examples=30, deadline=None)
def test_in_plane_transpose_keeps_2d_features(levels: np.ndarray) -> None:
    fa, fb = ibsi_glrlm(levels, NG), ibsi_glrlm(levels.transpose(0, 2, 1), NG)
    for key, value in fa.items():
        assert fb[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key


@given(volumes, st.data())
@settings(max_examples=40, deadline=None)
def test_core_matrices_of_z_slabs_add_up(levels: np.ndarray, data: st.DataObject) -> None:
    nz = levels.shape[0]
    cuts = sorted(data.draw(st.sets(st.integers(1, max(nz - 1, 1)), max_size=3)) - {nz})
    bounds = [0, *cuts, nz]
    full = glrlm_matrices(levels, NG)
    total = np.zeros((13, NG, max(levels.shape)), dtype=np.int64)
    for start, stop in itertools.pairwise(bounds):
        lo = max(start - 1, 0)  # one slice of halo below, the rest of the box above
        block = levels[lo:]
        if not block.any():
            continue
        part = glrlm_matrices_of_core(block, NG, (start - lo, stop - lo))
        total += _pad(part, total.shape[-1])
    assert np.array_equal(total, _pad(full, total.shape[-1]))


def test_2d_matrices_concatenate_over_z_slabs() -> None:
    rng = np.random.default_rng(3)
    levels = rng.integers(0, NG + 1, size=(6, 7, 5))
    levels[0, 0, 0] = levels[3, 0, 0] = 1  # every slab holds ROI voxels
    full = glrlm_matrices(levels, NG, two_d=True)
    parts = [glrlm_matrices(levels[:3], NG, two_d=True), glrlm_matrices(levels[3:], NG, two_d=True)]
    width = max(p.shape[-1] for p in [full, *parts])
    joined = np.concatenate([_pad(p, width) for p in parts])
    assert np.array_equal(joined, _pad(full, width))


# --------------------------------------------------------------------------- features


def test_features_of_a_hand_computed_matrix() -> None:
    # R = [[0, 1], [1, 0]]: a run of grey level 1 and length 2, one of level 2 and length 1.
    f = length_matrix_features([[0, 1], [1, 0]])
    expected = {
        "sre": (1 / 4 + 1) / 2,
        "lre": (4 + 1) / 2,
        "lgre": (1 + 1 / 4) / 2,
        "hgre": (1 + 4) / 2,
        "srlge": (1 / 4 + 1 / 4) / 2,
        "srhge": (1 / 4 + 4) / 2,
        "lrlge": (4 + 1 / 4) / 2,
        "lrhge": (4 + 4) / 2,
        "glnu": 1.0,
        "glnu.norm": 0.5,
        "rlnu": 1.0,
        "rlnu.norm": 0.5,
        "r.perc": 2 / 3,
        "gl.var": 0.25,
        "rl.var": 0.25,
        "rl.entr": 1.0,
    }
    assert {k: float(v) for k, v in f.items()} == pytest.approx(expected, rel=1e-12)


def test_features_of_a_single_run() -> None:
    # One run of grey level 3 and length 4: closed forms.
    m = np.zeros((3, 4))
    m[2, 3] = 1
    f = glrlm_features(m)
    assert float(f["rlm.sre"]) == pytest.approx(1 / 16)
    assert float(f["rlm.lrhge"]) == pytest.approx(9 * 16)
    assert float(f["rlm.r.perc"]) == pytest.approx(1 / 4)
    assert float(f["rlm.rl.entr"]) == 0.0
    assert float(f["rlm.gl.var"]) == 0.0


def test_features_are_vectorised_and_nan_for_empty_matrices() -> None:
    stack = np.zeros((2, 3, 2, 2))
    stack[0, 1] = [[0, 1], [1, 0]]
    f = glrlm_features(stack)
    assert f["rlm.sre"].shape == (2, 3)
    assert float(f["rlm.sre"][0, 1]) == pytest.approx(0.625)
    assert all(math.isnan(float(v[1, 2])) for v in f.values())


def test_line_roi_closed_form() -> None:
    # A constant line of n voxels along x: one run of length n along (0, 0, 1); the other 12
    # directions see n runs of length 1.
    n = 5
    levels = np.full((1, 1, n), 2)
    f = ibsi_glrlm(levels, 3)
    assert f["rlm.sre [3D, averaged]"] == pytest.approx((12 + 1 / n**2) / 13)
    assert f["rlm.lre [3D, averaged]"] == pytest.approx((12 + n**2) / 13)
    assert f["rlm.r.perc [3D, merged]"] == pytest.approx((12 * n + 1) / (13 * n))
    assert f["rlm.lgre [2D, averaged]"] == pytest.approx(1 / 4)
    assert f["rlm.sre [2D, slice-merged]"] == pytest.approx((3 * n + 1 / n**2) / (3 * n + 1))


def test_single_slice_aggregations_coincide() -> None:
    rng = np.random.default_rng(11)
    levels = rng.integers(1, NG + 1, size=(1, 6, 7))
    f = ibsi_glrlm(levels, NG)
    assert len(f) == 96
    assert set(f) == {f"{t} [{a}]" for t in GLRLM_TAGS for a in IBSI_GLRLM_AGGREGATIONS}
    for tag in GLRLM_TAGS:
        one = f"{tag} [2D, averaged]"
        assert f[f"{tag} [2.5D, direction-merged]"] == pytest.approx(f[one], rel=1e-12)
        merged = f"{tag} [2D, slice-merged]"
        assert f[f"{tag} [2.5D, merged]"] == pytest.approx(f[merged], rel=1e-12)


def test_empty_slices_take_no_part_in_2d_averages() -> None:
    levels = np.zeros((3, 3, 3), dtype=np.int64)
    levels[1] = [[1, 1, 2], [2, 2, 2], [1, 3, 3]]
    alone = ibsi_glrlm(levels[1:2], 3)
    padded = ibsi_glrlm(levels, 3)
    for agg in ("2D, averaged", "2D, slice-merged"):
        for tag in GLRLM_TAGS:
            key = f"{tag} [{agg}]"
            assert padded[key] == pytest.approx(alone[key], rel=1e-12)


# --------------------------------------------------------------------------- errors


def test_errors() -> None:
    with pytest.raises(EmptyRoiError):
        glrlm_matrices(np.zeros((2, 2, 2), dtype=np.int64), 2)
    with pytest.raises(InputError):
        glrlm_matrices(np.ones((2, 2), dtype=np.int64), 2)
    with pytest.raises(InputError):
        glrlm_matrices(np.ones((2, 2, 2), dtype=np.float64), 2)
    with pytest.raises(InputError):
        glrlm_matrices(np.full((2, 2, 2), 3), 2)
    with pytest.raises(InputError):
        glrlm_matrices(np.full((2, 2, 2), -1), 2)
    with pytest.raises(ConfigError):
        glrlm_matrices(np.ones((2, 2, 2), dtype=np.int64), 0)
    with pytest.raises(ConfigError):
        glrlm_matrices_of_core(np.ones((2, 2, 2), dtype=np.int64), 1, (1, 5))
    with pytest.raises(InputError):
        length_matrix_features(np.ones(3))


@given(volumes)
@settings(max_examples=30, deadline=None)
def test_ibsi_values_from_the_public_matrices(levels: np.ndarray) -> None:
    # The chunked path (matrices, then features) gives what the one-call path gives.
    direct = ibsi_glrlm(levels, NG)
    staged = ibsi_glrlm_from_matrices(
        glrlm_matrices(levels, NG), glrlm_matrices(levels, NG, two_d=True)
    )
    assert staged.keys() == direct.keys()
    for key, value in direct.items():
        assert staged[key] == pytest.approx(value, rel=1e-12, abs=1e-15), key
