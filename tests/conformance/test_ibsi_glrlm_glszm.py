"""IBSI-1 digital phantom: GLRLM (rlm.*) and GLSZM (szm.*) against the consensus values.

Source of every expected number: ../shared/data/ibsi/ibsi1_reference_values_digital_phantom.csv
(IBSI reference manual, arXiv:1612.07003), read through the ``ibsi_reference`` fixture: 96
GLRLM rows (16 features x 6 aggregations) and 48 GLSZM rows (16 features x 3 aggregations).
The phantom's grey levels inside the ROI are {1, 3, 4, 6}; fixed bin size 1 from a minimum of
1 and fixed bin number 6 both leave them unchanged, so Ng = 6.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import numpy.typing as npt
import pytest

from radgen.features.discretize import fixed_bin_number, fixed_bin_size
from radgen.features.texture_glrlm import GLRLM_TAGS, IBSI_GLRLM_AGGREGATIONS, ibsi_glrlm
from radgen.features.texture_glszm import GLSZM_TAGS, IBSI_GLSZM_AGGREGATIONS, ibsi_glszm

pytestmark = pytest.mark.conformance

Phantom = tuple[npt.NDArray[np.int16], npt.NDArray[np.int16], tuple[float, float, float]]


class Row(Protocol):
    """A row of the ``ibsi_reference`` fixture (conftest.Reference)."""

    key: str
    tag: str
    value: float
    tolerance: float


RLM_KEYS = [f"{tag} [{agg}]" for tag in GLRLM_TAGS for agg in IBSI_GLRLM_AGGREGATIONS]
SZM_KEYS = [f"{tag} [{agg}]" for tag in GLSZM_TAGS for agg in IBSI_GLSZM_AGGREGATIONS]


def _levels(image: np.ndarray, mask: np.ndarray, binning: str) -> tuple[np.ndarray, int]:
    roi = mask > 0
    values = image[roi].astype(np.float64)
    fbs = binning == "fbs"
    discrete = fixed_bin_size(values, 1.0, min_bound=1.0) if fbs else fixed_bin_number(values, 6)
    levels = np.zeros(image.shape, dtype=np.int64)
    levels[roi] = discrete
    z, y, x = np.nonzero(roi)
    return levels[z.min() : z.max() + 1, y.min() : y.max() + 1, x.min() : x.max() + 1], 6


@pytest.fixture(scope="module", params=["fbs", "fbn"])
def phantom(request: pytest.FixtureRequest, ibsi_phantom: Phantom) -> dict[str, float]:
    image, mask, _ = ibsi_phantom
    levels, ng = _levels(image, mask, request.param)
    assert sorted(np.unique(levels[levels > 0]).tolist()) == [1, 3, 4, 6]
    return {**ibsi_glrlm(levels, ng), **ibsi_glszm(levels, ng)}


def test_reference_has_all_96_glrlm_and_48_glszm_rows(ibsi_reference: list[Row]) -> None:
    rlm = sorted(r.key for r in ibsi_reference if r.tag.startswith("rlm."))
    szm = sorted(r.key for r in ibsi_reference if r.tag.startswith("szm."))
    assert (len(rlm), len(szm)) == (96, 48)
    assert rlm == sorted(RLM_KEYS)
    assert szm == sorted(SZM_KEYS)


def test_output_keys_are_the_reference_keys(phantom: dict[str, float]) -> None:
    assert sorted(phantom) == sorted(RLM_KEYS + SZM_KEYS)


@pytest.mark.parametrize("key", RLM_KEYS + SZM_KEYS)
def test_digital_phantom(key: str, phantom: dict[str, float], ibsi_reference: list[Row]) -> None:
    (row,) = [r for r in ibsi_reference if r.key == key]
    assert phantom[key] == pytest.approx(row.value, abs=row.tolerance)


def test_phantom_values_do_not_depend_on_bounding_box_padding(ibsi_phantom: Phantom) -> None:
    # Zero (non-ROI) padding around the bounding box changes no run and no zone.
    image, mask, _ = ibsi_phantom
    levels, ng = _levels(image, mask, "fbs")
    padded = np.pad(levels, 2)
    tight = {**ibsi_glrlm(levels, ng), **ibsi_glszm(levels, ng)}
    loose = {**ibsi_glrlm(padded, ng), **ibsi_glszm(padded, ng)}
    assert loose == pytest.approx(tight, rel=1e-12)
