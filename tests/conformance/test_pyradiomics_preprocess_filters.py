"""PyRadiomics 3.0.1 parity of radgen's pre-processing, filters and first-order features.

Oracles: ``radiomics.imageoperations`` (getXxxImage generators, resampleImage,
cropToTumorMask, checkMask), ``radiomics.firstorder.RadiomicsFirstOrder`` and
``radiomics.featureextractor.RadiomicsFeatureExtractor``, run on the same arrays as SimpleITK
images (``GetImageFromArray``, spacing reversed to (x, y, z)). Plus the IBSI digital phantom
reference values for the first-order features PyRadiomics shares with IBSI.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import SimpleITK as sitk
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from radgen.errors import ConfigError, EmptyRoiError, InputError
from radgen.features.filters import filtered_images, filtered_images_detailed
from radgen.features.firstorder_pyradiomics import (
    PYRADIOMICS_FIRSTORDER_FEATURES,
    pyradiomics_bin,
    pyradiomics_firstorder,
)
from radgen.features.preprocess import pyradiomics_prepare, pyradiomics_resample

radiomics = pytest.importorskip("radiomics")
from radiomics import featureextractor, firstorder, imageoperations  # noqa: E402

pytestmark = pytest.mark.conformance
logging.getLogger("radiomics").setLevel(logging.CRITICAL)
logging.getLogger("radgen").setLevel(logging.CRITICAL)

HYPO = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
SPACINGS = [0.5, 0.7, 0.8, 1.0, 1.25, 2.0, 3.0]
RTOL = 1e-6
ATOL = 1e-9


def sitk_pair(image: np.ndarray, mask: np.ndarray, spacing: tuple[float, ...]) -> tuple[Any, Any]:
    img = sitk.GetImageFromArray(image)
    img.SetSpacing(tuple(float(s) for s in spacing[::-1]))
    msk = sitk.GetImageFromArray(mask.astype(np.uint32))
    msk.CopyInformation(img)
    return img, msk


def assert_close(mine: Any, ref: Any, *, scale: float = 0.0, what: str = "") -> None:
    """rtol 1e-6; atol 1e-9 (times the image's largest magnitude for voxel arrays)."""
    np.testing.assert_allclose(
        np.asarray(mine, dtype=np.float64),
        np.asarray(ref, dtype=np.float64),
        rtol=RTOL,
        atol=ATOL * max(1.0, scale),
        err_msg=what,
    )


@st.composite
def cases(draw: st.DrawFn, min_side: int = 10, max_side: int = 20) -> tuple[Any, ...]:
    """Random image (int16/float32/float64, negative values), box ROI anywhere, spacing."""
    shape = tuple(draw(st.integers(min_side, max_side)) for _ in range(3))
    spacing = tuple(float(draw(st.sampled_from(SPACINGS))) for _ in range(3))
    dtype = draw(st.sampled_from(["int16", "float32", "float64"]))
    offset = draw(st.sampled_from([-1000.0, -40.0, 0.0, 250.0]))
    scale = draw(st.sampled_from([0.5, 30.0, 400.0]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    image = rng.normal(offset, scale, shape)
    image = np.round(image).astype(np.int16) if dtype == "int16" else image.astype(dtype)
    lo = [draw(st.one_of(st.just(0), st.integers(0, n - 1))) for n in shape]
    hi = [
        draw(st.one_of(st.just(n - 1), st.integers(a, n - 1)))
        for a, n in zip(lo, shape, strict=True)
    ]
    hi = [max(a, b) for a, b in zip(lo, hi, strict=True)]
    fill = draw(st.sampled_from([1.0, 0.7, 0.4]))
    mask = np.zeros(shape, np.uint8)
    box = tuple(slice(a, b + 1) for a, b in zip(lo, hi, strict=True))
    mask[box] = rng.random(mask[box].shape) < fill
    mask[tuple(lo)] = 1
    mask[tuple(hi)] = 1
    return image, mask, spacing


@st.composite
def wavelet_settings(draw: st.DrawFn) -> dict[str, Any]:
    out: dict[str, Any] = {
        "wavelet": draw(st.sampled_from(["coif1", "haar", "db2", "sym3", "bior1.3"])),
        "level": draw(st.integers(1, 2)),
        "start_level": draw(st.integers(0, 1)),
    }
    if draw(st.booleans()):
        out["force2D"] = True
        out["force2Ddimension"] = draw(st.integers(0, 2))
    return out


def reference_images(
    image: np.ndarray,
    mask: np.ndarray,
    spacing: tuple[float, ...],
    types: dict[str, Any],
    **kw: Any,
) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """PyRadiomics' own generators, cropped as the extractor crops them."""
    img, msk = sitk_pair(image, mask, spacing)
    bbox, _ = imageoperations.checkMask(img, msk)
    out = []
    for name, custom in types.items():
        args = {**kw, **custom}
        for filtered, prefix, _ in getattr(imageoperations, f"get{name}Image")(img, msk, **args):
            ci, cm = imageoperations.cropToTumorMask(filtered, msk, bbox)
            out.append((prefix, sitk.GetArrayFromImage(ci), sitk.GetArrayFromImage(cm) == 1))
    return out


# ---------------------------------------------------------------------------------------------
# binning and first-order features


@HYPO
@given(case=cases(), width=st.sampled_from([0.3, 1, 7, 25.0]), count=st.sampled_from([None, 3, 16]))
def test_bin_matches_binimage(case: tuple[Any, ...], width: float, count: int | None) -> None:
    image, mask, _ = case
    roi = mask.astype(bool)
    ref_levels, ref_edges = imageoperations.binImage(image, roi, binWidth=width, binCount=count)
    levels, edges = pyradiomics_bin(image, roi, binWidth=width, binCount=count)
    np.testing.assert_array_equal(levels, ref_levels)
    np.testing.assert_allclose(edges, ref_edges, rtol=1e-12)


@HYPO
@given(
    case=cases(),
    binning=st.sampled_from(
        [{}, {"binWidth": 5}, {"binWidth": 0.5}, {"binCount": 16}, {"binCount": 5}]
    ),
    shift=st.sampled_from([0, 1000]),
)
def test_firstorder_matches_pyradiomics(
    case: tuple[Any, ...], binning: dict[str, Any], shift: int
) -> None:
    image, mask, spacing = case
    img, msk = sitk_pair(image, mask, spacing)
    ref = firstorder.RadiomicsFirstOrder(img, msk, voxelArrayShift=shift, **binning).execute()
    mine = pyradiomics_firstorder(image, mask, spacing, voxelArrayShift=shift, **binning)
    assert set(mine) == set(ref) == set(PYRADIOMICS_FIRSTORDER_FEATURES)
    for name, value in ref.items():
        assert_close(mine[name], float(value), what=name)


def test_firstorder_flat_and_tiny_rois() -> None:
    rng = np.random.default_rng(3)
    for values in ([7.0, 7.0, 7.0], [0.1, 0.1], [-3.0, 5.0], [1e6, 1e6 + 1, 1e6 - 1]):
        image = np.zeros((2, 3, 4), np.float64)
        mask = np.zeros(image.shape, np.uint8)
        idx = rng.choice(image.size, len(values), replace=False)
        image.flat[idx] = values
        mask.flat[idx] = 1
        img, msk = sitk_pair(image, mask, (1.0, 1.0, 1.0))
        ref = firstorder.RadiomicsFirstOrder(img, msk).execute()
        mine = pyradiomics_firstorder(image, mask, (1.0, 1.0, 1.0))
        for name, value in ref.items():
            assert_close(mine[name], float(value), what=f"{values} {name}")


def test_firstorder_empty_roi() -> None:
    with pytest.raises(EmptyRoiError):
        pyradiomics_firstorder(np.ones((2, 2, 2)), np.zeros((2, 2, 2)), (1.0, 1.0, 1.0))


# IBSI tag of each PyRadiomics first-order feature (Kurtosis is not excess in PyRadiomics)
IBSI_TAGS = {
    "Mean": "stat.mean",
    "Variance": "stat.var",
    "Skewness": "stat.skew",
    "Kurtosis": "stat.kurt",
    "Median": "stat.median",
    "Minimum": "stat.min",
    "10Percentile": "stat.P10",
    "90Percentile": "stat.P90",
    "Maximum": "stat.max",
    "InterquartileRange": "stat.iqr",
    "Range": "stat.range",
    "MeanAbsoluteDeviation": "stat.mad",
    "RobustMeanAbsoluteDeviation": "stat.rmad",
    "Energy": "stat.energy",
    "RootMeanSquared": "stat.rms",
    "Entropy": "ih.entropy",
    "Uniformity": "ih.uniformity",
}


def test_firstorder_on_ibsi_phantom(ibsi_phantom: Any, ibsi_reference: Any) -> None:
    """binWidth 1 leaves the phantom's grey levels {1, 3, 4, 6} as they are (bins from 1)."""
    image, mask, spacing = ibsi_phantom
    out = next(
        item
        for item in filtered_images_detailed(image, mask, spacing, {"Original": {}}, binWidth=1)
    )
    mine = pyradiomics_firstorder(out.image, out.mask, out.spacing, binWidth=1)
    rows = {r.key: r for r in ibsi_reference}
    checked = 0
    for name, tag in IBSI_TAGS.items():
        row = rows[tag]
        value = mine[name] - 3.0 if name == "Kurtosis" else mine[name]
        assert abs(value - row.value) <= row.tolerance, (name, value, row.value)
        checked += 1
    assert checked == 17
    # TotalEnergy: 2 x 2 x 2 mm voxels
    assert mine["TotalEnergy"] == pytest.approx(8.0 * mine["Energy"], rel=1e-12)


# ---------------------------------------------------------------------------------------------
# filtered images against PyRadiomics' generators

VOXELWISE = {"Square": {}, "SquareRoot": {}, "Logarithm": {}, "Exponential": {}}


def _compare_images(
    mine: list[tuple[str, np.ndarray, np.ndarray]],
    ref: list[tuple[str, np.ndarray, np.ndarray]],
    spacing: tuple[float, ...],
) -> None:
    assert [m[0] for m in mine] == [r[0] for r in ref]
    for (name, image, mask), (_, ref_image, ref_mask) in zip(mine, ref, strict=True):
        assert image.dtype == ref_image.dtype, name
        assert image.shape == ref_image.shape, name
        np.testing.assert_array_equal(mask, ref_mask, err_msg=name)
        finite = np.isfinite(ref_image)
        np.testing.assert_array_equal(np.isfinite(image), finite, err_msg=name)
        scale = float(np.max(np.abs(ref_image[finite]), initial=0.0))
        assert_close(image[finite], ref_image[finite], scale=scale, what=name)
        # the first-order features of each image, as the extractor computes them
        img, msk = sitk_pair(ref_image, ref_mask.astype(np.uint8), spacing)
        ref_feats = firstorder.RadiomicsFirstOrder(img, msk, binCount=8).execute()
        feats = pyradiomics_firstorder(image, mask, spacing, binCount=8)
        for key, value in ref_feats.items():
            assert_close(feats[key], float(value), what=f"{name} {key}")


@HYPO
@given(
    case=cases(),
    sigma=st.lists(st.sampled_from([0.5, 1.0, 1.5, 2.5, 4.0, 1, 3]), min_size=1, max_size=3),
    wave=wavelet_settings(),
    use_spacing=st.booleans(),
)
def test_filters_match_pyradiomics_generators(
    case: tuple[Any, ...], sigma: list[float], wave: dict[str, Any], use_spacing: bool
) -> None:
    image, mask, spacing = case
    types = {
        "Original": {},
        "LoG": {"sigma": sigma},
        "Wavelet": wave,
        **VOXELWISE,
        "Gradient": {"gradientUseSpacing": use_spacing},
    }
    try:
        ref = reference_images(image, mask, spacing, types)
    except ValueError as err:
        event(f"PyRadiomics refused: {str(err)[:40]}")
        with pytest.raises(InputError):
            list(filtered_images(image, mask, spacing, types))
        return
    event("compared")
    mine = list(filtered_images(image, mask, spacing, types))
    _compare_images(mine, ref, spacing)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    case=cases(max_side=16),
    lbp=st.fixed_dictionaries(
        {
            "lbp2DRadius": st.sampled_from([1, 1.5, 2]),
            "lbp2DSamples": st.sampled_from([4, 8]),
            "lbp2DMethod": st.sampled_from(["uniform", "default", "ror", "var"]),
            "force2Ddimension": st.integers(0, 2),
        }
    ),
)
def test_lbp2d_matches_pyradiomics(case: tuple[Any, ...], lbp: dict[str, Any]) -> None:
    image, mask, spacing = case
    types = {"LBP2D": lbp}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # skimage warns about float images, for both
        try:
            ref = reference_images(image, mask, spacing, types)
        except ValueError:
            with pytest.raises(InputError):
                list(filtered_images(image, mask, spacing, types))
            return
        mine = list(filtered_images(image, mask, spacing, types))
    assert [m[0] for m in mine] == [r[0] for r in ref] == ["lbp-2D"]
    (_, got, got_mask), (_, want, want_mask) = mine[0], ref[0]
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got_mask, want_mask)
    finite = np.isfinite(want)
    np.testing.assert_array_equal(np.isfinite(got), finite)
    assert_close(got[finite], want[finite], scale=float(np.max(np.abs(want[finite]), initial=0.0)))


@pytest.mark.parametrize(
    ("dtype", "spacing", "sigmas"),
    [
        ("float64", (1.0, 1.0, 1.0), [0.3, 0.7, 1.0]),
        ("int16", (2.5, 0.7, 0.7), [0.5, 1.0, 1.5]),
        ("float32", (0.8, 0.5, 0.9), [0.4, 1.0]),
    ],
)
def test_filters_on_an_interior_crop(
    dtype: str, spacing: tuple[float, ...], sigmas: list[float]
) -> None:
    """An ROI far from the border: every filter runs on a crop strictly inside the image."""
    rng = np.random.default_rng(11)
    shape = (36, 72, 72)
    image = rng.normal(-100.0, 300.0, shape)
    image = np.round(image).astype(np.int16) if dtype == "int16" else image.astype(dtype)
    mask = np.zeros(shape, np.uint8)
    mask[16:21, 30:38, 33:40] = rng.random((5, 8, 7)) < 0.8
    mask[16, 30, 33] = mask[20, 37, 39] = 1
    types = {
        "Original": {},
        "LoG": {"sigma": sigmas},
        "Wavelet": {"level": 2},
        "Gradient": {},
        "LBP2D": {},
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = reference_images(image, mask, spacing, types, wavelet="sym4")
        mine = list(filtered_images(image, mask, spacing, types, wavelet="sym4"))
    _compare_images(mine, ref, spacing)


# ---------------------------------------------------------------------------------------------
# resampling


@st.composite
def resample_settings(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "resampledPixelSpacing": [
            float(draw(st.sampled_from([0, 0.6, 1.0, 1.5, 2.0]))) for _ in range(3)
        ],
        "interpolator": draw(
            st.sampled_from(["sitkBSpline", "sitkLinear", "sitkNearestNeighbor", sitk.sitkBSpline])
        ),
        "padDistance": draw(st.sampled_from([0, 2, 5])),
    }


@HYPO
@given(case=cases(), opts=resample_settings())
def test_resample_matches_pyradiomics(case: tuple[Any, ...], opts: dict[str, Any]) -> None:
    image, mask, spacing = case
    img, msk = sitk_pair(image, mask, spacing)
    ref_img, ref_msk = imageoperations.resampleImage(img, msk, **opts)
    got_img, got_msk, got_spacing = pyradiomics_resample(
        image,
        mask.astype(bool),
        spacing,
        opts["resampledPixelSpacing"],
        interpolator=opts["interpolator"],
        padDistance=opts["padDistance"],
    )
    want = sitk.GetArrayFromImage(ref_img)
    assert got_img.dtype == want.dtype
    assert got_img.shape == want.shape
    assert_close(got_img, want, scale=float(np.abs(want).max()))
    np.testing.assert_array_equal(got_msk, sitk.GetArrayFromImage(ref_msk) == 1)
    assert got_spacing == pytest.approx(ref_img.GetSpacing()[::-1], rel=1e-15)


@pytest.mark.parametrize("dtype", ["float64", "int16"])
@pytest.mark.parametrize("new_spacing", [[1.0, 1.0, 1.0], [0.5, 0.5, 2.0], [1.3, 0.9, 0.0]])
def test_resample_interior_crop(dtype: str, new_spacing: list[float]) -> None:
    """An image much larger than the ROI: radgen interpolates a crop, PyRadiomics the whole."""
    rng = np.random.default_rng(5)
    shape = (30, 110, 110)
    image = rng.normal(40.0, 300.0, shape)
    image = np.round(image).astype(np.int16) if dtype == "int16" else image
    mask = np.zeros(shape, np.uint8)
    mask[12:17, 50:58, 47:60] = 1
    spacing = (2.5, 0.7, 0.8)
    img, msk = sitk_pair(image, mask, spacing)
    ref_img, ref_msk = imageoperations.resampleImage(img, msk, resampledPixelSpacing=new_spacing)
    got_img, got_msk, _ = pyradiomics_resample(image, mask.astype(bool), spacing, new_spacing)
    want = sitk.GetArrayFromImage(ref_img)
    assert got_img.shape == want.shape
    assert_close(got_img, want, scale=float(np.abs(want).max()))
    np.testing.assert_array_equal(got_msk, sitk.GetArrayFromImage(ref_msk) == 1)


@pytest.mark.parametrize(
    ("spacing", "new_spacing"),
    [
        ((2.5, 2.5, 0.7), [0.7, 0.7, 0.5]),
        ((0.6, 1.25, 0.6), [1.0, 0.7, 1.0]),
        ((1.0, 1.0, 1.0), [0.5, 0.5, 0.5]),
        ((2.0, 0.8, 0.8), [1.0, 1.0, 1.0]),
    ],
)
@pytest.mark.parametrize("interpolator", ["sitkBSpline", "sitkNearestNeighbor"])
def test_resample_int16_constant_regions(
    spacing: tuple[float, ...], new_spacing: list[float], interpolator: str
) -> None:
    """Air at -1000 interpolates to -1000 +- rounding, which int16 truncates either way:
    radgen must round the same way as PyRadiomics (bit-identical continuous indices)."""
    rng = np.random.default_rng(0)
    shape = (30, 100, 100)
    image = np.full(shape, -1000, np.int16)
    image[5:25, 20:80, 20:80] = rng.integers(-2, 2, size=(20, 60, 60)) * 25
    image[10:20, 40:60, 40:60] = 40
    mask = np.zeros(shape, np.uint8)
    mask[12:18, 45:55, 30:70] = 1
    img, msk = sitk_pair(image, mask, spacing)
    ref_img, ref_msk = imageoperations.resampleImage(
        img, msk, resampledPixelSpacing=new_spacing, interpolator=interpolator
    )
    got_img, got_msk, _ = pyradiomics_resample(
        image, mask.astype(bool), spacing, new_spacing, interpolator=interpolator
    )
    np.testing.assert_array_equal(got_img, sitk.GetArrayFromImage(ref_img))
    np.testing.assert_array_equal(got_msk, sitk.GetArrayFromImage(ref_msk) == 1)


# ---------------------------------------------------------------------------------------------
# the whole extractor: settings, re-segmentation, normalisation, resampling, image types


@st.composite
def extractor_settings(draw: st.DrawFn, offset: float, scale: float) -> dict[str, Any]:
    s: dict[str, Any] = {"additionalInfo": False}
    s.update(draw(st.sampled_from([{}, {"binWidth": 10}, {"binWidth": 0.5}, {"binCount": 12}])))
    if draw(st.booleans()):
        s["normalize"] = True
        s["normalizeScale"] = draw(st.sampled_from([1, 100]))
        s["removeOutliers"] = draw(st.sampled_from([None, 2.0]))
    choice = draw(st.sampled_from(["none", "resample", "preCrop"]))
    if choice == "resample":
        s.update(draw(resample_settings()))
    elif choice == "preCrop":
        s["preCrop"] = True
        s["padDistance"] = draw(st.sampled_from([0, 3]))
    mode = draw(st.sampled_from([None, "absolute", "relative", "sigma"]))
    if mode == "absolute":
        s["resegmentRange"] = draw(st.sampled_from([[offset - scale, offset + scale], [offset]]))
    elif mode == "relative":
        s["resegmentMode"] = "relative"
        s["resegmentRange"] = draw(st.sampled_from([[0.1, 0.9], [-2.0]]))
    elif mode == "sigma":
        s["resegmentMode"] = "sigma"
        s["resegmentRange"] = draw(st.sampled_from([[-1.5, 1.5], [-0.5]]))
    if mode is not None:
        s["resegmentShape"] = draw(st.booleans())
    s["minimumROIDimensions"] = draw(st.integers(1, 3))
    s["minimumROISize"] = draw(st.sampled_from([None, 4]))
    s["voxelArrayShift"] = draw(st.sampled_from([0, 1000]))
    s["label"] = draw(st.sampled_from([1, 2]))
    return s


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), case=cases(max_side=16))
def test_extractor_firstorder_parity(data: st.DataObject, case: tuple[Any, ...]) -> None:
    image, mask, spacing = case
    # PyRadiomics refuses a mask of one value even when it is the label; radgen takes it
    # (test_whole_image_roi_is_accepted)
    assume(np.unique(mask).size > 1)
    values = image.astype(np.float64)
    opts = data.draw(extractor_settings(float(np.median(values)), float(np.std(values)) + 1e-3))
    if opts["label"] == 2:  # a second label: the first half of the ROI becomes label 2
        mask = mask.copy()
        nz = np.flatnonzero(mask)
        mask.flat[nz[: max(1, nz.size // 2)]] = 2
    types: dict[str, Any] = data.draw(
        st.sampled_from(
            [
                {"Original": {}},
                {"Original": {}, "LoG": {"sigma": [1.0, 2.0]}, "Wavelet": {}},
                {"Wavelet": {"binWidth": 3}, "Square": {}, "Exponential": {}},
                {"LoG": {"sigma": [1.5], "binCount": 5}, "SquareRoot": {}, "Logarithm": {}},
            ]
        )
    )
    extractor = featureextractor.RadiomicsFeatureExtractor(**opts)
    extractor.disableAllFeatures()
    extractor.enableFeatureClassByName("firstorder")
    extractor.disableAllImageTypes()
    extractor.enableImageTypes(**types)
    img, msk = sitk_pair(image, mask, spacing)
    settings_ = {k: v for k, v in opts.items() if k != "additionalInfo"}
    try:
        ref = extractor.execute(img, msk)
    except ValueError as err:
        event(f"PyRadiomics refused: {str(err)[:40]}")
        with pytest.raises(InputError):
            list(filtered_images(image, mask, spacing, types, **settings_))
        return
    event("compared")
    got: dict[str, float] = {}
    for item in filtered_images_detailed(image, mask, spacing, types, **settings_):
        kw = {
            k: item.settings[k]
            for k in ("binWidth", "binCount", "voxelArrayShift")
            if k in item.settings
        }
        for name, value in pyradiomics_firstorder(
            item.image, item.mask, item.spacing, **kw
        ).items():
            got[f"{item.name}_firstorder_{name}"] = value
    assert set(got) == set(ref)
    for key, value in ref.items():
        assert_close(got[key], float(value), what=key)


def test_prepare_shape_mask_is_cropped_with_the_resegmented_box() -> None:
    """PyRadiomics computes shape on the original mask cropped to the re-segmented box."""
    image = np.zeros((6, 8, 8), np.float64)
    mask = np.zeros(image.shape, np.uint8)
    mask[1:5, 1:7, 1:7] = 1
    image[2:4, 3:6, 2:5] = 100.0
    prep = pyradiomics_prepare(image, mask, (1.0, 1.0, 1.0), resegmentRange=[50, 150])
    assert prep.bbox == (slice(2, 4), slice(3, 6), slice(2, 5))
    assert prep.mask_crop().all()
    assert prep.shape_mask_crop().all()  # the original ROI, cut to the smaller box
    assert int(prep.shape_mask.sum()) == 4 * 6 * 6


# ---------------------------------------------------------------------------------------------
# refusals: PyRadiomics raises ValueError, radgen an InputError naming the reason


@pytest.mark.parametrize(
    ("mask_voxels", "opts", "error", "message"),
    [
        ([], {}, EmptyRoiError, "not present"),
        ([(2, 2, 2)], {}, InputError, "1 segmented voxel"),
        ([(2, 2, 2), (2, 2, 3), (2, 2, 4)], {}, InputError, "too few dimensions"),
        ([(2, 2, 2), (2, 2, 3), (2, 2, 4)], {"minimumROIDimensions": 1}, None, ""),
        ([(2, 2, 2), (2, 3, 3)], {"minimumROISize": 2}, InputError, "too small"),
        (
            [(2, 2, 2), (2, 3, 3), (3, 3, 3)],
            {"resegmentRange": [1000, 2000]},
            EmptyRoiError,
            "excluded too many voxels",
        ),
    ],
)
def test_mask_refusals_match_pyradiomics(
    mask_voxels: list[tuple[int, int, int]],
    opts: dict[str, Any],
    error: type[Exception] | None,
    message: str,
) -> None:
    image = np.arange(6 * 7 * 8, dtype=np.float64).reshape(6, 7, 8)
    mask = np.zeros(image.shape, np.uint8)
    for v in mask_voxels:
        mask[v] = 1
    mask[0, 0, 0] = 0 if mask_voxels else 3  # another label, so that PyRadiomics finds a label map
    extractor = featureextractor.RadiomicsFeatureExtractor(additionalInfo=False, **opts)
    extractor.disableAllFeatures()
    extractor.enableFeatureClassByName("firstorder")
    img, msk = sitk_pair(image, mask, (1.0, 1.0, 1.0))
    if error is None:
        extractor.execute(img, msk)
        assert (
            len(list(filtered_images(image, mask, (1.0, 1.0, 1.0), {"Original": {}}, **opts))) == 1
        )
        return
    with pytest.raises(ValueError, match=message):
        extractor.execute(img, msk)
    with pytest.raises(error):
        list(filtered_images(image, mask, (1.0, 1.0, 1.0), {"Original": {}}, **opts))


def test_whole_image_roi_is_accepted() -> None:
    """Deviation: PyRadiomics' getMask refuses a mask whose only value is the label."""
    image = np.random.default_rng(2).normal(size=(4, 5, 6))
    mask = np.ones(image.shape, np.uint8)
    img, msk = sitk_pair(image, mask, (1.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="No labels found"):
        imageoperations.getMask(msk)
    ((name, crop, roi),) = list(filtered_images(image, mask, (1.0, 1.0, 1.0), {"Original": {}}))
    assert name == "original"
    np.testing.assert_array_equal(crop, image)
    assert roi.all()
    ref = firstorder.RadiomicsFirstOrder(img, msk).execute()  # the class itself accepts it
    mine = pyradiomics_firstorder(crop, roi, (1.0, 1.0, 1.0))
    for key, value in ref.items():
        assert_close(mine[key], float(value), what=key)


def test_unknown_settings_and_lbp3d_are_config_errors() -> None:
    image = np.zeros((5, 5, 5))
    mask = np.zeros((5, 5, 5), np.uint8)
    mask[1:3, 1:3, 1:3] = 1
    with pytest.raises(ConfigError, match="binwidth"):
        list(filtered_images(image, mask, (1.0, 1.0, 1.0), {"Original": {}}, binwidth=5))
    with pytest.raises(ConfigError, match="LBP3D"):
        list(filtered_images(image, mask, (1.0, 1.0, 1.0), {"LBP3D": {}}))
    with pytest.raises(ConfigError, match="Sobel"):
        list(filtered_images(image, mask, (1.0, 1.0, 1.0), {"Sobel": {}}))
    with pytest.raises(ConfigError, match="wavelet"):
        list(filtered_images(image, mask, (1.0, 1.0, 1.0), {"Wavelet": {"wavelet": "nope"}}))


def test_log_names_follow_the_sigma_as_written() -> None:
    image = np.random.default_rng(0).normal(size=(12, 12, 12))
    mask = np.zeros(image.shape, np.uint8)
    mask[4:8, 4:8, 4:8] = 1
    names = [
        n for n, _, _ in filtered_images(image, mask, (1, 1, 1), {"LoG": {"sigma": [1, 1.0, 2.5]}})
    ]
    assert names == ["log-sigma-1-mm-3D", "log-sigma-1-0-mm-3D", "log-sigma-2-5-mm-3D"]


def test_oracle_is_pyradiomics_301() -> None:
    assert radiomics.__version__.lstrip("v").startswith("3.0.1")
    assert Path(radiomics.__file__).exists()
