from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings

from radgen.errors import ConfigError, EmptyRoiError, InputError
from radgen.features import extract, load_settings
from radgen.features.extract import feature_columns
from radgen.testing import assert_features_close, image_and_mask


@given(image_and_mask())
@settings(max_examples=40, deadline=None)
def test_mean_equals_numpy_over_the_roi(
    case: tuple[np.ndarray, np.ndarray, tuple[float, float, float]],
) -> None:
    image, mask, spacing = case
    got = extract(image, mask, spacing)
    assert got["stat.mean"] == pytest.approx(float(np.mean(image[mask == 1].astype(float))))
    assert got["stat.max"] == float(image[mask == 1].max())


@given(image_and_mask())
@settings(max_examples=20, deadline=None)
def test_inputs_are_not_modified(
    case: tuple[np.ndarray, np.ndarray, tuple[float, float, float]],
) -> None:
    image, mask, spacing = case
    before = (image.copy(), mask.copy())
    extract(image, mask, spacing)
    np.testing.assert_array_equal(image, before[0])
    np.testing.assert_array_equal(mask, before[1])


def test_label_selects_one_roi() -> None:
    image = np.arange(27, dtype=float).reshape(3, 3, 3)
    mask = np.zeros((3, 3, 3), dtype=np.uint8)
    mask[0] = 1
    mask[2] = 2
    got = extract(image, mask, (1.0, 1.0, 1.0), {"setting": {"label": 2}})
    assert got["stat.mean"] == pytest.approx(float(image[2].mean()))


def test_resegment_range_drops_voxels_outside() -> None:
    image = np.array([[[-2000.0, 10.0, 20.0]]])
    got = extract(
        image, np.ones_like(image), (1, 1, 1), {"setting": {"resegmentRange": [-1000, 3000]}}
    )
    assert got["stat.min"] == 10.0


def test_feature_classes_subset_and_columns() -> None:
    image = np.arange(8.0).reshape(2, 2, 2)
    cfg = load_settings({"featureClass": {"firstorder": ["stat.mean", "ih.entropy"]}})
    got = extract(image, np.ones_like(image), (1, 1, 1), cfg)
    assert sorted(got) == ["ih.entropy", "stat.mean"]
    assert sorted(feature_columns(got, cfg)) == ["ih_entropy_fbs_w25", "stat_mean"]


def test_same_result_from_yaml_file_and_dict(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text(
        "setting:\n  binWidth: 10\nimageType:\n  Original: {}\nfeatureClass:\n  firstorder:\n"
    )
    rng = np.random.default_rng(1)
    image = rng.normal(0, 50, (4, 5, 6))
    mask = (rng.random((4, 5, 6)) > 0.3).astype(np.uint8)
    assert_features_close(
        extract(image, mask, (2.0, 1.0, 1.0), path),
        extract(
            image,
            mask,
            (2.0, 1.0, 1.0),
            {"setting": {"binWidth": 10}, "featureClass": {"firstorder": None}},
        ),
    )


def test_empty_roi_and_shape_mismatch_are_input_errors() -> None:
    image = np.zeros((2, 2, 2))
    with pytest.raises(EmptyRoiError, match="no voxel has label 1"):
        extract(image, np.zeros((2, 2, 2)), (1, 1, 1))
    with pytest.raises(InputError, match="differs from image shape"):
        extract(image, np.ones((2, 2, 3)), (1, 1, 1))
    with pytest.raises(InputError, match="three positive voxel sizes"):
        extract(image, np.ones((2, 2, 2)), (1, 0, 1))


def test_unknown_setting_names_the_key_and_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("setting:\n  binWidht: 25\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: setting\.binWidht") as info:
        load_settings(path)
    assert "Extra inputs" in info.value.reason


def test_setting_of_the_other_convention_is_named(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("setting:\n  weightingNorm: euclidean\n")
    with pytest.raises(ConfigError, match=r"p\.yaml") as info:
        load_settings(path)
    assert "weightingNorm is defined by PyRadiomics only" in info.value.reason


def test_lbp_is_refused_by_name() -> None:
    with pytest.raises(ConfigError, match="lbp2DRadius") as info:
        load_settings({"setting": {"lbp2DRadius": 1}})
    assert "not supported" in info.value.reason


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"imageType": {"Square": {}}}, "imageType 'Square' exists in the pyradiomics convention"),
        ({"imageType": {"LBP3D": {}}}, "imageType 'LBP3D' is not supported"),
        ({"featureClass": {"gldzm": None}, "convention": "pyradiomics"}, "'gldzm' does not exist"),
        ({"featureClass": {"shape2D": None}}, "'shape2D' does not exist"),
        ({"imageType": {"LoG": {"sigma": [0]}}}, "sigma must be positive"),
        ({"setting": {"distances": [0]}}, "positive integers"),
        ({"setting": {"binWidth": 5, "binCount": 16}}, "not both"),
        ({"setting": {"binWidth": -1}}, "greater than 0"),
        ({"setting": {"resegmentRange": [100, -100]}}, "lower, upper"),
        ({"bogus": 1}, "unknown key"),
    ],
)
def test_invalid_settings(raw: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(raw)
    assert message in str(info.value)


def test_settings_yaml_syntax_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("setting: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(path)


def test_outlier_resegmentation_keeps_mean_plus_minus_three_sd() -> None:
    rng = np.random.default_rng(5)
    image = rng.normal(0.0, 10.0, (6, 12, 12))
    image[3, 6, 6] = 500.0  # an outlier
    mask = np.ones(image.shape, dtype=np.uint8)
    cfg = {
        "setting": {"resegmentRange": [-3, 3], "resegmentMode": "sigma"},
        "featureClass": {"firstorder": ["stat.mean", "stat.max"]},
    }
    got = extract(image, mask, (1, 1, 1), cfg)
    mean, sd = image.mean(), image.std()
    kept = image[(image >= mean - 3 * sd) & (image <= mean + 3 * sd)]
    assert got["stat.mean"] == pytest.approx(kept.mean(), rel=1e-12)
    assert got["stat.max"] == kept.max() < 500.0


def test_boolean_mask_is_the_roi_and_a_missing_label_is_explained() -> None:
    image = np.arange(27, dtype=float).reshape(3, 3, 3)
    got = extract(image, image > 20, (1, 1, 1), {"featureClass": {"firstorder": ["stat.mean"]}})
    assert got["stat.mean"] == pytest.approx(image[image > 20].mean())
    with pytest.raises(EmptyRoiError, match=r"the mask holds 255: set setting\.label"):
        extract(image, np.where(image > 20, 255, 0), (1, 1, 1))
