"""Entropy calibration: discrete entropy of binned intensities versus differential entropy.

Quantising a continuous intensity ``Z`` with density ``f`` into bins of width ``w`` gives a
discrete variable ``Q`` whose Shannon entropy satisfies, for small ``w``,

    ``H(Q) ~ h(Z) - ln w``,

with ``h(Z) = -integral f ln f`` the differential entropy (Cover & Thomas, Elements of
Information Theory, Theorem 8.3.1). Radiomic histogram entropy therefore depends on the bin
width by ``-ln w``; :func:`bin_width_for_entropy` inverts the relation to choose ``w`` for a
target entropy, so entropies are comparable across images. All entropies are in nats.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from radgen.errors import InputError

__all__ = ["bin_width_for_entropy", "differential_entropy", "discrete_entropy", "vasicek_window"]


def _values(values: npt.ArrayLike) -> npt.NDArray[np.float64]:
    x = np.asarray(values, dtype=float).ravel()
    if x.size == 0:
        raise InputError("values", "is empty")
    bad = int(np.count_nonzero(~np.isfinite(x)))
    if bad:
        raise InputError("values", f"{bad} value(s) are NaN or infinite")
    return x


def discrete_entropy(values: npt.ArrayLike, width: float, *, origin: float | None = None) -> float:
    """Shannon entropy (nats) of values quantised into bins of a fixed width.

    Bin index ``b_i = floor((x_i - origin) / w)``; with ``p_k`` the fraction of values in bin
    ``k``, ``H(Q) = -sum_k p_k ln p_k`` (the plug-in estimate; empty bins contribute 0).

    Parameters
    ----------
    values : array_like
        Intensities (any shape, flattened).
    width : float
        Bin width ``w > 0``.
    origin : float, optional
        Lower edge of bin 0; default the minimum value (the IBSI fixed-bin-size rule), which
        makes the result invariant to shifting the values.

    Returns
    -------
    float
        ``H(Q)`` in nats, between 0 and ``ln(n)``.

    Raises
    ------
    InputError
        `values` is empty or not finite, or `width` is not a positive finite number.

    Examples
    --------
    >>> round(discrete_entropy([0.0, 0.5, 1.0, 1.5], width=1.0), 6)  # two bins of two: ln 2
    0.693147
    """
    x = _values(values)
    if not (math.isfinite(width) and width > 0):
        raise InputError("width", f"must be a positive finite number, got {width!r}")
    lower = float(np.min(x)) if origin is None else float(origin)
    if not math.isfinite(lower):
        raise InputError("origin", f"must be finite, got {origin!r}")
    bins = np.floor((x - lower) / width)
    _, counts = np.unique(bins, return_counts=True)
    p = counts / x.size
    return float(max(-np.sum(p * np.log(p)), 0.0))


def vasicek_window(n: int) -> int:
    """Default Vasicek window ``m = floor(sqrt(n) + 0.5)`` (``sqrt(n)`` rounded half up).

    This is the rule of :func:`scipy.stats.differential_entropy`.

    Parameters
    ----------
    n : int
        Sample size.

    Returns
    -------
    int
        The window half-width ``m``.
    """
    return math.floor(math.sqrt(n) + 0.5)


def differential_entropy(values: npt.ArrayLike, *, window: int | None = None) -> float:
    """Vasicek (1976) spacing estimate of the differential entropy ``h(Z)`` in nats.

    With order statistics ``X_(1) <= ... <= X_(n)`` and window ``m``,

        ``h = (1/n) sum_{i=1}^{n} ln( n / (2m) (X_(i+m) - X_(i-m)) )``,

    where ``X_(j) = X_(1)`` for ``j < 1`` and ``X_(j) = X_(n)`` for ``j > n`` (the usual
    boundary rule). The default ``m = floor(sqrt(n) + 0.5)`` (:func:`vasicek_window`). The
    estimator is consistent and biased low for small ``n``.

    Parameters
    ----------
    values : array_like
        Sample of a continuous variable (any shape, flattened).
    window : int, optional
        Window half-width ``m``, ``1 <= m < n / 2``.

    Returns
    -------
    float
        The estimate of ``h(Z)``.

    Raises
    ------
    InputError
        Fewer than 5 values (default window), a window outside ``[1, n/2)``, non-finite
        values, or ties spanning a whole window (a zero spacing makes the estimate ``-inf``:
        the values look discrete, e.g. already binned).
    """
    x = np.sort(_values(values))
    n = x.size
    m = vasicek_window(n) if window is None else int(window)
    if not 1 <= m < n / 2:
        raise InputError(
            "values" if window is None else "window",
            f"the Vasicek window m = {m} must satisfy 1 <= m < n/2 with n = {n} values"
            + (" (the default window needs at least 5 values)" if window is None else ""),
        )
    padded = np.concatenate([np.full(m, x[0]), x, np.full(m, x[-1])])
    spacings = padded[2 * m :] - padded[: -2 * m]
    zero = int(np.count_nonzero(spacings <= 0))
    if zero:
        raise InputError(
            "values",
            f"{zero} window spacing(s) are zero (ties across {2 * m} order statistics): the "
            "data look discrete, and the differential entropy estimate would be -inf",
        )
    return float(np.mean(np.log(n / (2.0 * m) * spacings)))


def bin_width_for_entropy(values: npt.ArrayLike, target_entropy: float) -> float:
    """Bin width at which binned values have a target discrete entropy.

    Solves ``H(Q) ~ h(Z) - ln w`` for ``w``: ``w = exp(h(Z) - H_target)``, with ``h(Z)``
    from :func:`differential_entropy`. The approximation holds when bins are narrow compared
    with the distribution's features yet hold several values each, i.e. for targets well
    below ``ln(n)``, the largest entropy ``n`` values can show.

    Parameters
    ----------
    values : array_like
        Intensities of the ROI (at least 5, continuous).
    target_entropy : float
        Desired ``H(Q)`` in nats, ``0 < H_target < ln(n)``.

    Returns
    -------
    float
        The bin width ``w``.

    Raises
    ------
    InputError
        The target is not in ``(0, ln n)``, or the differential entropy cannot be estimated
        (see :func:`differential_entropy`).
    """
    x = _values(values)
    if not (math.isfinite(target_entropy) and 0.0 < target_entropy < math.log(x.size)):
        raise InputError(
            "target_entropy",
            f"must be between 0 and ln(n) = {math.log(x.size):.4g} nats for n = {x.size} "
            f"values, got {target_entropy!r}",
        )
    return math.exp(differential_entropy(x) - target_entropy)
