"""IBSI-1 digital phantom: morphology, local intensity and intensity-volume histogram.

Source of every expected number: ../shared/data/ibsi/ibsi1_reference_values_digital_phantom.csv
(IBSI reference manual, arXiv:1612.07003), through the ``ibsi_reference`` fixture: each value
must lie within the row's tolerance (the 25 morphology rows carry one; the others get half a
unit of the last printed digit). The morphological and intensity masks are the same (no
re-segmentation); the IVH runs on the grey levels themselves (step 1, range = ROI min..max).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from radgen.features.ivh import ivh
from radgen.features.local_intensity import local_intensity
from radgen.features.morphology import IBSI_MORPHOLOGY_TAGS, ibsi_morphology

pytestmark = pytest.mark.conformance

#: The reference rows of these three families, by IBSI tag (the table's tags).
EXPECTED_TAGS = {
    *(t for t in IBSI_MORPHOLOGY_TAGS if ".ombb" not in t and ".mvee" not in t),
    "loc.peak.local",
    "loc.peak.global",
    "ivh.V10",
    "ivh.V90",
    "ivh.I10",
    "ivh.I90",
    "ivh.V10minusV90",
    "ivh.I10minusI90",
}

Phantom = tuple[npt.NDArray[np.int16], npt.NDArray[np.int16], tuple[float, float, float]]


def _rows(ibsi_reference: list) -> list:
    return [r for r in ibsi_reference if r.tag.split(".")[0] in {"morph", "loc", "ivh"}]


@pytest.fixture(scope="module")
def features(ibsi_phantom: Phantom) -> dict[str, float]:
    image, mask, spacing = ibsi_phantom
    roi = mask > 0
    out = ibsi_morphology(roi, image, spacing)
    out.update(local_intensity(image, roi, spacing))
    out.update(ivh(image[roi]))
    return out


def test_reference_rows_are_the_expected_tags(ibsi_reference: list) -> None:
    rows = _rows(ibsi_reference)
    assert len(rows) == len(EXPECTED_TAGS) == 33
    assert {r.key for r in rows} == EXPECTED_TAGS  # no aggregation for these families


@pytest.mark.parametrize("tag", sorted(EXPECTED_TAGS))
def test_digital_phantom(tag: str, features: dict[str, float], ibsi_reference: list) -> None:
    (row,) = [r for r in _rows(ibsi_reference) if r.key == tag]
    assert features[tag] == pytest.approx(row.value, abs=row.tolerance)


def test_morphology_tolerances_come_from_the_table(ibsi_reference: list) -> None:
    """The 25 morphology rows carry their own tolerance (not the 3-digit default)."""
    morph = [r for r in _rows(ibsi_reference) if r.tag.startswith("morph.")]
    assert len(morph) == 25
    assert {r.key: r.tolerance for r in morph}["morph.vol"] == 4.0


def test_pca_uses_the_sample_covariance(features: dict[str, float]) -> None:
    """IBSI's axis lengths match N - 1; PyRadiomics' N values fall outside the tolerance."""
    n = 74
    assert features["morph.pca.minor"] == pytest.approx(9.31, abs=0.06)
    assert features["morph.pca.minor"] * np.sqrt((n - 1) / n) != pytest.approx(9.31, abs=0.06)
