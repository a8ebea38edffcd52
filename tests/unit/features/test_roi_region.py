"""``roi_region``: features of the box it names equal the features of the whole volume.

This is what lets ``radgen features compute`` read only a ROI's neighbourhood from Zarr.
Random images, ROIs (also touching the border), spacings and settings in both conventions,
with LoG, wavelet and the local-intensity sphere, each of which needs a margin.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from radgen.features import extract
from radgen.features.extract import roi_region
from radgen.testing import assert_features_close


@st.composite
def cases(draw: st.DrawFn) -> tuple[Any, ...]:
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    shape = (draw(st.integers(8, 20)), draw(st.integers(10, 40)), draw(st.integers(10, 40)))
    image = np.round(rng.normal(40, 50, shape)).astype(np.int16)
    mask = np.zeros(shape, dtype=np.uint8)
    lo = [draw(st.integers(0, s - 3)) for s in shape]
    size = [draw(st.integers(2, 5)) for _ in shape]
    mask[tuple(slice(a, min(a + n, s)) for a, n, s in zip(lo, size, shape, strict=True))] = 1
    spacing = (draw(st.sampled_from([1.0, 2.5])), 0.8, 0.8)
    convention = draw(st.sampled_from(["ibsi", "pyradiomics"]))
    image_types: dict[str, Any] = {"Original": {}}
    if draw(st.booleans()):
        image_types["LoG"] = {"sigma": [draw(st.sampled_from([0.8, 1.5]))]}
    if draw(st.booleans()):
        image_types["Wavelet"] = {}
    classes: dict[str, Any] = {"firstorder": None, "glcm": None}
    if convention == "ibsi":
        classes["localintensity"] = None
    params = {
        "convention": convention,
        "setting": {"binWidth": 10},
        "imageType": image_types,
        "featureClass": classes,
    }
    return image, mask, spacing, params


def _bbox(mask: np.ndarray) -> list[int]:
    out = []
    for axis in range(3):
        other = tuple(a for a in range(3) if a != axis)
        hit = np.flatnonzero(mask.any(axis=other))
        out += [int(hit[0]), int(hit[-1]) + 1]
    return out


@given(cases())
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_features_of_the_region_equal_those_of_the_volume(case: tuple[Any, ...]) -> None:
    image, mask, spacing, params = case
    region = roi_region(params, _bbox(mask), image.shape, spacing)
    box = tuple(slice(region[2 * a], region[2 * a + 1]) for a in range(3))
    whole = extract(image, mask, spacing, params)
    part = extract(image[box], mask[box], spacing, params)
    assert_features_close(part, whole, rtol=1e-6, atol=1e-9)


def test_whole_volume_when_the_result_depends_on_all_of_it() -> None:
    shape, bbox, spacing = (40, 64, 64), [10, 14, 20, 30, 20, 30], (1.0, 1.0, 1.0)
    full = [0, 40, 0, 64, 0, 64]
    assert (
        roi_region(
            {"convention": "pyradiomics", "setting": {"normalize": True}}, bbox, shape, spacing
        )
        == full
    )
    assert (
        roi_region({"convention": "pyradiomics", "imageType": {"Square": {}}}, bbox, shape, spacing)
        == full
    )
    assert (
        roi_region({"setting": {"resampledPixelSpacing": [1, 1, 1]}}, bbox, shape, spacing) == full
    )
    # the original image alone needs nothing beyond the bounding box
    assert roi_region({"featureClass": {"glcm": None}}, bbox, shape, spacing) == bbox
