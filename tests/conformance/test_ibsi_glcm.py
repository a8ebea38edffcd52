"""IBSI-1 digital phantom: GLCM features (cm.*) against the published consensus values.

Source of every expected number: ../shared/data/ibsi/ibsi1_reference_values_digital_phantom.csv
(IBSI reference manual, arXiv:1612.07003), read through the ``ibsi_reference`` fixture. The
phantom's grey levels inside the ROI are {1, 3, 4, 6}; fixed bin size 1 from a minimum of 1 and
fixed bin number 6 both leave them unchanged, so Ng = 6. GLCMs are symmetric, Chebyshev
distance 1, as the IBSI reference settings for the phantom prescribe.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import numpy.typing as npt
import pytest

from radgen.features.discretize import fixed_bin_number, fixed_bin_size
from radgen.features.texture_glcm import GLCM_TAGS, IBSI_GLCM_AGGREGATIONS, ibsi_glcm

pytestmark = pytest.mark.conformance

Phantom = tuple[npt.NDArray[np.int16], npt.NDArray[np.int16], tuple[float, float, float]]


class Row(Protocol):
    """A row of the ``ibsi_reference`` fixture (conftest.Reference)."""

    key: str
    tag: str
    value: float
    tolerance: float


KEYS = [f"{tag} [{agg}]" for tag in GLCM_TAGS for agg in IBSI_GLCM_AGGREGATIONS]


def _levels(image: np.ndarray, mask: np.ndarray, binning: str) -> tuple[np.ndarray, int]:
    roi = mask > 0
    values = image[roi].astype(np.float64)
    if binning == "fbs":
        discrete, ng = fixed_bin_size(values, 1.0, min_bound=1.0), 6
    else:
        discrete, ng = fixed_bin_number(values, 6), 6
    levels = np.zeros(image.shape, dtype=np.int64)
    levels[roi] = discrete
    z, y, x = np.nonzero(roi)
    return levels[z.min() : z.max() + 1, y.min() : y.max() + 1, x.min() : x.max() + 1], ng


@pytest.fixture(scope="module", params=["fbs", "fbn"])
def phantom_glcm(request: pytest.FixtureRequest, ibsi_phantom: Phantom) -> dict[str, float]:
    image, mask, _ = ibsi_phantom
    levels, ng = _levels(image, mask, request.param)
    assert sorted(np.unique(levels[levels > 0]).tolist()) == [1, 3, 4, 6]
    return ibsi_glcm(levels, ng)


def test_reference_has_all_150_glcm_rows(ibsi_reference: list[Row]) -> None:
    keys = sorted(r.key for r in ibsi_reference if r.tag.startswith("cm."))
    assert keys == sorted(KEYS)


def test_output_keys_are_the_reference_keys(phantom_glcm: dict[str, float]) -> None:
    assert sorted(phantom_glcm) == sorted(KEYS)


@pytest.mark.parametrize("key", KEYS)
def test_digital_phantom(
    key: str, phantom_glcm: dict[str, float], ibsi_reference: list[Row]
) -> None:
    (row,) = [r for r in ibsi_reference if r.key == key]
    assert phantom_glcm[key] == pytest.approx(row.value, abs=row.tolerance)
