"""Shape features against PyRadiomics 3.0.1 (``radiomics.shape``, ``radiomics.shape2D``).

PyRadiomics gets the mask cropped to its bounding box, as its extractor crops it, as SimpleITK
images (arrays (z, y, x), spacing given reversed); radgen gets the same mask (or one with a
margin, which it crops itself). Every feature enabled by default must agree within 1e-6
relative (1e-9 absolute near zero), on random, blob-like, tiny and border-touching masks with
anisotropic spacing.
"""

from __future__ import annotations

import logging
import math
import warnings

import numpy as np
import pytest
import SimpleITK as sitk
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from radiomics import featureextractor, shape, shape2D
from scipy import ndimage

from radgen.features.morphology import (
    PYRADIOMICS_SHAPE2D_FEATURES,
    PYRADIOMICS_SHAPE_FEATURES,
    pyradiomics_shape,
    pyradiomics_shape2d,
)

pytestmark = pytest.mark.conformance
logging.getLogger("radiomics").setLevel(logging.CRITICAL)

spacings = st.tuples(*(st.floats(0.3, 4.0) for _ in range(3)))


def _sitk(arr: np.ndarray, spacing: tuple[float, ...]) -> sitk.Image:
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing(tuple(float(s) for s in spacing[::-1]))
    return img


def _crop(mask: np.ndarray) -> np.ndarray:
    nz = np.nonzero(mask)
    return mask[tuple(slice(int(i.min()), int(i.max()) + 1) for i in nz)]


def oracle(mask: np.ndarray, spacing: tuple[float, float, float]) -> dict[str, float]:
    m = _crop(mask).astype(np.uint8)
    cls = shape.RadiomicsShape(_sitk(m.astype(np.float64), spacing), _sitk(m, spacing))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # 0/0 in Elongation for one voxel
        return {k: float(v) for k, v in cls.execute().items()}


def oracle2d(mask: np.ndarray, spacing: tuple[float, float]) -> dict[str, float]:
    m = _crop(mask)[None].astype(np.uint8)
    sp = (1.0, *spacing)
    cls = shape2D.RadiomicsShape2D(
        _sitk(m.astype(np.float64), sp), _sitk(m, sp), force2D=True, force2Ddimension=0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return {k: float(v) for k, v in cls.execute().items()}


def assert_close(got: dict[str, float], want: dict[str, float]) -> None:
    assert set(got) == set(want)
    for key, value in want.items():
        if math.isnan(value):
            assert math.isnan(got[key]), key
        else:
            assert got[key] == pytest.approx(value, rel=1e-6, abs=1e-9), key


@st.composite
def masks(draw: st.DrawFn, max_side: int = 12) -> np.ndarray:
    shape_ = draw(st.tuples(*(st.integers(1, max_side) for _ in range(3))))
    kind = draw(st.sampled_from(["noise", "blob", "box"]))
    if kind == "box":
        return np.ones(shape_, bool)
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    field = rng.random(shape_)
    if kind == "blob":
        field = ndimage.gaussian_filter(field, draw(st.floats(0.5, 3.0)))
    mask = field >= np.quantile(field, draw(st.floats(0.0, 0.9)))
    return mask


@given(masks(), spacings)
@settings(max_examples=60, deadline=None)
def test_shape_matches_pyradiomics(mask: np.ndarray, spacing: tuple[float, float, float]) -> None:
    assert_close(pyradiomics_shape(mask, spacing), oracle(mask, spacing))


@given(masks(max_side=20), spacings)
@settings(max_examples=30, deadline=None)
def test_shape_matches_pyradiomics_on_larger_rois(mask: np.ndarray, spacing: tuple) -> None:
    assert_close(pyradiomics_shape(mask, spacing), oracle(mask, spacing))


@given(hnp.arrays(bool, st.tuples(*(st.integers(1, 6) for _ in range(3)))), spacings)
@settings(max_examples=40, deadline=None)
def test_tiny_rois_touching_the_border(mask: np.ndarray, spacing: tuple) -> None:
    """Unpadded masks (ROI on the crop border), including single voxels and lines."""
    if not mask.any():
        return
    assert_close(pyradiomics_shape(mask, spacing), oracle(mask, spacing))


def test_single_voxel_and_margin() -> None:
    mask = np.zeros((5, 6, 7), bool)
    mask[2, 3, 4] = True
    assert_close(pyradiomics_shape(mask, (2.5, 0.7, 0.9)), oracle(mask, (2.5, 0.7, 0.9)))


def test_default_features_are_those_pyradiomics_enables() -> None:
    names = shape.RadiomicsShape.getFeatureNames()
    assert set(PYRADIOMICS_SHAPE_FEATURES) == {k for k, dep in names.items() if not dep}
    names2d = shape2D.RadiomicsShape2D.getFeatureNames()
    assert set(PYRADIOMICS_SHAPE2D_FEATURES) == {k for k, dep in names2d.items() if not dep}


def test_extractor_on_a_ball() -> None:
    """The full extractor path (checkMask, crop) on an anisotropic ball touching no border."""
    z, y, x = np.ogrid[:24, :40, :40]
    spacing = (2.0, 0.8, 0.8)
    mask = ((z - 12) * 2.0) ** 2 + ((y - 20) * 0.8) ** 2 + ((x - 19) * 0.8) ** 2 <= 12.0**2
    image = np.random.default_rng(0).normal(40, 20, mask.shape)
    extractor = featureextractor.RadiomicsFeatureExtractor()
    extractor.disableAllFeatures()
    extractor.enableFeatureClassByName("shape")
    result = extractor.execute(_sitk(image, spacing), _sitk(mask.astype(np.uint8), spacing))
    want = {
        k.removeprefix("original_shape_"): float(v)
        for k, v in result.items()
        if k.startswith("original_shape_")
    }
    assert_close(pyradiomics_shape(mask, spacing), want)


@given(
    hnp.arrays(bool, st.tuples(st.integers(1, 14), st.integers(1, 14))),
    st.tuples(st.floats(0.3, 4.0), st.floats(0.3, 4.0)),
)
@settings(max_examples=60, deadline=None)
def test_shape2d_matches_pyradiomics(mask: np.ndarray, spacing: tuple[float, float]) -> None:
    if not mask.any():
        return
    assert_close(pyradiomics_shape2d(mask, spacing), oracle2d(mask, spacing))
