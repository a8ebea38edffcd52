"""Morphology kernels against closed forms and brute-force oracles.

Oracles: the convex hull (scipy.spatial.ConvexHull) of the mesh vertices listed by explicit
loops (a box-shaped mask has a convex mesh, so its volume and area are the hull's), closed
forms for a single voxel and for the PCA of a box, O(N^2) sums for Moran's I and Geary's C,
the Legendre series evaluated with scipy.special.eval_legendre, and the known minimum
enclosing ellipsoid / bounding box of box corners and cross-polytopes.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy.spatial import ConvexHull
from scipy.spatial.transform import Rotation
from scipy.special import eval_legendre

from radgen.errors import EmptyRoiError, InputError
from radgen.features import morphology as mo
from radgen.features.morphology import ibsi_morphology, pyradiomics_shape, pyradiomics_shape2d

spacings = st.tuples(*(st.floats(0.3, 3.0) for _ in range(3)))
box_shapes = st.tuples(*(st.integers(1, 5) for _ in range(3)))


def _vertex_oracle(mask: np.ndarray, spacing: tuple[float, float, float]) -> np.ndarray:
    """Midpoints of grid edges whose two voxels differ, by explicit loops (padded frame)."""
    p = np.pad(mask, 1)
    out = []
    nz, ny, nx = p.shape
    for z in range(nz):
        for y in range(ny):
            for x in range(nx):
                for dz, dy, dx in ((1, 0, 0), (0, 1, 0), (0, 0, 1)):
                    q = (z + dz, y + dy, x + dx)
                    if q[0] < nz and q[1] < ny and q[2] < nx and p[z, y, x] != p[q]:
                        out.append(((z + q[0]) / 2, (y + q[1]) / 2, (x + q[2]) / 2))
    return np.array(out) * np.asarray(spacing)


def _brute_max_distance(points: np.ndarray) -> float:
    d = np.sqrt(((points[:, None, :] - points[None, :, :]) ** 2).sum(axis=2))
    return float(d.max())


@given(box_shapes, spacings)
@settings(max_examples=40, deadline=None)
def test_box_mesh_equals_convex_hull_of_vertices(shape: tuple[int, ...], spacing: tuple) -> None:
    mask = np.ones(shape, bool)
    verts = _vertex_oracle(mask, spacing)
    hull = ConvexHull(verts)
    got = pyradiomics_shape(mask, spacing)
    assert got["MeshVolume"] == pytest.approx(hull.volume, rel=1e-9)
    assert got["SurfaceArea"] == pytest.approx(hull.area, rel=1e-9)
    assert got["Maximum3DDiameter"] == pytest.approx(_brute_max_distance(verts), rel=1e-12)
    assert got["VoxelVolume"] == pytest.approx(mask.size * np.prod(spacing), rel=1e-12)
    ibsi = ibsi_morphology(mask, np.ones(shape), spacing)
    assert ibsi["morph.v.dens.conv.hull"] == pytest.approx(1.0, rel=1e-9)
    assert ibsi["morph.a.dens.conv.hull"] == pytest.approx(1.0, rel=1e-9)
    # AABB of the mesh: the voxel faces, n_a * s_a per axis.
    ext = np.array(shape) * np.array(spacing)
    assert ibsi["morph.v.dens.aabb"] == pytest.approx(hull.volume / ext.prod(), rel=1e-9)
    area = 2 * (ext[0] * ext[1] + ext[1] * ext[2] + ext[0] * ext[2])
    assert ibsi["morph.a.dens.aabb"] == pytest.approx(hull.area / area, rel=1e-9)


@given(box_shapes, spacings)
@settings(max_examples=30, deadline=None)
def test_box_pca_closed_form(shape: tuple[int, ...], spacing: tuple) -> None:
    """A box of n_a voxels has variance s_a^2 (n_a^2 - 1) / 12 along axis a (population)."""
    mask = np.ones(shape, bool)
    n = mask.size
    pop = sorted(s**2 * (k**2 - 1) / 12 for s, k in zip(spacing, shape, strict=True))
    got = pyradiomics_shape(mask, spacing)
    assert got["LeastAxisLength"] == pytest.approx(4 * math.sqrt(pop[0]), rel=1e-9, abs=1e-7)
    assert got["MinorAxisLength"] == pytest.approx(4 * math.sqrt(pop[1]), rel=1e-9, abs=1e-7)
    assert got["MajorAxisLength"] == pytest.approx(4 * math.sqrt(pop[2]), rel=1e-9, abs=1e-7)
    if n > 1:
        ibsi = ibsi_morphology(mask, np.ones(shape), spacing)
        sample = [v * n / (n - 1) for v in pop]
        assert ibsi["morph.pca.major"] == pytest.approx(4 * math.sqrt(sample[2]), rel=1e-9)
        assert ibsi["morph.pca.minor"] == pytest.approx(
            4 * math.sqrt(sample[1]), rel=1e-9, abs=1e-7
        )
        assert ibsi["morph.pca.least"] == pytest.approx(
            4 * math.sqrt(sample[0]), rel=1e-9, abs=1e-7
        )
        # A box's hull facets include the axis planes, so the OMBB is no larger than the AABB;
        # for boxes at least 2 voxels wide along each axis the AABB is the minimum.
        assert ibsi["morph.v.dens.ombb"] >= ibsi["morph.v.dens.aabb"] - 1e-12
        if min(shape) >= 2:
            assert ibsi["morph.v.dens.ombb"] == pytest.approx(ibsi["morph.v.dens.aabb"], rel=1e-9)


@given(spacings)
@settings(max_examples=30, deadline=None)
def test_single_voxel_octahedron(spacing: tuple) -> None:
    """One voxel meshes to the octahedron with half-diagonals s/2."""
    a, b, c = (s / 2 for s in spacing)
    got = pyradiomics_shape(np.ones((1, 1, 1), bool), spacing)
    assert got["MeshVolume"] == pytest.approx(4 / 3 * a * b * c, rel=1e-12)
    area = 4 * math.sqrt((a * b) ** 2 + (b * c) ** 2 + (a * c) ** 2)
    assert got["SurfaceArea"] == pytest.approx(area, rel=1e-12)
    assert got["Maximum3DDiameter"] == pytest.approx(max(spacing), rel=1e-12)
    assert got["Maximum2DDiameterSlice"] == pytest.approx(max(spacing[1], spacing[2]))
    assert got["Maximum2DDiameterColumn"] == pytest.approx(max(spacing[0], spacing[2]))
    assert got["Maximum2DDiameterRow"] == pytest.approx(max(spacing[0], spacing[1]))
    assert got["MajorAxisLength"] == 0.0
    assert math.isnan(got["Elongation"])
    ibsi = ibsi_morphology(np.ones((1, 1, 1), bool), np.full((1, 1, 1), 3.0), spacing)
    assert ibsi["morph.vol"] == pytest.approx(4 / 3 * a * b * c, rel=1e-12)
    assert ibsi["morph.integ.int"] == pytest.approx(4 * a * b * c, rel=1e-12)
    assert ibsi["morph.com"] == 0.0
    for key in ("morph.pca.major", "morph.v.dens.aee", "morph.moran.i", "morph.geary.c"):
        assert math.isnan(ibsi[key])


def test_single_pixel_shape2d() -> None:
    got = pyradiomics_shape2d(np.ones((1, 1), bool), (2.0, 3.0))
    assert got["MeshSurface"] == pytest.approx(3.0)  # diamond: half of 2 x 3
    assert got["Perimeter"] == pytest.approx(2 * math.hypot(2.0, 3.0))
    assert got["PixelSurface"] == 6.0
    assert got["MaximumDiameter"] == pytest.approx(3.0)


@given(st.integers(1, 6), st.integers(1, 6), st.floats(0.3, 3), st.floats(0.3, 3))
@settings(max_examples=30, deadline=None)
def test_rectangle_shape2d_closed_form(ny: int, nx: int, sy: float, sx: float) -> None:
    """A rectangle of pixels: the contour cuts each corner by a half-pixel triangle."""
    got = pyradiomics_shape2d(np.ones((ny, nx), bool), (sy, sx))
    assert got["MeshSurface"] == pytest.approx(ny * nx * sy * sx - sy * sx / 2, rel=1e-12)
    perimeter = 2 * ((ny - 1) * sy + (nx - 1) * sx) + 2 * math.hypot(sy, sx)
    assert got["Perimeter"] == pytest.approx(perimeter, rel=1e-12)


def _brute_moran_geary(values: np.ndarray, spacing: tuple) -> tuple[float, float]:
    pos = np.argwhere(np.isfinite(values)) * np.asarray(spacing)
    x = values[np.isfinite(values)]
    n = x.size
    d = np.sqrt(((pos[:, None] - pos[None]) ** 2).sum(axis=2))
    w = np.zeros_like(d)
    w[d > 0] = 1 / d[d > 0]
    dev = x - x.mean()
    big_w = w.sum()
    moran = n / big_w * (w * np.outer(dev, dev)).sum() / (dev**2).sum()
    geary = (n - 1) * (w * (x[:, None] - x[None]) ** 2).sum() / (2 * big_w * (dev**2).sum())
    return moran, geary


@given(
    hnp.arrays(np.float64, st.tuples(*(st.integers(1, 6) for _ in range(3))),
               elements=st.floats(-1000, 1000, allow_nan=False)),
    st.data(),
    spacings,
)  # fmt: skip
@settings(max_examples=40, deadline=None)
def test_moran_geary_and_centre_of_mass_match_brute_force(
    image: np.ndarray, data: st.DataObject, spacing: tuple
) -> None:
    mask = data.draw(hnp.arrays(bool, image.shape))
    if mask.sum() < 2 or np.ptp(image[mask]) < 1e-6:
        return
    got = ibsi_morphology(mask, image, spacing)
    moran, geary = _brute_moran_geary(np.where(mask, image, np.nan), spacing)
    assert got["morph.moran.i"] == pytest.approx(moran, rel=1e-8, abs=1e-10)
    assert got["morph.geary.c"] == pytest.approx(geary, rel=1e-8, abs=1e-10)
    pos = np.argwhere(mask) * np.asarray(spacing)
    x = image[mask]
    if abs(x.sum()) > 1e-6 * np.abs(x).sum():
        com = np.linalg.norm(pos.mean(axis=0) - (pos * x[:, None]).sum(axis=0) / x.sum())
        assert got["morph.com"] == pytest.approx(com, rel=1e-8, abs=1e-9)
    assert got["morph.integ.int"] == pytest.approx(got["morph.vol"] * x.mean(), rel=1e-12)
    assert got["morph.approx.vol"] == pytest.approx(mask.sum() * np.prod(spacing))


def test_intensity_mask_is_used_for_intensity_features() -> None:
    rng = np.random.default_rng(3)
    mask = np.ones((4, 5, 6), bool)
    image = rng.normal(size=mask.shape)
    imask = mask.copy()
    imask[0] = False
    got = ibsi_morphology(mask, image, (1.0, 1.0, 1.0), intensity_mask=imask)
    whole = ibsi_morphology(mask, image, (1.0, 1.0, 1.0))
    assert got["morph.vol"] == whole["morph.vol"]
    assert got["morph.integ.int"] == pytest.approx(got["morph.vol"] * image[imask].mean())
    moran, _ = _brute_moran_geary(np.where(imask, image, np.nan), (1.0, 1.0, 1.0))
    assert got["morph.moran.i"] == pytest.approx(moran, rel=1e-8)


def test_margin_and_translation_do_not_change_features() -> None:
    rng = np.random.default_rng(4)
    mask = rng.random((5, 6, 7)) < 0.6
    image = rng.normal(size=mask.shape)
    spacing = (2.0, 0.7, 0.9)
    base = ibsi_morphology(mask, image, spacing)
    padded = ibsi_morphology(np.pad(mask, 2), np.pad(image, 2), spacing)
    for key, value in base.items():
        assert padded[key] == pytest.approx(value, rel=1e-9, abs=1e-12, nan_ok=True), key
    shape_a = pyradiomics_shape(mask, spacing)
    shape_b = pyradiomics_shape(np.pad(mask, ((0, 3), (1, 0), (2, 2))), spacing)
    assert shape_a == shape_b


@given(st.floats(0.5, 20), st.floats(0.05, 1.0), st.floats(0.05, 1.0))
@settings(max_examples=40, deadline=None)
def test_ellipsoid_area_series(a: float, rb: float, rc: float) -> None:
    b = a * max(rb, rc)
    c = a * min(rb, rc)
    alpha, beta = math.sqrt(1 - (b / a) ** 2), math.sqrt(1 - (c / a) ** 2)
    if alpha * beta < 1e-6:
        return
    x = (alpha**2 + beta**2) / (2 * alpha * beta)
    series = sum((alpha * beta) ** nu / (1 - 4 * nu**2) * eval_legendre(nu, x) for nu in range(21))
    assert mo._ellipsoid_area(a, b, c) == pytest.approx(4 * math.pi * a * b * series, rel=1e-9)


def test_ellipsoid_area_of_sphere() -> None:
    assert mo._ellipsoid_area(2.0, 2.0, 2.0) == pytest.approx(16 * math.pi, rel=1e-14)


@given(st.tuples(*(st.floats(0.1, 10) for _ in range(3))), st.integers(0, 10_000))
@settings(max_examples=30, deadline=None)
def test_mvee_and_ombb_of_boxes_and_cross_polytopes(half: tuple, seed: int) -> None:
    rot = Rotation.random(random_state=seed).as_matrix()
    h = np.array(half)
    signs = np.array([[i, j, k] for i in (-1, 1) for j in (-1, 1) for k in (-1, 1)])
    corners = (signs * h) @ rot.T + 3.0
    # The MVEE of a box is the box's circumscribed ellipsoid scaled by sqrt(3) per axis.
    assert np.sort(mo._mvee_semi_axes(corners)) == pytest.approx(
        np.sort(math.sqrt(3) * h), rel=1e-6
    )
    # The MVEE of the cross-polytope (+-a e1, +-b e2, +-c e3) is the ellipsoid (a, b, c).
    cross = np.vstack([np.diag(h), -np.diag(h)]) @ rot.T - 1.0
    assert np.sort(mo._mvee_semi_axes(cross)) == pytest.approx(np.sort(h), rel=1e-6)
    # The minimum bounding box of a box's corners (plus interior points) is the box.
    rng = np.random.default_rng(seed)
    inner = (rng.uniform(-0.99, 0.99, (50, 3)) * h) @ rot.T + 3.0
    vol, area = mo._ombb(np.vstack([corners, inner]))
    assert vol == pytest.approx(8 * h.prod(), rel=1e-9)
    assert area == pytest.approx(8 * (h[0] * h[1] + h[1] * h[2] + h[0] * h[2]), rel=1e-9)


@given(hnp.arrays(bool, st.tuples(*(st.integers(1, 7) for _ in range(3)))), spacings)
@settings(max_examples=40, deadline=None)
def test_enclosing_volumes_are_ordered(mask: np.ndarray, spacing: tuple) -> None:
    """hull <= OMBB <= AABB and hull <= MVEE (all enclose the mesh vertices)."""
    if not mask.any():
        return
    got = ibsi_morphology(mask, np.ones(mask.shape), spacing)
    verts = _vertex_oracle(mask, spacing)
    hull = ConvexHull(verts).volume
    v = got["morph.vol"]
    ombb = v / got["morph.v.dens.ombb"]
    aabb = v / got["morph.v.dens.aabb"]
    mvee = v / got["morph.v.dens.mvee"]
    assert hull <= ombb * (1 + 1e-9)
    assert ombb <= aabb * (1 + 1e-9)
    assert hull <= mvee * (1 + 1e-6)
    assert v / got["morph.v.dens.conv.hull"] == pytest.approx(hull, rel=1e-9)
    assert got["morph.diam"] == pytest.approx(_brute_max_distance(verts), rel=1e-12)


@given(hnp.arrays(bool, st.tuples(*(st.integers(1, 8) for _ in range(3)))), spacings)
@settings(max_examples=40, deadline=None)
def test_diameters_match_brute_force_over_vertices(mask: np.ndarray, spacing: tuple) -> None:
    if not mask.any():
        return
    got = pyradiomics_shape(mask, spacing)
    verts = _vertex_oracle(mask, spacing)
    assert got["Maximum3DDiameter"] == pytest.approx(_brute_max_distance(verts), rel=1e-12)
    for axis, key in enumerate(
        ("Maximum2DDiameterSlice", "Maximum2DDiameterColumn", "Maximum2DDiameterRow")
    ):
        best = 0.0
        for value in np.unique(verts[:, axis]):
            plane = verts[verts[:, axis] == value]
            best = max(best, _brute_max_distance(plane))
        assert got[key] == pytest.approx(best, rel=1e-12), key


def test_max_distance_handles_large_and_degenerate_sets() -> None:
    rng = np.random.default_rng(0)
    pts = rng.normal(size=(1500, 3)) * [5, 2, 1]
    assert math.sqrt(mo._max_sq_distance(pts)) == pytest.approx(_brute_max_distance(pts))
    line = np.stack([np.arange(500.0), 2 * np.arange(500.0)], axis=1)  # collinear in 2-D
    assert math.sqrt(mo._max_sq_distance(line)) == pytest.approx(math.hypot(499, 998))


def test_errors() -> None:
    with pytest.raises(EmptyRoiError):
        pyradiomics_shape(np.zeros((2, 2, 2), bool), (1, 1, 1))
    with pytest.raises(EmptyRoiError):
        pyradiomics_shape2d(np.zeros((2, 2), bool), (1, 1))
    with pytest.raises(InputError):
        pyradiomics_shape(np.ones((2, 2), bool), (1, 1, 1))
    with pytest.raises(InputError):
        pyradiomics_shape(np.ones((2, 2, 2), bool), (1, 0, 1))
    with pytest.raises(InputError):
        ibsi_morphology(np.ones((2, 2, 2), bool), np.ones((2, 2, 3)), (1, 1, 1))
    with pytest.raises(EmptyRoiError):
        ibsi_morphology(
            np.ones((2, 2, 2), bool),
            np.ones((2, 2, 2)),
            (1, 1, 1),
            intensity_mask=np.zeros((2, 2, 2), bool),
        )
