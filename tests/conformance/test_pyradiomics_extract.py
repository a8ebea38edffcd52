"""``extract(..., convention="pyradiomics")`` against PyRadiomics 3.0.1 end to end.

The oracle is ``RadiomicsFeatureExtractor(params).execute(image, mask)`` on SimpleITK images
built from the same arrays; every returned key except the diagnostics must be present with a
value within 1e-6 relative (1e-9 absolute near zero). Images, ROIs and settings are random
(Hypothesis): integer and float images with negative values, anisotropic spacing, ROIs
touching the border, several labels, bin width or bin count, re-segmentation, distances,
weighting norms, LoG and wavelet filters, resampling. Where PyRadiomics refuses the input
(e.g. a ROI below ``minimumROIDimensions``), radgen must refuse it too, with a radgen error.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pytest
import SimpleITK as sitk
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from radiomics.featureextractor import RadiomicsFeatureExtractor

from radgen.errors import RadgenError
from radgen.features import extract
from radgen.testing import assert_features_close

pytestmark = pytest.mark.conformance
logging.getLogger("radiomics").setLevel(logging.ERROR)


def pyradiomics_execute(
    image: np.ndarray, mask: np.ndarray, spacing: tuple[float, float, float], params: dict[str, Any]
) -> dict[str, float]:
    """PyRadiomics' features (diagnostics dropped) for (z, y, x) arrays."""
    img = sitk.GetImageFromArray(image)
    img.SetSpacing(tuple(float(s) for s in spacing[::-1]))
    msk = sitk.GetImageFromArray(mask.astype(np.uint8))
    msk.CopyInformation(img)
    extractor = RadiomicsFeatureExtractor({**params, "setting": {**params.get("setting", {})}})
    result = extractor.execute(img, msk)
    return {k: float(v) for k, v in result.items() if not k.startswith("diagnostics_")}


def _image(rng: np.random.Generator, shape: tuple[int, int, int], kind: str) -> np.ndarray:
    base = rng.normal(0.0, 1.0, shape)
    if kind == "ct":
        return np.round(base * 120 + 40).astype(np.int16)
    if kind == "float":
        return (base * 3.5 - 1.25).astype(np.float32)
    return np.round(base * 20 + 300).astype(np.int32)


@st.composite
def cases(draw: st.DrawFn, *, filters: bool = False) -> tuple[Any, ...]:
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    shape = draw(st.tuples(st.integers(4, 14), st.integers(5, 16), st.integers(5, 16)))
    kind = draw(st.sampled_from(["ct", "float", "int"]))
    image = _image(rng, shape, kind)
    label = draw(st.sampled_from([1, 2]))
    mask = np.zeros(shape, dtype=np.uint8)
    lo = [draw(st.integers(0, max(s - 3, 0))) for s in shape]
    hi = [min(s, low + draw(st.integers(2, s))) for s, low in zip(shape, lo, strict=True)]
    box = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
    mask[box] = np.where(rng.random(mask[box].shape) > draw(st.sampled_from([0.0, 0.3])), label, 0)
    other = 3 - label
    mask[(mask == 0) & (rng.random(shape) > 0.8)] = other
    spacing = (
        draw(st.sampled_from([1.0, 2.5, 3.0])),
        draw(st.sampled_from([0.7, 1.0])),
        draw(st.sampled_from([0.7, 1.0, 1.2])),
    )
    setting: dict[str, Any] = {"label": label}
    if kind == "float":
        setting["binCount"] = draw(st.sampled_from([8, 16, 32]))
    else:
        setting["binWidth"] = draw(st.sampled_from([5, 10, 25]))
    if draw(st.booleans()):
        setting["distances"] = draw(st.sampled_from([[1], [1, 2]]))
    if draw(st.booleans()):
        setting["weightingNorm"] = draw(
            st.sampled_from(["manhattan", "euclidean", "infinity", "no_weighting"])
        )
    if kind == "ct" and draw(st.booleans()):
        setting["resegmentRange"] = [-100, 400]
    image_types: dict[str, Any] = {"Original": {}}
    if filters:
        image_types = {
            "Original": {},
            "LoG": {"sigma": draw(st.sampled_from([[1.0], [1.0, 2.0], [1.5]]))},
            "Wavelet": {},
        }
    params = {"setting": setting, "imageType": image_types}
    return image, mask, spacing, params


def _compare(image: Any, mask: Any, spacing: Any, params: dict[str, Any]) -> None:
    try:
        expected = pyradiomics_execute(image, mask, spacing, params)
    except (ValueError, RuntimeError, AssertionError) as refused:
        with pytest.raises(RadgenError):
            extract(image, mask, spacing, {**params, "convention": "pyradiomics"})
        return f"refused: {refused}"
    got = extract(image, mask, spacing, {**params, "convention": "pyradiomics"})
    assert_features_close(got, expected, rtol=1e-6, atol=1e-9)
    return None


@given(cases())
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_original_image_all_classes_match_pyradiomics(case: tuple[Any, ...]) -> None:
    _compare(*case)


@given(cases(filters=True))
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_log_and_wavelet_match_pyradiomics(case: tuple[Any, ...]) -> None:
    _compare(*case)


def test_default_settings_on_a_ct_like_ball() -> None:
    rng = np.random.default_rng(3)
    z, y, x = np.mgrid[:20, :32, :32]
    image = np.round(rng.normal(40, 60, (20, 32, 32))).astype(np.int16)
    mask = (((z - 10) / 1.0) ** 2 + ((y - 16) / 2.0) ** 2 + ((x - 15) / 2.0) ** 2 < 36).astype(
        np.uint8
    )
    spacing = (2.5, 0.8, 0.8)
    expected = pyradiomics_execute(image, mask, spacing, {})
    got = extract(image, mask, spacing, {"convention": "pyradiomics"})
    assert len(expected) == 107  # the 7 default classes on the original image
    assert_features_close(got, expected, rtol=1e-6, atol=1e-9)


@st.composite
def setting_cases(draw: st.DrawFn) -> tuple[Any, ...]:
    """Pre-processing and texture settings on top of a random case."""
    image, mask, spacing, params = draw(cases())
    setting = dict(params["setting"])
    if draw(st.booleans()):
        setting["force2D"] = True
        setting["force2Ddimension"] = draw(st.sampled_from([0, 1, 2]))
    if draw(st.booleans()):
        setting["gldm_a"] = draw(st.sampled_from([0, 1, 2]))
    if draw(st.booleans()):
        setting["symmetricalGLCM"] = False
    choice = draw(st.sampled_from(["none", "normalize", "resample", "sigma", "shift"]))
    if choice == "normalize":
        setting["normalize"] = True
        setting["normalizeScale"] = draw(st.sampled_from([1, 100]))
    elif choice == "resample":
        setting["resampledPixelSpacing"] = [
            draw(st.sampled_from([0.8, 1.0, 1.5])) for _ in range(3)
        ]
        setting["interpolator"] = draw(st.sampled_from(["sitkBSpline", "sitkLinear"]))
    elif choice == "sigma":
        setting["resegmentRange"] = [-2, 2]
        setting["resegmentMode"] = "sigma"
    elif choice == "shift":
        setting["voxelArrayShift"] = 1000
    return image, mask, spacing, {**params, "setting": setting}


@given(setting_cases())
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_preprocessing_and_texture_settings_match_pyradiomics(case: tuple[Any, ...]) -> None:
    _compare(*case)


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_force2d_on_a_one_slice_roi_includes_shape2d_as_pyradiomics(axis: int) -> None:
    rng = np.random.default_rng(axis)
    image = np.round(rng.normal(40, 60, (6, 20, 20))).astype(np.int16)
    mask = np.zeros(image.shape, dtype=np.uint8)
    mask[3, 5:14, 4:15] = rng.random((9, 11)) > 0.2
    params = {"setting": {"force2D": True, "force2Ddimension": axis, "binWidth": 10}}
    _compare(image, mask, (3.0, 0.7, 0.7), params)
    if axis == 0:  # the one case PyRadiomics 3.0.1 computes shape2D for
        keys = extract(image, mask, (3.0, 0.7, 0.7), {**params, "convention": "pyradiomics"})
        assert "original_shape2D_Perimeter" in keys


def test_image_type_arguments_override_the_settings_as_in_pyradiomics() -> None:
    rng = np.random.default_rng(3)
    image = np.round(rng.normal(40, 60, (12, 20, 20))).astype(np.int16)
    mask = np.zeros(image.shape, dtype=np.uint8)
    mask[3:9, 4:14, 4:14] = 1
    params = {
        "setting": {"binWidth": 25},
        "imageType": {
            "Original": {},
            "LoG": {"sigma": [1.0], "binWidth": 5},
            "Wavelet": {"binCount": 8},
        },
    }
    assert _compare(image, mask, (2.5, 0.8, 0.8), params) is None  # PyRadiomics accepts it
