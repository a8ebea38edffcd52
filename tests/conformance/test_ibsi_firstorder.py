"""IBSI-1 digital phantom: intensity statistics and histogram against the consensus values.

The phantom needs no discretisation: fixed bin size 1 from a minimum of 1, or fixed bin
number 6, leave its grey levels {1, 3, 4, 6} as they are (IBSI reference data set settings).
"""

from __future__ import annotations

from typing import Any

import pytest

from radgen.features import extract
from radgen.schemas.features import FEATURES

pytestmark = pytest.mark.conformance

TAGS = [f.tag for f in FEATURES.values() if f.family in {"stat", "ih"}]
SETTINGS: dict[str, dict[str, Any]] = {
    "fbs": {"setting": {"binWidth": 1, "resegmentRange": [1, 1000]}},
    "fbn": {"setting": {"binCount": 6}},
}


@pytest.fixture(scope="module")
def phantom_features(ibsi_phantom: Any) -> dict[str, dict[str, float]]:
    image, mask, spacing = ibsi_phantom
    return {
        name: extract(image, mask, spacing, {**cfg, "featureClass": {"firstorder": None}})
        for name, cfg in SETTINGS.items()
    }


def test_reference_covers_every_first_order_tag(ibsi_reference: list[Any]) -> None:
    assert sorted(r.key for r in ibsi_reference if r.tag.startswith(("stat.", "ih."))) == sorted(
        TAGS
    )


@pytest.mark.parametrize("binning", ["fbs", "fbn"])
@pytest.mark.parametrize("tag", TAGS)
def test_digital_phantom(
    tag: str,
    binning: str,
    phantom_features: dict[str, dict[str, float]],
    ibsi_reference: list[Any],
) -> None:
    ref = next(r for r in ibsi_reference if r.key == tag)
    assert phantom_features[binning][tag] == pytest.approx(ref.value, abs=ref.tolerance)
