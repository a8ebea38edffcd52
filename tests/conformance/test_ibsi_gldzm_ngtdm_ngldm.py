"""IBSI-1 digital phantom: GLDZM, NGTDM and NGLDM against the published consensus values.

Source of every expected number: ../shared/data/ibsi/ibsi1_reference_values_digital_phantom.csv
via the ``ibsi_reference`` fixture (114 rows: dzm.* 48, ngt.* 15, ngl.* 51). The phantom needs
no discretisation: fixed bin number 6 leaves its grey levels {1, 3, 4, 6} as they are. IBSI
settings for the phantom: Chebyshev distance 1, NGLDM alpha = 0.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from radgen.features.discretize import fixed_bin_number
from radgen.features.texture_gldzm import ibsi_gldzm
from radgen.features.texture_ngldm import ibsi_ngldm
from radgen.features.texture_ngtdm import ibsi_ngtdm

pytestmark = pytest.mark.conformance

NG = 6
FAMILIES: dict[str, Callable[[npt.NDArray[Any], int], dict[str, float]]] = {
    "dzm": ibsi_gldzm,
    "ngt": ibsi_ngtdm,
    "ngl": ibsi_ngldm,
}
ROWS_PER_FAMILY = {"dzm": 16 * 3, "ngt": 5 * 3, "ngl": 17 * 3}


@pytest.fixture(scope="module")
def phantom_levels(ibsi_phantom: Any) -> npt.NDArray[np.int64]:
    """Grey levels of the phantom ROI (fixed bin number 6), 0 outside, cropped to the bbox."""
    image, mask, _ = ibsi_phantom
    roi = mask > 0
    levels = np.zeros(image.shape, dtype=np.int64)
    levels[roi] = fixed_bin_number(image[roi], NG)
    bbox = tuple(slice(int(ix.min()), int(ix.max()) + 1) for ix in np.nonzero(roi))
    out = levels[bbox]
    assert sorted(np.unique(out[out > 0]).tolist()) == [1, 3, 4, 6]  # levels unchanged
    return out


@pytest.fixture(scope="module")
def phantom_features(phantom_levels: npt.NDArray[np.int64]) -> dict[str, dict[str, float]]:
    return {family: fn(phantom_levels, NG) for family, fn in FAMILIES.items()}


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_reference_row_matches(
    family: str, phantom_features: dict[str, dict[str, float]], ibsi_reference: list[Any]
) -> None:
    rows = [r for r in ibsi_reference if r.tag.split(".")[0] == family]
    assert len(rows) == ROWS_PER_FAMILY[family]
    got = phantom_features[family]
    failures = [
        f"{r.key}: got {got.get(r.key)!r}, expected {r.value} +/- {r.tolerance}"
        for r in rows
        if r.key not in got or not abs(got[r.key] - r.value) <= r.tolerance
    ]
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_keys_are_exactly_the_reference_keys(
    family: str, phantom_features: dict[str, dict[str, float]], ibsi_reference: list[Any]
) -> None:
    expected = {r.key for r in ibsi_reference if r.tag.split(".")[0] == family}
    assert set(phantom_features[family]) == expected
