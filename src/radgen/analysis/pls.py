"""Partial least squares: PLS-SVD (symmetric) and PLS regression (PLS2, NIPALS deflation).

Both standardize X (n x p) and Y (n x q) (mean 0, sample SD 1, as scikit-learn's
``scale=True``).

**PLS-SVD** decomposes the cross-product once, ``X'Y = U S V'``: x weights ``u_k``, y weights
``v_k``, scores ``t_k = X u_k`` and ``s_k = Y v_k``; ``cov(t_k, s_k) = S_kk / (n - 1)`` is the
largest covariance achievable by unit-norm weights orthogonal to the previous ones.

**PLS regression** extracts one component at a time from deflated blocks: ``w_k`` is the
first left singular vector of ``X_k' Y_k`` (what NIPALS converges to), ``t_k = X_k w_k``,
x loadings ``p_k = X_k' t_k / t_k't_k``, y loadings ``c_k = Y_k' t_k / t_k't_k``, then
``X_{k+1} = X_k - t_k p_k'`` and ``Y_{k+1} = Y_k - t_k c_k'``. With ``W``, ``P``, ``C`` the
stacked vectors, rotations ``R = W (P'W)^(-1)`` give ``T = X R`` on new data and the
coefficients ``B = R C'`` predict ``Y_hat = X B`` (rescaled to Y's units).
"""

from __future__ import annotations

from typing import Any, Literal, Self, overload

import numpy as np

from radgen.analysis.cca import _structure
from radgen.analysis.crossval import (
    FloatArray,
    TwoBlockEstimator,
    as_matrix,
    column_correlations,
    heldout_correlations,
    kfold_indices,
    permutation_pvalues,
)
from radgen.errors import InputError

__all__ = ["PLSSVD", "PLSRegression"]


def _flip(u: FloatArray, v: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Make the largest |x weight| of each component positive (sign is otherwise arbitrary)."""
    sign = np.sign(u[np.abs(u).argmax(axis=0), np.arange(u.shape[1])])
    sign[sign == 0] = 1.0
    return u * sign, v * sign


class PLSSVD(TwoBlockEstimator):
    """PLS-SVD: SVD of the standardized cross-product ``X'Y`` (see module docstring).

    Parameters
    ----------
    n_components : int, default 2
    on_degenerate : {"raise", "ignore"}, default "raise"
        A constant column, or a component without covariance left, is an error; or
        (``"ignore"``, for refits inside CV folds) the column is kept with scale 1 so it
        contributes nothing and only the components that carry covariance are returned.

    Attributes
    ----------
    x_weights_, y_weights_ : ndarray, shapes (p, k), (q, k)
        Left and right singular vectors (unit norm); the largest |x weight| is positive.
    singular_values_ : ndarray, shape (k,)
        Singular values of ``X'Y``; ``cov(t_k, s_k) = S_kk / (n - 1)``.
    covariances_ : ndarray, shape (k,)
        ``S_kk / (n - 1)``.
    correlations_ : ndarray, shape (k,)
        In-sample ``corr(t_k, s_k)``.
    x_structure_, y_structure_ : ndarray
        Correlation of each variable with its block's score.
    x_scores_, y_scores_ : ndarray, shape (n, k)
    heldout_correlations_, heldout_fold_correlations_, p_values_, null_distribution_
        Set by :meth:`assess`.
    """

    def __init__(
        self, n_components: int = 2, *, on_degenerate: Literal["raise", "ignore"] = "raise"
    ) -> None:
        self.n_components = n_components
        self.on_degenerate = on_degenerate

    def fit(self, X: Any, Y: Any) -> Self:
        """Standardize and decompose ``X'Y``.

        Raises
        ------
        InputError
            Mismatched rows, NaN/inf, constant columns, or too many components.
        """
        xs, ys = self._prepare(X, Y, symmetric=True)
        u, s, vt = np.linalg.svd(xs.T @ ys, full_matrices=False)
        k = self.n_components
        if self.on_degenerate == "raise" and s[k - 1] <= 1e-12 * max(s[0], 1e-300):
            raise InputError(
                "X, Y",
                f"X'Y has rank below {k}: only {int((s > 1e-12 * s[0]).sum())} component(s) carry "
                "covariance (collinear or unrelated blocks)",
            )
        a, b = _flip(u[:, :k], vt[:k].T)
        self.x_weights_, self.y_weights_ = a, b
        self.singular_values_ = s[:k]
        self.covariances_ = s[:k] / (xs.shape[0] - 1)
        self.x_scores_, self.y_scores_ = xs @ a, ys @ b
        self.correlations_ = column_correlations(self.x_scores_, self.y_scores_)
        self.x_structure_ = _structure(xs, self.x_scores_)
        self.y_structure_ = _structure(ys, self.y_scores_)
        return self

    def assess(
        self,
        X: Any,
        Y: Any,
        *,
        n_splits: int = 5,
        n_permutations: int = 200,
        seed: int = 0,
    ) -> Self:
        """Fit, then add held-out score correlations and permutation p-values.

        Held-out: pooled out-of-fold ``corr(t_k, s_k)`` (K-fold, refitted per fold, fold
        components matched to the full fit). Permutation: rows of Y permuted, statistic the
        singular values ``S_kk`` (the classic PLS test of the covariance each component carries).
        """
        self.fit(X, Y)
        x, y = as_matrix(X, "X"), as_matrix(Y, "Y")
        k = self.n_components
        held = heldout_correlations(
            lambda: PLSSVD(k, on_degenerate="ignore"), x, y, n_components=k, n_splits=min(n_splits, x.shape[0]),
            seed=seed, reference=(self.x_scores_, self.y_scores_),
        )  # fmt: skip
        self.heldout_correlations_ = held.correlations
        self.heldout_fold_correlations_ = held.fold_correlations
        xs = (x - self.x_mean_) / self.x_scale_
        ys = (y - self.y_mean_) / self.y_scale_

        def statistic(rng: np.random.Generator) -> FloatArray:
            s = np.linalg.svd(xs.T @ ys[rng.permutation(ys.shape[0])], compute_uv=False)
            return np.asarray(s[:k], dtype=np.float64)

        test = permutation_pvalues(
            statistic, self.singular_values_, n_permutations=n_permutations, seed=seed
        )
        self.p_values_ = test.p_values
        self.null_distribution_ = test.null
        return self


class PLSRegression(TwoBlockEstimator):
    """PLS regression (PLS2) with NIPALS deflation, exact per-component SVD (module docstring).

    Parameters
    ----------
    n_components : int, default 2
    on_degenerate : {"raise", "ignore"}, default "raise"
        A constant column, or a component without covariance left, is an error; or
        (``"ignore"``, for refits inside CV folds) the column is kept with scale 1 so it
        contributes nothing and only the components that carry covariance are returned.

    Attributes
    ----------
    x_weights_ : ndarray, shape (p, k)
        ``W``, unit norm; the largest |weight| of each component is positive.
    y_weights_ : ndarray, shape (q, k)
        ``Y_k' t_k / t_k't_k`` as scikit-learn's ``PLSRegression`` (not normalized; equal to
        the y loadings in regression mode).
    x_loadings_, y_loadings_ : ndarray
        ``P`` and ``C`` (regression loadings used in the deflation).
    x_rotations_, y_rotations_ : ndarray
        ``R = W (P'W)^(-1)`` and ``C (C'C)^(-1)``.
    coef_ : ndarray, shape (p, q)
        Coefficients in original units: ``Y_hat = (X - x_mean) coef + y_mean``.
    x_scores_, y_scores_ : ndarray, shape (n, k)
    correlations_ : ndarray, shape (k,)
        In-sample ``corr(t_k, u_k)`` of the x and y scores.
    x_structure_, y_structure_ : ndarray
        Correlation of each variable with its block's score.
    heldout_correlations_, heldout_fold_correlations_, heldout_r2_, p_values_
        Set by :meth:`assess`.
    """

    def __init__(
        self, n_components: int = 2, *, on_degenerate: Literal["raise", "ignore"] = "raise"
    ) -> None:
        self.n_components = n_components
        self.on_degenerate = on_degenerate

    def fit(self, X: Any, Y: Any) -> Self:
        """Standardize and extract the components by deflation.

        Raises
        ------
        InputError
            Mismatched rows, NaN/inf, constant columns, too many components, or a component
            with no covariance left (collinear X or Y exhausted).
        """
        xs, ys = self._prepare(X, Y, symmetric=False)
        n, p = xs.shape
        q = ys.shape[1]
        k = self.n_components
        w = np.zeros((p, k))
        pl = np.zeros((p, k))
        c = np.zeros((q, k))
        t = np.zeros((n, k))
        xk, yk = xs.copy(), ys.copy()
        scale0 = float(np.linalg.norm(xs.T @ ys, 2))
        for j in range(k):
            u, s, _ = np.linalg.svd(xk.T @ yk, full_matrices=False)
            if s[0] <= 1e-10 * max(scale0, 1e-300):
                if self.on_degenerate == "ignore" and j > 0:
                    w, pl, c, t = w[:, :j], pl[:, :j], c[:, :j], t[:, :j]
                    break
                raise InputError(
                    "X, Y",
                    f"no covariance left for component {j + 1} (collinear X or Y fully explained); "
                    f"use at most {j} component(s)",
                )
            wj = u[:, 0] * (1.0 if u[np.abs(u[:, 0]).argmax(), 0] >= 0 else -1.0)
            tj = xk @ wj
            tt = tj @ tj
            pj = xk.T @ tj / tt
            cj = yk.T @ tj / tt  # y weight = y loading in regression mode
            xk = xk - np.outer(tj, pj)
            yk = yk - np.outer(tj, cj)
            w[:, j], pl[:, j], c[:, j], t[:, j] = wj, pj, cj, tj
        self.x_weights_ = w
        self.y_weights_ = c.copy()
        self.x_loadings_ = pl
        self.y_loadings_ = c
        self.x_rotations_ = w @ np.linalg.pinv(pl.T @ w)
        self.y_rotations_ = c @ np.linalg.pinv(c.T @ c)
        self._coef_std = self.x_rotations_ @ c.T
        self.coef_ = self._coef_std / self.x_scale_[:, None] * self.y_scale_[None, :]
        self.x_scores_ = t
        self.y_scores_ = ys @ self.y_rotations_
        self.correlations_ = column_correlations(self.x_scores_, self.y_scores_)
        self.x_structure_ = _structure(xs, self.x_scores_)
        self.y_structure_ = _structure(ys, self.y_scores_)
        return self

    @overload
    def transform(self, X: Any, Y: None = None) -> FloatArray: ...

    @overload
    def transform(self, X: Any, Y: Any) -> tuple[FloatArray, FloatArray]: ...

    def transform(self, X: Any, Y: Any = None) -> FloatArray | tuple[FloatArray, FloatArray]:
        """Scores of new samples: ``T = X_std R`` (and ``U = Y_std R_y``)."""
        t = self._std_x(X) @ self.x_rotations_
        return t if Y is None else (t, self._std_y(Y) @ self.y_rotations_)

    def predict(self, X: Any) -> FloatArray:
        """Predicted Y in original units: ``(X - x_mean) coef + y_mean``."""
        self._check_fitted()
        x = as_matrix(X, "X")
        if x.shape[1] != self.n_features_in_:
            raise InputError("X", f"has {x.shape[1]} columns, the model {self.n_features_in_}")
        return np.asarray((x - self.x_mean_) @ self.coef_ + self.y_mean_, dtype=np.float64)

    def assess(
        self,
        X: Any,
        Y: Any,
        *,
        n_splits: int = 5,
        n_permutations: int = 200,
        seed: int = 0,
    ) -> Self:
        """Fit, then add held-out correlations, held-out R^2 and permutation p-values.

        ``heldout_r2_`` is ``Q^2 = 1 - sum (y - y_hat_oof)^2 / sum (y - ybar)^2`` over all
        standardized Y columns, with out-of-fold predictions. Permutation: rows of Y permuted,
        statistic the in-sample ``corr(t_k, u_k)``.
        """
        self.fit(X, Y)
        x, y = as_matrix(X, "X"), as_matrix(Y, "Y")
        k = self.n_components
        n_splits = min(n_splits, x.shape[0])
        held = heldout_correlations(
            lambda: PLSRegression(k, on_degenerate="ignore"), x, y, n_components=k, n_splits=n_splits, seed=seed,
            reference=(self.x_scores_, self.y_scores_),
        )  # fmt: skip
        self.heldout_correlations_ = held.correlations
        self.heldout_fold_correlations_ = held.fold_correlations
        pred = np.zeros_like(y)
        for train, test in kfold_indices(x.shape[0], n_splits, seed):
            pred[test] = (
                PLSRegression(k, on_degenerate="ignore").fit(x[train], y[train]).predict(x[test])
            )
        ys = (y - self.y_mean_) / self.y_scale_
        resid = (y - pred) / self.y_scale_
        self.heldout_r2_ = float(1.0 - (resid**2).sum() / (ys**2).sum())

        def statistic(rng: np.random.Generator) -> FloatArray:
            perm = y[rng.permutation(y.shape[0])]
            return PLSRegression(k).fit(x, perm).correlations_

        perm = permutation_pvalues(
            statistic, self.correlations_, n_permutations=n_permutations, seed=seed
        )
        self.p_values_ = perm.p_values
        self.null_distribution_ = perm.null
        return self
