"""Biopsy planning: the chance that n biopsies catch a spatially localised clone.

Model. A fraction ``e`` of the tumour volume is *enriched* (E) for a clone; an imaging map
calls voxels S+ or S- with sensitivity ``se = P(S+ | E)`` and specificity
``sp = P(S- | not E)``. The clone is present in a biopsy core with probability ``c_E`` inside
enriched regions and ``c_N`` outside. By Bayes' theorem

    ``P(E | S+) = se e / (se e + (1 - sp)(1 - e))``,
    ``P(E | S-) = (1 - se) e / ((1 - se) e + sp (1 - e))``,

a biopsy placed in a region where ``P(E) = q`` hits with ``h(q) = q c_E + (1 - q) c_N``, and
``n`` independent biopsies with hit probabilities ``h_i`` detect the clone with
``1 - prod_i (1 - h_i)``. Strategies: ``targeted`` (all ``n`` in S+), ``random`` (uniform over
the tumour, ``q = e``) and ``hedged`` (``k`` in S+, ``n - k`` in S-).

:func:`plan` places biopsies on a voxel-wise probability map (e.g. the posterior of a
radiogenomic classifier) by greedy non-maximum suppression under a minimum distance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, NamedTuple

import numpy as np
import numpy.typing as npt

from radgen.errors import InputError

__all__ = [
    "BiopsyPlan",
    "SimulationResult",
    "best_split",
    "detection_probability",
    "hit_probability",
    "p_enriched_given_negative",
    "p_enriched_given_positive",
    "plan",
    "simulate",
]

Strategy = Literal["targeted", "random", "hedged"]
_STRATEGIES = ("targeted", "random", "hedged")


def _probability(name: str, value: float) -> float:
    v = float(value)
    if not (math.isfinite(v) and 0.0 <= v <= 1.0):
        raise InputError(name, f"must be a probability in [0, 1], got {value!r}")
    return v


def p_enriched_given_positive(e: float, se: float, sp: float) -> float:
    """Probability that an S+ voxel is enriched: ``se e / (se e + (1 - sp)(1 - e))``.

    Parameters
    ----------
    e : float
        Volume fraction of enriched regions, ``P(E)``.
    se : float
        Map sensitivity ``P(S+ | E)``.
    sp : float
        Map specificity ``P(S- | not E)``.

    Returns
    -------
    float
        ``P(E | S+)``.

    Raises
    ------
    InputError
        A value is outside [0, 1], or ``P(S+) = 0`` (the map calls no voxel S+).

    Examples
    --------
    >>> round(p_enriched_given_positive(0.2, 0.8, 0.9), 4)
    0.6667
    """
    e, se, sp = _probability("e", e), _probability("se", se), _probability("sp", sp)
    den = se * e + (1.0 - sp) * (1.0 - e)
    if den <= 0.0:
        raise InputError("se", "P(S+) = se e + (1 - sp)(1 - e) is 0: the map calls no voxel S+")
    return se * e / den


def p_enriched_given_negative(e: float, se: float, sp: float) -> float:
    """Probability that an S- voxel is enriched: ``(1 - se) e / ((1 - se) e + sp (1 - e))``.

    Parameters
    ----------
    e, se, sp : float
        As in :func:`p_enriched_given_positive`.

    Returns
    -------
    float
        ``P(E | S-)``.

    Raises
    ------
    InputError
        A value is outside [0, 1], or ``P(S-) = 0`` (the map calls no voxel S-).
    """
    e, se, sp = _probability("e", e), _probability("se", se), _probability("sp", sp)
    den = (1.0 - se) * e + sp * (1.0 - e)
    if den <= 0.0:
        raise InputError("sp", "P(S-) = (1 - se) e + sp (1 - e) is 0: the map calls no voxel S-")
    return (1.0 - se) * e / den


def hit_probability(p_enriched: float, c_e: float, c_n: float) -> float:
    """Probability that one biopsy contains the clone: ``q c_E + (1 - q) c_N``.

    Parameters
    ----------
    p_enriched : float
        ``q``, the probability that the biopsied voxel is enriched (``P(E | S+)`` for a
        targeted core, ``P(E | S-)`` for a core in S-, ``e`` for a random one).
    c_e, c_n : float
        Clone prevalence inside and outside enriched regions.

    Returns
    -------
    float
        The hit probability.

    Raises
    ------
    InputError
        A value is outside [0, 1].
    """
    q = _probability("p_enriched", p_enriched)
    return q * _probability("c_e", c_e) + (1.0 - q) * _probability("c_n", c_n)


def _check_counts(strategy: str, n: int, k: int | None) -> int:
    if strategy not in _STRATEGIES:
        raise InputError("strategy", f"must be one of {', '.join(_STRATEGIES)}, got {strategy!r}")
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
        raise InputError("n", f"must be a non-negative integer, got {n!r}")
    if strategy == "hedged":
        if k is None or isinstance(k, bool) or not isinstance(k, int | np.integer):
            raise InputError("k", "the hedged strategy needs k, the number of biopsies in S+")
        if not 0 <= k <= n:
            raise InputError("k", f"must be between 0 and n = {n}, got {k}")
        return int(k)
    if k is not None:
        raise InputError("k", f"applies only to the hedged strategy, not {strategy!r}")
    return int(n) if strategy == "targeted" else 0


def detection_probability(
    strategy: Strategy,
    n: int,
    *,
    e: float,
    se: float,
    sp: float,
    c_e: float,
    c_n: float,
    k: int | None = None,
) -> float:
    """Probability that ``n`` independent biopsies detect the clone.

    ``1 - (1 - h+)^k (1 - h-)^(n - k)`` with ``h+ = h(P(E | S+))``, ``h- = h(P(E | S-))``:
    ``k = n`` for ``targeted``, ``k`` given for ``hedged``; ``random`` is
    ``1 - (1 - h(e))^n`` with ``h(q) = q c_E + (1 - q) c_N``.

    Parameters
    ----------
    strategy : {"targeted", "random", "hedged"}
        Where the biopsies go.
    n : int
        Number of biopsies (>= 0).
    e, se, sp : float
        Enriched volume fraction, map sensitivity and specificity.
    c_e, c_n : float
        Clone prevalence inside and outside enriched regions.
    k : int, optional
        Biopsies in S+ for ``hedged`` (``0 <= k <= n``); not used by the other strategies.

    Returns
    -------
    float
        Detection probability.

    Raises
    ------
    InputError
        Unknown strategy, bad ``n`` or ``k``, a probability outside [0, 1], or a strategy that
        needs an S+ (S-) region when the map has none.

    Examples
    --------
    >>> kw = dict(e=0.2, se=0.8, sp=0.9, c_e=0.9, c_n=0.05)
    >>> round(detection_probability("targeted", 2, **kw), 4)
    0.8531
    >>> round(detection_probability("random", 2, **kw), 4)
    0.3916
    """
    k_pos = _check_counts(strategy, n, k)
    e = _probability("e", e)
    if strategy == "random":
        miss = 1.0 - hit_probability(e, c_e, c_n)
        return 1.0 - miss**n
    miss_pos = (
        1.0 - hit_probability(p_enriched_given_positive(e, se, sp), c_e, c_n) if k_pos else 1.0
    )
    miss_neg = (
        1.0 - hit_probability(p_enriched_given_negative(e, se, sp), c_e, c_n) if n - k_pos else 1.0
    )
    return 1.0 - miss_pos**k_pos * miss_neg ** (n - k_pos)


def best_split(
    n: int, *, e: float, se: float, sp: float, c_e: float, c_n: float
) -> tuple[int, float]:
    """Number of S+ biopsies ``k`` that maximises the hedged detection probability.

    ``argmax_k 1 - (1 - h+)^k (1 - h-)^(n - k)`` over ``k = 0..n`` (the smallest ``k`` on
    ties). Because the objective is monotone in ``k``, the answer is ``n`` whenever
    ``h+ >= h-`` and ``0`` otherwise; it is computed explicitly so that degenerate maps are
    handled by :func:`detection_probability`'s checks.

    Parameters
    ----------
    n : int
        Number of biopsies.
    e, se, sp, c_e, c_n : float
        As in :func:`detection_probability`.

    Returns
    -------
    tuple of (int, float)
        ``k`` and its detection probability.
    """
    _check_counts("hedged", n, 0)
    best: tuple[int, float] | None = None
    for k in range(int(n) + 1):
        try:
            p = detection_probability("hedged", n, e=e, se=se, sp=sp, c_e=c_e, c_n=c_n, k=k)
        except InputError as err:
            if err.path in ("se", "sp") and "calls no voxel" in err.reason:
                continue  # this k needs a region the map does not have
            raise
        if best is None or p > best[1] + 1e-15:
            best = (k, p)
    assert best is not None  # P(S+) + P(S-) = 1, so k = 0 or k = n is always possible
    return best


class SimulationResult(NamedTuple):
    """Monte Carlo estimate of a detection probability.

    Attributes
    ----------
    probability : float
        Fraction of simulated patients whose biopsies caught the clone.
    standard_error : float
        Binomial standard error ``sqrt(p (1 - p) / n_trials)``.
    n_trials : int
        Simulated patients.
    """

    probability: float
    standard_error: float
    n_trials: int


def _draw_enriched(
    rng: np.random.Generator,
    count: int,
    want: Literal["positive", "negative"] | None,
    e: float,
    se: float,
    sp: float,
) -> npt.NDArray[np.bool_]:
    """Enrichment status of ``count`` voxels drawn uniformly, conditioned on the map's call.

    Voxels are generated from the joint model (``E ~ Bernoulli(e)``, then
    ``S+ ~ Bernoulli(se)`` if E else ``Bernoulli(1 - sp)``) and rejected until ``count`` of
    them carry the wanted call, i.e. a uniform draw from the S+ (S-) region.
    """
    out = np.empty(count, dtype=bool)
    filled = 0
    batch = max(2 * count, 1024)
    for _ in range(10_000):
        if filled == count:
            break
        enriched = rng.random(batch) < e
        positive = rng.random(batch) < np.where(enriched, se, 1.0 - sp)
        if want == "positive":
            enriched = enriched[positive]
        elif want == "negative":
            enriched = enriched[~positive]
        take = min(count - filled, enriched.size)
        out[filled : filled + take] = enriched[:take]
        filled += take
    if filled < count:
        raise InputError(
            "se" if want == "positive" else "sp",
            f"the map's {want} region is (almost) empty: no voxel could be drawn from it",
        )
    return out


def simulate(
    strategy: Strategy,
    n: int,
    *,
    e: float,
    se: float,
    sp: float,
    c_e: float,
    c_n: float,
    k: int | None = None,
    n_trials: int = 100_000,
    seed: int | None = 0,
) -> SimulationResult:
    """Monte Carlo of the biopsy model, independent of the closed forms.

    Each simulated patient gets ``n`` biopsy sites: a site is a voxel drawn uniformly from the
    tumour (``random``) or from the S+ / S- region by rejection from the joint model of
    enrichment and map call (``E ~ Bernoulli(e)``, ``P(S+ | E) = se``,
    ``P(S+ | not E) = 1 - sp``). The core contains the clone with probability ``c_E`` or
    ``c_N``; the patient counts as detected when any core does.

    Parameters
    ----------
    strategy, n, e, se, sp, c_e, c_n, k
        As in :func:`detection_probability`.
    n_trials : int
        Simulated patients (>= 1).
    seed : int, optional
        Seed of the NumPy generator (fixed by default, so results are reproducible).

    Returns
    -------
    SimulationResult
        The detection frequency, its binomial standard error and ``n_trials``.

    Raises
    ------
    InputError
        As :func:`detection_probability`, or ``n_trials < 1``.
    """
    k_pos = _check_counts(strategy, n, k)
    e, se, sp = _probability("e", e), _probability("se", se), _probability("sp", sp)
    c_e, c_n = _probability("c_e", c_e), _probability("c_n", c_n)
    if n_trials < 1:
        raise InputError("n_trials", f"must be >= 1, got {n_trials}")
    rng = np.random.default_rng(seed)
    parts = []
    if strategy == "random":
        parts.append(_draw_enriched(rng, n_trials * n, None, e, se, sp).reshape(n_trials, n))
    else:
        if k_pos:
            sites = _draw_enriched(rng, n_trials * k_pos, "positive", e, se, sp)
            parts.append(sites.reshape(n_trials, k_pos))
        if n - k_pos:
            sites = _draw_enriched(rng, n_trials * (n - k_pos), "negative", e, se, sp)
            parts.append(sites.reshape(n_trials, n - k_pos))
    enriched = np.concatenate(parts, axis=1) if parts else np.zeros((n_trials, 0), dtype=bool)
    hit = rng.random(enriched.shape) < np.where(enriched, c_e, c_n)
    p = float(hit.any(axis=1).mean())
    return SimulationResult(p, math.sqrt(p * (1.0 - p) / n_trials), n_trials)


@dataclass(frozen=True)
class BiopsyPlan:
    """Biopsy sites chosen on a probability map.

    Attributes
    ----------
    indices : ndarray of int, shape (n, ndim)
        Voxel indices of the sites, in the order chosen (highest probability first).
    coordinates_mm : ndarray of float, shape (n, ndim)
        ``indices * spacing`` (+ `origin`), in mm, same axis order as the map.
    probabilities : ndarray of float, shape (n,)
        Map value at each site (the hit probability of a core there).
    detection_probability : float
        ``1 - prod_i (1 - p_i)``, assuming independent cores.
    """

    indices: npt.NDArray[np.intp]
    coordinates_mm: npt.NDArray[np.float64]
    probabilities: npt.NDArray[np.float64]
    detection_probability: float


def _ball_offsets(radius_mm: float, spacing: npt.NDArray[np.float64]) -> npt.NDArray[np.intp]:
    """Index offsets closer than ``radius_mm`` to the centre (strictly)."""
    reach = [math.ceil(radius_mm / s) for s in spacing]
    grids = np.meshgrid(*[np.arange(-r, r + 1) for r in reach], indexing="ij")
    offsets = np.stack([g.ravel() for g in grids], axis=1)
    dist2 = ((offsets * spacing) ** 2).sum(axis=1)
    return np.asarray(offsets[dist2 < radius_mm**2], dtype=np.intp)


def plan(
    prob_map: npt.ArrayLike,
    n: int,
    min_distance_mm: float,
    spacing: npt.ArrayLike = (1.0, 1.0, 1.0),
    *,
    mask: npt.ArrayLike | None = None,
    origin: npt.ArrayLike | None = None,
) -> BiopsyPlan:
    """Choose ``n`` biopsy sites on a voxel-wise hit-probability map.

    Greedy non-maximum suppression: take the eligible voxel with the highest probability
    (the first in C order on ties), make every voxel closer than `min_distance_mm` to it
    ineligible, repeat ``n`` times. Sites are thus pairwise at least `min_distance_mm`
    apart (Euclidean, in mm). The plan reports ``1 - prod_i (1 - p_i)``, the detection
    probability if cores at different sites are independent. With isolated peaks (no two
    candidate peaks closer than the minimum distance) the greedy choice is optimal.

    Parameters
    ----------
    prob_map : array_like
        Probability that a core at each voxel contains the clone, in [0, 1]; NaN voxels are
        not eligible (e.g. outside the tumour). Any number of dimensions.
    n : int
        Number of sites (>= 1).
    min_distance_mm : float
        Minimum distance between sites (>= 0).
    spacing : sequence of float
        Voxel size along each axis of `prob_map`, in mm.
    mask : array_like of bool, optional
        Eligible voxels (e.g. the tumour or a reachable region), same shape as `prob_map`.
    origin : sequence of float, optional
        Position of voxel 0 in mm (default zeros).

    Returns
    -------
    BiopsyPlan
        ``indices, coordinates_mm, probabilities, detection_probability``.

    Raises
    ------
    InputError
        Map values outside [0, 1], bad `spacing`, `mask` or `origin`, ``n < 1``, a negative
        distance, or fewer than ``n`` sites fit at the minimum distance.
    """
    p = np.asarray(prob_map, dtype=float)
    if p.ndim == 0 or p.size == 0:
        raise InputError("prob_map", "must be a non-empty array")
    finite = np.isfinite(p)
    outside = finite & ((p < 0.0) | (p > 1.0))
    if outside.any():
        raise InputError("prob_map", f"{int(outside.sum())} value(s) outside [0, 1]")
    if np.isinf(p).any():
        raise InputError("prob_map", "has infinite values")
    step = np.asarray(spacing, dtype=float)
    if step.shape != (p.ndim,) or not (np.isfinite(step).all() and (step > 0).all()):
        raise InputError(
            "spacing", f"needs {p.ndim} positive voxel sizes for a {p.ndim}-D map, got {spacing!r}"
        )
    start = np.zeros(p.ndim) if origin is None else np.asarray(origin, dtype=float)
    if start.shape != (p.ndim,) or not np.isfinite(start).all():
        raise InputError("origin", f"needs {p.ndim} finite coordinates, got {origin!r}")
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise InputError("n", f"must be a positive integer, got {n!r}")
    if not (math.isfinite(min_distance_mm) and min_distance_mm >= 0):
        raise InputError("min_distance_mm", f"must be >= 0, got {min_distance_mm!r}")
    eligible = finite
    if mask is not None:
        m = np.asarray(mask)
        if m.shape != p.shape:
            raise InputError("mask", f"shape {m.shape} differs from prob_map shape {p.shape}")
        eligible = eligible & m.astype(bool)
    work = np.where(eligible, p, -np.inf)
    offsets = _ball_offsets(float(min_distance_mm), step)
    shape = np.asarray(p.shape)
    chosen: list[tuple[int, ...]] = []
    for _ in range(int(n)):
        flat = int(np.argmax(work))
        if not np.isfinite(work.flat[flat]):
            raise InputError(
                "n",
                f"only {len(chosen)} site(s) fit {min_distance_mm} mm apart on the eligible "
                f"voxels, {n} requested",
            )
        site = np.unravel_index(flat, p.shape)
        chosen.append(tuple(int(i) for i in site))
        near = offsets + np.asarray(site)
        near = near[((near >= 0) & (near < shape)).all(axis=1)]
        work[tuple(near.T)] = -np.inf
        work.flat[flat] = -np.inf
    indices = np.asarray(chosen, dtype=np.intp)
    probs = p[tuple(indices.T)]
    return BiopsyPlan(
        indices=indices,
        coordinates_mm=start + indices * step,
        probabilities=np.asarray(probs, dtype=float),
        detection_probability=float(1.0 - np.prod(1.0 - probs)),
    )
