"""Bayes inference for radiogenomics: voxel thresholds with a purity prior and genotype posteriors.

Two uses of Bayes' theorem:

- **Voxel classification.** Voxel intensities of tumour (T) and normal tissue (N) are modelled
  as ``N(mu_t, sigma^2)`` and ``N(mu_n, sigma^2)`` with a shared variance, and the tumour
  purity ``p`` (fraction of tumour voxels in the ROI) is the prior ``P(T)``. The threshold that
  minimises the expected misclassification rate is closed form (:func:`optimal_threshold`);
  :func:`segment` applies it voxel-wise (NumPy, Dask chunk by chunk, or xarray), and
  :func:`fit_two_class` estimates ``mu_t, mu_n, sigma, p`` from an ROI by EM.
- **Genotype from imaging.** ``P(G | F) = P(F | G) P(G) / P(F)`` (:func:`posterior`), and the
  prior-shift correction of a fitted classifier's probabilities to the prevalence of the
  cohort it is applied to (:func:`posterior_from_model`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import dask.array as da
import numpy as np
import numpy.typing as npt
from scipy import special

from radgen.errors import EmptyRoiError, InputError

__all__ = [
    "TwoClassFit",
    "fit_two_class",
    "optimal_threshold",
    "posterior",
    "posterior_from_model",
    "segment",
]

_Image = TypeVar("_Image")


def _check_class_parameters(mu_t: float, mu_n: float, sigma: float, purity: float) -> None:
    for name, value in (("mu_t", mu_t), ("mu_n", mu_n), ("sigma", sigma), ("purity", purity)):
        if not math.isfinite(value):
            raise InputError(name, f"must be a finite number, got {value!r}")
    if sigma <= 0:
        raise InputError("sigma", f"must be > 0, got {sigma!r}")
    if not 0.0 < purity < 1.0:
        raise InputError(
            "purity",
            f"must be strictly between 0 and 1, got {purity!r} "
            "(with purity 0 or 1 every voxel belongs to one class and there is no threshold)",
        )
    if mu_t == mu_n:
        raise InputError(
            "mu_t", f"equals mu_n ({mu_t!r}): the two classes cannot be told apart by intensity"
        )


def optimal_threshold(mu_t: float, mu_n: float, sigma: float, purity: float) -> float:
    """Bayes-optimal intensity threshold between tumour and normal voxels.

    With ``x | T ~ N(mu_t, sigma^2)``, ``x | N ~ N(mu_n, sigma^2)`` and prior ``P(T) = p``
    (the tumour purity), ``p f_T(x) = (1 - p) f_N(x)`` at

        ``t = (mu_t + mu_n) / 2 + sigma^2 / (mu_t - mu_n) * ln((1 - p) / p)``.

    A voxel is called tumour when ``x > t`` if ``mu_t > mu_n`` and when ``x < t`` if
    ``mu_t < mu_n``; this rule minimises the Bayes error
    ``p P(miss T) + (1 - p) P(false T)``.

    Parameters
    ----------
    mu_t, mu_n : float
        Mean intensity of tumour and of normal voxels.
    sigma : float
        Shared standard deviation (> 0).
    purity : float
        Prior probability that a voxel is tumour, in the open interval (0, 1).

    Returns
    -------
    float
        The threshold ``t``.

    Raises
    ------
    InputError
        ``purity`` is 0, 1 or outside (0, 1), ``mu_t == mu_n``, ``sigma <= 0``, or a value is
        not finite.

    Examples
    --------
    >>> optimal_threshold(100.0, 60.0, 10.0, 0.5)
    80.0
    >>> round(optimal_threshold(100.0, 60.0, 10.0, 0.2), 4)  # rarer tumour: stricter cut
    83.4657
    """
    mu_t, mu_n, sigma, purity = float(mu_t), float(mu_n), float(sigma), float(purity)
    _check_class_parameters(mu_t, mu_n, sigma, purity)
    return (mu_t + mu_n) / 2.0 + sigma**2 / (mu_t - mu_n) * math.log((1.0 - purity) / purity)


def _classify_block(
    block: npt.NDArray[Any], threshold: float, tumour_is_higher: bool
) -> npt.NDArray[np.bool_]:
    with np.errstate(invalid="ignore"):
        out = block > threshold if tumour_is_higher else block < threshold
    return np.asarray(out, dtype=bool)


def segment(image: _Image, mu_t: float, mu_n: float, sigma: float, purity: float) -> _Image:
    """Label each voxel tumour (``True``) or normal by the Bayes-optimal threshold.

    ``tumour = x > t`` when ``mu_t > mu_n``, ``tumour = x < t`` otherwise, with ``t`` from
    :func:`optimal_threshold`. NaN voxels are labelled ``False``.

    Parameters
    ----------
    image : numpy.ndarray, dask.array.Array or xarray.DataArray
        Intensities, any shape.
    mu_t, mu_n, sigma, purity : float
        Class parameters, as in :func:`optimal_threshold`.

    Returns
    -------
    same kind as `image`
        Boolean mask. A Dask input gives a lazy Dask array with the same chunks (computed
        chunk by chunk with ``map_blocks``); an xarray input keeps its coordinates.

    Raises
    ------
    InputError
        The class parameters are invalid (see :func:`optimal_threshold`) or `image` is not
        numeric.
    """
    threshold = optimal_threshold(mu_t, mu_n, sigma, purity)
    higher = mu_t > mu_n
    data: Any = getattr(image, "data", None) if _is_xarray(image) else image
    if isinstance(data, da.Array):
        if not np.issubdtype(data.dtype, np.number):
            raise InputError("image", f"must be numeric, got dtype {data.dtype}")
        labels: Any = da.map_blocks(
            _classify_block,
            data,
            threshold,
            higher,
            dtype=bool,
            meta=np.empty((0,) * data.ndim, bool),
        )
    else:
        arr = np.asarray(data)
        if not np.issubdtype(arr.dtype, np.number):
            raise InputError("image", f"must be numeric, got dtype {arr.dtype}")
        labels = _classify_block(arr, threshold, higher)
    if _is_xarray(image):
        return image.copy(data=labels)  # type: ignore[attr-defined, no-any-return]
    return labels  # type: ignore[no-any-return]


def _is_xarray(obj: object) -> bool:
    return type(obj).__module__.startswith("xarray.") and hasattr(obj, "dims")


@dataclass(frozen=True)
class TwoClassFit:
    """Parameters of a two-Gaussian mixture with shared variance fitted to an ROI.

    Attributes
    ----------
    mu_t, mu_n : float
        Tumour and normal class means.
    sigma : float
        Shared standard deviation.
    purity : float
        Mixing weight of the tumour class (fraction of ROI voxels that are tumour).
    n_iter : int
        EM iterations run for the retained start.
    converged : bool
        Whether the log-likelihood change fell below the tolerance before ``max_iter``.
    log_likelihood : float
        Total log-likelihood of the ROI values under the fitted mixture.
    n_voxels : int
        Number of voxels the fit used.
    """

    mu_t: float
    mu_n: float
    sigma: float
    purity: float
    n_iter: int
    converged: bool
    log_likelihood: float
    n_voxels: int

    @property
    def separation(self) -> float:
        """Standardised class separation ``|mu_t - mu_n| / sigma``."""
        return abs(self.mu_t - self.mu_n) / self.sigma

    def threshold(self) -> float:
        """Bayes-optimal threshold for these parameters (:func:`optimal_threshold`)."""
        return optimal_threshold(self.mu_t, self.mu_n, self.sigma, self.purity)


_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


def _mixture_terms(
    x: npt.NDArray[np.float64], w: float, mu_a: float, mu_b: float, sigma: float
) -> tuple[npt.NDArray[np.float64], float]:
    """Responsibility of component a for each value, and the total log-likelihood."""
    la = math.log(w) - 0.5 * ((x - mu_a) / sigma) ** 2
    lb = math.log1p(-w) - 0.5 * ((x - mu_b) / sigma) ** 2
    resp = special.expit(la - lb)
    loglik = float(np.sum(np.logaddexp(la, lb))) - x.size * (math.log(sigma) + _LOG_SQRT_2PI)
    return resp, loglik


def _em(
    x: npt.NDArray[np.float64],
    mu_a: float,
    mu_b: float,
    sigma: float,
    w: float,
    max_iter: int,
    tol: float,
    sigma_floor: float,
) -> tuple[float, float, float, float, float, int, bool]:
    n = x.size
    resp, loglik = _mixture_terms(x, w, mu_a, mu_b, sigma)
    for it in range(1, max_iter + 1):
        na = float(resp.sum())
        nb = n - na
        if na < 1e-9 * n or nb < 1e-9 * n:  # one component emptied: a one-class fit
            return mu_a, mu_b, sigma, min(max(na / n, 0.0), 1.0), -math.inf, it, True
        w = na / n
        mu_a = float(resp @ x) / na
        mu_b = float((1.0 - resp) @ x) / nb
        var = float(resp @ (x - mu_a) ** 2 + (1.0 - resp) @ (x - mu_b) ** 2) / n
        sigma = max(math.sqrt(max(var, 0.0)), sigma_floor)
        resp, new = _mixture_terms(x, w, mu_a, mu_b, sigma)
        if abs(new - loglik) <= tol * (1.0 + abs(new)):
            return mu_a, mu_b, sigma, w, new, it, True
        loglik = new
    return mu_a, mu_b, sigma, w, loglik, max_iter, False


def fit_two_class(
    image: npt.ArrayLike,
    roi: npt.ArrayLike | None = None,
    *,
    tumour: Literal["higher", "lower"] = "higher",
    max_iter: int = 500,
    tol: float = 1e-10,
    min_separation: float = 1.0,
) -> TwoClassFit:
    """Estimate tumour and normal intensity classes in an ROI by EM (shared variance).

    The ROI values are modelled as ``p N(mu_t, sigma^2) + (1 - p) N(mu_n, sigma^2)``. EM
    alternates the responsibilities
    ``r_i = p f_T(x_i) / (p f_T(x_i) + (1 - p) f_N(x_i))`` with the updates
    ``p = mean(r)``, ``mu_t = sum(r x) / sum(r)``, ``mu_n = sum((1 - r) x) / sum(1 - r)`` and
    ``sigma^2 = [sum r (x - mu_t)^2 + sum (1 - r)(x - mu_n)^2] / n``, from several quantile
    starts; the start with the highest log-likelihood is kept.

    The fit is refused when the classes are not separable: when the two-class model does
    not beat a single Gaussian by the BIC (log-likelihood gain ``<= ln(n)`` for its two extra
    parameters), or when ``|mu_t - mu_n| / sigma < min_separation``.

    Parameters
    ----------
    image : array_like
        Intensities (NumPy, Dask or xarray; Dask is computed).
    roi : array_like of bool, optional
        Voxels to use, same shape as `image`; default all voxels.
    tumour : {"higher", "lower"}
        Which class is tumour: the one with the higher mean (e.g. contrast enhancement) or the
        lower one (e.g. restricted diffusion on ADC).
    max_iter : int
        EM iteration limit per start.
    tol : float
        Convergence tolerance on the relative change of the log-likelihood.
    min_separation : float
        Smallest accepted ``|mu_t - mu_n| / sigma``.

    Returns
    -------
    TwoClassFit
        ``mu_t, mu_n, sigma, purity`` (tumour mixing weight), ``n_iter, converged,
        log_likelihood, n_voxels``.

    Raises
    ------
    EmptyRoiError
        The ROI selects no voxel.
    InputError
        Shapes differ, the ROI has non-finite values or fewer than 10 voxels, all values are
        equal, or the two classes cannot be separated.
    """
    values = np.asarray(image, dtype=float)
    if roi is not None:
        mask = np.asarray(roi)
        if mask.shape != values.shape:
            raise InputError("roi", f"shape {mask.shape} differs from image shape {values.shape}")
        values = values[mask.astype(bool)]
    x = values.ravel()
    if x.size == 0:
        raise EmptyRoiError("roi", "selects no voxel")
    bad = int(np.count_nonzero(~np.isfinite(x)))
    if bad:
        raise InputError("image", f"{bad} ROI voxel(s) are NaN or infinite")
    if x.size < 10:
        raise InputError("roi", f"has {x.size} voxel(s); a two-class fit needs at least 10")
    if tumour not in ("higher", "lower"):
        raise InputError("tumour", f"must be 'higher' or 'lower', got {tumour!r}")
    if max_iter < 1:
        raise InputError("max_iter", f"must be >= 1, got {max_iter}")
    sd = float(np.std(x))
    if sd <= 1e-12 * max(1.0, float(np.max(np.abs(x)))):
        raise InputError("image", "all ROI voxels have the same value: no second class to fit")
    n = x.size
    loglik_one = -0.5 * n * (1.0 + math.log(2.0 * math.pi * sd**2))
    q = np.quantile(x, [0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95])
    starts = [(q[4], q[2], 0.5), (q[5], q[1], 0.5), (q[6], q[3], 0.25), (q[3], q[0], 0.75)]
    best: tuple[float, float, float, float, float, int, bool] | None = None
    for hi, lo, w0 in starts:
        res = _em(x, float(hi), float(lo), sd / 2.0, w0, max_iter, tol, 1e-6 * sd)
        if best is None or res[4] > best[4]:
            best = res
    assert best is not None
    mu_a, mu_b, sigma, w, loglik, n_iter, converged = best
    if not math.isfinite(loglik) or loglik - loglik_one <= math.log(n):
        raise InputError(
            "roi",
            "the intensities look like one class: a two-Gaussian mixture does not fit better "
            "than one Gaussian (BIC), so tumour and normal cannot be separated",
        )
    if mu_a < mu_b:
        mu_a, mu_b, w = mu_b, mu_a, 1.0 - w
    separation = (mu_a - mu_b) / sigma
    if separation < min_separation:
        raise InputError(
            "roi",
            f"the two classes overlap too much to separate (|mu_t - mu_n| / sigma = "
            f"{separation:.2f} < {min_separation})",
        )
    if tumour == "higher":
        mu_t, mu_n, purity = mu_a, mu_b, w
    else:
        mu_t, mu_n, purity = mu_b, mu_a, 1.0 - w
    return TwoClassFit(
        mu_t=mu_t,
        mu_n=mu_n,
        sigma=sigma,
        purity=purity,
        n_iter=n_iter,
        converged=converged,
        log_likelihood=loglik,
        n_voxels=n,
    )


def _probabilities(name: str, value: npt.ArrayLike) -> npt.NDArray[np.float64]:
    arr = np.asarray(value, dtype=float)
    bad = ~((arr >= 0.0) & (arr <= 1.0))  # NaN fails both comparisons
    if bad.any():
        first = arr[bad].ravel()[0]
        raise InputError(
            name, f"{int(bad.sum())} value(s) outside [0, 1] or NaN (first: {first!r})"
        )
    return arr


def posterior(
    prior: npt.ArrayLike, p_f_given_g: npt.ArrayLike, p_f_given_not_g: npt.ArrayLike
) -> npt.NDArray[np.float64]:
    """Posterior ``P(G | F)`` by Bayes' theorem, element-wise with broadcasting.

    ``P(G | F) = P(F | G) P(G) / [P(F | G) P(G) + P(F | not G) (1 - P(G))]``.

    Parameters
    ----------
    prior : array_like
        ``P(G)``, e.g. the prevalence of a genotype, in [0, 1].
    p_f_given_g : array_like
        ``P(F | G)``, e.g. the sensitivity of an imaging finding, in [0, 1].
    p_f_given_not_g : array_like
        ``P(F | not G)``, e.g. ``1 - specificity``, in [0, 1].

    Returns
    -------
    ndarray
        ``P(G | F)`` with the broadcast shape of the inputs (0-d for scalars).

    Raises
    ------
    InputError
        A value is outside [0, 1] or NaN, the shapes do not broadcast, or ``P(F) = 0`` (the
        finding is impossible under both hypotheses, so the posterior is undefined).

    Examples
    --------
    >>> float(posterior(0.01, 0.9, 0.05))  # rare genotype, good test
    0.15384615384615385
    """
    pg = _probabilities("prior", prior)
    a = _probabilities("p_f_given_g", p_f_given_g)
    b = _probabilities("p_f_given_not_g", p_f_given_not_g)
    try:
        pg, a, b = np.broadcast_arrays(pg, a, b)
    except ValueError as err:
        raise InputError("posterior", f"input shapes do not broadcast: {err}") from err
    num = a * pg
    den = num + b * (1.0 - pg)
    zero = den <= 0.0
    if zero.any():
        raise InputError(
            "p_f_given_g",
            f"P(F) = 0 for {int(zero.sum())} element(s): the finding is impossible under both "
            "hypotheses there, so P(G | F) is undefined",
        )
    return np.asarray(num / den, dtype=float)


def posterior_from_model(
    model: Any,
    X: npt.ArrayLike,
    prevalence: float,
    training_prevalence: float | None = None,
    *,
    positive_class: Any = None,
) -> npt.NDArray[np.float64]:
    """``P(G | F)`` for each subject from a fitted classifier, re-calibrated to a cohort prevalence.

    A probabilistic classifier trained where the positive class had prevalence ``pi_train``
    outputs ``q = P_train(G | F)``. Its likelihood ratio is the posterior odds divided by the
    training prior odds, ``LR = [q / (1 - q)] / [pi_train / (1 - pi_train)]``, and the posterior
    at the cohort prevalence ``pi`` follows from the odds form of Bayes' theorem
    (prior-shift correction):

        ``P(G | F) = pi q (1 - pi_train) / [pi q (1 - pi_train) + (1 - pi) (1 - q) pi_train]``.

    Parameters
    ----------
    model : fitted binary classifier
        Anything with ``predict_proba`` and ``classes_`` (scikit-learn API).
    X : array_like
        Imaging features, one row per subject.
    prevalence : float
        Prevalence ``pi`` of the positive class in the cohort, in (0, 1).
    training_prevalence : float, optional
        Prevalence ``pi_train`` in the model's training data, in (0, 1). Default: the model's
        own record of it (``priors_`` of discriminant analysis, ``class_prior_`` of naive
        Bayes); other models need it passed.
    positive_class : optional
        Label of the genotype-positive class; default the last of ``model.classes_``
        (``1`` or ``True`` for 0/1 labels).

    Returns
    -------
    ndarray
        ``P(G | F)`` per row of `X`.

    Raises
    ------
    InputError
        The model is not a fitted binary classifier, a prevalence is outside (0, 1) or missing,
        or the model returns probabilities outside [0, 1].
    """
    classes = getattr(model, "classes_", None)
    if classes is None or not hasattr(model, "predict_proba"):
        raise InputError("model", "needs a fitted classifier with predict_proba and classes_")
    labels = list(np.asarray(classes).tolist())
    if len(labels) != 2:
        raise InputError("model", f"must be a binary classifier, it has classes {labels}")
    pos = labels[-1] if positive_class is None else positive_class
    if pos not in labels:
        raise InputError("positive_class", f"{pos!r} is not one of the model's classes {labels}")
    index = labels.index(pos)
    if not (math.isfinite(prevalence) and 0.0 < prevalence < 1.0):
        raise InputError("prevalence", f"must be strictly between 0 and 1, got {prevalence!r}")
    if training_prevalence is None:
        recorded = getattr(model, "priors_", None)
        if recorded is None:
            recorded = getattr(model, "class_prior_", None)
        if recorded is None:
            raise InputError(
                "training_prevalence",
                f"{type(model).__name__} does not record its training class balance; pass the "
                "positive-class prevalence of its training data",
            )
        training_prevalence = float(np.asarray(recorded, dtype=float)[index])
    pi_train = float(training_prevalence)
    if not (math.isfinite(pi_train) and 0.0 < pi_train < 1.0):
        raise InputError(
            "training_prevalence", f"must be strictly between 0 and 1, got {pi_train!r}"
        )
    proba = np.asarray(model.predict_proba(X), dtype=float)
    if proba.ndim != 2 or proba.shape[1] != 2:
        raise InputError("model", f"predict_proba returned shape {proba.shape}, expected (n, 2)")
    q = _probabilities("model.predict_proba", proba[:, index])
    num = prevalence * q * (1.0 - pi_train)
    return np.asarray(num / (num + (1.0 - prevalence) * (1.0 - q) * pi_train), dtype=float)
