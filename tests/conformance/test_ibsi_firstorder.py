"""IBSI-1 digital phantom: first-order features against the published consensus values.

Source of every expected number: ../shared/data/ibsi/ibsi1_reference_values_digital_phantom.csv
(IBSI reference manual, arXiv:1612.07003). The phantom needs no discretisation: fixed bin
size 1 from a minimum of 1, or fixed bin number 6, leave its grey levels {1, 3, 4, 6} as they
are. Values are printed to 3 significant digits, so the tolerance is half a unit of the last
printed digit.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from radgen.features import extract
from radgen.schemas.features import FEATURES

pytestmark = pytest.mark.conformance


def _reference(shared: Path) -> dict[str, float]:
    path = shared / "ibsi" / "ibsi1_reference_values_digital_phantom.csv"
    with path.open() as fh:
        rows = [r for r in csv.DictReader(fh) if r["tag"].startswith(("stat.", "ih."))]
    return {r["tag"].replace("P10", "p10").replace("P90", "p90"): float(r["value"]) for r in rows}


def _half_unit_of_last_digit(value: float) -> float:
    if value == 0:
        return 5e-4
    exponent = math.floor(math.log10(abs(value))) - 2  # 3 significant digits
    return 0.5 * 10.0**exponent


def _phantom(shared: Path) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float]]:
    img = nib.load(shared / "ibsi" / "ibsi1_digital_phantom_image.nii.gz")
    msk = nib.load(shared / "ibsi" / "ibsi1_digital_phantom_mask.nii.gz")
    # NIfTI arrays are (x, y, z); radgen takes (z, y, x).
    image = np.transpose(np.asarray(img.dataobj), (2, 1, 0))
    mask = np.transpose(np.asarray(msk.dataobj), (2, 1, 0))
    sx, sy, sz = (float(v) for v in img.header.get_zooms()[:3])
    return image, mask, (sz, sy, sx)


TAGS = [f.tag for f in FEATURES.values() if f.family in {"stat", "ih"}]


@pytest.fixture(scope="module")
def phantom_features(shared_data: Path) -> dict[str, dict[str, float]]:
    image, mask, spacing = _phantom(shared_data)
    fbs = extract(image, mask, spacing, {"setting": {"binWidth": 1, "resegmentRange": [1, 1000]}})
    fbn = extract(image, mask, spacing, {"setting": {"binCount": 6}})
    return {"fbs": fbs, "fbn": fbn}


def test_reference_covers_every_first_order_tag(shared_data: Path) -> None:
    assert sorted(_reference(shared_data)) == sorted(TAGS)


@pytest.mark.parametrize("binning", ["fbs", "fbn"])
@pytest.mark.parametrize("tag", TAGS)
def test_digital_phantom(
    tag: str, binning: str, phantom_features: dict[str, dict[str, float]], shared_data: Path
) -> None:
    expected = _reference(shared_data)[tag]
    got = phantom_features[binning][tag]
    assert got == pytest.approx(expected, abs=_half_unit_of_last_digit(expected))
