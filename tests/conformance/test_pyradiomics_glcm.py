"""GLCM features against PyRadiomics 3.0.1 (``radiomics.glcm.RadiomicsGLCM``) as the oracle.

PyRadiomics gets the raw image and mask as SimpleITK images (arrays (z, y, x), spacing given
reversed); radgen gets PyRadiomics' own discretisation (``binImage``, binWidth 25) cropped to the
ROI bounding box. Values agree within 1e-6 relative (1e-9 absolute near zero). The IBSI path
(:func:`ibsi_glcm`) is also checked against PyRadiomics where both define the same quantity.
"""

from __future__ import annotations

import itertools
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
from radiomics import cMatrices, featureextractor, glcm, imageoperations

from radgen.features.texture_glcm import (
    PYRADIOMICS_GLCM_FEATURES,
    glcm_directions,
    glcm_matrices,
    ibsi_glcm,
    pyradiomics_glcm,
    pyradiomics_glcm_features,
)

pytestmark = pytest.mark.conformance
logging.getLogger("radiomics").setLevel(logging.CRITICAL)

#: IBSI tag -> PyRadiomics feature for the quantities both define identically.
IBSI_TO_PYRADIOMICS = {
    "cm.joint.max": "MaximumProbability",
    "cm.joint.avg": "JointAverage",
    "cm.joint.var": "SumSquares",
    "cm.joint.entr": "JointEntropy",
    "cm.diff.avg": "DifferenceAverage",
    "cm.diff.var": "DifferenceVariance",
    "cm.diff.entr": "DifferenceEntropy",
    "cm.sum.avg": "SumAverage",
    "cm.sum.var": "ClusterTendency",  # PyRadiomics' deprecated SumVariance equals it
    "cm.sum.entr": "SumEntropy",
    "cm.energy": "JointEnergy",
    "cm.contrast": "Contrast",
    "cm.dissimilarity": "DifferenceAverage",  # PyRadiomics' deprecated Dissimilarity equals it
    "cm.inv.diff": "Id",
    "cm.inv.diff.norm": "Idn",
    "cm.inv.diff.mom": "Idm",
    "cm.inv.diff.mom.norm": "Idmn",
    "cm.inv.var": "InverseVariance",
    "cm.corr": "Correlation",
    "cm.auto.corr": "Autocorrelation",
    "cm.clust.tend": "ClusterTendency",
    "cm.clust.shade": "ClusterShade",
    "cm.clust.prom": "ClusterProminence",
    "cm.info.corr.1": "Imc1",
    "cm.info.corr.2": "Imc2",
}


def _sitk(arr: np.ndarray, spacing: tuple[float, float, float]) -> sitk.Image:
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing(tuple(float(s) for s in spacing[::-1]))
    return img


def oracle(
    image: np.ndarray, mask: np.ndarray, spacing: tuple[float, float, float], **kw: Any
) -> dict[str, float]:
    """PyRadiomics' GLCM class (binWidth 25) on the ROI bounding box, as its extractor crops."""
    z, y, x = np.nonzero(mask)
    box = (slice(z.min(), z.max() + 1), slice(y.min(), y.max() + 1), slice(x.min(), x.max() + 1))
    cls = glcm.RadiomicsGLCM(
        _sitk(image[box], spacing), _sitk(mask[box].astype(np.uint8), spacing), binWidth=25, **kw
    )
    cls.enableAllFeatures()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {k: float(v) for k, v in cls.execute().items()}


def cropped_levels(image: np.ndarray, mask: np.ndarray, bin_width: float = 25) -> np.ndarray:
    roi = mask.astype(bool)
    levels, _ = imageoperations.binImage(image, roi, binWidth=bin_width)
    levels = np.where(roi, levels, 0)
    z, y, x = np.nonzero(roi)
    return levels[z.min() : z.max() + 1, y.min() : y.max() + 1, x.min() : x.max() + 1]


def assert_close(got: dict[str, float], expected: dict[str, float]) -> None:
    assert set(got) == set(expected)
    for name, value in expected.items():
        if math.isnan(value):
            assert math.isnan(got[name]), (name, got[name])
        else:
            assert got[name] == pytest.approx(value, rel=1e-6, abs=1e-9), name


# --------------------------------------------------------------------------- conventions


def test_feature_names_are_those_the_extractor_enables_by_default() -> None:
    rng = np.random.default_rng(0)
    image = rng.normal(0, 80, (6, 7, 8))
    mask = np.zeros(image.shape, dtype=np.uint8)
    mask[1:5, 1:6, 2:7] = 1
    extractor = featureextractor.RadiomicsFeatureExtractor()
    extractor.disableAllFeatures()
    extractor.enableFeatureClassByName("glcm")
    result = extractor.execute(_sitk(image, (1.0, 1.0, 1.0)), _sitk(mask, (1.0, 1.0, 1.0)))
    names = {k.split("_", 2)[2] for k in result if k.startswith("original_glcm_")}
    assert names == set(PYRADIOMICS_GLCM_FEATURES)
    got = pyradiomics_glcm(cropped_levels(image, mask))
    assert_close(got, {n: float(result[f"original_glcm_{n}"]) for n in names})


@pytest.mark.parametrize("distances", [[1], [2], [1, 2], [1, 3]])
@pytest.mark.parametrize(("force2d", "dim"), [(False, 0), (True, 0), (True, 1), (True, 2)])
def test_directions_match_generate_angles(distances: list[int], force2d: bool, dim: int) -> None:
    size = np.array([9, 9, 9])
    angles = cMatrices.generate_angles(size, np.array(distances), False, force2d, dim)
    fixed = dim if force2d else None
    assert glcm_directions(distances, fixed_axis=fixed) == [tuple(a) for a in angles.tolist()]


# --------------------------------------------------------------------------- parity


@st.composite
def cases(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float]]:
    shape = draw(st.tuples(*[st.integers(1, 7)] * 3))
    values = st.floats(-1000, 1000, allow_nan=False, allow_infinity=False)
    if draw(st.booleans()):
        values = st.integers(-1000, 1000).map(float)
    image = draw(hnp.arrays(np.float64, shape, elements=values))
    density = draw(st.sampled_from([0.05, 0.3, 0.7, 1.0]))
    mask = draw(hnp.arrays(np.float64, shape, elements=st.floats(0, 1))) < density
    if not mask.any():
        mask.flat[draw(st.integers(0, mask.size - 1))] = True
    spacing = draw(st.tuples(*[st.floats(0.3, 5.0)] * 3))
    return image, mask.astype(np.uint8), spacing


settings_strategy = st.fixed_dictionaries(
    {
        "distances": st.sampled_from([[1], [2], [1, 2]]),
        "symmetricalGLCM": st.booleans(),
        "weightingNorm": st.sampled_from(
            [None, None, "manhattan", "euclidean", "infinity", "no_weighting"]
        ),
        "force2D": st.booleans(),
        "force2Ddimension": st.integers(0, 2),
    }
)


@given(cases(), settings_strategy)
@settings(max_examples=60, deadline=None)
def test_matches_pyradiomics_on_random_images(
    case: tuple[np.ndarray, np.ndarray, tuple[float, float, float]], kw: dict[str, Any]
) -> None:
    image, mask, spacing = case
    levels = cropped_levels(image, mask)
    got = pyradiomics_glcm(levels, spacing=spacing, **kw)
    fixed = kw["force2Ddimension"] if kw["force2D"] else None
    fits = [
        d
        for d in glcm_directions(kw["distances"], fixed_axis=fixed)
        if all(abs(c) < n for c, n in zip(d, levels.shape, strict=True))
    ]
    if not fits:  # no offset fits in the bounding box: PyRadiomics raises, radgen gives NaN
        with pytest.raises(RuntimeError, match="angle count"):
            oracle(image, mask, spacing, **kw)
        assert all(math.isnan(v) for v in got.values())
        return
    assert_close(got, oracle(image, mask, spacing, **kw))


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"weightingNorm": "no_weighting"},
        {"weightingNorm": "euclidean"},
        {"force2D": True},
        {"symmetricalGLCM": False, "distances": [1, 2]},
    ],
)
def test_matches_pyradiomics_on_a_ct_like_ball(kw: dict[str, Any]) -> None:
    rng = np.random.default_rng(42)
    z, y, x = np.indices((16, 20, 20))
    ball = (z - 8) ** 2 + (y - 10) ** 2 + (x - 9) ** 2 <= 49
    image = 40 + 0.8 * x - 0.5 * z + rng.normal(0, 60, ball.shape)  # HU-like, with a gradient
    spacing = (2.5, 0.7, 0.7)
    got = pyradiomics_glcm(cropped_levels(image, ball), spacing=spacing, **kw)
    assert_close(got, oracle(image, ball, spacing, **kw))


@pytest.mark.parametrize(
    "kw",
    [{}, {"weightingNorm": "infinity", "distances": [1, 2]}, {"force2D": True}],
)
def test_chunked_counts_match_pyradiomics(kw: dict[str, Any]) -> None:
    """z-slabs with a halo, counts and histograms summed, then the features step."""
    rng = np.random.default_rng(11)
    z, y, x = np.indices((14, 12, 12))
    ball = (z - 7) ** 2 + (y - 6) ** 2 + (x - 6) ** 2 <= 30
    image = rng.normal(20, 70, ball.shape)
    spacing = (2.0, 0.8, 0.8)
    levels = cropped_levels(image, ball)
    ng = int(levels.max())
    distances = kw.get("distances", [1])
    halo = max(distances)
    two_d = kw.get("force2D", False)
    cuts = [0, 3, 7, 9, levels.shape[0]]  # slabs at least `halo` slices thick
    offsets = glcm_directions(distances, fixed_axis=0 if two_d else None)
    counts = np.zeros((len(offsets), ng, ng), dtype=np.int64)
    histogram = np.zeros(ng + 1, dtype=np.int64)
    for lo, hi in itertools.pairwise(cuts):

        def chunk(a: int, b: int) -> np.ndarray:
            m = glcm_matrices(levels[a:b], ng, distances=distances, two_d=two_d, symmetric=False)
            return m.sum(axis=0) if two_d else m

        counts = counts + chunk(lo, min(hi + halo, cuts[-1]))
        if hi < cuts[-1]:
            counts = counts - chunk(hi, hi + halo)
        histogram += np.bincount(levels[lo:hi].ravel(), minlength=ng + 1)
    got = pyradiomics_glcm_features(
        counts,
        np.flatnonzero(histogram[1:]) + 1,
        offsets=offsets,
        symmetricalGLCM=True,
        weightingNorm=kw.get("weightingNorm"),
        spacing=spacing,
    )
    assert_close(got, oracle(image, ball, spacing, **kw))


def test_absent_grey_levels_are_removed_as_pyradiomics_does() -> None:
    # Two separated blobs of levels far apart: many absent levels between them.
    image = np.zeros((3, 6, 6))
    image[:, :3] = -500.0
    image[:, 3:] = 800.0
    image[1, 1, 1] = -420.0
    image[1, 4, 4] = 950.0
    mask = np.ones(image.shape, dtype=np.uint8)
    levels = cropped_levels(image, mask)
    assert np.unique(levels).size < levels.max()  # some levels are absent
    spacing = (1.0, 1.0, 1.0)
    assert_close(pyradiomics_glcm(levels, spacing=spacing), oracle(image, mask, spacing))


# --------------------------------------------------------------------------- IBSI path


@given(st.integers(2, 6), st.tuples(*[st.integers(2, 5)] * 3), st.data())
@settings(max_examples=30, deadline=None)
def test_ibsi_3d_matches_pyradiomics_when_all_levels_are_present(
    ng: int, shape: tuple[int, int, int], data: st.DataObject
) -> None:
    """On a full box holding every level 1..ng, every direction has pairs and Ng agrees."""
    levels = data.draw(hnp.arrays(np.int64, shape, elements=st.integers(1, ng)))
    levels.flat[:ng] = np.arange(1, ng + 1)  # at least 8 voxels, at most 6 levels
    image = levels.astype(np.float64)  # binWidth 1 from a minimum of 1 keeps the levels
    mask = np.ones(shape, dtype=np.uint8)
    spacing = (1.0, 1.0, 1.0)
    ibsi = ibsi_glcm(levels, ng)
    for aggregation, kw in (
        ("3D, averaged", {}),
        ("3D, merged", {"weightingNorm": "no_weighting"}),
    ):
        pyr = glcm.RadiomicsGLCM(_sitk(image, spacing), _sitk(mask, spacing), binWidth=1, **kw)
        pyr.enableAllFeatures()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expected = {k: float(v) for k, v in pyr.execute().items()}
        for tag, name in IBSI_TO_PYRADIOMICS.items():
            value = ibsi[f"{tag} [{aggregation}]"]
            if math.isnan(value):  # IBSI leaves 0/0 undefined where PyRadiomics sets 1 or 0
                assert tag in {"cm.corr", "cm.info.corr.1"}
                continue
            assert value == pytest.approx(expected[name], rel=1e-6, abs=1e-9), (tag, aggregation)
