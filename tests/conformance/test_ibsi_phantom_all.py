"""IBSI-1 digital phantom: every one of the 482 reference values through ``extract``.

Settings (IBSI-1 reference data set, digital phantom): no resampling, no re-segmentation
beyond the ROI, fixed bin size 1 from the ROI minimum 1 (which leaves the grey levels
{1, 3, 4, 6} as they are; the IVH spans the ROI's own range), GLCM symmetric at Chebyshev distance 1, NGTDM and NGLDM at
Chebyshev distance 1 with NGLDM coarseness 0, all texture aggregations, morphological and
intensity masks identical. Tolerances: the table's own for morphology, otherwise half a unit
of the third significant digit the reference is printed with.
"""

from __future__ import annotations

from typing import Any

import pytest

from radgen.features import extract

pytestmark = pytest.mark.conformance

PHANTOM_SETTINGS: dict[str, Any] = {
    "convention": "ibsi",
    "setting": {"binWidth": 1},
    "imageType": {"Original": {}},
}


@pytest.fixture(scope="module")
def phantom_features(ibsi_phantom: Any) -> dict[str, float]:
    image, mask, spacing = ibsi_phantom
    return extract(image, mask, spacing, PHANTOM_SETTINGS)


def test_every_reference_key_is_returned(
    phantom_features: dict[str, float], ibsi_reference: list[Any]
) -> None:
    expected = {r.key for r in ibsi_reference}
    assert len(expected) == 482
    assert sorted(expected - set(phantom_features)) == []
    # the only extra keys are IBSI features without a consensus value (OMBB, MVEE densities)
    assert sorted(set(phantom_features) - expected) == [
        "morph.a.dens.mvee",
        "morph.a.dens.ombb",
        "morph.v.dens.mvee",
        "morph.v.dens.ombb",
    ]


def test_all_482_reference_values(
    phantom_features: dict[str, float], ibsi_reference: list[Any]
) -> None:
    misses = [
        f"{r.key}: {phantom_features[r.key]!r} vs {r.value} +- {r.tolerance}"
        for r in ibsi_reference
        if not abs(phantom_features[r.key] - r.value) <= r.tolerance
    ]
    assert misses == [], f"{len(misses)} of {len(ibsi_reference)} outside tolerance: {misses}"
