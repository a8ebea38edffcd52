"""How strongly batch and covariates shape each feature: the numbers of a harmonization report.

Batch effect per feature: the share of variance explained by batch (eta squared of a one-way
ANOVA) and the Kruskal-Wallis H statistic. Covariate effect: the least-squares coefficient
(and its standard error) of each covariate column in ``feature ~ batch + covariates``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["batch_effect", "covariate_effects", "design_columns"]


def batch_effect(data: pd.DataFrame, batch: pd.Series) -> pd.DataFrame:
    """Per-feature batch effect.

    Parameters
    ----------
    data : pandas.DataFrame
        Samples x features.
    batch : pandas.Series
        Batch per sample, same index.

    Returns
    -------
    pandas.DataFrame
        Index: feature. Columns ``eta2`` (between-batch sum of squares / total sum of squares,
        0..1), ``kruskal_h`` and ``kruskal_p``. NaN values are ignored per feature.

    Examples
    --------
    >>> d = pd.DataFrame({"f": [1.0, 1.0, 3.0, 3.0]})
    >>> float(batch_effect(d, pd.Series(["a", "a", "b", "b"])).loc["f", "eta2"])
    1.0
    """
    rows = {}
    for col in data.columns:
        values = data[col].to_numpy(dtype=float)
        ok = np.isfinite(values)
        v, b = values[ok], batch.to_numpy()[ok]
        groups = [v[b == level] for level in pd.unique(b)]
        total = float(np.sum((v - v.mean()) ** 2))
        between = float(sum(len(g) * (g.mean() - v.mean()) ** 2 for g in groups if len(g)))
        eta2 = between / total if total > 0 else 0.0
        if len(groups) > 1 and total > 0:
            h, p = stats.kruskal(*groups)
        else:
            h, p = 0.0, 1.0
        rows[col] = {"eta2": eta2, "kruskal_h": float(h), "kruskal_p": float(p)}
    return pd.DataFrame.from_dict(rows, orient="index")


def design_columns(covariates: pd.DataFrame) -> pd.DataFrame:
    """Numeric design columns of the covariates (categorical levels one-hot, first dropped)."""
    parts = []
    for col in covariates.columns:
        series = covariates[col]
        if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
            parts.append(series.astype(float).rename(str(col)))
            continue
        levels = sorted(pd.unique(series), key=lambda v: (str(type(v)), v))
        for level in levels[1:]:
            parts.append((series == level).astype(float).rename(f"{col}={level}"))
    return pd.concat(parts, axis=1) if parts else pd.DataFrame(index=covariates.index)


def covariate_effects(
    data: pd.DataFrame, batch: pd.Series, covariates: pd.DataFrame
) -> pd.DataFrame:
    """Least-squares effect of each covariate column on each feature, adjusted for batch.

    Returns
    -------
    pandas.DataFrame
        Rows (feature, term) with ``coef`` and ``se``.
    """
    terms = design_columns(covariates)
    onehot = pd.get_dummies(batch.astype(str), dtype=float)
    x_all = np.column_stack([onehot.to_numpy(), terms.to_numpy()])
    rows = []
    for col in data.columns:
        y = data[col].to_numpy(dtype=float)
        ok = np.isfinite(y)
        x, yy = x_all[ok], y[ok]
        coef, _, rank, _ = np.linalg.lstsq(x, yy, rcond=None)
        dof = len(yy) - rank
        resid = yy - x @ coef
        sigma2 = float(resid @ resid / dof) if dof > 0 else np.nan
        cov = sigma2 * np.linalg.pinv(x.T @ x)
        for t, term in enumerate(terms.columns):
            k = onehot.shape[1] + t
            rows.append(
                {
                    "feature": col,
                    "term": term,
                    "coef": float(coef[k]),
                    "se": float(np.sqrt(max(cov[k, k], 0.0))),
                }
            )
    return pd.DataFrame(rows, columns=["feature", "term", "coef", "se"])
