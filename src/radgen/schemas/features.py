"""The feature registry: one row per feature (tag, IBSI id, family, unit, name).

Writers, suites and docs read it; no other code declares a feature name or unit. Units use
``I`` for the image's intensity unit (HU for CT) and ``bin`` for discretised grey levels.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["FEATURES", "Feature", "column_name", "feature_of_column", "features_of_family"]


@dataclass(frozen=True)
class Feature:
    """One radiomic feature as defined by IBSI.

    Parameters
    ----------
    tag : str
        IBSI short name, e.g. ``stat.mean``.
    ibsi_id : str
        Four-character IBSI permanent identifier.
    name : str
        IBSI feature name.
    family : str
        ``stat`` (intensity statistics), ``ih`` (intensity histogram), ...
    unit : str
        Unit of the value.
    discretised : bool
        Whether the value depends on grey-level discretisation (its column carries the
        binning suffix).
    may_be_nan : bool
        Whether NaN is a documented outcome (e.g. a ratio with a zero denominator).
    """

    tag: str
    ibsi_id: str
    name: str
    family: str
    unit: str
    discretised: bool = False
    may_be_nan: bool = False


_STAT = [
    ("stat.mean", "Q4LE", "Mean intensity", "I"),
    ("stat.var", "ECT3", "Intensity variance", "I^2"),
    ("stat.skew", "KE2A", "Intensity skewness", "1"),
    ("stat.kurt", "IPH6", "(Excess) intensity kurtosis", "1"),
    ("stat.median", "Y12H", "Median intensity", "I"),
    ("stat.min", "1GSF", "Minimum intensity", "I"),
    ("stat.p10", "QG58", "10th intensity percentile", "I"),
    ("stat.p90", "8DWT", "90th intensity percentile", "I"),
    ("stat.max", "84IY", "Maximum intensity", "I"),
    ("stat.iqr", "SALO", "Intensity interquartile range", "I"),
    ("stat.range", "2OJQ", "Intensity range", "I"),
    ("stat.mad", "4FUA", "Intensity-based mean absolute deviation", "I"),
    ("stat.rmad", "1128", "Intensity-based robust mean absolute deviation", "I"),
    ("stat.medad", "N72L", "Intensity-based median absolute deviation", "I"),
    ("stat.cov", "7TET", "Intensity-based coefficient of variation", "1"),
    ("stat.qcod", "9S40", "Intensity-based quartile coefficient of dispersion", "1"),
    ("stat.energy", "N8CA", "Intensity-based energy", "I^2"),
    ("stat.rms", "5ZWQ", "Root mean square intensity", "I"),
]

_IH = [
    ("ih.mean", "X6K6", "Mean discretised intensity", "bin"),
    ("ih.var", "CH89", "Discretised intensity variance", "bin^2"),
    ("ih.skew", "88K1", "Discretised intensity skewness", "1"),
    ("ih.kurt", "C3I7", "(Excess) discretised intensity kurtosis", "1"),
    ("ih.median", "WIFQ", "Median discretised intensity", "bin"),
    ("ih.min", "1PR8", "Minimum discretised intensity", "bin"),
    ("ih.p10", "1PR8", "10th discretised intensity percentile", "bin"),
    ("ih.p90", "GPMT", "90th discretised intensity percentile", "bin"),
    ("ih.max", "3NCY", "Maximum discretised intensity", "bin"),
    ("ih.mode", "AMMC", "Intensity histogram mode", "bin"),
    ("ih.iqr", "WR0O", "Discretised intensity interquartile range", "bin"),
    ("ih.range", "5Z3W", "Discretised intensity range", "bin"),
    ("ih.mad", "D2ZX", "Intensity histogram mean absolute deviation", "bin"),
    ("ih.rmad", "WRZB", "Intensity histogram robust mean absolute deviation", "bin"),
    ("ih.medad", "4RNL", "Intensity histogram median absolute deviation", "bin"),
    ("ih.cov", "CWYJ", "Intensity histogram coefficient of variation", "1"),
    ("ih.qcod", "SLWD", "Intensity histogram quartile coefficient of dispersion", "1"),
    ("ih.entropy", "TLU2", "Discretised intensity entropy", "bits"),
    ("ih.uniformity", "BJ5W", "Discretised intensity uniformity", "1"),
    ("ih.max.grad", "12CE", "Maximum histogram gradient", "voxels/bin"),
    ("ih.max.grad.gl", "8E6O", "Maximum histogram gradient intensity", "bin"),
    ("ih.min.grad", "VQB3", "Minimum histogram gradient", "voxels/bin"),
    ("ih.min.grad.gl", "RHQZ", "Minimum histogram gradient intensity", "bin"),
]

#: Every registered feature, keyed by IBSI tag.
_MAY_BE_NAN = {"stat.cov", "stat.qcod", "stat.rmad", "ih.cov", "ih.qcod", "ih.rmad"}

FEATURES: Mapping[str, Feature] = {
    **{
        tag: Feature(tag, fid, name, "stat", unit, may_be_nan=tag in _MAY_BE_NAN)
        for tag, fid, name, unit in _STAT
    },
    **{
        tag: Feature(tag, fid, name, "ih", unit, discretised=True, may_be_nan=tag in _MAY_BE_NAN)
        for tag, fid, name, unit in _IH
    },
}


def features_of_family(family: str) -> list[Feature]:
    """Registered features of `family`, in registry order."""
    return [f for f in FEATURES.values() if f.family == family]


def column_name(tag: str, *, binning: str | None = None) -> str:
    """SQL-safe column name of a feature: ``ih.max.grad`` + ``fbs_w25`` -> ``ih_max_grad_fbs_w25``.

    Parameters
    ----------
    tag : str
        IBSI tag from :data:`FEATURES`.
    binning : str, optional
        Discretisation suffix (``fbs_w25``, ``fbn_n32``) for discretised features.

    Returns
    -------
    str

    Examples
    --------
    >>> column_name("stat.mean")
    'stat_mean'
    >>> column_name("ih.entropy", binning="fbs_w25")
    'ih_entropy_fbs_w25'
    """
    feature = FEATURES[tag]
    base = re.sub(r"[^0-9a-z]+", "_", tag.lower()).strip("_")
    if feature.discretised and binning:
        return f"{base}_{binning}"
    return base


def feature_of_column(column: str) -> Feature | None:
    """The registered feature a table column holds (binning suffix ignored), if any.

    Examples
    --------
    >>> feature_of_column("ih_entropy_fbs_w25").tag
    'ih.entropy'
    """
    base = re.sub(r"_fb[sn]_[a-z0-9]+$", "", column)
    for feature in FEATURES.values():
        if column_name(feature.tag) == base:
            return feature
    return None
