from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from radgen.errors import ConfigError
from radgen.features.discretize import binning_suffix, fixed_bin_number, fixed_bin_size


def test_fixed_bin_size_closed_form() -> None:
    # IBSI Q3RU: floor((x - min) / w) + 1 with min = -1000, w = 25.
    x = np.array([-1000.0, -975.1, -975.0, 0.0, 40.0])
    assert fixed_bin_size(x, 25.0, min_bound=-1000.0).tolist() == [1, 1, 2, 41, 42]


def test_fixed_bin_size_defaults_to_the_roi_minimum() -> None:
    assert fixed_bin_size([10.0, 12.0, 35.0], 5.0).tolist() == [1, 1, 6]


def test_fixed_bin_size_rejects_values_below_the_bound() -> None:
    with pytest.raises(ConfigError, match="below the bin minimum"):
        fixed_bin_size([-5.0, 3.0], 1.0, min_bound=0.0)


def test_fixed_bin_number_maps_max_to_last_bin_and_constant_to_one() -> None:
    assert fixed_bin_number([0.0, 0.5, 1.0], 4).tolist() == [1, 3, 4]
    assert fixed_bin_number([3.0, 3.0], 8).tolist() == [1, 1]


@given(
    hnp.arrays(np.float64, st.integers(1, 100), elements=st.floats(-1e4, 1e4)), st.integers(1, 64)
)
@settings(max_examples=50, deadline=None)
def test_fixed_bin_number_stays_in_range_and_keeps_order(x: np.ndarray, n: int) -> None:
    levels = fixed_bin_number(x, n)
    assert levels.min() >= 1
    assert levels.max() <= n
    order = np.argsort(x, kind="stable")
    assert np.all(np.diff(levels[order]) >= 0)


@pytest.mark.parametrize(
    ("kwargs", "suffix"),
    [({"width": 25}, "fbs_w25"), ({"width": 0.5}, "fbs_w0p5"), ({"n_bins": 32}, "fbn_n32")],
)
def test_binning_suffix(kwargs: dict[str, float], suffix: str) -> None:
    assert binning_suffix(**kwargs) == suffix  # type: ignore[arg-type]


def test_invalid_bins_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="binWidth"):
        fixed_bin_size([1.0], 0.0)
    with pytest.raises(ConfigError, match="binCount"):
        fixed_bin_number([1.0], 0)
