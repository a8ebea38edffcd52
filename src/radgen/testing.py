"""Hypothesis strategies and assertions for radgen's tests and for users' own.

Examples
--------
>>> from hypothesis import given
>>> from radgen.testing import image_and_mask
>>> @given(image_and_mask())
... def test_mean_is_finite(case):  # doctest: +SKIP
...     image, mask, spacing = case
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

__all__ = ["assert_features_close", "image_and_mask", "spacings"]


def spacings() -> st.SearchStrategy[tuple[float, float, float]]:
    """Voxel sizes (z, y, x) in mm between 0.3 and 5."""
    size = st.floats(0.3, 5.0, allow_nan=False, allow_infinity=False)
    return st.tuples(size, size, size)


@st.composite
def image_and_mask(
    draw: st.DrawFn,
    *,
    max_side: int = 12,
    low: float = -1024.0,
    high: float = 3071.0,
    integer: bool = True,
) -> tuple[npt.NDArray[Any], npt.NDArray[np.uint8], tuple[float, float, float]]:
    """A CT-like (z, y, x) image, a mask with at least one ROI voxel, and a spacing."""
    shape = draw(st.tuples(*(st.integers(1, max_side) for _ in range(3))))
    image: npt.NDArray[Any]
    if integer:
        image = draw(hnp.arrays(np.int16, shape, elements=st.integers(int(low), int(high))))
    else:
        floats = st.floats(low, high, allow_nan=False, allow_infinity=False, width=32)
        image = draw(hnp.arrays(np.float32, shape, elements=floats))
    mask = draw(hnp.arrays(np.uint8, shape, elements=st.integers(0, 1)))
    seed = draw(st.tuples(*(st.integers(0, s - 1) for s in shape)))
    mask[seed] = 1
    return image, mask, draw(spacings())


def assert_features_close(
    actual: Mapping[str, float],
    expected: Mapping[str, float],
    *,
    rtol: float = 1e-6,
    atol: float = 1e-9,
) -> None:
    """Assert two feature dicts have the same keys and values within tolerance (NaN == NaN).

    Raises
    ------
    AssertionError
        Naming every differing feature.
    """
    missing = sorted(set(expected) - set(actual))
    extra = sorted(set(actual) - set(expected))
    problems = [f"missing {k}" for k in missing] + [f"unexpected {k}" for k in extra]
    for key in sorted(set(actual) & set(expected)):
        a, e = float(actual[key]), float(expected[key])
        if math.isnan(a) and math.isnan(e):
            continue
        if not math.isclose(a, e, rel_tol=rtol, abs_tol=atol):
            problems.append(f"{key}: {a!r} != {e!r}")
    if problems:
        raise AssertionError("features differ: " + "; ".join(problems))
