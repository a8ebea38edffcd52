"""Parametric maps: ADC from diffusion-weighted images, R2* from multi-echo gradient echo.

Both models are mono-exponential decays of the signal along one acquisition axis (the b-value
or the echo time), fitted voxel by voxel:

``S(x) = S0 exp(-k x)``,  ``k = ADC`` with ``x = b``,  ``k = R2*`` with ``x = TE``.

The fits take NumPy or Dask arrays whose first axis is the acquisition axis; a Dask array is
fitted block by block (``map_blocks`` over the spatial chunks, the first axis in one chunk),
so a whole series never has to fit in memory. :func:`write_map_series` reads the source
series of a catalog, fits them chunk by chunk and stores the map as a new image series with
its ROIs, so ``radgen features compute`` runs on it like on any other series.

A voxel is fitted only when every sample is finite and positive (the logarithm of the
signal must exist); other voxels get NaN and are counted in ``n_invalid``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import dask
import dask.array as da
import numpy as np
import numpy.typing as npt
import pandas as pd

from radgen.errors import ConfigError, InputError, NotFoundError
from radgen.platform import tables
from radgen.platform.runs import LineageInput, Run
from radgen.platform.volumes import open_volume, read_region, volume_exists, write_volume

__all__ = [
    "MAP_KINDS",
    "MapFit",
    "MapSeriesReport",
    "adc",
    "loglinear_decay",
    "r2star",
    "write_map_series",
]

log = logging.getLogger(__name__)

Array = npt.NDArray[np.float64]
FitMethod = Literal["loglinear", "nonlinear"]

#: Map kinds :func:`write_map_series` computes.
MAP_KINDS = ("adc", "r2star")

#: Stored unit, series description and scale of each map kind (``value * scale`` is stored).
#: ADC is stored in um^2/s (1e-6 mm^2/s, the scanners' convention) from b in s/mm^2;
#: R2* in 1/s from echo times in ms.
_STORED = {
    "adc": ("um2/s", "ADC map", 1e6),
    "r2star": ("1/s", "R2* map", 1e3),
}

#: Bumped when the fitting code changes what it stores (part of the derived series' identity).
FIT_VERSION = "1"


@dataclass(frozen=True)
class MapFit:
    """A fitted parametric map.

    Attributes
    ----------
    value : ndarray or dask.array.Array
        The decay rate ``k`` (ADC or R2*) per voxel, in the inverse unit of the acquisition
        values; NaN where the voxel could not be fitted.
    s0 : ndarray or dask.array.Array
        The extrapolated signal at ``x = 0``; NaN where `value` is.
    n_invalid : int or dask.array.Array
        Voxels left NaN (some sample not finite or not positive); a lazy scalar for Dask
        input (see :meth:`compute`).
    """

    value: Any
    s0: Any
    n_invalid: Any

    def compute(self) -> MapFit:
        """The same fit with every lazy (Dask) part computed in one pass."""
        value, s0, n_invalid = dask.compute(self.value, self.s0, self.n_invalid)
        return MapFit(np.asarray(value), np.asarray(s0), int(n_invalid))


def _acquisition_values(values: npt.ArrayLike, n: int, what: str, *, positive: bool) -> Array:
    x = np.asarray(values, dtype=float)
    if x.ndim != 1:
        raise InputError(what, f"expected a 1-D list of values, got shape {x.shape}")
    if len(x) != n:
        raise InputError(what, f"{len(x)} values for {n} images along the first axis")
    if not np.all(np.isfinite(x)):
        raise InputError(what, "values must be finite")
    if np.any(x < 0) or (positive and np.any(x == 0)):
        raise InputError(what, "values must be " + ("positive" if positive else "non-negative"))
    if len(np.unique(x)) < 2:
        raise InputError(what, "at least two distinct values are needed to fit a decay")
    return x


def _valid(signal: Array) -> npt.NDArray[np.bool_]:
    """Voxels whose samples are all finite and positive."""
    with np.errstate(invalid="ignore"):
        ok: npt.NDArray[np.bool_] = np.all(np.isfinite(signal) & (signal > 0), axis=0)
    return ok


def _loglinear_block(signal: Array, x: Array) -> Array:
    """``[k, S0]`` stacked on axis 0 for one block ``(n, ...)``: ordinary least squares on ln S."""
    signal = np.asarray(signal, dtype=float)
    valid = _valid(signal)
    logs = np.log(np.where(valid, signal, 1.0))
    xc = x - x.mean()
    # explicit sums over the first axis: the same rounding whatever the block's layout, so
    # a Dask block gives the bits NumPy gives for the same voxel
    weights = xc.reshape((-1,) + (1,) * (logs.ndim - 1))
    slope = (weights * logs).sum(axis=0) / float(xc @ xc)
    intercept = logs.sum(axis=0) / len(x) - slope * x.mean()
    with np.errstate(over="ignore"):
        s0 = np.exp(intercept)
    out = np.stack([-slope, s0])
    out[:, ~valid] = np.nan
    return out


def _nonlinear_block(signal: Array, x: Array, max_iter: int, tol: float) -> Array:
    """``[k, S0]`` minimizing ``sum_i (S_i - S0 exp(-k x_i))^2``: vectorized Levenberg-Marquardt.

    Starts from the log-linear fit; a step is kept for a voxel only if it lowers that voxel's
    sum of squares, so every estimate is at least as good as the start.
    """
    signal = np.asarray(signal, dtype=float)
    start = _loglinear_block(signal, x)
    shape = signal.shape[1:]
    ok = np.isfinite(start[0]) & np.isfinite(start[1])
    y = signal.reshape(len(x), -1)[:, ok.ravel()]  # (n, m)
    k = start[0][ok].astype(float)
    a = start[1][ok].astype(float)
    xs = x[:, np.newaxis]

    cost = _sse(y, a, k, xs)
    lam = np.full(k.shape, 1e-3)
    active = np.ones(k.shape, dtype=bool)
    # non-finite candidates (overflow, singular 2x2 systems) are simply rejected below
    with np.errstate(all="ignore"):
        for _ in range(max_iter):
            if not active.any():
                break
            e = np.exp(-k[active] * xs)  # (n, m_active)
            r = y[:, active] - a[active] * e
            ja = -e  # d r / d S0
            jk = a[active] * xs * e  # d r / d k
            haa, hkk, hak = (ja * ja).sum(0), (jk * jk).sum(0), (ja * jk).sum(0)
            ga, gk = (ja * r).sum(0), (jk * r).sum(0)
            daa, dkk = haa * (1 + lam[active]), hkk * (1 + lam[active])
            det = daa * dkk - hak * hak
            step_a = -(dkk * ga - hak * gk) / det
            step_k = -(daa * gk - hak * ga) / det
            new_a, new_k = a[active] + step_a, k[active] + step_k
            idx = np.flatnonzero(active)
            new_cost = _sse(y[:, idx], new_a, new_k, xs)
            better = np.isfinite(new_cost) & (new_cost < cost[idx])
            a[idx[better]], k[idx[better]] = new_a[better], new_k[better]
            cost[idx[better]] = new_cost[better]
            lam[idx] = np.where(better, lam[idx] / 10, lam[idx] * 10)
            small_step = (np.abs(step_k) <= tol * np.maximum(np.abs(k[idx]), 1e-300)) & (
                np.abs(step_a) <= tol * np.maximum(np.abs(a[idx]), 1e-300)
            )
            done = (better & small_step) | (lam[idx] > 1e10)
            active[idx[done]] = False
    k_out = np.full(shape, np.nan)
    s0_out = np.full(shape, np.nan)
    k_out[ok], s0_out[ok] = k, a
    return np.stack([k_out, s0_out])


def _sse(y: Array, a: Array, k: Array, xs: Array) -> Array:
    """Residual sum of squares of ``S0 exp(-k x)`` per column of `y` (inf where not finite)."""
    with np.errstate(over="ignore", invalid="ignore"):
        r = y - a * np.exp(-k * xs)
        out: Array = np.sum(r * r, axis=0)
    return np.where(np.isfinite(out), out, np.inf)


def _fit(signal: Any, x: Array, method: FitMethod, max_iter: int, tol: float) -> MapFit:
    def block(b: Array) -> Array:
        if method == "loglinear":
            return _loglinear_block(b, x)
        return _nonlinear_block(b, x, max_iter, tol)

    if isinstance(signal, da.Array):
        arr = signal.astype(float).rechunk({0: -1})
        both = arr.map_blocks(block, chunks=((2,), *arr.chunks[1:]), dtype=float)
        invalid = ~da.all(da.isfinite(arr) & (arr > 0), axis=0)
        return MapFit(both[0], both[1], invalid.sum())
    both = block(signal)
    return MapFit(both[0], both[1], int(np.sum(~_valid(signal))))


def _as_signal(data: Any, what: str) -> Any:
    arr = data if isinstance(data, da.Array) else np.asarray(data, dtype=float)
    if arr.ndim < 1 or arr.shape[0] < 2:
        raise InputError(what, f"need at least two images along the first axis, got {arr.shape}")
    return arr


def loglinear_decay(signal: Any, x: npt.ArrayLike) -> MapFit:
    """Fit ``S = S0 exp(-k x)`` by ordinary least squares on ``ln S`` (any number of samples).

    With ``y_i = ln S_i`` and ``xbar``, ``ybar`` the means over the ``n`` samples,

    ``k = -sum_i (x_i - xbar)(y_i - ybar) / sum_i (x_i - xbar)^2``,
    ``S0 = exp(ybar + k xbar)``.

    Parameters
    ----------
    signal : array_like or dask.array.Array
        Shape ``(n, ...)``: the ``n`` samples of each voxel along the first axis.
    x : array_like
        The ``n`` acquisition values (b-values or echo times), at least two distinct.

    Returns
    -------
    MapFit
        ``k`` in the inverse unit of `x`; NaN where a sample is not finite or not positive.

    Raises
    ------
    InputError
        Fewer than two samples, a length mismatch, or non-finite or negative values in `x`.
    """
    arr = _as_signal(signal, "signal")
    return _fit(arr, _acquisition_values(x, arr.shape[0], "x", positive=False), "loglinear", 0, 0)


def adc(dwi: Any, b_values: npt.ArrayLike) -> MapFit:
    """Apparent diffusion coefficient from diffusion-weighted images (mono-exponential model).

    ``S(b) = S0 exp(-b ADC)``, fitted by log-linear least squares over any number of
    b-values (at least two distinct):

    ``ADC = -sum_i (b_i - bbar)(ln S_i - mean ln S) / sum_i (b_i - bbar)^2``.

    Parameters
    ----------
    dwi : array_like or dask.array.Array
        Shape ``(n_b, ...)``: one image per b-value along the first axis. A Dask array is
        fitted block by block over its spatial chunks (the b axis is put in one chunk).
    b_values : array_like
        The ``n_b`` b-values, s/mm^2 (non-negative).

    Returns
    -------
    MapFit
        ADC in mm^2/s when b is in s/mm^2 (the inverse unit of `b_values`), the fitted ``S0``,
        and the number of voxels left NaN because some sample is not finite or ``S <= 0``.

    Raises
    ------
    InputError
        Fewer than two images or distinct b-values, a length mismatch, negative b-values.

    Examples
    --------
    >>> b = np.array([0.0, 500.0, 1000.0])
    >>> fit = adc(100 * np.exp(-b * 1e-3)[:, None], b)
    >>> round(float(fit.value[0]), 6), fit.n_invalid
    (0.001, 0)
    """
    arr = _as_signal(dwi, "dwi")
    b = _acquisition_values(b_values, arr.shape[0], "b_values", positive=False)
    return _fit(arr, b, "loglinear", 0, 0.0)


def r2star(
    echoes: Any,
    te: npt.ArrayLike,
    method: FitMethod = "loglinear",
    *,
    max_iter: int = 100,
    tol: float = 1e-12,
) -> MapFit:
    """Effective transverse relaxation rate R2* = 1/T2* from multi-echo gradient echo images.

    ``S(TE) = S0 exp(-TE R2*)``, fitted either

    * ``"loglinear"``: least squares on ``ln S``,
      ``R2* = -sum_i (TE_i - TEbar)(ln S_i - mean ln S) / sum_i (TE_i - TEbar)^2``; or
    * ``"nonlinear"``: least squares on ``S`` itself, ``min sum_i (S_i - S0 exp(-TE_i R2*))^2``,
      by a vectorized Levenberg-Marquardt iteration (2x2 normal equations per voxel, damping
      ``lambda diag(J^T J)``) started from the log-linear fit; it weights echoes by their
      signal rather than by their logarithm, so the late, noisy echoes count less.

    Parameters
    ----------
    echoes : array_like or dask.array.Array
        Shape ``(n_echo, ...)``: one image per echo along the first axis; Dask arrays are
        fitted block by block over their spatial chunks.
    te : array_like
        The ``n_echo`` echo times (positive), e.g. in ms.
    method : {"loglinear", "nonlinear"}
        Fit, see above.
    max_iter : int, default 100
        Levenberg-Marquardt iterations at most (``nonlinear``).
    tol : float, default 1e-12
        Relative step (of both ``S0`` and R2*) below which a voxel has converged; a voxel
        also stops when no step lowers its sum of squares any more (damping above 1e10).

    Returns
    -------
    MapFit
        R2* in the inverse unit of `te` (1/ms for ms), ``S0``, and the number of voxels left
        NaN because some echo is not finite or ``S <= 0``.

    Raises
    ------
    InputError
        Fewer than two echoes or distinct echo times, a length mismatch, ``TE <= 0``.
    ConfigError
        Unknown `method`.
    """
    if method not in ("loglinear", "nonlinear"):
        raise ConfigError("method", f"{method!r} is not one of loglinear, nonlinear")
    arr = _as_signal(echoes, "echoes")
    x = _acquisition_values(te, arr.shape[0], "te", positive=True)
    return _fit(arr, x, method, int(max_iter), float(tol))


# -- catalog: source series in, a new image series out -----------------------------------------


@dataclass
class MapSeriesReport:
    """What :func:`write_map_series` stored."""

    series_uid: str
    kind: str
    method: str
    sources: list[str]
    values: list[float]
    units: str
    shape: list[int]
    n_invalid: int
    unchanged: bool
    rois: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` document."""
        return {
            "series_uid": self.series_uid,
            "kind": self.kind,
            "method": self.method,
            "derived_from": self.sources,
            "values": self.values,
            "units": self.units,
            "shape": self.shape,
            "n_invalid": self.n_invalid,
            "unchanged": self.unchanged,
            "rois": self.rois,
        }


def _derived_uid(identity: str) -> str:
    """A DICOM UID under the UUID root 2.25 derived from `identity` (same input, same UID)."""
    return "2.25." + str(int.from_bytes(hashlib.sha256(identity.encode()).digest()[:16], "big"))


def _source_rows(run: Run, uids: Sequence[str]) -> pd.DataFrame:
    from radgen.platform.catalog import Catalog

    cat = Catalog(run.root)
    resolved = [cat.series_uid(u) for u in uids]
    if len(set(resolved)) != len(resolved):
        raise InputError(",".join(uids), "the same series is given twice")
    if not tables.table_exists(run.root, "series"):
        raise NotFoundError("series", "no series ingested yet")
    frame = tables.read_table(run.root, "series").to_pandas()
    rows = frame.set_index("series_uid", drop=False)
    missing = [u for u in resolved if u not in rows.index]
    if missing:
        raise NotFoundError(missing[0], "volume exists but the series table has no row for it")
    return rows.loc[resolved].reset_index(drop=True)


def _same_grid(rows: pd.DataFrame) -> None:
    first = rows.iloc[0]
    for _, row in rows.iloc[1:].iterrows():
        for col, atol in (("shape", 0.0), ("spacing", 1e-4), ("origin", 1e-3), ("direction", 1e-4)):
            a = np.asarray(first[col], dtype=float)
            b = np.asarray(row[col], dtype=float)
            if a.shape != b.shape or not np.allclose(a, b, rtol=0.0, atol=atol):
                raise InputError(
                    row["series_uid"],
                    f"{col} {b.tolist()} differs from {first['series_uid']} ({a.tolist()}); "
                    "the images of one map must share one voxel grid",
                )
        if row["subject_id"] != first["subject_id"]:
            raise InputError(
                row["series_uid"], f"belongs to another subject than {first['series_uid']}"
            )


def _acquisition(kind: str, rows: pd.DataFrame, values: Sequence[float] | None) -> list[float]:
    option = "--b-values" if kind == "adc" else "--echo-times"
    if values is None:
        if kind == "r2star" and rows["echo_time"].notna().all():
            return [float(v) for v in rows["echo_time"]]
        raise ConfigError(
            option,
            "required: one value per series"
            + (" (the series carry no echo time)" if kind == "r2star" else ""),
        )
    if len(values) != len(rows):
        raise ConfigError(
            option,
            f"{len(values)} value(s) for {len(rows)} series; give one value per series, "
            "in the order of --series",
        )
    return [float(v) for v in values]


def write_map_series(
    run: Run,
    kind: str,
    series: Sequence[str],
    values: Sequence[float] | None = None,
    *,
    method: FitMethod = "loglinear",
    copy_rois: bool = True,
) -> MapSeriesReport:
    """Fit a parametric map from catalog series and store it as a new image series.

    Each source series holds one b-value (``adc``) or one echo (``r2star``); they are
    ordered by their value, stacked along a new first axis and fitted chunk by chunk with
    Dask (:func:`adc`, :func:`r2star`). The map is written to ``images/<uid>.zarr`` and a
    ``series`` row is committed for it:

    * ``series_uid``: ``2.25.<int>`` derived from the kind, method, source UIDs and content
      hashes and the values, so a rerun finds it (unchanged) instead of writing a copy;
    * modality, subject, study, geometry and scanner columns of the first source (the batch
      is kept, so harmonization still sees the scanner); ``series_description`` ``"ADC map"``
      or ``"R2* map"``, which :mod:`radgen.analysis.links` recognises; units ``um2/s`` for ADC
      (1e-6 mm^2/s, from b in s/mm^2) or ``1/s`` for R2* (from TE in ms);
    * lineage: every source series (``derived_from``, also in the Zarr attributes).

    Voxels that cannot be fitted are stored as 0 (NaN would fail the image suite and the
    feature extraction); their count is in the report and the ``n_invalid`` attribute.
    With `copy_rois`, the ROIs drawn on the sources (deduplicated by source file and label)
    are copied onto the map as new masks and ``rois`` rows, so ``radgen features compute``
    includes it.

    Parameters
    ----------
    run : Run
        The open run.
    kind : {"adc", "r2star"}
        Map to compute.
    series : sequence of str
        Source series, one per b-value or echo.
    values : sequence of float, optional
        b-values (s/mm^2) or echo times (ms) in the order of `series`; for ``r2star`` the
        series' echo times are the default.
    method : {"loglinear", "nonlinear"}
        Fit of R2* (ADC is always log-linear).
    copy_rois : bool, default True
        Copy the sources' ROIs onto the map.

    Returns
    -------
    MapSeriesReport

    Raises
    ------
    ConfigError
        Unknown kind or method, missing or mismatched values.
    NotFoundError
        A series is not in the catalog.
    InputError
        The series do not share one grid and subject, or values are invalid.
    """
    if kind not in MAP_KINDS:
        raise ConfigError("--kind", f"{kind!r} is not one of {', '.join(MAP_KINDS)}")
    if method not in ("loglinear", "nonlinear"):
        raise ConfigError("--method", f"{method!r} is not one of loglinear, nonlinear")
    if kind == "adc" and method != "loglinear":
        raise ConfigError("--method", "ADC is fitted log-linearly only")
    if len(series) < 2:
        raise ConfigError("--series", "at least two series (one per b-value or echo) are needed")
    rows = _source_rows(run, series)
    x = _acquisition(kind, rows, values)
    rows = rows.assign(_x=x).sort_values("_x", kind="stable").reset_index(drop=True)
    x = [float(v) for v in rows["_x"]]
    _same_grid(rows)
    units, description, scale = _STORED[kind]
    identity = json.dumps(
        {
            "kind": kind,
            "method": method,
            "sources": [
                [u, h] for u, h in zip(rows["series_uid"], rows["content_hash"], strict=True)
            ],
            "values": x,
            "fit": FIT_VERSION,
        },
        sort_keys=True,
    )
    uid = _derived_uid(identity)
    content_hash = hashlib.sha256(identity.encode()).hexdigest()
    sources = [str(u) for u in rows["series_uid"]]
    rel = f"images/{uid}.zarr"
    existing = set(
        tables.read_table(run.root, "series", columns=["series_uid"])["series_uid"].to_pylist()
    )
    unchanged = uid in existing and volume_exists(run.root, rel)
    n_invalid = 0
    if not unchanged:
        n_invalid = _write_map(run, kind, method, rows, x, uid, rel, scale, units)
        _commit_series(run, rows, uid, rel, description, units, content_hash, kind)
    else:
        attrs = open_volume(run.root, rel, name="image").attrs
        n_invalid = int(attrs.get("n_invalid", 0))
    report = MapSeriesReport(
        series_uid=uid,
        kind=kind,
        method=method,
        sources=sources,
        values=x,
        units=units,
        shape=[int(v) for v in rows.iloc[0]["shape"]],
        n_invalid=n_invalid,
        unchanged=unchanged,
    )
    if copy_rois:
        report.rois = _copy_rois(run, sources, uid, rows.iloc[0])
    run.message = f"{description} {uid} from {len(sources)} series" + (
        " (unchanged)" if unchanged else f", {n_invalid} voxels not fitted"
    )
    return report


def _write_map(
    run: Run,
    kind: str,
    method: FitMethod,
    rows: pd.DataFrame,
    x: list[float],
    uid: str,
    rel: str,
    scale: float,
    units: str,
) -> int:
    stack = da.stack(
        [open_volume(run.root, p, name="image").data.astype(float) for p in rows["zarr_path"]]
    )
    fit = adc(stack, x) if kind == "adc" else r2star(stack, x, method)
    stored = da.where(da.isfinite(fit.value), fit.value * scale, 0.0).astype(np.float32)
    first = rows.iloc[0]
    attrs: dict[str, Any] = {
        "series_uid": uid,
        "spacing": [float(v) for v in first["spacing"]],
        "origin": [float(v) for v in first["origin"]],
        "direction": np.asarray(first["direction"], dtype=float).reshape(3, 3).tolist(),
        "modality": first["modality"],
        "units": units,
        "rescale": [],
        "sop_instance_uids": [],
        "frame_numbers": [],
        "map_kind": kind,
        "fit": method,
        "acquisition_values": x,
        "acquisition_unit": "s/mm2" if kind == "adc" else "ms",
        "derived_from": [str(u) for u in rows["series_uid"]],
        "invalid_value": 0.0,
        "run_id": run.run_id,
    }
    n_invalid = int(fit.n_invalid.compute())
    attrs["n_invalid"] = n_invalid
    write_volume(run.root, rel, stored, name="image", attrs=attrs)
    try:
        written = open_volume(run.root, rel, name="image").data
        n_finite, lo, hi = dask.compute(da.isfinite(written).sum(), written.min(), written.max())
        stats = pd.DataFrame(
            [
                {
                    "series_uid": uid,
                    "modality": first["modality"],
                    "n_voxels": int(written.size),
                    "n_nonfinite": int(written.size - n_finite),
                    "min_value": float(lo),
                    "max_value": float(hi),
                    "spacing_cv": 0.0,
                    "in_plausible_range": True,
                }
            ]
        )
        run.validate("images", stats, target="images")
    except BaseException:
        run.root.remove(rel)
        raise
    if n_invalid:
        log.warning("%s: %d voxels could not be fitted (stored as 0)", uid, int(n_invalid))
    return int(n_invalid)


def _commit_series(
    run: Run,
    rows: pd.DataFrame,
    uid: str,
    rel: str,
    description: str,
    units: str,
    content_hash: str,
    kind: str,
) -> None:
    first = rows.iloc[0].drop(labels=["_x"]).to_dict()
    shape = [int(v) for v in first["shape"]]
    row = {
        **first,
        "series_uid": uid,
        "series_description": f"{description} (radgen, from {len(rows)} series)",
        "n_instances": shape[0],
        "units": units,
        "zarr_path": rel,
        "content_hash": content_hash,
        "echo_time": None if kind == "r2star" else first.get("echo_time"),
        "run_id": run.run_id,
        "ingested_at": dt.datetime.now(dt.UTC),
    }
    lineage = [
        LineageInput("series", str(u), str(h))
        for u, h in zip(rows["series_uid"], rows["content_hash"], strict=True)
    ]
    lineage.append(LineageInput("table", f"series@{tables.table_version(run.root, 'series')}"))
    try:
        run.commit("series", pd.DataFrame([row]), suite="dicom", lineage=lineage)
    except BaseException:
        run.root.remove(rel)
        raise


def _copy_rois(run: Run, sources: list[str], uid: str, first: pd.Series) -> list[str]:
    """Copy the sources' masks onto the map series; the ROI ids on the map."""
    if not tables.table_exists(run.root, "rois"):
        return []
    rois = tables.read_table(run.root, "rois").to_pandas()
    order = {u: i for i, u in enumerate(sources)}
    mine = rois[rois["series_uid"].isin(order)].copy()
    if mine.empty:
        return []
    mine["_order"] = mine["series_uid"].map(order)
    mine = mine.sort_values(["_order", "mask_id", "label"])
    mine = mine.drop_duplicates(["file_sha256", "label", "name"])
    new_ids = {
        m: "m-" + hashlib.sha256(f"{uid}:{m}".encode()).hexdigest()[:16]
        for m in dict.fromkeys(mine["mask_id"])
    }
    out = mine.assign(
        mask_id=mine["mask_id"].map(new_ids),
        series_uid=uid,
        subject_id=first["subject_id"],
    )
    out["roi_id"] = out["mask_id"] + ":" + out["label"].astype(str)
    out["mask_path"] = "masks/" + out["mask_id"] + ".zarr"
    out["run_id"] = run.run_id
    present = set(rois["roi_id"])
    todo = out[~out["roi_id"].isin(present)]
    lineage: list[LineageInput] = [LineageInput("series", uid)]
    written: list[str] = []
    for old, new in new_ids.items():
        if not todo["mask_id"].eq(new).any():
            continue
        src = mine.loc[mine["mask_id"] == old].iloc[0]
        source = open_volume(run.root, str(src["mask_path"]), name="mask")
        attrs = {
            **source.attrs,
            "series_uid": uid,
            "derived_from_mask": old,
            "run_id": run.run_id,
        }
        labels = read_region(run.root, str(src["mask_path"]), name="mask")
        written.append(
            write_volume(run.root, f"masks/{new}.zarr", labels, name="mask", attrs=attrs)
        )
        lineage.append(LineageInput("mask", old, str(src["file_sha256"])))
    if not todo.empty:
        try:
            run.commit(
                "rois",
                todo.drop(columns=["_order"]).reset_index(drop=True),
                suite="masks",
                lineage=lineage,
            )
        except BaseException:
            for rel in written:
                run.root.remove(rel)
            raise
    return sorted(out["roi_id"])
