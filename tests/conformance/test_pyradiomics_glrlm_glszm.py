"""GLRLM and GLSZM features against PyRadiomics 3.0.1 (``RadiomicsGLRLM``, ``RadiomicsGLSZM``).

PyRadiomics gets the raw image and mask as SimpleITK images (arrays (z, y, x), spacing given
reversed), cropped to the ROI bounding box as its extractor crops them; radgen gets
PyRadiomics' own discretisation (``binImage``) of the same box, 0 outside the ROI. Values
agree within 1e-6 relative (1e-9 absolute near zero), NaN where PyRadiomics gives NaN. The
IBSI path is cross-checked against PyRadiomics where both define the same quantity.
"""

from __future__ import annotations

import logging
import math
import warnings
from typing import Any

import numpy as np
import pytest
import SimpleITK as sitk
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from radiomics import featureextractor, glrlm, glszm, imageoperations

from radgen.errors import ConfigError, InputError
from radgen.features.texture_glrlm import (
    PYRADIOMICS_GLRLM_FEATURES,
    ibsi_glrlm,
    pyradiomics_glrlm,
)
from radgen.features.texture_glszm import (
    PYRADIOMICS_GLSZM_FEATURES,
    ibsi_glszm,
    pyradiomics_glszm,
)

pytestmark = pytest.mark.conformance
logging.getLogger("radiomics").setLevel(logging.CRITICAL)

Spacing = tuple[float, float, float]

#: IBSI generic feature -> (GLRLM name, GLSZM name) in PyRadiomics.
IBSI_TO_PYRADIOMICS = {
    "sre/sze": ("rlm.sre", "ShortRunEmphasis", "szm.sze", "SmallAreaEmphasis"),
    "lre/lze": ("rlm.lre", "LongRunEmphasis", "szm.lze", "LargeAreaEmphasis"),
    "lgre": ("rlm.lgre", "LowGrayLevelRunEmphasis", "szm.lgze", "LowGrayLevelZoneEmphasis"),
    "hgre": ("rlm.hgre", "HighGrayLevelRunEmphasis", "szm.hgze", "HighGrayLevelZoneEmphasis"),
    "srlge": (
        "rlm.srlge",
        "ShortRunLowGrayLevelEmphasis",
        "szm.szlge",
        "SmallAreaLowGrayLevelEmphasis",
    ),
    "srhge": (
        "rlm.srhge",
        "ShortRunHighGrayLevelEmphasis",
        "szm.szhge",
        "SmallAreaHighGrayLevelEmphasis",
    ),
    "lrlge": (
        "rlm.lrlge",
        "LongRunLowGrayLevelEmphasis",
        "szm.lzlge",
        "LargeAreaLowGrayLevelEmphasis",
    ),
    "lrhge": (
        "rlm.lrhge",
        "LongRunHighGrayLevelEmphasis",
        "szm.lzhge",
        "LargeAreaHighGrayLevelEmphasis",
    ),
    "glnu": ("rlm.glnu", "GrayLevelNonUniformity", "szm.glnu", "GrayLevelNonUniformity"),
    "glnu.norm": (
        "rlm.glnu.norm",
        "GrayLevelNonUniformityNormalized",
        "szm.glnu.norm",
        "GrayLevelNonUniformityNormalized",
    ),
    "rlnu": ("rlm.rlnu", "RunLengthNonUniformity", "szm.zsnu", "SizeZoneNonUniformity"),
    "rlnu.norm": (
        "rlm.rlnu.norm",
        "RunLengthNonUniformityNormalized",
        "szm.zsnu.norm",
        "SizeZoneNonUniformityNormalized",
    ),
    "perc": ("rlm.r.perc", "RunPercentage", "szm.z.perc", "ZonePercentage"),
    "gl.var": ("rlm.gl.var", "GrayLevelVariance", "szm.gl.var", "GrayLevelVariance"),
    "var": ("rlm.rl.var", "RunVariance", "szm.zs.var", "ZoneVariance"),
    "entr": ("rlm.rl.entr", "RunEntropy", "szm.zs.entr", "ZoneEntropy"),
}


def _sitk(arr: np.ndarray, spacing: Spacing) -> sitk.Image:
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing(tuple(float(s) for s in spacing[::-1]))
    return img


def _box(mask: np.ndarray) -> tuple[slice, slice, slice]:
    z, y, x = np.nonzero(mask)
    return (slice(z.min(), z.max() + 1), slice(y.min(), y.max() + 1), slice(x.min(), x.max() + 1))


def oracle(
    cls: Any, image: np.ndarray, mask: np.ndarray, spacing: Spacing, bin_width: float, **kw: Any
) -> dict[str, float]:
    """A PyRadiomics feature class on the ROI bounding box, as its extractor crops it."""
    box = _box(mask)
    features = cls(
        _sitk(image[box], spacing),
        _sitk(mask[box].astype(np.uint8), spacing),
        binWidth=bin_width,
        **kw,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {k: float(v) for k, v in features.execute().items()}


def cropped_levels(image: np.ndarray, mask: np.ndarray, bin_width: float = 25) -> np.ndarray:
    roi = mask.astype(bool)
    levels, _ = imageoperations.binImage(image, roi, binWidth=bin_width)
    return np.where(roi, levels, 0)[_box(roi)]


def assert_close(got: dict[str, float], expected: dict[str, float]) -> None:
    assert set(got) == set(expected)
    for name, value in expected.items():
        if math.isnan(value):
            assert math.isnan(got[name]), (name, got[name])
        else:
            assert got[name] == pytest.approx(value, rel=1e-6, abs=1e-9), name


# --------------------------------------------------------------------------- random cases


@st.composite
def cases(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, Spacing, float]:
    """Image, ROI, spacing and bin width: tiny to 6x9x9 boxes, ROIs anywhere (often on the
    border), integer or float intensities, negative values, plateaus of equal intensity."""
    shape = draw(st.tuples(st.integers(1, 6), st.integers(1, 9), st.integers(1, 9)))
    image = draw(
        hnp.arrays(np.float64, shape, elements=st.floats(-1200, 1500, allow_nan=False, width=64))
    )
    plateau = draw(st.sampled_from([0.0, 1.0, 40.0, 150.0, 600.0]))
    if plateau:
        image = np.round(image / plateau) * plateau  # equal neighbours: long runs, big zones
    if draw(st.booleans()):
        image = image + draw(st.floats(-0.999, 0.999))  # non-integer intensities
    roi_kind = draw(st.sampled_from(["random", "random", "full", "one-voxel", "two-voxels"]))
    if roi_kind == "full":
        mask = np.ones(shape, dtype=bool)
    elif roi_kind == "random":
        mask = draw(hnp.arrays(np.bool_, shape))
    else:
        flat = draw(
            st.lists(
                st.integers(0, image.size - 1),
                min_size=1,
                max_size=1 if roi_kind == "one-voxel" else 2,
                unique=True,
            )
        )
        chosen = np.zeros(image.size, dtype=bool)
        chosen[flat] = True
        mask = chosen.reshape(shape)
    if not mask.any():
        mask[tuple(draw(st.integers(0, n - 1)) for n in shape)] = True
    spacing = draw(st.tuples(*[st.sampled_from([0.4, 0.8, 1.0, 2.5, 5.0])] * 3))
    bin_width = draw(st.sampled_from([25.0, 10.0, 100.0]))
    return image, mask, spacing, bin_width


two_d = st.sampled_from(
    [
        {},
        {"force2D": True},
        {"force2D": True, "force2Ddimension": 1},
        {"force2D": True, "force2Ddimension": 2},
    ]
)


@given(
    cases(),
    two_d,
    st.sampled_from([None, "manhattan", "euclidean", "infinity", "no_weighting"]),
)
@settings(max_examples=60, deadline=None)
def test_glrlm_matches_pyradiomics(
    case: tuple[np.ndarray, np.ndarray, Spacing, float], plane: dict[str, Any], norm: str | None
) -> None:
    image, mask, spacing, bin_width = case
    kw: dict[str, Any] = dict(plane)
    if norm is not None:
        kw["weightingNorm"] = norm
    levels = cropped_levels(image, mask, bin_width)
    try:
        expected = oracle(glrlm.RadiomicsGLRLM, image, mask, spacing, bin_width, **kw)
    except RuntimeError:  # "Error getting angle count": no direction in this box
        with pytest.raises(InputError):
            pyradiomics_glrlm(levels, spacing=spacing, **kw)
        return
    assert_close(pyradiomics_glrlm(levels, spacing=spacing, **kw), expected)


@given(cases(), two_d)
@settings(max_examples=60, deadline=None)
def test_glszm_matches_pyradiomics(
    case: tuple[np.ndarray, np.ndarray, Spacing, float], plane: dict[str, Any]
) -> None:
    image, mask, spacing, bin_width = case
    levels = cropped_levels(image, mask, bin_width)
    try:
        expected = oracle(glszm.RadiomicsGLSZM, image, mask, spacing, bin_width, **plane)
    except RuntimeError:
        with pytest.raises(InputError):
            pyradiomics_glszm(levels, **plane)
        return
    assert_close(pyradiomics_glszm(levels, **plane), expected)


# --------------------------------------------------------------------------- fixed cases


@pytest.fixture(scope="module")
def ct_like() -> tuple[np.ndarray, np.ndarray]:
    """A 20^3 CT-like block: soft tissue with noise, a denser blob, a ball ROI on the border."""
    rng = np.random.default_rng(7)
    z, y, x = np.indices((16, 20, 20))
    image = 40 + 30 * rng.standard_normal(z.shape)
    image[(z - 8) ** 2 + (y - 6) ** 2 + (x - 12) ** 2 < 16] += 120
    image = np.round(image)
    mask = ((z - 8) ** 2 + (y - 10) ** 2 + (x - 13) ** 2 <= 64).astype(np.uint8)
    mask[:, :, 19] = 1  # touches the image border
    return image, mask


@pytest.mark.parametrize(
    ("name", "cls", "ours", "names"),
    [
        ("glrlm", glrlm.RadiomicsGLRLM, pyradiomics_glrlm, PYRADIOMICS_GLRLM_FEATURES),
        ("glszm", glszm.RadiomicsGLSZM, pyradiomics_glszm, PYRADIOMICS_GLSZM_FEATURES),
    ],
)
def test_names_and_values_of_the_default_extractor(
    name: str, cls: Any, ours: Any, names: tuple[str, ...], ct_like: tuple[np.ndarray, np.ndarray]
) -> None:
    image, mask = ct_like
    extractor = featureextractor.RadiomicsFeatureExtractor()
    extractor.disableAllFeatures()
    extractor.enableFeatureClassByName(name)
    spacing = (2.5, 0.7, 0.7)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = extractor.execute(_sitk(image, spacing), _sitk(mask, spacing))
    prefix = f"original_{name}_"
    found = {k.removeprefix(prefix) for k in result if k.startswith(prefix)}
    assert found == set(names)
    assert len(found) == 16
    expected = {n: float(result[prefix + n]) for n in names}
    assert_close(ours(cropped_levels(image, mask)), expected)
    # the class on the bounding box is what the extractor computes
    assert_close(oracle(cls, image, mask.astype(bool), spacing, 25.0), expected)


@pytest.mark.parametrize(
    "kw",
    [
        {"weightingNorm": "manhattan"},
        {"weightingNorm": "euclidean"},
        {"weightingNorm": "infinity"},
        {"force2D": True},
        {"force2D": True, "force2Ddimension": 2, "weightingNorm": "euclidean"},
    ],
)
def test_glrlm_settings_on_ct_like_block(
    kw: dict[str, Any], ct_like: tuple[np.ndarray, np.ndarray]
) -> None:
    image, mask = ct_like
    spacing = (3.0, 0.6, 0.9)  # anisotropic: weights differ per direction
    expected = oracle(glrlm.RadiomicsGLRLM, image, mask, spacing, 25.0, **kw)
    assert_close(pyradiomics_glrlm(cropped_levels(image, mask), spacing=spacing, **kw), expected)


def test_ibsi_3d_averaged_and_2_5d_equal_pyradiomics(
    ct_like: tuple[np.ndarray, np.ndarray],
) -> None:
    # With every direction present, PyRadiomics' default GLRLM is IBSI "3D, averaged" and
    # force2D is "2.5D, direction-merged"; its GLSZM is IBSI "3D" and force2D "2.5D".
    image, mask = ct_like
    levels = cropped_levels(image, mask)
    ng = int(levels.max())
    rlm, szm = ibsi_glrlm(levels, ng), ibsi_glszm(levels, ng)
    spacing = (1.0, 1.0, 1.0)
    p3 = oracle(glrlm.RadiomicsGLRLM, image, mask, spacing, 25.0)
    p2 = oracle(glrlm.RadiomicsGLRLM, image, mask, spacing, 25.0, force2D=True)
    z3 = oracle(glszm.RadiomicsGLSZM, image, mask, spacing, 25.0)
    z2 = oracle(glszm.RadiomicsGLSZM, image, mask, spacing, 25.0, force2D=True)
    for rlm_tag, rlm_name, szm_tag, szm_name in IBSI_TO_PYRADIOMICS.values():
        assert rlm[f"{rlm_tag} [3D, averaged]"] == pytest.approx(p3[rlm_name], rel=1e-6)
        assert rlm[f"{rlm_tag} [2.5D, direction-merged]"] == pytest.approx(p2[rlm_name], rel=1e-6)
        assert szm[f"{szm_tag} [3D]"] == pytest.approx(z3[szm_name], rel=1e-6)
        assert szm[f"{szm_tag} [2.5D]"] == pytest.approx(z2[szm_name], rel=1e-6)


def test_angle_with_single_voxel_lines_is_left_out_like_pyradiomics() -> None:
    # Two ROI voxels on a (0, 1, 1) diagonal of a 1x2x2 box: along (0, 1, 0) and (0, 0, 1)
    # every line holds one ROI voxel, so PyRadiomics drops those angles from the mean.
    image = np.array([[[10.0, 60.0], [80.0, 20.0]]])  # ROI levels 1 and 1
    mask = np.array([[[1, 0], [0, 1]]], dtype=np.uint8)
    expected = oracle(glrlm.RadiomicsGLRLM, image, mask, (1.0, 1.0, 1.0), 25.0)
    got = pyradiomics_glrlm(cropped_levels(image, mask))
    assert_close(got, expected)
    assert got["RunPercentage"] == pytest.approx(0.5)  # only the (0, 1, 1) angle remains


def test_no_direction_fails_like_pyradiomics() -> None:
    image = np.array([[[5.0]]])
    mask = np.ones((1, 1, 1), dtype=np.uint8)
    with pytest.raises(RuntimeError):
        oracle(glrlm.RadiomicsGLRLM, image, mask, (1.0, 1.0, 1.0), 25.0)
    with pytest.raises(RuntimeError):
        oracle(glszm.RadiomicsGLSZM, image, mask, (1.0, 1.0, 1.0), 25.0)
    with pytest.raises(InputError):
        pyradiomics_glrlm(np.ones((1, 1, 1), dtype=np.int64))
    with pytest.raises(InputError):
        pyradiomics_glszm(np.ones((1, 1, 1), dtype=np.int64))


def test_unknown_weighting_norm_is_a_config_error() -> None:
    # PyRadiomics warns and falls back to weight 1; radgen refuses the unknown setting.
    with pytest.raises(ConfigError):
        pyradiomics_glrlm(np.ones((2, 2, 2), dtype=np.int64), weightingNorm="chebyshev")
    with pytest.raises(ConfigError):
        pyradiomics_glrlm(np.ones((2, 2, 2), dtype=np.int64), weightingNorm="euclidean")
    with pytest.raises(ConfigError):
        pyradiomics_glszm(np.ones((2, 2, 2), dtype=np.int64), force2D=True, force2Ddimension=3)
