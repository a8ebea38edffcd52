"""PyRadiomics 3.0.1 parity: ``ngtdm`` and ``gldm`` classes against radgen.

PyRadiomics is the oracle: its classes run on SimpleITK images of the random image and mask,
radgen's functions on the levels of ``radiomics.imageoperations.binImage`` (0 outside the
ROI, cropped to the bounding box). Every default-enabled feature must agree within 1e-6
relative (1e-9 absolute near zero).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

radiomics = pytest.importorskip("radiomics")
sitk = pytest.importorskip("SimpleITK")

from radiomics import featureextractor, gldm, imageoperations, ngtdm  # noqa: E402

from radgen.features.texture_ngldm import pyradiomics_gldm  # noqa: E402
from radgen.features.texture_ngtdm import pyradiomics_ngtdm  # noqa: E402

pytestmark = pytest.mark.conformance
logging.getLogger("radiomics").setLevel(logging.ERROR)

BIN_WIDTH = 25.0


def _image(arr: npt.NDArray[Any], spacing: tuple[float, float, float]) -> Any:
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing(tuple(float(s) for s in spacing[::-1]))
    return img


def _levels(image: npt.NDArray[np.float64], mask: npt.NDArray[np.bool_]) -> npt.NDArray[Any]:
    levels, _ = imageoperations.binImage(image, mask, binWidth=BIN_WIDTH)
    levels = np.where(mask, levels, 0)
    bbox = tuple(slice(int(ix.min()), int(ix.max()) + 1) for ix in np.nonzero(mask))
    return np.asarray(levels[bbox])


def _default_features(cls: Any) -> set[str]:
    return {name for name, deprecated in cls.getFeatureNames().items() if not deprecated}


def _assert_close(ours: dict[str, float], ref: dict[str, Any]) -> None:
    assert set(ours) == set(ref)
    for name, value in ref.items():
        expected = float(value)
        assert np.isclose(ours[name], expected, rtol=1e-6, atol=1e-9), (
            name,
            ours[name],
            expected,
        )


def _fits(shape: tuple[int, ...], distances: list[int], plane_axis: int | None) -> bool:
    """Whether any offset of Chebyshev norm in `distances` fits inside `shape`.

    Such an offset exists iff a step of ``d`` along one in-plane axis fits.
    """
    axes = [ax for ax in range(3) if ax != plane_axis]
    return any(shape[ax] > d for ax in axes for d in distances)


@st.composite
def cases(draw: st.DrawFn) -> dict[str, Any]:
    shape = tuple(draw(st.integers(1, 9)) for _ in range(3))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    kind = draw(st.sampled_from(["float", "int", "negative", "wide"]))
    if kind == "float":
        image = rng.normal(30.0, 40.0, shape)
    elif kind == "int":
        image = rng.integers(0, 120, shape).astype(np.float64)
    elif kind == "negative":
        image = rng.normal(-500.0, 60.0, shape)
    else:
        image = rng.uniform(-1000.0, 1000.0, shape)
    roi = draw(st.sampled_from(["random", "single", "full", "border"]))
    if roi == "single":
        mask = np.zeros(shape, dtype=bool)
        mask[tuple(int(rng.integers(n)) for n in shape)] = True
    elif roi == "full":
        mask = np.ones(shape, dtype=bool)
    elif roi == "border":  # the ROI touches every face of the image
        mask = rng.random(shape) < 0.6
        mask[0], mask[-1] = True, True
        mask[:, 0], mask[:, -1], mask[:, :, 0], mask[:, :, -1] = True, True, True, True
    else:
        mask = rng.random(shape) < draw(st.floats(0.05, 1.0))
        if not mask.any():
            mask[tuple(int(rng.integers(n)) for n in shape)] = True
    spacing = tuple(draw(st.sampled_from([0.5, 0.8, 1.0, 2.5, 5.0])) for _ in range(3))
    distances = draw(st.lists(st.integers(1, 3), min_size=1, max_size=3, unique=True))
    return {
        "image": image,
        "mask": mask,
        "spacing": spacing,
        "distances": distances,
        "force2D": draw(st.booleans()),
        "force2Ddimension": draw(st.integers(0, 2)),
        "gldm_a": draw(st.integers(0, 3)),
    }


def _run(cls: Any, case: dict[str, Any], **extra: Any) -> Any:
    """PyRadiomics' features, or None when it finds no neighbour offset ("angle count")."""
    obj = cls(
        _image(case["image"], case["spacing"]),
        _image(case["mask"].astype(np.uint8), case["spacing"]),
        binWidth=BIN_WIDTH,
        distances=case["distances"],
        force2D=case["force2D"],
        force2Ddimension=case["force2Ddimension"],
        **extra,
    )
    try:
        return dict(obj.execute())
    except RuntimeError as err:
        if "angle" not in str(err):
            raise
        plane = case["force2Ddimension"] if case["force2D"] else None
        assert not _fits(case["image"].shape, case["distances"], plane)
        return None


SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(case=cases())
def test_ngtdm_matches_pyradiomics(case: dict[str, Any]) -> None:
    ref = _run(ngtdm.RadiomicsNGTDM, case)
    assume(ref is not None)
    ours = pyradiomics_ngtdm(
        _levels(case["image"], case["mask"]),
        distances=case["distances"],
        force2D=case["force2D"],
        force2Ddimension=case["force2Ddimension"],
    )
    assert set(ours) == _default_features(ngtdm.RadiomicsNGTDM)
    _assert_close(ours, ref)


@SETTINGS
@given(case=cases())
def test_gldm_matches_pyradiomics(case: dict[str, Any]) -> None:
    ref = _run(gldm.RadiomicsGLDM, case, gldm_a=case["gldm_a"])
    assume(ref is not None)
    ours = pyradiomics_gldm(
        _levels(case["image"], case["mask"]),
        distances=case["distances"],
        gldm_a=case["gldm_a"],
        force2D=case["force2D"],
        force2Ddimension=case["force2Ddimension"],
    )
    assert set(ours) == _default_features(gldm.RadiomicsGLDM)
    _assert_close(ours, ref)


def _ct_ball(
    shape: tuple[int, int, int], radius: int, seed: int
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    """CT-like noisy texture with a ball ROI."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    smooth = ndimage.gaussian_filter(rng.standard_normal(shape), 1.0)
    image = 40.0 + 75.0 * smooth + rng.normal(0.0, 20.0, shape)
    grid = np.indices(shape) - (np.array(shape) // 2)[:, None, None, None]
    mask = (grid**2).sum(axis=0) <= radius**2
    return image, mask


def test_extractor_defaults_and_values() -> None:
    """Through ``RadiomicsFeatureExtractor``: the default-enabled names and their values."""
    image, mask = _ct_ball((16, 20, 20), 6, seed=3)
    spacing = (2.5, 0.8, 0.8)
    extractor = featureextractor.RadiomicsFeatureExtractor(binWidth=BIN_WIDTH)
    extractor.disableAllFeatures()
    extractor.enableFeatureClassByName("ngtdm")
    extractor.enableFeatureClassByName("gldm")
    result = extractor.execute(_image(image, spacing), _image(mask.astype(np.uint8), spacing))
    levels = _levels(image, mask)
    for cls, ours in (("ngtdm", pyradiomics_ngtdm(levels)), ("gldm", pyradiomics_gldm(levels))):
        prefix = f"original_{cls}_"
        ref = {k[len(prefix) :]: v for k, v in result.items() if k.startswith(prefix)}
        assert len(ref) == {"ngtdm": 5, "gldm": 14}[cls]
        _assert_close(ours, ref)


@pytest.mark.parametrize("distances", [[1], [2], [1, 2], [3]])
def test_ball_roi_all_settings(distances: list[int]) -> None:
    """A 10^3-voxel-scale ball ROI with larger shells and 2D neighbourhoods."""
    image, mask = _ct_ball((12, 18, 18), 7, seed=11)
    case = {
        "image": image,
        "mask": mask,
        "spacing": (2.0, 0.7, 0.7),
        "distances": distances,
        "force2D": False,
        "force2Ddimension": 0,
    }
    levels = _levels(image, mask)
    for force2D, dim in ((False, 0), (True, 0), (True, 2)):
        case.update(force2D=force2D, force2Ddimension=dim)
        kw: dict[str, Any] = {"distances": distances, "force2D": force2D, "force2Ddimension": dim}
        ref = _run(ngtdm.RadiomicsNGTDM, case)
        assert ref is not None
        _assert_close(pyradiomics_ngtdm(levels, **kw), ref)
        for a in (0, 1):
            ref = _run(gldm.RadiomicsGLDM, case, gldm_a=a)
            assert ref is not None
            _assert_close(pyradiomics_gldm(levels, gldm_a=a, **kw), ref)
