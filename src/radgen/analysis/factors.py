"""A MOFA-like multi-view factor model: variational Bayes with ARD priors per view and factor.

For views m = 1..M (imaging features, expression, methylation, mutations ...), each
standardized to mean 0 and SD 1 per feature, sample n and feature d of view m:

    y_nd = z_n' w_d + e_nd,   e_nd ~ N(0, 1 / tau_d),
    z_n ~ N(0, I_K),   w_dk ~ N(0, 1 / alpha_mk)  (d in view m),
    alpha_mk, tau_d ~ Gamma(a0, b0).

The automatic relevance determination (ARD) precision ``alpha_mk`` switches factor k off
in view m (``alpha_mk -> inf``), so a factor is *shared* when it is active in several
views and *view-specific* when active in one. Missing values (a whole view missing for a
sample, or single entries) are left out of the likelihood. The mean-field posterior
``q(Z) q(W) q(alpha) q(tau)`` (full K x K covariance per sample and per feature) is
updated in closed form, each update raising the evidence lower bound (ELBO), until its
relative change is below `tol`.

Variance explained (the MOFA definition) with posterior means, over observed entries:
``R2_mk = 1 - sum (y_nd - z_nk w_dk)^2 / sum y_nd^2`` (d in view m), and
``R2_m = 1 - sum (y_nd - z_n' w_d)^2 / sum y_nd^2`` for all factors together.
:meth:`FactorModel.transform` gives the posterior mean of z for new samples from
whichever views they have: ``Sigma = (I + sum_d o_d E[tau_d] E[w_d w_d'])^(-1)``,
``E[z] = Sigma sum_d o_d E[tau_d] y_d E[w_d]``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Self

import numpy as np
import pandas as pd
from scipy.special import digamma, gammaln

from radgen.analysis.crossval import (
    FloatArray,
    IntArray,
    aligned,
    as_matrix,
    column_correlations,
    kfold_indices,
    match_components,
    permutation_pvalues,
    standardize,
    strict_mode,
)
from radgen.errors import ConfigError, InputError

__all__ = ["FactorModel"]

Views = Mapping[str, Any] | Sequence[Any]


@dataclass
class _Data:
    """Stacked views: values (0 where missing), mask, view of each column, mask patterns."""

    y: FloatArray  # (n, D)
    o: FloatArray  # (n, D), 1 observed / 0 missing
    vid: IntArray  # (D,)
    patterns: FloatArray = field(init=False)  # (P, D) distinct rows of o
    pattern_of: IntArray = field(init=False)  # (n,) row of `patterns` for each sample

    def __post_init__(self) -> None:
        patterns, inverse = np.unique(self.o > 0, axis=0, return_inverse=True)
        self.patterns = patterns.astype(np.float64)
        self.pattern_of = np.asarray(inverse, dtype=np.intp).ravel()


def _gamma_kl(a: FloatArray, b: FloatArray, a0: float, b0: float) -> float:
    """``KL(Gamma(a, b) || Gamma(a0, b0))`` summed, shape-rate parametrization."""
    kl = (
        (a - a0) * digamma(a)
        - gammaln(a)
        + gammaln(a0)
        + a0 * (np.log(b) - np.log(b0))
        + a * (b0 - b) / b
    )
    return float(np.sum(kl))


def _logdet(s: FloatArray) -> FloatArray:
    _, val = np.linalg.slogdet(s)
    return np.asarray(val, dtype=np.float64)


class FactorModel:
    """Multi-view Bayesian factor model with ARD priors (see module docstring).

    Parameters
    ----------
    n_factors : int, default 10
        Initial number of factors K; inactive ones are switched off by ARD and dropped.
    max_iter : int, default 1000
    tol : float, default 1e-6
        Stop when ``|ELBO_t - ELBO_(t-1)| < tol |ELBO_t|``.
    active_r2 : float, default 0.02
        A factor is *active* in view m when it explains at least this fraction of the view's
        variance (``R2_mk >= active_r2``) and its loadings there are not carried by a single
        feature (participation ratio ``(sum w^2)^2 / sum w^4 >= 2``: a one-feature factor
        cannot be told from that feature's own noise). Shared = active in >= 2 views,
        specific = active in exactly one. Noise alone can reach a few percent in a narrow
        view (the top noise component of an n x d view explains about
        ``(1 + sqrt(d / n))^2 / d`` of its residual variance), so read the classification
        together with the held-out correlations and p-values of :meth:`assess`.
    drop_inactive : bool, default True
        After fitting, drop factors active in no view (at least one factor is kept).
    scale_views : bool, default False
        Scale each view to total variance 1 (per feature ``1 / sqrt(d_m)``), so large views do
        not dominate.
    a0, b0 : float, default 1e-3
        Gamma prior of the ARD and noise precisions.
    random_state : int, default 0
        Seed of the small jitter added to the PCA initialization.
    on_degenerate : {"raise", "ignore"}, default "raise"
        A constant (or nearly unobserved) feature is an error, or (``"ignore"``, for refits
        inside CV folds and permutations) kept with scale 1 so it contributes nothing.

    Attributes
    ----------
    view_names_ : list of str
    feature_names_ : dict of str to list of str
    Z_ : ndarray, shape (n, K)
        Posterior means of the factors of the training samples.
    weights_ : dict of str to ndarray, shape (d_m, K)
        Posterior mean loadings per view (standardized feature units).
    alpha_ : ndarray, shape (M, K)
        Posterior mean ARD precisions.
    tau_ : dict of str to ndarray
        Posterior mean noise precision per feature.
    r2_ : pandas.DataFrame
        Variance explained per view (rows) and factor (columns ``Factor1``..).
    r2_total_ : pandas.Series
        Variance explained per view by all factors.
    factor_kind_ : list of str
        ``"shared"``, ``"specific"`` or ``"inactive"`` per factor.
    active_views_ : list of list of str
        Views in which each factor is active.
    elbo_ : ndarray
        ELBO after every iteration of the last run (after inactive factors were dropped, the
        remaining ones are refitted from where they were).
    n_iter_ : int
        Iterations of all runs.
    converged_ : bool
    heldout_correlations_, heldout_view_correlations_, cross_view_correlations_,
    p_values_, null_distribution_
        Set by :meth:`assess`.
    """

    def __init__(
        self,
        n_factors: int = 10,
        *,
        max_iter: int = 1000,
        tol: float = 1e-6,
        active_r2: float = 0.02,
        drop_inactive: bool = True,
        scale_views: bool = False,
        a0: float = 1e-3,
        b0: float = 1e-3,
        random_state: int = 0,
        on_degenerate: Literal["raise", "ignore"] = "raise",
    ) -> None:
        self.n_factors = n_factors
        self.on_degenerate = on_degenerate
        self.max_iter = max_iter
        self.tol = tol
        self.active_r2 = active_r2
        self.drop_inactive = drop_inactive
        self.scale_views = scale_views
        self.a0 = a0
        self.b0 = b0
        self.random_state = random_state

    # -- input ------------------------------------------------------------------------------

    @staticmethod
    def _named(views: Views) -> list[tuple[str, Any]]:
        if isinstance(views, Mapping):
            items = [(str(k), v) for k, v in views.items()]
        elif isinstance(views, Sequence) and not isinstance(views, str | bytes):
            items = [(f"view{i}", v) for i, v in enumerate(views)]
        else:
            raise InputError("views", "give a mapping of view name to array, or a list of arrays")
        if not items:
            raise InputError("views", "no view given")
        return items

    def _check_params(self) -> None:
        if self.n_factors < 1:
            raise ConfigError("n_factors", f"must be at least 1, got {self.n_factors}")
        if self.max_iter < 1:
            raise ConfigError("max_iter", f"must be at least 1, got {self.max_iter}")
        if not (self.a0 > 0 and self.b0 > 0):
            raise ConfigError("a0, b0", "Gamma prior parameters must be positive")

    def _training_data(self, views: Views) -> _Data:
        items = self._named(views)
        blocks: list[FloatArray] = []
        names: dict[str, list[str]] = {}
        means: dict[str, FloatArray] = {}
        scales: dict[str, FloatArray] = {}
        n: int | None = None
        for name, data in items:
            arr = as_matrix(data, f"view {name}", allow_nan=True)
            if n is None:
                n = arr.shape[0]
            elif arr.shape[0] != n:
                raise InputError(
                    f"view {name}",
                    f"has {arr.shape[0]} rows, the first view {n} (rows are samples)",
                )
            std, mean, scale = standardize(
                arr, f"view {name}", strict=strict_mode(self.on_degenerate)
            )
            if self.scale_views:
                scale = scale * np.sqrt(arr.shape[1])
                std = std / np.sqrt(arr.shape[1])
            blocks.append(std)
            means[name], scales[name] = mean, scale
            cols = getattr(data, "columns", None)
            names[name] = (
                [str(c) for c in cols]
                if cols is not None
                else [f"{name}_{j}" for j in range(arr.shape[1])]
            )
        y = np.hstack(blocks)
        o = np.isfinite(y).astype(np.float64)
        empty = np.flatnonzero(o.sum(axis=1) == 0)
        if empty.size:
            raise InputError(
                "views",
                f"{empty.size} sample(s) have no observed value in any view (first: row {empty[0]})",
            )
        self.view_names_ = [name for name, _ in items]
        self.feature_names_ = names
        self._means, self._scales = means, scales
        self._sizes = [b.shape[1] for b in blocks]
        vid = np.repeat(np.arange(len(blocks)), self._sizes)
        return _Data(y=np.where(o > 0, y, 0.0), o=o, vid=vid)

    def _new_data(self, views: Mapping[str, Any] | Sequence[Any]) -> _Data:
        """Standardize new samples with the training statistics; absent views count as missing."""
        self._check_fitted()
        items = dict(self._named(views))
        unknown = sorted(set(items) - set(self.view_names_))
        if unknown:
            raise InputError(
                "views", f"unknown view(s) {unknown}; the model has {self.view_names_}"
            )
        rows = {as_matrix(v, f"view {k}", allow_nan=True).shape[0] for k, v in items.items()}
        if len(rows) != 1:
            raise InputError("views", f"views have different row counts {sorted(rows)}")
        n = rows.pop()
        blocks = []
        for name, size in zip(self.view_names_, self._sizes, strict=True):
            if name in items and items[name] is not None:
                arr = as_matrix(items[name], f"view {name}", allow_nan=True)
                if arr.shape[1] != size:
                    raise InputError(
                        f"view {name}", f"has {arr.shape[1]} columns, the model {size}"
                    )
                blocks.append((arr - self._means[name]) / self._scales[name])
            else:
                blocks.append(np.full((n, size), np.nan))
        y = np.hstack(blocks)
        o = np.isfinite(y).astype(np.float64)
        return _Data(y=np.where(o > 0, y, 0.0), o=o, vid=self._vid)

    # -- variational updates ----------------------------------------------------------------

    def _posterior_z(
        self, data: _Data, mu_w: FloatArray, eww: FloatArray, e_tau: FloatArray
    ) -> tuple[FloatArray, FloatArray, IntArray]:
        """q(z_n): per missingness pattern ``Sigma = (I + sum_d o_d tau_d E[w_d w_d'])^-1``."""
        k = mu_w.shape[1]
        inverse = data.pattern_of
        prec = (data.patterns * e_tau) @ eww.reshape(-1, k * k)
        prec = prec.reshape(-1, k, k) + np.eye(k)
        inv = np.linalg.inv(prec)
        sigma = np.asarray(0.5 * (inv + np.transpose(inv, (0, 2, 1))), dtype=np.float64)
        rhs = (data.y * e_tau) @ mu_w
        mu: FloatArray = np.einsum("nkl,nl->nk", sigma[inverse], rhs)
        return mu, sigma, inverse

    def _fit_data(
        self, data: _Data, n_factors: int, init: FloatArray | None = None
    ) -> dict[str, Any]:
        """Coordinate ascent on the ELBO from `init` (factor means) or from principal components."""
        y, o, vid = data.y, data.o, data.vid
        n, dims = y.shape
        n_views = int(vid.max()) + 1
        a0, b0 = self.a0, self.b0
        if init is None:  # principal components of the zero-filled data, unit variance
            k = min(n_factors, n, dims)
            u = np.linalg.svd(y, full_matrices=False)[0]
            rng = np.random.default_rng(self.random_state)
            mu_z = u[:, :k] * np.sqrt(n) + 0.01 * rng.standard_normal((n, k))
        else:
            mu_z, k = init.copy(), init.shape[1]
        sigma_z = np.zeros((1, k, k))
        pat = np.zeros(n, dtype=np.intp)
        e_alpha = np.ones((n_views, k))
        n_obs = o.sum(axis=0)
        a_tau = a0 + 0.5 * n_obs
        b_tau = a_tau.copy()  # E[tau] = 1 for unit-variance data
        a_alpha = a0 + 0.5 * np.bincount(vid, minlength=n_views).astype(np.float64)[:, None]
        a_alpha = np.repeat(a_alpha, k, axis=1)
        b_alpha = a_alpha.copy()
        yy = (y**2).sum(axis=0)
        elbo: list[float] = []
        converged = False
        for _ in range(self.max_iter):
            # q(W)
            ezz = sigma_z[pat] + np.einsum("nk,nl->nkl", mu_z, mu_z)
            e_tau = a_tau / b_tau
            ozz = (o.T @ ezz.reshape(n, k * k)).reshape(dims, k, k)
            prec_w = e_tau[:, None, None] * ozz + np.einsum("dk,kl->dkl", e_alpha[vid], np.eye(k))
            sigma_w = np.linalg.inv(prec_w)
            sigma_w = 0.5 * (sigma_w + np.transpose(sigma_w, (0, 2, 1)))
            mu_w = np.einsum("dkl,dl->dk", sigma_w, e_tau[:, None] * (y.T @ mu_z))
            eww = sigma_w + np.einsum("dk,dl->dkl", mu_w, mu_w)
            # q(alpha)
            w2 = np.diagonal(eww, axis1=1, axis2=2)  # (D, K)
            b_alpha = b0 + 0.5 * np.stack([w2[vid == m].sum(axis=0) for m in range(n_views)])
            e_alpha = a_alpha / b_alpha
            # q(tau)
            cross = ((y.T @ mu_z) * mu_w).sum(axis=1)
            quad = (eww * ozz).sum(axis=(1, 2))
            sq = yy - 2.0 * cross + quad
            b_tau = b0 + 0.5 * sq
            e_tau = a_tau / b_tau
            # q(Z)
            mu_z, sigma_z, pat = self._posterior_z(data, mu_w, eww, e_tau)
            # ELBO
            ezz = sigma_z[pat] + np.einsum("nk,nl->nkl", mu_z, mu_z)
            ozz = (o.T @ ezz.reshape(n, k * k)).reshape(dims, k, k)
            cross = ((y.T @ mu_z) * mu_w).sum(axis=1)
            sq = yy - 2.0 * cross + (eww * ozz).sum(axis=(1, 2))
            e_log_tau = digamma(a_tau) - np.log(b_tau)
            e_log_alpha = digamma(a_alpha) - np.log(b_alpha)
            lik = float(np.sum(0.5 * n_obs * (e_log_tau - np.log(2 * np.pi)) - 0.5 * e_tau * sq))
            lz = float(
                -0.5 * np.trace(ezz, axis1=1, axis2=2).sum()
                + 0.5 * _logdet(sigma_z)[pat].sum()
                + 0.5 * k * n
            )
            lw = float(
                0.5 * e_log_alpha[vid].sum()
                - 0.5 * (e_alpha[vid] * w2).sum()
                + 0.5 * _logdet(sigma_w).sum()
                + 0.5 * k * dims
            )
            value = (
                lik
                + lz
                + lw
                - _gamma_kl(a_alpha, b_alpha, a0, b0)
                - _gamma_kl(a_tau, b_tau, a0, b0)
            )
            elbo.append(value)
            if len(elbo) > 1 and abs(elbo[-1] - elbo[-2]) < self.tol * abs(elbo[-1]):
                converged = True
                break
        return {
            "mu_z": mu_z,
            "mu_w": mu_w,
            "eww": eww,
            "e_tau": a_tau / b_tau,
            "e_alpha": e_alpha,
            "elbo": np.asarray(elbo),
            "converged": converged,
        }

    # -- public API -------------------------------------------------------------------------

    def fit(self, views: Views) -> Self:
        """Fit the model to M views (arrays or DataFrames, rows = the same samples, NaN = missing).

        Parameters
        ----------
        views : mapping of str to array_like, or sequence of array_like
            Each of shape (n, d_m); a sample missing a view has a NaN row there.

        Raises
        ------
        InputError
            Different row counts, infinite values, a constant or (nearly) unobserved feature,
            or a sample observed in no view.
        ConfigError
            Bad hyper-parameters.
        """
        self._check_params()
        data = self._training_data(views)
        self._vid = data.vid
        post = self._fit_data(data, self.n_factors)
        iterations = int(post["elbo"].size)
        for _ in range(5):  # drop inactive factors, then let the rest (and the noise) re-settle
            if not self.drop_inactive:
                break
            keep = self._kept(data, post)
            if keep.size == post["mu_z"].shape[1]:
                break
            post = self._fit_data(data, keep.size, init=post["mu_z"][:, keep])
            iterations += int(post["elbo"].size)
        self._set_posterior(data, post)
        self.n_iter_ = iterations
        return self

    def _activity(self, data: _Data, mu_z: FloatArray, mu_w: FloatArray) -> FloatArray:
        """Boolean (M, K): factor k active in view m (see `active_r2`)."""
        r2 = self._r2(data, mu_z, mu_w)
        pr = np.zeros_like(r2)
        for m in range(r2.shape[0]):
            w2 = mu_w[data.vid == m] ** 2
            fourth = (w2**2).sum(axis=0)
            pr[m] = np.divide(
                w2.sum(axis=0) ** 2, fourth, out=np.zeros(w2.shape[1]), where=fourth > 0
            )
        return np.asarray((r2 >= self.active_r2) & (pr >= 2.0))

    def _kept(self, data: _Data, post: dict[str, Any]) -> IntArray:
        """Factors active in at least one view (the strongest one if none is)."""
        active = self._activity(data, post["mu_z"], post["mu_w"])
        keep = np.flatnonzero(active.any(axis=0))
        if keep.size == 0:
            r2 = self._r2(data, post["mu_z"], post["mu_w"])
            keep = np.array([int(np.argmax(r2.max(axis=0)))])
        return np.asarray(keep, dtype=np.intp)

    def _set_posterior(self, data: _Data, post: dict[str, Any]) -> None:
        mu_z, mu_w = post["mu_z"], post["mu_w"]
        r2 = self._r2(data, mu_z, mu_w)
        active = self._activity(data, mu_z, mu_w)
        keep = np.arange(mu_z.shape[1])
        order = keep[np.argsort(-r2[:, keep].sum(axis=0), kind="stable")]
        self._mu_w = mu_w[:, order]
        self._eww = post["eww"][:, order][:, :, order]
        self._e_tau = post["e_tau"]
        self.Z_ = mu_z[:, order]
        # sign: the largest |loading| of each factor positive
        big = np.abs(self._mu_w).argmax(axis=0)
        sign = np.sign(self._mu_w[big, np.arange(order.size)])
        sign[sign == 0] = 1.0
        self._mu_w = self._mu_w * sign
        self._eww = self._eww * sign[None, :, None] * sign[None, None, :]
        self.Z_ = self.Z_ * sign
        r2 = r2[:, order]
        labels = [f"Factor{i + 1}" for i in range(order.size)]
        self.r2_ = pd.DataFrame(r2, index=self.view_names_, columns=labels)
        self.r2_total_ = pd.Series(
            self._r2_total(data, self.Z_, self._mu_w), index=self.view_names_, name="r2"
        )
        bounds = np.cumsum([0, *self._sizes])
        self.weights_ = {
            name: self._mu_w[bounds[m] : bounds[m + 1]] for m, name in enumerate(self.view_names_)
        }
        self.tau_ = {
            name: self._e_tau[bounds[m] : bounds[m + 1]] for m, name in enumerate(self.view_names_)
        }
        self.alpha_ = post["e_alpha"][:, order]
        active = active[:, order]
        self.active_views_ = [
            [self.view_names_[m] for m in np.flatnonzero(active[:, j])] for j in range(order.size)
        ]
        self.factor_kind_ = [
            "shared" if len(v) >= 2 else "specific" if len(v) == 1 else "inactive"
            for v in self.active_views_
        ]
        self.elbo_ = post["elbo"]
        self.converged_ = bool(post["converged"])

    @staticmethod
    def _r2(data: _Data, mu_z: FloatArray, mu_w: FloatArray) -> FloatArray:
        n_views = int(data.vid.max()) + 1
        total = np.bincount(data.vid, weights=(data.y**2).sum(axis=0), minlength=n_views)
        r2 = np.zeros((n_views, mu_z.shape[1]))
        for j in range(mu_z.shape[1]):
            resid = ((data.y - np.outer(mu_z[:, j], mu_w[:, j])) ** 2 * data.o).sum(axis=0)
            r2[:, j] = 1.0 - np.bincount(data.vid, weights=resid, minlength=n_views) / total
        return r2

    @staticmethod
    def _r2_total(data: _Data, mu_z: FloatArray, mu_w: FloatArray) -> FloatArray:
        n_views = int(data.vid.max()) + 1
        total = np.bincount(data.vid, weights=(data.y**2).sum(axis=0), minlength=n_views)
        resid = ((data.y - mu_z @ mu_w.T) ** 2 * data.o).sum(axis=0)
        return np.asarray(1.0 - np.bincount(data.vid, weights=resid, minlength=n_views) / total)

    def _check_fitted(self) -> None:
        if not hasattr(self, "Z_"):
            raise ConfigError("FactorModel", "not fitted yet; call fit(views) first")

    def transform(self, views: Views) -> FloatArray:
        """Posterior mean of the factors of new samples, from whichever views they have.

        Parameters
        ----------
        views : mapping of str to array_like, or sequence of array_like
            Views by the training names (a subset is fine: absent views and NaN entries are
            missing), rows = new samples, columns as in training.

        Returns
        -------
        ndarray, shape (n_new, K)
            ``E[z] = (I + sum_d o_d tau_d E[w_d w_d'])^(-1) sum_d o_d tau_d y_d E[w_d]``; a
            sample with nothing observed gets the prior mean 0.
        """
        data = self._new_data(views)
        mu, _, _ = self._posterior_z(data, self._mu_w, self._eww, self._e_tau)
        return mu

    # -- honest numbers ---------------------------------------------------------------------

    def _cross_view(self, views: list[tuple[str, FloatArray]]) -> FloatArray:
        """Cross-view correlation per view m and factor k, shape (M, K).

        ``corr(E[z_k | view m], E[z_k | other views])`` over the samples that have view m and
        at least one other view.
        """
        out = np.zeros((len(views), self.Z_.shape[1]))
        for m, (name, arr) in enumerate(views):
            seen = np.isfinite(arr).any(axis=1)
            others = [v for j, (_, v) in enumerate(views) if j != m]
            seen_other = np.any([np.isfinite(v).any(axis=1) for v in others], axis=0)
            rows = seen & seen_other
            if rows.sum() < 3:
                continue
            alone = self.transform({name: arr[rows]})
            rest = self.transform({nm: v[rows] for j, (nm, v) in enumerate(views) if j != m})
            out[m] = column_correlations(alone, rest)
        return out

    def assess(
        self,
        views: Views,
        *,
        n_splits: int = 5,
        n_permutations: int = 50,
        seed: int = 0,
    ) -> Self:
        """Fit, then add held-out cross-view correlations and permutation p-values.

        The correlation of factor k between view m and the rest is
        ``corr(E[z_k | y_m], E[z_k | y_(-m)])`` (1 for a perfectly shared factor, about 0 for
        a view-specific one); ``cross_view_correlations_`` is its in-sample value averaged
        over views, ``heldout_correlations_`` the same on held-out samples (K-fold, refitted
        without dropping factors, fold factors matched to the full fit on the training
        samples) and ``heldout_view_correlations_`` the (M, K) table. Permutation: the rows of
        every view but the first are permuted independently (the shared signal is broken),
        the model refitted with the same K, and the ordered cross-view correlations compared.

        Raises
        ------
        InputError
            Fewer than 2 views.
        """
        self.fit(views)
        items = [
            (name, as_matrix(v, f"view {name}", allow_nan=True)) for name, v in self._named(views)
        ]
        if len(items) < 2:
            raise InputError("views", "cross-view correlations need at least 2 views")
        n = items[0][1].shape[0]
        k = self.Z_.shape[1]
        self.cross_view_correlations_ = self._cross_view(items).mean(axis=0)
        splits = kfold_indices(n, min(n_splits, n), seed)
        alone = np.zeros((len(items), n, k))
        rest = np.zeros((len(items), n, k))
        usable = np.zeros((len(items), n), dtype=bool)
        for train, test in splits:
            fold = self._refit({name: v[train] for name, v in items})
            cols, signs = match_components(self.Z_[train], fold.Z_)
            for m, (name, v) in enumerate(items):
                others = [u for j, (_, u) in enumerate(items) if j != m]
                rows = test[
                    np.isfinite(v[test]).any(axis=1)
                    & np.any([np.isfinite(u[test]).any(axis=1) for u in others], axis=0)
                ]
                if rows.size == 0:
                    continue
                za = fold.transform({name: v[rows]})
                zr = fold.transform({nm: u[rows] for j, (nm, u) in enumerate(items) if j != m})
                alone[m, rows] = aligned(za, cols, signs)
                rest[m, rows] = aligned(zr, cols, signs)
                usable[m, rows] = True
        per_view = np.zeros((len(items), k))
        for m in range(len(items)):
            if usable[m].sum() >= 3:
                per_view[m] = column_correlations(alone[m, usable[m]], rest[m, usable[m]])
        self.heldout_view_correlations_ = pd.DataFrame(
            per_view, index=self.view_names_, columns=self.r2_.columns
        )
        self.heldout_correlations_ = per_view.mean(axis=0)

        def statistic(rng: np.random.Generator) -> FloatArray:
            shuffled = [items[0]] + [(nm, v[rng.permutation(n)]) for nm, v in items[1:]]
            null_model = self._refit(dict(shuffled))
            return np.asarray(null_model._cross_view(shuffled).mean(axis=0), dtype=np.float64)

        perm = permutation_pvalues(
            statistic, self.cross_view_correlations_, n_permutations=n_permutations, seed=seed
        )
        self.p_values_ = perm.p_values
        self.null_distribution_ = perm.null
        return self

    def _refit(self, views: Mapping[str, FloatArray]) -> FactorModel:
        """Same settings, no factor dropped (for folds and permutations)."""
        clone = FactorModel(
            self.n_factors, max_iter=self.max_iter, tol=self.tol, active_r2=self.active_r2,
            drop_inactive=False, scale_views=self.scale_views, a0=self.a0, b0=self.b0,
            random_state=self.random_state, on_degenerate="ignore",
        )  # fmt: skip
        return clone.fit(views)
