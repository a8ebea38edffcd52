"""Cancer cell fraction (CCF) of somatic mutations from VAF, tumour purity and copy number.

A mutation carried on ``m`` of the ``CN_t`` tumour copies by a fraction ``CCF`` of the cancer
cells, in a sample of purity ``pi`` whose normal cells have ``CN_n`` copies, is expected at

    ``VAF = CCF pi m / ((1 - pi) CN_n + pi CN_t)``,

so ``CCF = VAF ((1 - pi) CN_n + pi CN_t) / (pi m)``. Purity may come from imaging (e.g. the
tumour mixing weight of :func:`radgen.analysis.bayes.fit_two_class`), from pathology or from
a copy-number caller.

With read counts, the VAF is a binomial proportion: the exact (Clopper-Pearson) interval of
``alt / depth`` maps linearly onto a CCF interval, and a CCF above 1 is called beyond
sampling noise when the one-sided binomial test of ``alt`` against the VAF expected at
``CCF = 1`` rejects.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import stats

from radgen.errors import InputError

__all__ = [
    "OverOneTest",
    "ccf",
    "ccf_over_one",
    "ccf_table",
    "expected_vaf",
    "invalid_reason",
]

_F = npt.NDArray[np.float64]


def _broadcast(**values: npt.ArrayLike) -> dict[str, _F]:
    arrays = {k: np.asarray(v, dtype=float) for k, v in values.items()}
    try:
        shaped = np.broadcast_arrays(*arrays.values())
    except ValueError as err:
        shapes = ", ".join(f"{k} {a.shape}" for k, a in arrays.items())
        raise InputError("ccf", f"input shapes do not broadcast: {shapes}") from err
    return dict(zip(arrays, shaped, strict=True))


def _reasons(a: dict[str, _F]) -> list[tuple[npt.NDArray[np.bool_], str]]:
    """Conditions (first match wins) under which the CCF is undefined, with a reason each."""
    v, pi, cnt, cnn, m = a["vaf"], a["purity"], a["cn_tumor"], a["cn_normal"], a["multiplicity"]
    return [
        (~(np.isfinite(v) & (v >= 0) & (v <= 1)), "vaf outside [0, 1] or missing"),
        (~(np.isfinite(pi) & (pi > 0) & (pi <= 1)), "purity outside (0, 1] or missing"),
        (~(np.isfinite(cnt) & (cnt >= 0)), "cn_tumor negative or missing"),
        (~(np.isfinite(cnn) & (cnn >= 0)), "cn_normal negative or missing"),
        (~(np.isfinite(m) & (m >= 1)), "multiplicity below 1 or missing"),
        ((cnt >= 1) & (m > cnt), "multiplicity above cn_tumor"),
    ]


def invalid_reason(
    vaf: npt.ArrayLike,
    purity: npt.ArrayLike,
    cn_tumor: npt.ArrayLike,
    cn_normal: npt.ArrayLike = 2,
    multiplicity: npt.ArrayLike = 1,
) -> npt.NDArray[np.object_]:
    """Why :func:`ccf` is NaN for each element (``None`` where the inputs are valid).

    Parameters
    ----------
    vaf, purity, cn_tumor, cn_normal, multiplicity : array_like
        As in :func:`ccf`.

    Returns
    -------
    ndarray of object
        The first failed condition per element: ``vaf outside [0, 1] or missing``,
        ``purity outside (0, 1] or missing``, ``cn_tumor negative or missing``,
        ``cn_normal negative or missing``, ``multiplicity below 1 or missing``,
        ``multiplicity above cn_tumor`` (checked when ``cn_tumor >= 1``), or ``None``.
    """
    a = _broadcast(
        vaf=vaf, purity=purity, cn_tumor=cn_tumor, cn_normal=cn_normal, multiplicity=multiplicity
    )
    out = np.full(a["vaf"].shape, None, dtype=object)
    with np.errstate(invalid="ignore"):
        for bad, reason in reversed(_reasons(a)):
            out[bad] = reason
    return out


def _valid(a: dict[str, _F]) -> npt.NDArray[np.bool_]:
    ok = np.ones(a["vaf"].shape, dtype=bool)
    with np.errstate(invalid="ignore"):
        for bad, _ in _reasons(a):
            ok &= ~bad
    return ok


def _scale(a: dict[str, _F], ok: npt.NDArray[np.bool_]) -> _F:
    """``k = ((1 - pi) CN_n + pi CN_t) / (pi m)`` where valid, NaN elsewhere (CCF = k VAF)."""
    pi = np.where(ok, a["purity"], 1.0)
    m = np.where(ok, a["multiplicity"], 1.0)
    cnn = np.where(ok, a["cn_normal"], 0.0)
    cnt = np.where(ok, a["cn_tumor"], 0.0)
    k = ((1.0 - pi) * cnn + pi * cnt) / (pi * m)
    return np.where(ok, k, np.nan)


def ccf(
    vaf: npt.ArrayLike,
    purity: npt.ArrayLike,
    cn_tumor: npt.ArrayLike,
    cn_normal: npt.ArrayLike = 2,
    multiplicity: npt.ArrayLike = 1,
) -> _F:
    """Cancer cell fraction of mutations, element-wise with broadcasting.

    ``CCF = v ((1 - pi) CN_n + pi CN_t) / (pi m)``, the fraction of cancer cells carrying a
    mutation seen at variant allele frequency ``v`` on ``m`` of ``CN_t`` tumour copies, in a
    sample of purity ``pi`` whose normal cells carry ``CN_n`` copies. Values above 1 are
    returned as computed (test them with :func:`ccf_over_one`).

    Parameters
    ----------
    vaf : array_like
        Variant allele frequency ``alt / depth`` in [0, 1].
    purity : array_like
        Tumour purity ``pi`` in (0, 1].
    cn_tumor : array_like
        Total copy number in tumour cells (>= 0; may be fractional).
    cn_normal : array_like, default 2
        Total copy number in normal cells (>= 0; 1 for male chrX).
    multiplicity : array_like, default 1
        Mutated copies per tumour cell, ``1 <= m <= CN_t`` (the upper bound is checked
        when ``CN_t >= 1``).

    Returns
    -------
    ndarray
        CCF with the broadcast shape of the inputs; NaN where an input is impossible
        (:func:`invalid_reason` says why).

    Examples
    --------
    >>> ccf(0.25, 0.5, 2).tolist()  # diploid, half-pure: heterozygous clonal mutation at 25 %
    1.0
    >>> ccf([0.3, 1.2], 0.6, 3, multiplicity=[2, 1]).round(4).tolist()
    [0.65, nan]
    """
    a = _broadcast(
        vaf=vaf, purity=purity, cn_tumor=cn_tumor, cn_normal=cn_normal, multiplicity=multiplicity
    )
    ok = _valid(a)
    return np.asarray(np.where(ok, a["vaf"], np.nan) * _scale(a, ok), dtype=float)


def expected_vaf(
    purity: npt.ArrayLike,
    cn_tumor: npt.ArrayLike,
    cn_normal: npt.ArrayLike = 2,
    multiplicity: npt.ArrayLike = 1,
    ccf: npt.ArrayLike = 1.0,
) -> _F:
    """VAF expected for a mutation at a given CCF (the inverse of :func:`ccf`).

    ``VAF = CCF pi m / ((1 - pi) CN_n + pi CN_t)``, capped at 1.

    Parameters
    ----------
    purity, cn_tumor, cn_normal, multiplicity : array_like
        As in :func:`ccf`.
    ccf : array_like, default 1.0
        Cancer cell fraction (>= 0); 1 for a clonal mutation.

    Returns
    -------
    ndarray
        Expected VAF; NaN where an input is impossible or the CCF is negative.
    """
    a = _broadcast(
        vaf=np.zeros(()),
        purity=purity,
        cn_tumor=cn_tumor,
        cn_normal=cn_normal,
        multiplicity=multiplicity,
        ccf=ccf,
    )
    ok = _valid(a)
    with np.errstate(invalid="ignore"):
        ok &= np.isfinite(a["ccf"]) & (a["ccf"] >= 0)
        k = _scale(a, ok)
        k_safe = np.where(ok & (k > 0), k, 1.0)
        v = np.where(k > 0, a["ccf"] / k_safe, np.where(a["ccf"] > 0, 1.0, 0.0))
    return np.asarray(np.where(ok, np.minimum(v, 1.0), np.nan), dtype=float)


class OverOneTest(NamedTuple):
    """One-sided binomial test of ``CCF > 1``.

    Attributes
    ----------
    p_value : ndarray
        ``P(X >= alt)`` for ``X ~ Binomial(depth, VAF at CCF = 1)``; NaN where undefined.
    flag : ndarray of bool
        ``p_value < alpha``: the CCF exceeds 1 beyond sampling noise (a sign of wrong purity,
        copy number or multiplicity). ``False`` where the p-value is NaN.
    """

    p_value: _F
    flag: npt.NDArray[np.bool_]


def _counts(alt_reads: npt.ArrayLike, depth: npt.ArrayLike) -> tuple[_F, _F, npt.NDArray[np.bool_]]:
    alt = np.asarray(alt_reads, dtype=float)
    dp = np.asarray(depth, dtype=float)
    with np.errstate(invalid="ignore"):
        ok = (
            np.isfinite(alt)
            & np.isfinite(dp)
            & (alt >= 0)
            & (dp >= 1)
            & (alt <= dp)
            & (alt == np.round(alt))
            & (dp == np.round(dp))
        )
    return alt, dp, ok


def ccf_over_one(
    alt_reads: npt.ArrayLike,
    depth: npt.ArrayLike,
    purity: npt.ArrayLike,
    cn_tumor: npt.ArrayLike,
    cn_normal: npt.ArrayLike = 2,
    multiplicity: npt.ArrayLike = 1,
    *,
    alpha: float = 0.05,
) -> OverOneTest:
    """Test whether each mutation's CCF exceeds 1 beyond binomial sampling noise.

    Under ``H0: CCF <= 1`` the alternate read count is at most
    ``Binomial(depth, f1)`` with ``f1 = pi m / ((1 - pi) CN_n + pi CN_t)`` (the VAF expected
    at ``CCF = 1``); the one-sided p-value is ``P(X >= alt) = sf(alt - 1; depth, f1)``.

    Parameters
    ----------
    alt_reads, depth : array_like
        Alternate-allele read count and total read depth (integers, ``0 <= alt <= depth``,
        ``depth >= 1``).
    purity, cn_tumor, cn_normal, multiplicity : array_like
        As in :func:`ccf`.
    alpha : float
        Significance level of the flag.

    Returns
    -------
    OverOneTest
        ``p_value`` (NaN where counts or copy-number inputs are impossible) and ``flag``.

    Raises
    ------
    InputError
        `alpha` is not in (0, 1) or the shapes do not broadcast.
    """
    if not 0.0 < alpha < 1.0:
        raise InputError("alpha", f"must be strictly between 0 and 1, got {alpha!r}")
    alt, dp, counts_ok = _counts(alt_reads, depth)
    f1 = expected_vaf(purity, cn_tumor, cn_normal, multiplicity)
    try:
        alt, dp, counts_ok, f1 = np.broadcast_arrays(alt, dp, counts_ok, f1)
    except ValueError as err:
        raise InputError("ccf_over_one", f"input shapes do not broadcast: {err}") from err
    ok = counts_ok & np.isfinite(f1)
    p = np.full(alt.shape, np.nan)
    p[ok] = stats.binom.sf(alt[ok] - 1.0, dp[ok], f1[ok])
    flag = np.zeros(alt.shape, dtype=bool)
    flag[ok] = p[ok] < alpha
    return OverOneTest(p_value=p, flag=flag)


def _column_or_value(frame: pd.DataFrame, value: float | str, name: str) -> _F:
    if isinstance(value, str):
        if value not in frame.columns:
            raise InputError(value, f"no such column (given as {name})")
        return np.asarray(pd.to_numeric(frame[value], errors="coerce"), dtype=float)
    return np.full(len(frame), float(value))


def ccf_table(
    frame: pd.DataFrame,
    *,
    purity: float | str = "purity",
    cn_tumor: float | str = "cn_tumor",
    cn_normal: float | str = 2.0,
    multiplicity: float | str = 1.0,
    vaf: str = "vaf",
    alt: str = "t_alt_count",
    depth: str = "t_depth",
    alpha: float = 0.05,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Add CCF, its confidence interval and clonality calls to a table of mutations.

    ``ccf = vaf k`` with ``k = ((1 - pi) CN_n + pi CN_t) / (pi m)`` (:func:`ccf`). When read
    counts are present the interval is the exact Clopper-Pearson interval of ``alt / depth``,
    ``[Beta(a/2; alt, depth - alt + 1), Beta(1 - a/2; alt + 1, depth - alt)]`` with
    ``a = 1 - confidence``, times ``k``; a mutation is ``clonal`` when its interval reaches 1
    (``ccf_ci_high >= 1``: the reads are consistent with every cancer cell carrying it), and
    ``over1_flag`` comes from :func:`ccf_over_one` at level `alpha`.

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per mutation (per sample).
    purity, cn_tumor, cn_normal, multiplicity : float or str
        A column name or one value for every row.
    vaf : str
        VAF column; when missing, ``alt / depth`` is used.
    alt, depth : str
        Read-count columns; when either is missing, the interval, ``clonal`` and the over-1
        test are not available (NaN / ``<NA>``).
    alpha : float
        Level of the over-1 test.
    confidence : float
        Coverage of the CCF interval.

    Returns
    -------
    pandas.DataFrame
        A copy of `frame` with ``ccf, ccf_ci_low, ccf_ci_high`` (float), ``clonal`` and
        ``over1_flag`` (nullable boolean), ``over1_p_value`` (float) and ``ccf_invalid``
        (the reason the CCF is NaN, else ``<NA>``).

    Raises
    ------
    InputError
        A named column is missing, neither `vaf` nor both read-count columns exist, or
        `alpha` / `confidence` are not in (0, 1).
    """
    if not 0.0 < confidence < 1.0:
        raise InputError("confidence", f"must be strictly between 0 and 1, got {confidence!r}")
    if not 0.0 < alpha < 1.0:
        raise InputError("alpha", f"must be strictly between 0 and 1, got {alpha!r}")
    has_counts = alt in frame.columns and depth in frame.columns
    if vaf not in frame.columns and not has_counts:
        raise InputError(vaf, f"no such column, and no read counts ({alt!r}, {depth!r}) either")
    pi = _column_or_value(frame, purity, "purity")
    cnt = _column_or_value(frame, cn_tumor, "cn_tumor")
    cnn = _column_or_value(frame, cn_normal, "cn_normal")
    m = _column_or_value(frame, multiplicity, "multiplicity")
    if has_counts:
        a_reads, dp, counts_ok = _counts(
            pd.to_numeric(frame[alt], errors="coerce"), pd.to_numeric(frame[depth], errors="coerce")
        )
    if vaf in frame.columns:
        v = np.asarray(pd.to_numeric(frame[vaf], errors="coerce"), dtype=float)
    else:
        v = np.where(counts_ok, a_reads / np.where(counts_ok, dp, 1.0), np.nan)
    a = _broadcast(vaf=v, purity=pi, cn_tumor=cnt, cn_normal=cnn, multiplicity=m)
    ok = _valid(a)
    k = _scale(a, ok)
    out = frame.copy()
    out["ccf"] = np.where(ok, v, np.nan) * k
    low = np.full(len(frame), np.nan)
    high = np.full(len(frame), np.nan)
    clonal = pd.array([pd.NA] * len(frame), dtype="boolean")
    over1 = pd.array([pd.NA] * len(frame), dtype="boolean")
    p_over = np.full(len(frame), np.nan)
    if has_counts:
        use = ok & counts_ok
        x, n = a_reads[use], dp[use]
        tail = (1.0 - confidence) / 2.0
        lo_v = np.where(x > 0, stats.beta.ppf(tail, np.maximum(x, 1.0), n - x + 1.0), 0.0)
        hi_v = np.where(x < n, stats.beta.ppf(1.0 - tail, x + 1.0, np.maximum(n - x, 1.0)), 1.0)
        low[use] = lo_v * k[use]
        high[use] = hi_v * k[use]
        clonal[use] = high[use] >= 1.0
        test = ccf_over_one(a_reads, dp, pi, cnt, cnn, m, alpha=alpha)
        p_over[use] = test.p_value[use]
        over1[use] = test.flag[use]
    out["ccf_ci_low"] = low
    out["ccf_ci_high"] = high
    out["clonal"] = clonal
    out["over1_flag"] = over1
    out["over1_p_value"] = p_over
    reasons = invalid_reason(v, pi, cnt, cnn, m)
    out["ccf_invalid"] = pd.array([r if r is not None else pd.NA for r in reasons], dtype="string")
    return out
