"""Held-out correlations and permutation p-values shared by CCA, PLS and the factor model.

In-sample canonical (or PLS, or cross-view) correlations are optimistic: with p or q close
to n they approach 1 on pure noise. Every association model in :mod:`radgen.analysis`
therefore also reports

* **held-out correlations**: K-fold cross-validation; the model is refitted on each
  training part (hyper-parameter search included), the held-out part is projected with
  the training weights, and the out-of-fold scores of all folds are pooled,
  ``r_k = corr(u_k^oof, v_k^oof)``. Fold components are matched to the components of the
  full fit (Hungarian assignment on the training scores), so ``r_k`` belongs to component k;
* **permutation p-values**: the rows of one block are permuted (the link between blocks
  is broken, the structure inside each block kept), the model is refitted with fixed
  hyper-parameters, and ``p_k = (1 + #{b: T_k^(b) >= T_k}) / (1 + B)``, comparing the k-th
  largest statistic of each permutation with the k-th observed one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol, overload

import numpy as np
import numpy.typing as npt
from scipy.optimize import linear_sum_assignment

from radgen.errors import ConfigError, InputError

__all__ = [
    "HeldOut",
    "PermutationTest",
    "TwoBlockEstimator",
    "TwoBlockModel",
    "aligned",
    "as_matrix",
    "column_correlations",
    "heldout_correlations",
    "kfold_indices",
    "match_components",
    "permutation_pvalues",
    "standardize",
    "strict_mode",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]


class TwoBlockModel(Protocol):
    """What :func:`heldout_correlations` needs: ``fit(X, Y)`` and ``transform(X, Y)``.

    scikit-learn's ``CCA``, ``PLSCanonical`` and ``PLSSVD`` satisfy it, as do
    :class:`~radgen.analysis.cca.RegularizedCCA` and the PLS estimators of
    :mod:`radgen.analysis.pls`.
    """

    def fit(self, X: Any, Y: Any) -> Any:
        """Fit on paired blocks (rows are samples)."""
        ...

    def transform(self, X: Any, Y: Any) -> Any:
        """Return ``(x_scores, y_scores)``, each (n, k)."""
        ...


@dataclass(frozen=True)
class HeldOut:
    """Cross-validated correlations of two-block scores.

    Attributes
    ----------
    correlations : ndarray, shape (k,)
        Pooled out-of-fold correlation ``corr(u_k^oof, v_k^oof)`` per component.
    fold_correlations : ndarray, shape (n_splits, k)
        The same correlation inside each held-out fold.
    x_scores, y_scores : ndarray, shape (n, k)
        Out-of-fold scores (each row projected by the model fitted without it).
    """

    correlations: FloatArray
    fold_correlations: FloatArray
    x_scores: FloatArray
    y_scores: FloatArray


@dataclass(frozen=True)
class PermutationTest:
    """Result of :func:`permutation_pvalues`.

    Attributes
    ----------
    p_values : ndarray, shape (k,)
        ``(1 + #{b: T_(r)^(b) >= T_(r)}) / (1 + B)`` for the component of rank r.
    null : ndarray, shape (B, k)
        Statistics of every permutation, sorted decreasing within a row.
    """

    p_values: FloatArray
    null: FloatArray


def as_matrix(data: Any, name: str, *, allow_nan: bool = False) -> FloatArray:
    """A 2-D float array from an array or DataFrame, refusing infinities (and NaN unless allowed).

    Parameters
    ----------
    data : array_like or pandas.DataFrame
        Rows are samples.
    name : str
        What to call the block in errors (``"X"``, ``"view imaging"``).
    allow_nan : bool, default False
        Whether NaN (a missing value) is accepted.

    Raises
    ------
    InputError
        Not 2-D, not numeric, empty, or with infinite (or NaN) values.
    """
    try:
        arr = np.asarray(data, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise InputError(name, f"must be numeric: {err}") from err
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise InputError(name, f"must be a 2-D samples x variables array, got {arr.ndim}-D")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise InputError(name, f"is empty (shape {arr.shape[0]} x {arr.shape[1]})")
    if np.isinf(arr).any():
        raise InputError(name, f"has {int(np.isinf(arr).sum())} infinite value(s)")
    if not allow_nan and np.isnan(arr).any():
        raise InputError(
            name, f"has {int(np.isnan(arr).sum())} missing (NaN) value(s); impute or drop them"
        )
    return arr


def standardize(
    data: FloatArray, name: str, *, strict: bool = True
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Centre each column and scale it to unit sample standard deviation (ddof = 1).

    ``z_ij = (x_ij - mean_j) / sd_j`` with ``sd_j = sqrt(sum_i (x_ij - mean_j)^2 / (n - 1))``,
    NaN ignored (missing values stay NaN).

    Parameters
    ----------
    data : ndarray, shape (n, p)
    name : str
        Block name for errors.
    strict : bool, default True
        Raise on a constant column; when False its scale is 1 (used inside CV folds, where a
        rare binary column may be constant in one training part).

    Returns
    -------
    (standardized, mean, scale)

    Raises
    ------
    InputError
        Fewer than 3 rows, or (strict) a constant or all-missing column.
    """
    n = data.shape[0]
    if n < 3:
        raise InputError(name, f"needs at least 3 samples, got {n}")
    observed = np.isfinite(data)
    counts = observed.sum(axis=0)
    if strict and (counts < 2).any():
        bad = np.flatnonzero(counts < 2)
        raise InputError(
            name, f"{bad.size} column(s) have fewer than 2 observed values (first: {bad[0]})"
        )
    filled = np.where(observed, data, 0.0)
    mean = filled.sum(axis=0) / np.maximum(counts, 1)
    centred = np.where(observed, data - mean, 0.0)
    var = (centred**2).sum(axis=0) / np.maximum(counts - 1, 1)
    scale = np.sqrt(var)
    constant = scale <= 1e-12 * np.maximum(1.0, np.abs(mean))
    if constant.any():
        if strict:
            bad = np.flatnonzero(constant)
            raise InputError(
                name,
                f"{bad.size} constant column(s) (first: column {bad[0]}); drop them before fitting",
            )
        scale = np.where(constant, 1.0, scale)
    out = np.where(observed, (data - mean) / scale, np.nan)
    return out, mean, scale


def kfold_indices(n_samples: int, n_splits: int, seed: int) -> list[tuple[IntArray, IntArray]]:
    """Shuffled K-fold split: each sample is held out exactly once.

    Parameters
    ----------
    n_samples : int
    n_splits : int
        K, between 2 and `n_samples`.
    seed : int
        Seed of the shuffle.

    Returns
    -------
    list of (train_index, test_index)

    Raises
    ------
    ConfigError
        ``n_splits < 2`` or ``n_splits > n_samples``.
    """
    if n_splits < 2:
        raise ConfigError("n_splits", f"needs at least 2 folds, got {n_splits}")
    if n_splits > n_samples:
        raise ConfigError("n_splits", f"{n_splits} folds for only {n_samples} samples")
    order = np.random.default_rng(seed).permutation(n_samples)
    folds = np.array_split(order, n_splits)
    return [
        (np.sort(np.concatenate(folds[:i] + folds[i + 1 :])), np.sort(f))
        for i, f in enumerate(folds)
    ]


def column_correlations(u: FloatArray, v: FloatArray) -> FloatArray:
    """Pearson correlation of each column of `u` with the same column of `v`.

    ``r_k = sum_i (u_ik - ubar_k)(v_ik - vbar_k) / sqrt(sum_i (u_ik - ubar_k)^2 sum_i (v_ik - vbar_k)^2)``;
    a column without variance (no linear association can be seen) gives 0, not NaN.
    """
    u = np.asarray(u, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    if u.ndim == 1:
        u, v = u[:, None], v[:, None]
    uc = u - u.mean(axis=0)
    vc = v - v.mean(axis=0)
    den = np.sqrt((uc**2).sum(axis=0) * (vc**2).sum(axis=0))
    num = (uc * vc).sum(axis=0)
    ok = den > 1e-300
    out = np.zeros(u.shape[1])
    out[ok] = np.clip(num[ok] / den[ok], -1.0, 1.0)
    return out


def match_components(reference: FloatArray, scores: FloatArray) -> tuple[IntArray, FloatArray]:
    """Match the columns of `scores` to those of `reference` (Hungarian, on |correlation|).

    Parameters
    ----------
    reference : ndarray, shape (n, k)
        Scores of the full fit on some samples.
    scores : ndarray, shape (n, m)
        Scores of another fit on the same samples.

    Returns
    -------
    (columns, signs)
        For each reference column, the matching column of `scores` (-1 when ``m < k`` left
        it unmatched) and the sign that lines it up.
    """
    k = reference.shape[1]
    corr = np.zeros((k, scores.shape[1]))
    for j in range(scores.shape[1]):
        corr[:, j] = column_correlations(reference, np.repeat(scores[:, [j]], k, axis=1))
    rows, cols = linear_sum_assignment(-np.abs(corr))
    order = np.full(k, -1, dtype=np.intp)
    order[rows] = cols
    signs = np.ones(k)
    signs[rows] = np.where(corr[rows, cols] < 0, -1.0, 1.0)
    return order, signs


def aligned(scores: FloatArray, columns: IntArray, signs: FloatArray) -> FloatArray:
    """``scores[:, columns] * signs`` with zeros for unmatched (-1) columns."""
    out = np.zeros((scores.shape[0], columns.size))
    ok = columns >= 0
    out[:, ok] = scores[:, columns[ok]] * signs[ok]
    return out


def _scores_pair(
    model: TwoBlockModel, x: FloatArray, y: FloatArray
) -> tuple[FloatArray, FloatArray]:
    result = model.transform(x, y)
    u, v = (np.asarray(r, dtype=np.float64) for r in result)
    return (u[:, None] if u.ndim == 1 else u), (v[:, None] if v.ndim == 1 else v)


def heldout_correlations(
    make_model: Callable[[], TwoBlockModel],
    x: FloatArray,
    y: FloatArray,
    *,
    n_components: int,
    n_splits: int = 5,
    seed: int = 0,
    reference: tuple[FloatArray, FloatArray] | None = None,
) -> HeldOut:
    """K-fold held-out correlations of a two-block model (see the module docstring).

    Parameters
    ----------
    make_model : callable
        Returns a fresh, unfitted model (its own hyper-parameter search runs inside the fold).
    x, y : ndarray, shapes (n, p) and (n, q)
        The blocks, rows paired.
    n_components : int
        Components to report. A fold whose model yields fewer (a rank-deficient training
        part) contributes zero scores for the missing ones, which pulls their held-out
        correlation towards 0 (conservative), rather than failing.
    n_splits : int, default 5
    seed : int, default 0
        Seed of the fold assignment.
    reference : (x_scores, y_scores), optional
        Scores of the full fit; fold components are matched to them on the training rows.
        Without it, fold component k is taken as component k.

    Returns
    -------
    HeldOut
    """
    n = x.shape[0]
    splits = kfold_indices(n, n_splits, seed)
    u_oof = np.zeros((n, n_components))
    v_oof = np.zeros((n, n_components))
    fold_r = np.zeros((len(splits), n_components))
    for i, (train, test) in enumerate(splits):
        model = make_model()
        model.fit(x[train], y[train])
        u_test, v_test = _scores_pair(model, x[test], y[test])
        if reference is None:
            have = min(u_test.shape[1], n_components)
            cols = np.concatenate([np.arange(have), np.full(n_components - have, -1)])
            signs = np.ones(n_components)
        else:
            u_train, v_train = _scores_pair(model, x[train], y[train])
            cols, signs = match_components(
                reference[0][train] + reference[1][train], u_train + v_train
            )
        u_oof[test] = aligned(u_test, cols, signs)  # unmatched: zero scores (conservative)
        v_oof[test] = aligned(v_test, cols, signs)
        fold_r[i] = column_correlations(u_oof[test], v_oof[test]) if test.size > 2 else 0.0
    return HeldOut(
        correlations=column_correlations(u_oof, v_oof),
        fold_correlations=fold_r,
        x_scores=u_oof,
        y_scores=v_oof,
    )


def permutation_pvalues(
    statistic: Callable[[np.random.Generator], FloatArray],
    observed: FloatArray,
    *,
    n_permutations: int,
    seed: int = 0,
) -> PermutationTest:
    """Permutation p-values of ordered statistics (see the module docstring).

    Parameters
    ----------
    statistic : callable
        ``statistic(rng)`` permutes the data with `rng`, refits, and returns the statistic per
        component (at least ``len(observed)`` values; it is sorted decreasing here).
    observed : ndarray, shape (k,)
        Statistic of the unpermuted data, per component.
    n_permutations : int
        B, at least 1.
    seed : int, default 0

    Returns
    -------
    PermutationTest
        The component whose statistic has rank r among `observed` is compared with the r-th
        largest statistic of every permutation.
    """
    if n_permutations < 1:
        raise ConfigError("n_permutations", f"must be at least 1, got {n_permutations}")
    observed = np.asarray(observed, dtype=np.float64)
    k = observed.size
    rng = np.random.default_rng(seed)
    null = np.zeros((n_permutations, k))
    for b in range(n_permutations):
        stat = np.sort(np.asarray(statistic(rng), dtype=np.float64))[::-1]
        padded = np.full(k, -np.inf)
        padded[: min(k, stat.size)] = stat[:k]
        null[b] = padded
    rank = np.argsort(-observed, kind="stable")
    p = np.empty(k)
    tol = 1e-12 * np.maximum(1.0, np.abs(observed))
    for r, comp in enumerate(rank):
        exceed = int((null[:, r] >= observed[comp] - tol[comp]).sum())
        p[comp] = (1.0 + exceed) / (1.0 + n_permutations)
    return PermutationTest(p_values=p, null=null)


def strict_mode(on_degenerate: str) -> bool:
    """``on_degenerate`` ("raise" or "ignore") as a flag: raise on degenerate data."""
    if on_degenerate not in ("raise", "ignore"):
        raise ConfigError("on_degenerate", f"must be 'raise' or 'ignore', got {on_degenerate!r}")
    return on_degenerate == "raise"


class TwoBlockEstimator:
    """Validation, standardization and ``transform`` shared by CCA and the PLS models.

    Subclasses set ``x_weights_`` / ``y_weights_`` in ``fit`` (the default ``transform``
    projects the standardized blocks on them).
    """

    n_components: int
    on_degenerate: Literal["raise", "ignore"]

    def _standardize_pair(
        self, X: Any, Y: Any
    ) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
        """Both blocks validated (same rows, finite), as given and standardized.

        Returns ``(x, y, x_std, y_std)`` and stores the scalers.
        """
        x = as_matrix(X, "X")
        y = as_matrix(Y, "Y")
        if x.shape[0] != y.shape[0]:
            raise InputError("X, Y", f"row counts differ ({x.shape[0]} vs {y.shape[0]})")
        if self.n_components < 1:
            raise ConfigError("n_components", f"must be at least 1, got {self.n_components}")
        strict = strict_mode(self.on_degenerate)
        xs, self.x_mean_, self.x_scale_ = standardize(x, "X", strict=strict)
        ys, self.y_mean_, self.y_scale_ = standardize(y, "Y", strict=strict)
        self.n_features_in_ = x.shape[1]
        self.n_targets_in_ = y.shape[1]
        return x, y, xs, ys

    def _prepare(self, X: Any, Y: Any, *, symmetric: bool) -> tuple[FloatArray, FloatArray]:
        """:meth:`_standardize_pair` after checking `n_components` against the data's rank."""
        _, _, xs, ys = self._standardize_pair(X, Y)
        n, p, q = xs.shape[0], xs.shape[1], ys.shape[1]
        limit = min(n - 1, p, *((q,) if symmetric else ()))
        if self.n_components > limit:
            raise InputError(
                "X, Y",
                f"at most {limit} component(s) for {n} samples, {p} x and "
                f"{q} y variables; {self.n_components} requested",
            )
        return xs, ys

    def _check_fitted(self) -> None:
        if not hasattr(self, "x_weights_"):
            raise ConfigError(type(self).__name__, "not fitted yet; call fit(X, Y) first")

    def _std_x(self, X: Any) -> FloatArray:
        self._check_fitted()
        x = as_matrix(X, "X")
        if x.shape[1] != self.n_features_in_:
            raise InputError("X", f"has {x.shape[1]} columns, the model {self.n_features_in_}")
        return (x - self.x_mean_) / self.x_scale_

    def _std_y(self, Y: Any) -> FloatArray:
        y = as_matrix(Y, "Y")
        if y.shape[1] != self.n_targets_in_:
            raise InputError("Y", f"has {y.shape[1]} columns, the model {self.n_targets_in_}")
        return (y - self.y_mean_) / self.y_scale_

    @overload
    def transform(self, X: Any, Y: None = None) -> FloatArray: ...

    @overload
    def transform(self, X: Any, Y: Any) -> tuple[FloatArray, FloatArray]: ...

    def transform(self, X: Any, Y: Any = None) -> FloatArray | tuple[FloatArray, FloatArray]:
        """Scores of new samples: ``((X - mean) / scale) W_x`` (and the same for Y)."""
        t = self._std_x(X) @ self.x_weights_
        return t if Y is None else (t, self._std_y(Y) @ self.y_weights_)

    # populated by fit
    x_mean_: FloatArray
    x_scale_: FloatArray
    y_mean_: FloatArray
    y_scale_: FloatArray
    n_features_in_: int
    n_targets_in_: int
    x_weights_: FloatArray
    y_weights_: FloatArray
    x_scores_: FloatArray
    y_scores_: FloatArray
