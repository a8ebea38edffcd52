"""Regularized canonical correlation analysis (ridge on both blocks, penalty by cross-validation).

With standardized blocks X (n x p) and Y (n x q), ``Cxx = X'X / (n - 1)``, ``Cyy``, ``Cxy``,
the k-th canonical pair maximizes ``a' Cxy b`` subject to

    a' (Cxx + lx I) a = 1,   b' (Cyy + ly I) b = 1,

orthogonally to the previous pairs in these metrics. The solution is the SVD
``(Cxx + lx I)^(-1/2) Cxy (Cyy + ly I)^(-1/2) = P S Q'``, ``a_k = (Cxx + lx I)^(-1/2) p_k``.
With the thin SVD ``X = Ux Sx Vx'`` the whitening is exact and cheap when p >> n:
``(Cxx + lx I)^(-1/2) Vx = Vx Dx``, ``Dx = diag((s^2 / (n - 1) + lx)^(-1/2))``, so only the
r x r matrix ``M = Dx Sx Ux' Uy Sy Dy / (n - 1)`` is decomposed. ``lx = ly = 0`` is classical
CCA (refused on a collinear block); large penalties tend to PLS-SVD. Plain CCA overfits when
p or q approach n (in-sample correlations near 1 on noise); the penalties chosen by K-fold
cross-validation on the held-out canonical correlation avoid that.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Self

import numpy as np

from radgen.analysis.crossval import (
    FloatArray,
    TwoBlockEstimator,
    as_matrix,
    column_correlations,
    heldout_correlations,
    kfold_indices,
    permutation_pvalues,
    standardize,
    strict_mode,
)
from radgen.errors import ConfigError, InputError

__all__ = ["DEFAULT_PENALTY_GRID", "RegularizedCCA", "cca_from_covariances"]

#: Ridge penalties tried for each block (the blocks are standardized, so Cxx has unit diagonal).
DEFAULT_PENALTY_GRID: tuple[float, ...] = (1e-3, 1e-2, 0.1, 1.0, 10.0, 100.0)

_RANK_TOL = 1e-10


@dataclass(frozen=True)
class _Svd:
    u: FloatArray
    s: FloatArray
    vt: FloatArray


def _thin_svd(z: FloatArray) -> _Svd:
    u, s, vt = np.linalg.svd(z, full_matrices=False)
    keep = s > _RANK_TOL * max(z.shape) * (s[0] if s.size else 0.0)
    return _Svd(u[:, keep], s[keep], vt[keep])


def _solve(
    sx: _Svd, sy: _Svd, n: int, lx: float, ly: float, k: int
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Weights (p, k), (q, k) in standardized units and the regularized singular values."""
    dx = 1.0 / np.sqrt(sx.s**2 / (n - 1) + lx)
    dy = 1.0 / np.sqrt(sy.s**2 / (n - 1) + ly)
    m = (dx * sx.s)[:, None] * (sx.u.T @ sy.u) * (sy.s * dy)[None, :] / (n - 1)
    p, sv, qt = np.linalg.svd(m, full_matrices=False)
    k = min(k, sv.size)
    a = sx.vt.T @ (dx[:, None] * p[:, :k])
    b = sy.vt.T @ (dy[:, None] * qt[:k].T)
    return a, b, sv[:k]


def cca_from_covariances(
    cxx: FloatArray, cyy: FloatArray, cxy: FloatArray, lx: float = 0.0, ly: float = 0.0
) -> FloatArray:
    """Canonical correlations of the population (or sample) covariances, ridge included.

    The singular values of ``(Cxx + lx I)^(-1/2) Cxy (Cyy + ly I)^(-1/2)``; with ``lx = ly = 0``
    and population covariances these are the true canonical correlations.

    Parameters
    ----------
    cxx, cyy : ndarray
        Covariance of each block (positive definite after the ridge).
    cxy : ndarray
        Cross-covariance, shape (p, q).
    lx, ly : float
        Ridge penalties.

    Returns
    -------
    ndarray
        Sorted decreasing, ``min(p, q)`` values.

    Raises
    ------
    InputError
        A block covariance that is not positive definite after the ridge.
    """

    def inv_sqrt(c: FloatArray, lam: float, name: str) -> FloatArray:
        w, v = np.linalg.eigh(np.asarray(c, dtype=np.float64) + lam * np.eye(len(c)))
        if w[0] <= _RANK_TOL * max(w[-1], 1e-300):
            raise InputError(name, "covariance is singular (collinear block); use a ridge penalty")
        return np.asarray((v / np.sqrt(w)) @ v.T, dtype=np.float64)

    t = inv_sqrt(cxx, lx, "Cxx") @ np.asarray(cxy, dtype=np.float64) @ inv_sqrt(cyy, ly, "Cyy")
    return np.asarray(np.linalg.svd(t, compute_uv=False), dtype=np.float64)


class RegularizedCCA(TwoBlockEstimator):
    """Ridge-regularized CCA with penalties chosen by cross-validation (see module docstring).

    Parameters
    ----------
    n_components : int, default 2
        Canonical pairs to keep.
    penalty : "cv", float or (float, float), default "cv"
        ``(lx, ly)``; a single float is used for both blocks; ``"cv"`` picks the pair from
        `penalty_grid` x `penalty_grid` that maximizes the sum over components of the pooled
        held-out canonical correlations in `cv_splits`-fold cross-validation.
    penalty_grid : sequence of float
        Candidates for each block's penalty (``"cv"`` only).
    cv_splits : int, default 5
        Folds of the penalty search (capped at n).
    random_state : int, default 0
        Seed of the fold assignment.
    on_degenerate : {"raise", "ignore"}, default "raise"
        A constant column, or fewer canonical pairs than `n_components`, is an error; or
        (``"ignore"``, used for the refits inside cross-validation folds, where a rare binary
        variable can be constant) the column is kept with scale 1 so it contributes nothing
        and only the available pairs are returned.

    Attributes
    ----------
    penalties_ : (float, float)
        ``(lx, ly)`` used.
    cv_scores_ : ndarray or None
        Search criterion per grid pair, shape (len(grid), len(grid)), rows lx, columns ly.
    x_weights_, y_weights_ : ndarray, shapes (p, k), (q, k)
        Canonical weights on the standardized variables, scaled so the training scores have
        unit variance; the sign makes the largest |structure coefficient| of X positive.
    canonical_correlations_ : ndarray, shape (k,)
        In-sample ``corr(X a_k, Y b_k)`` (the Pearson correlation, not the shrunk singular value).
    singular_values_ : ndarray, shape (k,)
        Singular values of the regularized problem.
    x_structure_, y_structure_ : ndarray, shapes (p, k), (q, k)
        Structure coefficients: correlation of each variable with the component's score.
    x_scores_, y_scores_ : ndarray, shape (n, k)
        Training scores.
    x_mean_, x_scale_, y_mean_, y_scale_ : ndarray
        Standardization.
    heldout_correlations_, heldout_fold_correlations_, p_values_, null_distribution_
        Set by :meth:`assess`.
    """

    def __init__(
        self,
        n_components: int = 2,
        *,
        penalty: Literal["cv"] | float | tuple[float, float] = "cv",
        penalty_grid: Sequence[float] = DEFAULT_PENALTY_GRID,
        cv_splits: int = 5,
        random_state: int = 0,
        on_degenerate: Literal["raise", "ignore"] = "raise",
    ) -> None:
        self.n_components = n_components
        self.on_degenerate = on_degenerate
        self.penalty = penalty
        self.penalty_grid = tuple(float(v) for v in penalty_grid)
        self.cv_splits = cv_splits
        self.random_state = random_state

    # -- fitting ----------------------------------------------------------------------------

    def _penalty_pair(self) -> tuple[float, float] | None:
        if isinstance(self.penalty, str):
            if self.penalty != "cv":
                raise ConfigError(
                    "penalty", f"must be 'cv', a number or a pair, got {self.penalty!r}"
                )
            return None
        pair = (
            (float(self.penalty), float(self.penalty))
            if isinstance(self.penalty, int | float)
            else tuple(float(v) for v in self.penalty)
        )
        if len(pair) != 2 or min(pair) < 0 or not all(np.isfinite(pair)):
            raise ConfigError(
                "penalty", f"needs one or two finite values >= 0, got {self.penalty!r}"
            )
        return (pair[0], pair[1])

    def _select_penalty(
        self, x: FloatArray, y: FloatArray
    ) -> tuple[tuple[float, float], FloatArray]:
        """Grid pair with the largest sum of pooled out-of-fold canonical correlations."""
        grid = self.penalty_grid
        if not grid or min(grid) < 0:
            raise ConfigError("penalty_grid", "needs at least one value >= 0")
        n = x.shape[0]
        k = self.n_components
        splits = kfold_indices(n, min(self.cv_splits, n), self.random_state)
        g = len(grid)
        u_oof = np.zeros((g, g, n, k))
        v_oof = np.zeros((g, g, n, k))
        for train, test in splits:
            xt, mx, sx_ = standardize(x[train], "X", strict=False)
            yt, my, sy_ = standardize(y[train], "Y", strict=False)
            svx, svy = _thin_svd(xt), _thin_svd(yt)
            x_test = (x[test] - mx) / sx_
            y_test = (y[test] - my) / sy_
            for i, lx in enumerate(grid):
                for j, ly in enumerate(grid):
                    a, b, _ = _solve(svx, svy, len(train), lx, ly, k)
                    kk = a.shape[1]
                    u_oof[i, j][np.ix_(test, np.arange(kk))] = x_test @ a
                    v_oof[i, j][np.ix_(test, np.arange(kk))] = y_test @ b
        scores = np.zeros((g, g))
        for i in range(g):
            for j in range(g):
                scores[i, j] = column_correlations(u_oof[i, j], v_oof[i, j]).sum()
        best = np.unravel_index(int(np.argmax(scores)), scores.shape)
        return (grid[best[0]], grid[best[1]]), scores

    def fit(self, X: Any, Y: Any) -> Self:
        """Standardize both blocks, choose the penalties (``"cv"``) and solve.

        Raises
        ------
        InputError
            Different row counts, NaN/inf, constant columns, fewer than 3 samples, a collinear
            block without penalty, or fewer canonical pairs than `n_components`.
        ConfigError
            A bad penalty, grid or `n_components`.
        """
        x, y, xs, ys = self._standardize_pair(X, Y)
        strict = strict_mode(self.on_degenerate)
        n = x.shape[0]
        svx, svy = _thin_svd(xs), _thin_svd(ys)
        pair = self._penalty_pair()
        self.cv_scores_: FloatArray | None = None
        if pair is None:
            pair, self.cv_scores_ = self._select_penalty(x, y)
        lx, ly = pair
        for name, svd, width, lam in (("X", svx, x.shape[1], lx), ("Y", svy, y.shape[1], ly)):
            if lam == 0 and svd.s.size < width:
                raise InputError(
                    name,
                    f"block is collinear (rank {svd.s.size} < {width} columns, n = {n}); "
                    "plain CCA is undefined, use a positive penalty or penalty='cv'",
                )
        available = min(svx.s.size, svy.s.size)
        if self.n_components > available and (strict or available == 0):
            raise InputError(
                "X, Y",
                f"only {available} canonical pair(s) exist (block ranks {svx.s.size} and "
                f"{svy.s.size}); {self.n_components} requested",
            )
        a, b, sv = _solve(svx, svy, n, lx, ly, self.n_components)
        u, v = xs @ a, ys @ b
        su, sv_ = u.std(axis=0, ddof=1), v.std(axis=0, ddof=1)
        a, b, u, v = a / su, b / sv_, u / su, v / sv_
        x_struct = _structure(xs, u)
        sign = np.sign(x_struct[np.abs(x_struct).argmax(axis=0), np.arange(a.shape[1])])
        sign[sign == 0] = 1.0
        a, b, u, v = a * sign, b * sign, u * sign, v * sign
        self.penalties_ = (lx, ly)
        self.x_weights_, self.y_weights_ = a, b
        self.x_scores_, self.y_scores_ = u, v
        self.singular_values_ = sv
        self.canonical_correlations_ = column_correlations(u, v)
        self.x_structure_ = x_struct * sign
        self.y_structure_ = _structure(ys, v)
        return self

    # -- projecting -------------------------------------------------------------------------

    def fit_transform(self, X: Any, Y: Any) -> tuple[FloatArray, FloatArray]:
        """Fit, then return the training scores."""
        self.fit(X, Y)
        return self.x_scores_, self.y_scores_

    # -- honest numbers ---------------------------------------------------------------------

    def assess(
        self,
        X: Any,
        Y: Any,
        *,
        n_splits: int = 5,
        n_permutations: int = 200,
        seed: int = 0,
    ) -> Self:
        """Fit, then add held-out correlations and permutation p-values.

        Held-out: K-fold, the whole procedure (penalty search included) refitted on each
        training part (nested CV), pooled out-of-fold ``corr(u_k, v_k)``. Permutation: rows of
        Y permuted, refitted with the chosen penalties, statistic the in-sample canonical
        correlations; ``p_k = (1 + #{T_k^(b) >= T_k}) / (1 + B)``.

        Sets ``heldout_correlations_``, ``heldout_fold_correlations_``, ``p_values_``,
        ``null_distribution_``.
        """
        self.fit(X, Y)
        x, y = as_matrix(X, "X"), as_matrix(Y, "Y")
        k = self.x_weights_.shape[1]
        n_splits = min(n_splits, x.shape[0])
        smallest_train = x.shape[0] - -(-x.shape[0] // max(n_splits, 1))
        inner = max(2, min(self.cv_splits, smallest_train))
        held = heldout_correlations(
            lambda: RegularizedCCA(
                k,
                penalty=self.penalty,
                penalty_grid=self.penalty_grid,
                cv_splits=inner,
                random_state=self.random_state,
                on_degenerate="ignore",
            ),
            x,
            y,
            n_components=k,
            n_splits=n_splits,
            seed=seed,
            reference=(self.x_scores_, self.y_scores_),
        )
        self.heldout_correlations_ = held.correlations
        self.heldout_fold_correlations_ = held.fold_correlations
        fixed = self.penalties_

        def statistic(rng: np.random.Generator) -> FloatArray:
            perm = y[rng.permutation(y.shape[0])]
            return RegularizedCCA(k, penalty=fixed).fit(x, perm).canonical_correlations_

        test = permutation_pvalues(
            statistic, self.canonical_correlations_, n_permutations=n_permutations, seed=seed
        )
        self.p_values_ = test.p_values
        self.null_distribution_ = test.null
        return self


def _structure(z: FloatArray, scores: FloatArray) -> FloatArray:
    """Correlation of every column of `z` (n, p) with every column of `scores` (n, k)."""
    zc = z - z.mean(axis=0)
    sc = scores - scores.mean(axis=0)
    num = zc.T @ sc
    den = np.sqrt((zc**2).sum(axis=0))[:, None] * np.sqrt((sc**2).sum(axis=0))[None, :]
    out = np.zeros_like(num)
    np.divide(num, den, out=out, where=den > 1e-300)
    return np.asarray(out, dtype=np.float64)
