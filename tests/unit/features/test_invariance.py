"""Within-ROI z-score standardisation makes features invariant to I' = aI + b (a > 0).

The seed's argument: after ``normalizeWithinROI`` the standardised image of ``aI + b`` equals
that of ``I``, so every feature computed from it is unchanged. The property is checked for
every registered feature flagged ``roi_zscore_invariant`` on images drawn from a continuous
distribution (where no intensity lies exactly on a bin edge, so rounding cannot move a voxel
to another bin), under both discretisations; without standardisation the same maps change
the first-order and texture values, so the test can fail.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from radgen.features import extract
from radgen.schemas.features import FEATURES


def _case(seed: int, shape: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    image = rng.normal(40.0, 25.0, shape)
    mask = np.zeros(shape, dtype=np.uint8)
    mask[1:-1, 1:-1, 1:-1] = rng.random((shape[0] - 2, shape[1] - 2, shape[2] - 2)) > 0.2
    mask[shape[0] // 2, shape[1] // 2, shape[2] // 2] = 1
    return image, mask


def _invariant(key: str) -> bool:
    tag = key.partition(" [")[0]
    return FEATURES[tag].roi_zscore_invariant


def _assert_same(a: dict[str, float], b: dict[str, float]) -> None:
    assert sorted(a) == sorted(b)
    bad = [
        f"{k}: {a[k]!r} vs {b[k]!r}"
        for k in a
        if _invariant(k)
        and not (math.isnan(a[k]) and math.isnan(b[k]))
        and not math.isclose(a[k], b[k], rel_tol=1e-6, abs_tol=1e-8)
    ]
    assert bad == []


BINNINGS = [{"binWidth": 0.3}, {"binCount": 16}]


@given(
    seed=st.integers(0, 2**32 - 1),
    shape=st.tuples(st.integers(5, 9), st.integers(5, 9), st.integers(5, 9)),
    a=st.floats(0.01, 100.0),
    b=st.floats(-2000.0, 2000.0),
    binning=st.sampled_from(BINNINGS),
)
@settings(max_examples=25, deadline=None)
def test_every_feature_is_invariant_after_roi_standardisation(
    seed: int, shape: tuple[int, int, int], a: float, b: float, binning: dict[str, Any]
) -> None:
    image, mask = _case(seed, shape)
    cfg = {"setting": {"normalizeWithinROI": True, **binning}}
    spacing = (2.0, 0.8, 0.8)
    original = extract(image, mask, spacing, cfg)
    mapped = extract(a * image + b, mask, spacing, cfg)
    assert len(original) > 400  # every family of the IBSI convention, not a subset
    _assert_same(original, mapped)


def test_without_standardisation_the_same_map_changes_features() -> None:
    image, mask = _case(7, (7, 7, 7))
    cfg = {"setting": {"binWidth": 5}}
    original = extract(image, mask, (2.0, 0.8, 0.8), cfg)
    mapped = extract(3.0 * image + 100.0, mask, (2.0, 0.8, 0.8), cfg)
    changed = [k for k in original if not math.isclose(original[k], mapped[k], rel_tol=1e-6)]
    families = {k.partition(" [")[0].split(".")[0] for k in changed}
    assert {"stat", "ih", "cm", "rlm", "szm", "ngt", "ngl", "dzm", "loc"} <= families
