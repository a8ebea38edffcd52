"""Features of one ROI in memory: ``radgen.features.extract(image, mask, spacing, settings)``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from radgen.errors import EmptyRoiError, InputError
from radgen.features.discretize import fixed_bin_number, fixed_bin_size
from radgen.features.firstorder import intensity_histogram, intensity_statistics
from radgen.features.settings import Settings, load_settings
from radgen.schemas.features import FEATURES, column_name

__all__ = ["expected_columns", "extract", "feature_columns", "roi_values"]


def roi_values(
    image: npt.ArrayLike,
    mask: npt.ArrayLike,
    *,
    label: int = 1,
    resegment: tuple[float, float] | None = None,
) -> npt.NDArray[np.float64]:
    """Intensities of the voxels where ``mask == label`` (and inside `resegment`, if given).

    Raises
    ------
    InputError
        Image and mask shapes differ.
    EmptyRoiError
        No voxel is selected.
    """
    img = np.asarray(image)
    msk = np.asarray(mask)
    if img.shape != msk.shape:
        raise InputError("mask", f"mask shape {msk.shape} differs from image shape {img.shape}")
    selected = msk == label
    values: npt.NDArray[np.float64] = img[selected].astype(np.float64)
    if resegment is not None:
        values = values[(values >= resegment[0]) & (values <= resegment[1])]
    if values.size == 0:
        raise EmptyRoiError(
            "mask", f"no voxel has label {label}" + (" inside resegmentRange" if resegment else "")
        )
    if not np.all(np.isfinite(values)):
        raise InputError("image", "non-finite intensities inside the ROI")
    return values


def extract(
    image: npt.ArrayLike,
    mask: npt.ArrayLike,
    spacing: Sequence[float],
    settings: Settings | Mapping[str, Any] | str | Path | None = None,
) -> dict[str, float]:
    """Compute radiomic features of one ROI.

    Parameters
    ----------
    image : array_like of shape (z, y, x)
        Intensities, any real dtype.
    mask : array_like of shape (z, y, x)
        ROI where ``mask == label`` (setting ``label``, default 1).
    spacing : sequence of 3 floats
        Voxel size (z, y, x) in mm.
    settings : Settings, mapping, path to YAML, or None
        PyRadiomics-style parameters (see :mod:`radgen.features.settings`).

    Returns
    -------
    dict of str to float
        Keyed by IBSI tag (``stat.mean``, ``ih.entropy``, ...).

    Raises
    ------
    EmptyRoiError
        The ROI has no voxel.
    InputError
        Shapes differ or the spacing is not three positive numbers.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.arange(8.0).reshape(2, 2, 2)
    >>> extract(img, np.ones((2, 2, 2)), (1.0, 1.0, 1.0))["stat.mean"]
    3.5
    """
    cfg = load_settings(settings)
    if len(spacing) != 3 or not all(float(s) > 0 for s in spacing):
        raise InputError(
            "spacing", f"expected three positive voxel sizes (z, y, x) in mm, got {spacing}"
        )
    values = roi_values(image, mask, label=cfg.setting.label, resegment=cfg.setting.resegment_range)
    out: dict[str, float] = {}
    wanted = cfg.feature_classes.get("firstorder", [])
    if "firstorder" in cfg.feature_classes:
        out.update(intensity_statistics(values))
        if cfg.setting.bin_count is not None:
            levels = fixed_bin_number(values, cfg.setting.bin_count)
        else:
            assert cfg.setting.bin_width is not None
            low = cfg.setting.resegment_range[0] if cfg.setting.resegment_range else None
            levels = fixed_bin_size(values, cfg.setting.bin_width, min_bound=low)
        out.update(intensity_histogram(levels))
    if wanted:
        unknown = [w for w in wanted if w not in out]
        if unknown:
            raise InputError(
                "featureClass.firstorder", f"unknown feature(s) {', '.join(unknown)}; use IBSI tags"
            )
        out = {k: v for k, v in out.items() if k in wanted}
    return out


def expected_columns(settings: Settings) -> list[str]:
    """Table columns the settings promise (what the features suite checks for)."""
    from radgen.features.settings import FAMILIES

    columns = []
    for cls, wanted in settings.feature_classes.items():
        families = set(FAMILIES[cls])
        for feature in FEATURES.values():
            if feature.family in families and (not wanted or feature.tag in wanted):
                columns.append(column_name(feature.tag, binning=settings.binning))
    return columns


def feature_columns(features: Mapping[str, float], settings: Settings) -> dict[str, float]:
    """Rename IBSI-tag keys to SQL-safe table columns (``ih.entropy`` -> ``ih_entropy_fbs_w25``)."""
    return {
        column_name(tag, binning=settings.binning): value
        for tag, value in features.items()
        if tag in FEATURES
    }
