"""Scanner harmonization: ComBat (Johnson et al. 2007, Fortin et al. 2017) and moment matching.

Pure NumPy/pandas: samples x features in, harmonized samples x features out. The numbers are
neuroCombat 0.2.12's (``neuroCombat(dat.T, covars, ...)['data'].T``) wherever neuroCombat
works, computed in float64, with these differences, all where neuroCombat fails:

- missing values are masked per feature (neuroCombat returns all-NaN);
- non-parametric empirical Bayes is computed in log space and vectorized over features
  (neuroCombat's likelihoods underflow to 0/0 = NaN for batches of more than ~150 samples and
  its loop is O(features^2) in Python);
- a feature with zero pooled variance gets the median of the non-zero pooled variances
  (neuroCombat takes the median of a boolean array, i.e. 1);
- problems raise a :class:`ValueError` naming them: a batch with one sample, a design where a
  covariate is collinear with batch, a covariate level seen in only one batch, an unknown
  batch or level at transform time.

:class:`ComBat` keeps the fitted parameters so new samples from seen batches, with their own
covariates, are harmonized exactly as the training samples were (``fit(X).transform(X)``
equals ``fit_transform(X)``).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

__all__ = ["ComBat", "ComBatParams", "combat", "moment_match"]

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]

#: Convergence threshold of the parametric EB iteration (neuroCombat's and sva's).
EB_TOLERANCE = 1e-4
_EB_MAX_ITER = 10_000
_NONPARAM_BLOCK = 512


@dataclass
class _Design:
    """How batch and covariates become design-matrix columns (fixed at fit time)."""

    batches: list[Any]
    ref_index: int | None
    categorical: dict[str, list[Any]] = field(default_factory=dict)
    continuous: list[str] = field(default_factory=list)

    @property
    def covariate_columns(self) -> list[str]:
        """Names of the covariate columns of the design, in order."""
        names = [
            f"{col}={level}" for col, levels in self.categorical.items() for level in levels[1:]
        ]
        return names + list(self.continuous)

    def batch_codes(self, batch: pd.Series) -> npt.NDArray[np.int64]:
        lookup = {b: i for i, b in enumerate(self.batches)}
        unknown = sorted({str(b) for b in batch if b not in lookup})
        if unknown:
            raise ValueError(
                f"unknown batch(es) {', '.join(unknown)}; fitted batches are {self.batches}"
            )
        return np.array([lookup[b] for b in batch], dtype=np.int64)

    def covariate_matrix(self, covariates: pd.DataFrame | None, n: int) -> FloatArray:
        parts: list[FloatArray] = []
        for col, levels in self.categorical.items():
            if covariates is None or col not in covariates:
                raise ValueError(f"covariate {col!r} is missing")
            values = covariates[col]
            unknown = sorted({str(v) for v in values if v not in levels})
            if unknown:
                raise ValueError(
                    f"covariate {col!r}: level(s) {', '.join(unknown)} were not seen when fitting"
                )
            parts.extend(
                (values == level).to_numpy(dtype=np.float64)[:, None] for level in levels[1:]
            )
        for col in self.continuous:
            if covariates is None or col not in covariates:
                raise ValueError(f"covariate {col!r} is missing")
            parts.append(covariates[col].to_numpy(dtype=np.float64)[:, None])
        return np.hstack(parts) if parts else np.zeros((n, 0))

    def matrix(self, codes: npt.NDArray[np.int64], covariates: pd.DataFrame | None) -> FloatArray:
        onehot = np.zeros((len(codes), len(self.batches)))
        onehot[np.arange(len(codes)), codes] = 1.0
        if self.ref_index is not None:
            onehot[:, self.ref_index] = 1.0  # the reference column is the intercept
        return np.hstack([onehot, self.covariate_matrix(covariates, len(codes))])


@dataclass
class ComBatParams:
    """Everything needed to harmonize new samples: the fitted ComBat model.

    Attributes
    ----------
    features : list of str
        Feature names, in column order.
    design : _Design
        Batch levels, reference batch and covariate encoding.
    beta : ndarray of shape (n_batch + n_covariate_columns, n_features)
        Least-squares coefficients of the standardization model.
    grand_mean : ndarray of shape (n_features,)
    var_pooled : ndarray of shape (n_features,)
    gamma_star, delta_star : ndarray of shape (n_batch, n_features)
        Location and scale adjustments per batch (EB-shrunk unless ``eb=False``).
    method : str
        ``combat``, ``combat-nonparametric``, ``combat-location-scale`` (+ ``-mean-only``).
    """

    features: list[str]
    design: _Design
    beta: FloatArray
    grand_mean: FloatArray
    var_pooled: FloatArray
    gamma_star: FloatArray
    delta_star: FloatArray
    method: str

    def to_frame(self) -> pd.DataFrame:
        """Long table of the parameters: one row per (feature, batch) plus per-feature rows."""
        rows: list[dict[str, Any]] = []
        for j, b in enumerate(self.design.batches):
            for f, name in enumerate(self.features):
                rows.append(
                    {
                        "feature": name,
                        "batch": str(b),
                        "parameter": "gamma_star",
                        "value": float(self.gamma_star[j, f]),
                    }
                )
                rows.append(
                    {
                        "feature": name,
                        "batch": str(b),
                        "parameter": "delta_star",
                        "value": float(self.delta_star[j, f]),
                    }
                )
        for f, name in enumerate(self.features):
            rows.append(
                {
                    "feature": name,
                    "batch": None,
                    "parameter": "grand_mean",
                    "value": float(self.grand_mean[f]),
                }
            )
            rows.append(
                {
                    "feature": name,
                    "batch": None,
                    "parameter": "var_pooled",
                    "value": float(self.var_pooled[f]),
                }
            )
            for c, col in enumerate(self.design.covariate_columns):
                value = float(self.beta[len(self.design.batches) + c, f])
                rows.append(
                    {"feature": name, "batch": None, "parameter": f"beta[{col}]", "value": value}
                )
        return pd.DataFrame(rows)

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, spec: dict[str, Any]) -> ComBatParams:
        """Rebuild fitted parameters from :meth:`to_frame` rows and :meth:`spec`.

        Batch and level labels come back as text (they are stored as text).
        """
        batches = list(spec["batches"])
        ref = spec.get("ref_batch")
        design = _Design(
            batches=batches,
            ref_index=None if ref is None else batches.index(ref),
            categorical={k: list(v) for k, v in spec.get("categorical", {}).items()},
            continuous=list(spec.get("continuous", [])),
        )
        features = list(spec["features"])
        f_index = {f: i for i, f in enumerate(features)}
        b_index = {b: i for i, b in enumerate(batches)}
        p, nb = len(features), len(batches)
        gamma, delta = np.full((nb, p), np.nan), np.full((nb, p), np.nan)
        grand, var = np.full(p, np.nan), np.full(p, np.nan)
        beta = np.zeros((nb + len(design.covariate_columns), p))
        terms = {f"beta[{c}]": nb + i for i, c in enumerate(design.covariate_columns)}
        for rec in frame.to_dict("records"):
            f = f_index[rec["feature"]]
            name = rec["parameter"]
            if name == "gamma_star":
                gamma[b_index[rec["batch"]], f] = rec["value"]
            elif name == "delta_star":
                delta[b_index[rec["batch"]], f] = rec["value"]
            elif name == "grand_mean":
                grand[f] = rec["value"]
            elif name == "var_pooled":
                var[f] = rec["value"]
            elif name in terms:
                beta[terms[name], f] = rec["value"]
        if (
            np.isnan(gamma).any()
            or np.isnan(delta).any()
            or np.isnan(grand).any()
            or np.isnan(var).any()
        ):
            raise ValueError("the stored ComBat parameters are incomplete")
        return cls(features, design, beta, grand, var, gamma, delta, str(spec["method"]))

    def spec(self) -> dict[str, Any]:
        """The design and method as plain JSON (stored with the parameters)."""
        return {
            "method": self.method,
            "batches": [str(b) for b in self.design.batches],
            "ref_batch": None
            if self.design.ref_index is None
            else str(self.design.batches[self.design.ref_index]),
            "categorical": {
                k: [str(v) for v in levels] for k, levels in self.design.categorical.items()
            },
            "continuous": list(self.design.continuous),
            "features": list(self.features),
        }


def _check_inputs(
    data: pd.DataFrame, batch: pd.Series, covariates: pd.DataFrame | None
) -> tuple[FloatArray, pd.Series, pd.DataFrame | None]:
    if not isinstance(data, pd.DataFrame):
        raise ValueError("data must be a pandas DataFrame (samples x features)")
    batch = pd.Series(batch)
    if len(batch) != len(data) or not batch.index.equals(data.index):
        raise ValueError("batch must be a Series on the same index as data")
    if batch.isna().any():
        raise ValueError(f"batch is missing for {int(batch.isna().sum())} sample(s)")
    non_numeric = [
        c for c, dtype in data.dtypes.items() if not pd.api.types.is_numeric_dtype(dtype)
    ]
    if non_numeric:
        raise ValueError(f"data columns must be numeric; not: {', '.join(map(str, non_numeric))}")
    values = data.to_numpy(dtype=np.float64, na_value=np.nan)
    if np.isinf(values).any():
        raise ValueError("data holds infinite values")
    if covariates is not None:
        if not covariates.index.equals(data.index):
            raise ValueError("covariates must be a DataFrame on the same index as data")
        missing = [c for c in covariates.columns if covariates[c].isna().any()]
        if missing:
            raise ValueError(f"covariate(s) {', '.join(map(str, missing))} have missing values")
    return values, batch, covariates


def _encode(batch: pd.Series, covariates: pd.DataFrame | None, ref_batch: Any) -> _Design:
    batches = sorted(pd.unique(batch), key=lambda b: (str(type(b)), b))
    counts = batch.value_counts()
    lonely = [str(b) for b in batches if counts[b] < 2]
    if lonely:
        raise ValueError(
            f"batch(es) {', '.join(lonely)} have a single sample; ComBat needs at least 2 per batch"
        )
    ref_index = None
    if ref_batch is not None:
        if ref_batch not in batches:
            raise ValueError(f"reference batch {ref_batch!r} is not among the batches {batches}")
        ref_index = batches.index(ref_batch)
    design = _Design(batches=batches, ref_index=ref_index)
    if covariates is not None:
        for col in covariates.columns:
            series = covariates[col]
            if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
                design.continuous.append(str(col))
                continue
            levels = sorted(pd.unique(series), key=lambda v: (str(type(v)), v))
            for level in levels:
                seen = sorted({str(b) for b in batch[series == level]})
                if len(seen) == 1 and len(batches) > 1:
                    raise ValueError(
                        f"covariate {col!r} level {level!r} occurs only in batch {seen[0]}: "
                        "its effect cannot be told apart from that batch's"
                    )
            design.categorical[str(col)] = list(levels)
    return design


def _check_rank(design_matrix: FloatArray, design: _Design) -> None:
    k = design_matrix.shape[1]
    if np.linalg.matrix_rank(design_matrix) == k:
        return
    n_batch = len(design.batches)
    culprits = []
    for c, name in enumerate(design.covariate_columns):
        reduced = np.delete(design_matrix, n_batch + c, axis=1)
        if np.linalg.matrix_rank(reduced) == k - 1:
            culprits.append(name)
    named = ", ".join(culprits) if culprits else "the covariates"
    raise ValueError(f"the design is confounded: {named} is collinear with batch (or each other)")


def _solve(design_matrix: FloatArray, y: FloatArray) -> FloatArray:
    """Least squares as neuroCombat computes it: inv(X'X) X'y, per NaN pattern of the features."""
    beta = np.full((design_matrix.shape[1], y.shape[1]), np.nan)
    finite = np.isfinite(y)
    groups: dict[bytes, list[int]] = {}
    complete = finite.all(axis=0)
    if complete.any():
        groups[np.packbits(np.ones(y.shape[0], dtype=bool)).tobytes()] = np.flatnonzero(
            complete
        ).tolist()
    for c in np.flatnonzero(~complete):
        groups.setdefault(np.packbits(finite[:, c]).tobytes(), []).append(int(c))
    for members in groups.values():
        cols = np.asarray(members)
        rows = finite[:, cols[0]]
        sub = design_matrix[rows]
        if np.linalg.matrix_rank(sub) < sub.shape[1]:
            raise ValueError(
                f"too few non-missing values to fit feature(s) at column(s) {cols[:5].tolist()}"
            )
        xtx_inv = np.linalg.inv(sub.T @ sub)
        beta[:, cols] = (xtx_inv @ sub.T) @ y[np.ix_(rows, cols)]
    return beta


def _it_sol(
    sdat: FloatArray,
    g_hat: FloatArray,
    d_hat: FloatArray,
    g_bar: float,
    t2: float,
    a: float,
    b: float,
    *,
    has_nan: bool = True,
) -> tuple[FloatArray, FloatArray]:
    """Parametric EB for one batch, iterated exactly as neuroCombat's ``it_sol`` (NaN-aware).

    ``sum((x - g)^2)`` is expanded as ``sum(x^2) - 2 g sum(x) + n g^2`` from sums taken once,
    so an iteration costs O(features) instead of O(features x samples).
    """
    if has_nan:
        finite = np.isfinite(sdat)
        x = np.where(finite, sdat, 0.0)
        n = finite.sum(axis=1).astype(np.float64)
    else:
        x = sdat
        n = np.full(sdat.shape[0], float(sdat.shape[1]))
    sx, sx2 = x.sum(axis=1), (x * x).sum(axis=1)
    g_old, d_old = g_hat.copy(), d_hat.copy()
    g_new, d_new = g_old, d_old
    with np.errstate(divide="ignore", invalid="ignore"):
        for _ in range(_EB_MAX_ITER):
            g_new = (t2 * n * g_hat + d_old * g_bar) / (t2 * n + d_old)
            sum2 = np.maximum(sx2 - 2.0 * g_new * sx + n * g_new**2, 0.0)
            d_new = (0.5 * sum2 + b) / (n / 2.0 + a - 1.0)
            # neuroCombat's stopping rule, signed denominators included
            change = max(
                (np.abs(g_new - g_old) / g_old).max(), (np.abs(d_new - d_old) / d_old).max()
            )
            g_old, d_old = g_new, d_new
            if not change > EB_TOLERANCE:
                break
        else:
            log.warning("parametric EB did not converge in %d iterations", _EB_MAX_ITER)
    return g_new, d_new


def _int_eprior(
    sdat: FloatArray, g_hat: FloatArray, d_hat: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Non-parametric EB for one batch, in log space and vectorized over features.

    For feature i the prior is the empirical distribution of (gamma_hat_k, delta_hat_k) over the
    other features k; the posterior weights are the Gaussian likelihoods of feature i's data
    under each (gamma_k, delta_k). neuroCombat computes the same weights as raw likelihoods,
    which underflow for large batches; here they are normalized in log space (max subtracted).
    """
    p = sdat.shape[0]
    finite = np.isfinite(sdat)
    n = finite.sum(axis=1).astype(np.float64)
    x = np.where(finite, sdat, 0.0)
    # log L(i | k) = -n_i/2 log(2 pi d_k) - sum_s (x_is - g_k)^2 / (2 d_k)
    #              = n_i * A_k + sum(x_i) * B_k + sum(x_i^2) * C_k: one matrix product
    stats = np.column_stack([n, x.sum(axis=1), (x * x).sum(axis=1)])
    coefs = np.vstack(
        [
            -0.5 * np.log(2.0 * math.pi * d_hat) - g_hat**2 / (2.0 * d_hat),
            g_hat / d_hat,
            -0.5 / d_hat,
        ]
    )
    targets = np.column_stack([g_hat, d_hat, np.ones(p)])
    gamma_star = np.empty(p)
    delta_star = np.empty(p)
    for start in range(0, p, _NONPARAM_BLOCK):
        stop = min(p, start + _NONPARAM_BLOCK)
        loglik = stats[start:stop] @ coefs
        idx = np.arange(start, stop)
        loglik[idx - start, idx] = -np.inf  # leave feature i out of its own prior
        loglik -= loglik.max(axis=1, keepdims=True)
        np.exp(loglik, out=loglik)
        weighted = loglik @ targets  # sums of w*g, w*d and w
        gamma_star[start:stop] = weighted[:, 0] / weighted[:, 2]
        delta_star[start:stop] = weighted[:, 1] / weighted[:, 2]
    return gamma_star, delta_star


class ComBat:
    """ComBat harmonization as a fit/transform estimator.

    Parameters
    ----------
    parametric : bool, default True
        Parametric (normal / inverse-gamma priors) or non-parametric empirical Bayes.
    eb : bool, default True
        Shrink the batch estimates with empirical Bayes; False gives location/scale ComBat.
    mean_only : bool, default False
        Adjust batch means only, not variances.
    ref_batch : hashable, optional
        Batch whose samples stay unchanged and to which the others are mapped.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> batch = pd.Series(["a"] * 20 + ["b"] * 20)
    >>> data = pd.DataFrame(rng.normal(size=(40, 3)) + (batch == "b").to_numpy()[:, None] * 2.0)
    >>> out = ComBat().fit_transform(data, batch)
    >>> bool(abs(out[batch == "a"].mean() - out[batch == "b"].mean()).max() < 0.5)
    True
    """

    def __init__(
        self,
        *,
        parametric: bool = True,
        eb: bool = True,
        mean_only: bool = False,
        ref_batch: Any = None,
    ):
        self.parametric = parametric
        self.eb = eb
        self.mean_only = mean_only
        self.ref_batch = ref_batch
        self.params_: ComBatParams | None = None

    @classmethod
    def from_params(cls, params: ComBatParams) -> ComBat:
        """An estimator ready to transform with stored parameters."""
        model = cls(
            parametric="nonparametric" not in params.method,
            eb="location-scale" not in params.method,
            mean_only=params.method.endswith("-mean-only"),
            ref_batch=None
            if params.design.ref_index is None
            else params.design.batches[params.design.ref_index],
        )
        model.params_ = params
        return model

    @property
    def method(self) -> str:
        """Method name as recorded with a harmonized table."""
        names = {True: "combat", False: "combat-nonparametric"}
        name = names[self.parametric] if self.eb else "combat-location-scale"
        return name + ("-mean-only" if self.mean_only else "")

    def fit(
        self, data: pd.DataFrame, batch: pd.Series, covariates: pd.DataFrame | None = None
    ) -> ComBat:
        """Estimate the model on `data` (samples x features)."""
        self._fit(data, batch, covariates)
        return self

    def fit_transform(
        self, data: pd.DataFrame, batch: pd.Series, covariates: pd.DataFrame | None = None
    ) -> pd.DataFrame:
        """Fit on `data` and return it harmonized (the numbers of ``fit(...).transform(...)``)."""
        s, order, bounds, offset = self._fit(data, batch, covariates)
        assert self.params_ is not None
        out = self._adjust(s, bounds, offset)
        result = np.empty_like(out)
        result[order] = out
        ref = self.params_.design.ref_index
        if ref is not None:
            keep = order[bounds[ref] : bounds[ref + 1]]
            result[keep] = data.to_numpy(dtype=np.float64, na_value=np.nan)[keep]
        return pd.DataFrame(result, index=data.index, columns=data.columns, copy=False)

    def _adjust(
        self, s: FloatArray, bounds: npt.NDArray[np.int64], offset: FloatArray
    ) -> FloatArray:
        """Batch-sorted standardized data -> harmonized data, in place on `s`.

        `offset` is ``grand_mean + covariates @ beta`` for the same (batch-sorted) rows.
        """
        params = self.params_
        assert params is not None
        root_v = np.sqrt(params.var_pooled)
        for j in range(len(params.design.batches)):
            block = s[bounds[j] : bounds[j + 1]]
            block -= params.gamma_star[j]
            block *= root_v / np.sqrt(params.delta_star[j])
        s += offset
        return s

    def _fit(
        self, data: pd.DataFrame, batch: pd.Series, covariates: pd.DataFrame | None
    ) -> tuple[FloatArray, npt.NDArray[np.int64], npt.NDArray[np.int64], FloatArray]:
        """Fit; return the standardized data sorted by batch, the order, block bounds, offset.

        The offset is ``grand_mean + covariates @ beta`` per batch-sorted sample.
        """
        y, batch, covariates = _check_inputs(data, batch, covariates)
        design = _encode(batch, covariates, self.ref_batch)
        codes = design.batch_codes(batch)
        x = design.matrix(codes, covariates)
        _check_rank(x, design)
        n_batch = len(design.batches)
        n, p = y.shape
        if self.eb and p < 2:
            raise ValueError("empirical Bayes needs at least 2 features; use eb=False")
        has_nan = bool(np.isnan(y).any())
        mean, var = (np.nanmean, np.nanvar) if has_nan else (np.mean, np.var)
        counts = np.bincount(codes, minlength=n_batch)
        beta = _solve(x, y)
        ref = design.ref_index
        grand_mean = beta[ref] if ref is not None else (counts / n) @ beta[:n_batch]
        # batches as contiguous blocks: no fancy-index copies of the big arrays below
        order = np.argsort(codes, kind="stable")
        bounds = np.concatenate([[0], np.cumsum(counts)])
        ys = y[order]
        xs = x[order]
        resid = xs @ beta
        np.subtract(ys, resid, out=resid)
        np.square(resid, out=resid)
        pooled_rows = resid[bounds[ref] : bounds[ref + 1]] if ref is not None else resid
        var_pooled = np.asarray(mean(pooled_rows, axis=0), dtype=np.float64)
        del pooled_rows
        nonzero = var_pooled[var_pooled > 0]
        var_pooled = np.where(
            var_pooled > 0, var_pooled, np.median(nonzero) if nonzero.size else 1.0
        )
        offset = np.matmul(xs[:, n_batch:], beta[n_batch:], out=resid)  # reuses the buffer
        offset += grand_mean
        s = ys
        s -= offset
        s /= np.sqrt(var_pooled)

        gamma_hat = np.empty((n_batch, p))
        delta_hat = np.empty((n_batch, p))
        for j in range(n_batch):
            block = s[bounds[j] : bounds[j + 1]]
            if has_nan:
                few = np.isfinite(block).sum(axis=0) < 2
                if few.any():
                    bad = data.columns[np.flatnonzero(few)[0]]
                    raise ValueError(
                        f"feature {bad!r} has fewer than 2 non-missing values in batch {design.batches[j]}"
                    )
            gamma_hat[j] = mean(block, axis=0)
            delta_hat[j] = 1.0 if self.mean_only else var(block, axis=0, ddof=1)
        if ref is not None:  # the reference column is the intercept: others are differences
            others = np.arange(n_batch) != ref
            gamma_hat[others] -= gamma_hat[ref]
        delta_hat[delta_hat == 0] = 1.0

        if not self.eb:
            gamma_star, delta_star = gamma_hat.copy(), delta_hat.copy()
        else:
            gamma_star, delta_star = self._empirical_bayes(s, bounds, gamma_hat, delta_hat, has_nan)
        if ref is not None:
            gamma_star[ref] = 0.0
            delta_star[ref] = 1.0
        self.params_ = ComBatParams(
            features=[str(c) for c in data.columns],
            design=design,
            beta=beta,
            grand_mean=np.asarray(grand_mean, dtype=np.float64),
            var_pooled=var_pooled,
            gamma_star=gamma_star,
            delta_star=delta_star,
            method=self.method,
        )
        return s, order, bounds, offset

    def _empirical_bayes(
        self,
        s: FloatArray,
        bounds: npt.NDArray[np.int64],
        gamma_hat: FloatArray,
        delta_hat: FloatArray,
        has_nan: bool,
    ) -> tuple[FloatArray, FloatArray]:
        n_batch = gamma_hat.shape[0]
        gamma_star = np.empty_like(gamma_hat)
        delta_star = np.empty_like(delta_hat)
        for j in range(n_batch):
            block = s[bounds[j] : bounds[j + 1]].T  # features x samples (a view)
            if not self.parametric:
                gamma_star[j], delta_star[j] = _int_eprior(block, gamma_hat[j], delta_hat[j])
                continue
            g_bar = float(np.mean(gamma_hat[j]))
            t2 = float(np.var(gamma_hat[j], ddof=1))
            if self.mean_only:
                gamma_star[j] = (t2 * gamma_hat[j] + g_bar) / (t2 + 1.0)  # postmean with n = d = 1
                delta_star[j] = 1.0
                continue
            m, s2 = float(np.mean(delta_hat[j])), float(np.var(delta_hat[j], ddof=1))
            a_prior = (2 * s2 + m**2) / s2
            b_prior = (m * s2 + m**3) / s2
            gamma_star[j], delta_star[j] = _it_sol(
                block, gamma_hat[j], delta_hat[j], g_bar, t2, a_prior, b_prior, has_nan=has_nan
            )
        return gamma_star, delta_star

    def transform(
        self, data: pd.DataFrame, batch: pd.Series, covariates: pd.DataFrame | None = None
    ) -> pd.DataFrame:
        """Harmonize samples of seen batches with the fitted parameters.

        Raises
        ------
        ValueError
            Not fitted, other features, an unknown batch or covariate level.
        """
        if self.params_ is None:
            raise ValueError("ComBat is not fitted; call fit() first")
        params = self.params_
        if [str(c) for c in data.columns] != params.features:
            raise ValueError("data must have the fitted features, in the same order")
        y, batch, covariates = _check_inputs(data, batch, covariates)
        codes = params.design.batch_codes(batch)
        n_batch = len(params.design.batches)
        cov = params.design.covariate_matrix(covariates, len(codes))
        mod_mean = cov @ params.beta[n_batch:]
        s = (y - params.grand_mean - mod_mean) / np.sqrt(params.var_pooled)
        adjusted = (s - params.gamma_star[codes]) / np.sqrt(params.delta_star[codes])
        out = adjusted * np.sqrt(params.var_pooled) + params.grand_mean + mod_mean
        ref = params.design.ref_index
        if ref is not None:
            keep = codes == ref
            out[keep] = y[keep]
        return pd.DataFrame(out, index=data.index, columns=data.columns)


def combat(
    data: pd.DataFrame,
    batch: pd.Series,
    covariates: pd.DataFrame | None = None,
    ref_batch: Any = None,
    parametric: bool = True,
    eb: bool = True,
    mean_only: bool = False,
) -> pd.DataFrame:
    """Harmonize `data` across batches with ComBat, preserving the effects of `covariates`.

    Parameters
    ----------
    data : pandas.DataFrame
        Samples x features; NaN allowed (masked per feature, kept as NaN).
    batch : pandas.Series
        Batch (scanner) of each sample, on the index of `data`.
    covariates : pandas.DataFrame, optional
        Biological effects to preserve, on the same index. Numeric columns are continuous;
        text, categorical and boolean columns are categorical (first sorted level dropped).
    ref_batch : hashable, optional
        Reference batch: its samples are returned unchanged.
    parametric : bool, default True
        Parametric or non-parametric empirical Bayes.
    eb : bool, default True
        Empirical Bayes shrinkage; False gives location/scale adjustment.
    mean_only : bool, default False
        Adjust means only.

    Returns
    -------
    pandas.DataFrame
        Harmonized data, same shape, index and columns.

    Raises
    ------
    ValueError
        See the module docstring.

    References
    ----------
    Johnson WE, Li C, Rabinovic A. Adjusting batch effects in microarray expression data using
    empirical Bayes methods. Biostatistics 2007;8:118-127.
    Fortin J-P et al. Harmonization of cortical thickness measurements across scanners and
    sites. NeuroImage 2018;167:104-120.
    """
    model = ComBat(parametric=parametric, eb=eb, mean_only=mean_only, ref_batch=ref_batch)
    return model.fit_transform(data, batch, covariates)


def moment_match(
    y: pd.DataFrame | pd.Series, batch: pd.Series, g: pd.Series | None = None, *, target: Any
) -> pd.DataFrame | pd.Series:
    """Map every batch onto the `target` batch's mean and spread, keeping the genotype effect.

    ``y_harm = (mu_A + g theta) + (y - (mu_B + g theta)) / sigma_B * sigma_A`` for a sample of
    batch B and target A, where ``mu_b`` and the common effect ``theta`` of `g` come from least
    squares on ``y ~ batch + g`` and ``sigma_b`` is the residual standard deviation (ddof = 1)
    within batch b. Samples of the target batch are unchanged. Vectorized over columns.

    Parameters
    ----------
    y : pandas.DataFrame or Series
        Samples x features (or one feature).
    batch : pandas.Series
        Batch of each sample, same index.
    g : pandas.Series, optional
        Numeric or boolean genotype (or other covariate) whose effect is preserved.
    target : hashable
        The batch the others are mapped to.

    Returns
    -------
    pandas.DataFrame or Series
        Same shape as `y`.

    Raises
    ------
    ValueError
        Unknown target, a batch with fewer than 2 samples, or missing values.
    """
    frame = y.to_frame() if isinstance(y, pd.Series) else y
    values, batch, _ = _check_inputs(frame, batch, None)
    if np.isnan(values).any():
        raise ValueError("moment matching needs complete data; drop or impute missing values first")
    batches = sorted(pd.unique(batch), key=lambda b: (str(type(b)), b))
    if target not in batches:
        raise ValueError(f"target batch {target!r} is not among the batches {batches}")
    counts = batch.value_counts()
    lonely = [str(b) for b in batches if counts[b] < 2]
    if lonely:
        raise ValueError(f"batch(es) {', '.join(lonely)} have a single sample")
    codes = np.array([batches.index(b) for b in batch])
    onehot = np.eye(len(batches))[codes]
    gvec = np.zeros(len(batch)) if g is None else pd.Series(g).astype(float).to_numpy()
    if g is not None and not pd.Series(g).index.equals(frame.index):
        raise ValueError("g must be a Series on the same index as y")
    x = np.column_stack([onehot, gvec]) if g is not None else onehot
    if np.linalg.matrix_rank(x) < x.shape[1]:
        raise ValueError("the genotype is collinear with batch: its effect cannot be estimated")
    coef, *_ = np.linalg.lstsq(x, values, rcond=None)
    mu = coef[: len(batches)]
    theta = coef[len(batches)] if g is not None else np.zeros(values.shape[1])
    resid = values - x @ coef
    sigma = np.vstack([resid[codes == j].std(axis=0, ddof=1) for j in range(len(batches))])
    t = batches.index(target)
    effect = gvec[:, None] * theta[None, :]
    out = (mu[t] + effect) + (values - (mu[codes] + effect)) / sigma[codes] * sigma[t]
    out[codes == t] = values[codes == t]
    result = pd.DataFrame(out, index=frame.index, columns=frame.columns)
    return result.iloc[:, 0] if isinstance(y, pd.Series) else result
