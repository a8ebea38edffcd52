"""Feature-genotype association: radiomic features compared between mutated and wild type.

A two-sided Mann-Whitney U test per feature (no normality assumption, robust to the
heavy tails of texture features), the rank-biserial correlation as effect size, and
Benjamini-Hochberg false discovery rates over the features tested.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import stats

from radgen.errors import InputError

__all__ = ["benjamini_hochberg", "mutation_feature_association"]


def benjamini_hochberg(p_values: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Benjamini-Hochberg adjusted p-values (false discovery rate), NaN kept as NaN.

    Parameters
    ----------
    p_values : array_like
        Raw p-values.

    Returns
    -------
    ndarray
        ``q_i = min_{j >= i} p_(j) m / j`` in the original order, capped at 1.

    Examples
    --------
    >>> benjamini_hochberg([0.01, 0.04, 0.03]).round(3).tolist()
    [0.03, 0.04, 0.04]
    """
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    m = int(ok.sum())
    if m == 0:
        return out
    order = np.argsort(p[ok])
    ranked = p[ok][order] * m / np.arange(1, m + 1)
    adjusted = np.minimum.accumulate(ranked[::-1])[::-1].clip(max=1.0)
    restored = np.empty(m)
    restored[order] = adjusted
    out[ok] = restored
    return out


def mutation_feature_association(
    data: pd.DataFrame, *, group: str, features: Sequence[str] | None = None
) -> pd.DataFrame:
    """Test each feature for a difference between ``group == True`` and ``group == False``.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per ROI with a boolean column `group` (e.g. ``tp53_mutated``) and feature
        columns.
    group : str
        Boolean column splitting the rows.
    features : sequence of str, optional
        Columns to test; default every float column except `group`.

    Returns
    -------
    pandas.DataFrame
        One row per feature, sorted by p-value: ``feature, n_true, n_false, median_true,
        median_false, rank_biserial`` (positive when the ``True`` group is higher),
        ``p_value``, ``q_value``.

    Raises
    ------
    InputError
        `group` is missing or one of its groups is empty.
    """
    if group not in data:
        raise InputError(group, "no such column")
    flag = data[group].astype("boolean")
    if flag.isna().all() or flag.dropna().nunique() < 2:
        raise InputError(group, "needs rows in both groups (True and False)")
    cols = (
        list(features)
        if features is not None
        else [c for c in data.columns if c != group and pd.api.types.is_float_dtype(data[c])]
    )
    rows = []
    for col in cols:
        if col not in data:
            raise InputError(col, "no such feature column")
        a = data.loc[flag == True, col].dropna().to_numpy(float)  # noqa: E712 - nullable boolean
        b = data.loc[flag == False, col].dropna().to_numpy(float)  # noqa: E712
        if len(a) == 0 or len(b) == 0:
            p, rbc = np.nan, np.nan
        else:
            res = stats.mannwhitneyu(a, b, alternative="two-sided")
            p = float(res.pvalue)
            rbc = float(2.0 * res.statistic / (len(a) * len(b)) - 1.0)
        rows.append(
            {
                "feature": col,
                "n_true": len(a),
                "n_false": len(b),
                "median_true": float(np.median(a)) if len(a) else np.nan,
                "median_false": float(np.median(b)) if len(b) else np.nan,
                "rank_biserial": rbc,
                "p_value": p,
            }
        )
    out = pd.DataFrame(rows)
    out["q_value"] = benjamini_hochberg(out["p_value"])
    return out.sort_values(["p_value", "feature"]).reset_index(drop=True)
