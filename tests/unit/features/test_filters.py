"""IBSI filters (LoG, separable wavelets) against independent oracles, and filter margins.

Oracles: scipy.ndimage on the whole image (the crop path must equal it), the IBSI 2 LoG
kernel formula, closed forms on quadratic images, and a direct à-trous cascade of
``scipy.ndimage.convolve1d`` with the centred wavelet filters (IBSI 2), independent of pywt.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import pywt
import scipy.ndimage as ndi
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from radgen.errors import ConfigError, EmptyRoiError, InputError
from radgen.features.filters import (
    filtered_images,
    ibsi_log,
    ibsi_wavelet,
    pyradiomics_filter_margin,
)
from radgen.features.preprocess import roi_bbox

HYPO = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MODES = ["mirror", "reflect", "nearest", "wrap", "constant"]


@st.composite
def cases(draw: st.DrawFn, min_side: int = 4, max_side: int = 20) -> tuple[Any, ...]:
    shape = tuple(draw(st.integers(min_side, max_side)) for _ in range(3))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    image = rng.normal(draw(st.sampled_from([-300.0, 0.0, 80.0])), 50.0, shape)
    if draw(st.booleans()):
        image = np.round(image).astype(np.int16)
    lo = [draw(st.one_of(st.just(0), st.integers(0, n - 1))) for n in shape]
    hi = [
        draw(st.one_of(st.just(n - 1), st.integers(a, n - 1)))
        for a, n in zip(lo, shape, strict=True)
    ]
    hi = [max(a, b) for a, b in zip(lo, hi, strict=True)]
    mask = np.zeros(shape, bool)
    mask[tuple(lo)] = mask[tuple(hi)] = True
    spacing = tuple(float(draw(st.sampled_from([0.5, 0.8, 1.0, 1.5, 2.0]))) for _ in range(3))
    return image, mask, spacing


# ---------------------------------------------------------------------------------------------
# Laplacian of Gaussian


@HYPO
@given(
    case=cases(),
    sigma=st.sampled_from([0.5, 1.0, 1.7, 3.0]),
    mode=st.sampled_from(MODES),
    truncate=st.sampled_from([4.0, 3.0]),
)
def test_ibsi_log_crop_equals_whole_image(
    case: tuple[Any, ...], sigma: float, mode: str, truncate: float
) -> None:
    image, mask, spacing = case
    got = ibsi_log(image, mask, spacing, sigma, mode=mode, truncate=truncate)
    sig = [sigma / s for s in spacing]
    whole = ndi.gaussian_laplace(image.astype(np.float64), sig, mode=mode, truncate=truncate)
    want = whole[roi_bbox(mask)]
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9 * max(1.0, np.abs(whole).max()))


@HYPO
@given(case=cases(), sigma=st.sampled_from([0.7, 1.0, 2.0]), mode=st.sampled_from(MODES))
def test_ibsi_log_by_slice_is_2d(case: tuple[Any, ...], sigma: float, mode: str) -> None:
    image, mask, spacing = case
    got = ibsi_log(image, mask, spacing, sigma, mode=mode, by_slice=True)
    flt = image.astype(np.float64)
    want = np.stack(
        [
            ndi.gaussian_laplace(sl, [sigma / spacing[1], sigma / spacing[2]], mode=mode)
            for sl in flt
        ]
    )[roi_bbox(mask)]
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9 * max(1.0, np.abs(want).max()))


@pytest.mark.parametrize("sigma", [1.0, 1.5, 2.0])
def test_ibsi_log_matches_the_ibsi2_kernel(sigma: float) -> None:
    """IBSI 2: g = -1/s^2 (2 pi s^2)^(-3/2) (3 - |x|^2/s^2) exp(-|x|^2/(2 s^2)), 1+2floor(4s+.5)."""
    rng = np.random.default_rng(0)
    image = ndi.gaussian_filter(rng.normal(size=(26, 26, 26)), 1.0) * 100
    radius = int(np.floor(4 * sigma + 0.5))
    grid = np.arange(-radius, radius + 1, dtype=np.float64)
    z, y, x = np.meshgrid(grid, grid, grid, indexing="ij")
    norm2 = z**2 + y**2 + x**2
    kernel = (
        -1.0
        / sigma**2
        * (2 * np.pi * sigma**2) ** -1.5
        * (3 - norm2 / sigma**2)
        * np.exp(-norm2 / (2 * sigma**2))
    )
    want = ndi.convolve(image, kernel, mode="mirror")
    mask = np.zeros(image.shape, bool)
    mask[6:20, 6:20, 6:20] = True
    got = ibsi_log(image, mask, (1.0, 1.0, 1.0), sigma)
    # scipy renormalises the sampled Gaussian; the two agree to ~4e-5 of the response range
    np.testing.assert_allclose(got, want[6:20, 6:20, 6:20], atol=1e-4 * np.abs(want).max())


@pytest.mark.parametrize(("sigma", "spacing"), [(1.0, (1.0, 1.0, 1.0)), (3.0, (2.0, 1.5, 1.0))])
def test_ibsi_log_of_a_paraboloid(sigma: float, spacing: tuple[float, float, float]) -> None:
    """f = sum_k (i_k - c_k)^2 in voxel indices: the Laplacian is 2 per axis, 6 in 3D."""
    shape = (31, 31, 31)
    idx = np.indices(shape, dtype=np.float64) - 15.0
    image = (idx**2).sum(axis=0)
    mask = np.zeros(shape, bool)
    mask[15, 15, 15] = True
    got = ibsi_log(image, mask, spacing, sigma)
    assert got.shape == (1, 1, 1)
    assert got[0, 0, 0] == pytest.approx(6.0, rel=5e-3)  # truncation at 4 sigma
    got2d = ibsi_log(image, mask, spacing, sigma, by_slice=True)
    assert got2d[0, 0, 0] == pytest.approx(4.0, rel=5e-3)


def test_ibsi_log_rejects_bad_input() -> None:
    image = np.zeros((4, 4, 4))
    mask = np.ones((4, 4, 4), bool)
    with pytest.raises(ConfigError):
        ibsi_log(image, mask, (1, 1, 1), 0.0)
    with pytest.raises(ConfigError):
        ibsi_log(image, mask, (1, 1, 1), 1.0, mode="periodic")
    with pytest.raises(EmptyRoiError):
        ibsi_log(image, np.zeros((4, 4, 4)), (1, 1, 1), 1.0)
    with pytest.raises(InputError):
        ibsi_log(image, mask[:2], (1, 1, 1), 1.0)


# ---------------------------------------------------------------------------------------------
# separable wavelets: pywt on a crop vs an à-trous convolve1d cascade on the whole image


def cascade(
    image: np.ndarray, name: str, level: int, mode: str, axes: tuple[int, ...]
) -> dict[str, np.ndarray]:
    """IBSI 2 / MIRP: centred filters (even length: a trailing 0), dilated by 2^(l-1)."""
    w = pywt.Wavelet(name)
    lo0, hi0 = np.array(w.dec_lo), np.array(w.dec_hi)
    if lo0.size % 2 == 0:
        lo0, hi0 = np.append(lo0, 0.0), np.append(hi0, 0.0)

    def dilate(f: np.ndarray, times: int) -> np.ndarray:
        for _ in range(times):
            g = np.zeros(2 * f.size - 1)
            g[::2] = f
            f = g
        return f

    approx = image.astype(np.float64)
    for lvl in range(1, level):  # low-pass along every axis at the levels before
        for axis in axes:
            approx = ndi.convolve1d(approx, dilate(lo0, lvl - 1), axis=axis, mode=mode)
    out = {}
    lo, hi = dilate(lo0, level - 1), dilate(hi0, level - 1)
    letters = ["L", "H"]
    for code in np.ndindex(*([2] * len(axes))):
        resp = approx
        for axis, c in zip(axes, code, strict=True):
            resp = ndi.convolve1d(resp, hi if c else lo, axis=axis, mode=mode)
        out["".join(letters[c] for c in code)] = resp
    return out


@HYPO
@given(
    case=cases(min_side=3, max_side=16),
    name=st.sampled_from(["haar", "coif1", "db3", "sym2"]),
    level=st.integers(1, 2),
    mode=st.sampled_from(MODES),
    by_slice=st.booleans(),
)
def test_ibsi_wavelet_matches_atrous_cascade(
    case: tuple[Any, ...], name: str, level: int, mode: str, by_slice: bool
) -> None:
    image, mask, _ = case
    axes = (2, 1) if by_slice else (2, 1, 0)  # key letters in x, y(, z) order
    got = ibsi_wavelet(image, mask, wavelet=name, level=level, mode=mode, by_slice=by_slice)
    want = cascade(image, name, level, mode, axes)
    assert sorted(got) == sorted(want)
    assert len(got) == 2 ** len(axes)
    box = roi_bbox(mask)
    for key, value in want.items():
        scale = max(1.0, float(np.abs(value).max()))
        np.testing.assert_allclose(got[key], value[box], rtol=1e-9, atol=1e-9 * scale, err_msg=key)


def test_ibsi_wavelet_names_follow_x_y_z() -> None:
    """A ramp along x only: every band high-pass along x responds, the others vanish."""
    image = np.broadcast_to(np.arange(12.0) ** 2, (12, 12, 12)).copy()
    mask = np.zeros(image.shape, bool)
    mask[5:7, 5:7, 5:7] = True
    out = ibsi_wavelet(image, mask, wavelet="haar")
    for key, value in out.items():
        if key[1:] == "LL":
            assert np.abs(value).max() > 1.0, key
        if "H" in key[1:]:
            np.testing.assert_allclose(value, 0.0, atol=1e-9, err_msg=key)


def test_ibsi_wavelet_rejects_bad_input() -> None:
    image = np.zeros((4, 4, 4))
    mask = np.ones((4, 4, 4), bool)
    with pytest.raises(ConfigError):
        ibsi_wavelet(image, mask, wavelet="nope")
    with pytest.raises(ConfigError):
        ibsi_wavelet(image, mask, level=0)
    with pytest.raises(ConfigError):
        ibsi_wavelet(image, mask, mode="periodic")


# ---------------------------------------------------------------------------------------------
# PyRadiomics-convention margins and voxel-wise filters (closed forms)


def test_filter_margins() -> None:
    assert pyradiomics_filter_margin("LoG", (2.0, 1.0, 1.0), sigma=[0.5, 1.0]) == (
        11,
        18,
        18,
    )  # ceil(14 sigma / spacing) + 4
    assert pyradiomics_filter_margin("LoG", (1.0, 1.0, 1.0)) == (0, 0, 0)
    # coif1 has 6 taps: 3 per level each side, plus one
    assert pyradiomics_filter_margin("Wavelet", (1, 1, 1), level=2, start_level=1) == (10, 10, 10)
    assert pyradiomics_filter_margin("Wavelet", (1, 1, 1), force2D=True, force2Ddimension=0) == (
        0,
        4,
        4,
    )
    assert pyradiomics_filter_margin("LBP2D", (1, 1, 1), lbp2DRadius=1.5) == (0, 4, 4)
    assert pyradiomics_filter_margin("Gradient", (1, 1, 1)) == (2, 2, 2)
    assert pyradiomics_filter_margin("Square", (1, 1, 1)) == (0, 0, 0)
    with pytest.raises(ConfigError, match="LBP3D"):
        pyradiomics_filter_margin("LBP3D", (1, 1, 1))
    with pytest.raises(ConfigError):
        pyradiomics_filter_margin("Sobel", (1, 1, 1))


def test_voxelwise_filters_closed_forms() -> None:
    """Scale max|x| = 4 comes from outside the ROI, as PyRadiomics takes it from the image."""
    image = np.array([[[-4.0, 1.0, 2.0, 0.0]]])
    mask = np.array([[[0, 1, 1, 1]]], np.uint8)
    out = {
        name: crop[0, 0]
        for name, crop, _ in filtered_images(
            image,
            mask,
            (1, 1, 1),
            {"Square": {}, "SquareRoot": {}, "Logarithm": {}, "Exponential": {}},
            minimumROIDimensions=1,
        )
    }
    np.testing.assert_allclose(out["square"], [0.25, 1.0, 0.0])  # (x / 2)^2
    np.testing.assert_allclose(out["squareroot"], [2.0, np.sqrt(8.0), 0.0])  # sqrt(4 x)
    c = 4.0 / np.log(5.0)
    np.testing.assert_allclose(out["logarithm"], [c * np.log(2.0), c * np.log(3.0), 0.0])
    np.testing.assert_allclose(out["exponential"], [4.0**0.25, 4.0**0.5, 1.0])  # e^(x ln4 / 4)
