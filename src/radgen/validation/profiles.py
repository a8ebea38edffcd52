"""Which frames a stage's suite validates: the rows themselves, or aggregates of them.

Wide tables are not validated column by column over every row: a features table of
100,000 ROIs x 1,500 features would mean thousands of expectations on millions of cells.
Its suite checks the identifying columns row by row and the features through a profile, one
row per feature (missing and infinite counts, median, drift against the previous version),
which Great Expectations validates in well under a second.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from radgen.schemas.features import feature_of_column
from radgen.schemas.tables import FEATURE_TABLE_BASE, FEATURE_TABLE_TAIL, key_columns, schema_for

__all__ = [
    "DRIFT_K",
    "LARGE_TABLE_ROWS",
    "feature_profile",
    "merge_profiles",
    "suite_frames",
    "table_profile",
]

#: A feature whose median moves by more than this many robust SDs of the previous version is
#: flagged (warning): a changed scanner mix, settings or code can do that silently.
DRIFT_K = 3.0
_MAD_TO_SD = 1.4826


def _numeric_columns(frame: pd.DataFrame, columns: Sequence[str]) -> npt.NDArray[np.float64]:
    """Columns as a (column, row) float array, contiguous per column; non-numbers become NaN."""
    sub = frame[list(columns)]
    if all(
        pd.api.types.is_numeric_dtype(t) and not pd.api.types.is_bool_dtype(t) for t in sub.dtypes
    ):
        return np.ascontiguousarray(sub.to_numpy(dtype=np.float64, na_value=np.nan).T)
    return np.ascontiguousarray(
        sub.apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64).T
    )


def _medians(values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Per-row median of finite values (rows are features)."""
    if values.shape[1] == 0:
        return np.full(values.shape[0], np.nan)
    finite = np.isfinite(values)
    if finite.all():
        return np.median(values, axis=1)
    with np.errstate(all="ignore"):
        return np.nanmedian(np.where(finite, values, np.nan), axis=1)


def feature_profile(
    data: pd.DataFrame,
    previous: pd.DataFrame | None = None,
    *,
    expected: Sequence[str] | None = None,
) -> pd.DataFrame:
    """One row per feature column: counts of missing and infinite values, median and drift.

    Parameters
    ----------
    data : pandas.DataFrame
        Rows of a feature table about to be committed.
    previous : pandas.DataFrame, optional
        The current version of the table (for drift).
    expected : sequence of str, optional
        Feature columns the settings promise; missing ones get a row with ``present`` False.

    Returns
    -------
    pandas.DataFrame
        Columns ``feature, present, n_rows, n_missing, n_infinite, may_be_nan,
        unexpected_missing, median, previous_median, previous_robust_sd, drift_z``.
    """
    fixed = set(FEATURE_TABLE_BASE.names) | set(FEATURE_TABLE_TAIL.names)
    columns = [c for c in data.columns if c not in fixed]
    values = _numeric_columns(data, columns)  # features x rows
    missing = np.isnan(values).sum(axis=1)
    infinite = np.isinf(values).sum(axis=1)
    medians = _medians(values)
    may_be_nan = np.array(
        [bool(f and f.may_be_nan) for f in map(feature_of_column, columns)], dtype=bool
    )
    prev_median = np.full(len(columns), np.nan)
    prev_sd = np.full(len(columns), np.nan)
    if previous is not None and len(previous):
        shared = [i for i, c in enumerate(columns) if c in previous.columns]
        if shared:
            prev = _numeric_columns(previous, [columns[i] for i in shared])
            pm = _medians(prev)
            prev_median[shared] = pm
            prev_sd[shared] = _MAD_TO_SD * _medians(np.abs(prev - pm[:, None]))
    with np.errstate(all="ignore"):
        shift = np.abs(medians - prev_median)
        drift = np.where(prev_sd > 0, shift / prev_sd, np.where(shift > 0, np.inf, 0.0))
    drift = np.where(np.isnan(prev_median) | np.isnan(medians), 0.0, drift)
    frame = pd.DataFrame(
        {
            "feature": columns,
            "present": True,
            "n_rows": len(data),
            "n_missing": missing.astype(np.int64),
            "n_infinite": infinite.astype(np.int64),
            "may_be_nan": may_be_nan,
            "unexpected_missing": np.where(may_be_nan, 0, missing).astype(np.int64),
            "median": medians,
            "previous_median": prev_median,
            "previous_robust_sd": prev_sd,
            "drift_z": drift,
        }
    )
    absent = [c for c in (expected or []) if c not in set(columns)]
    if absent:
        filler = pd.DataFrame({"feature": absent, "present": False, "n_rows": len(data)})
        frame = pd.concat([frame, filler], ignore_index=True)
    return frame


#: Tables with more rows than this are validated through a one-row aggregate profile
#: computed in Arrow (nulls, min, max per column, duplicate keys), not row by row in pandas.
LARGE_TABLE_ROWS = 250_000


def table_profile(data: pa.Table, target: str) -> pd.DataFrame:
    """One row: ``<column>__nulls``, ``__min``, ``__max`` per declared column, and ``__duplicate_keys``."""
    schema = schema_for(target)
    row: dict[str, Any] = {"__rows": data.num_rows}
    for fld in schema or []:
        if fld.name not in data.column_names:
            continue
        col = data.column(fld.name)
        row[f"{fld.name}__nulls"] = col.null_count
        if pa.types.is_integer(fld.type) or pa.types.is_floating(fld.type):
            bounds = pc.min_max(col)
            row[f"{fld.name}__min"] = bounds["min"].as_py()
            row[f"{fld.name}__max"] = bounds["max"].as_py()
    keys = [k for k in key_columns(schema) if k in data.column_names] if schema is not None else []
    if keys:
        row["__duplicate_keys"] = duplicate_keys(data, keys)
    return pd.DataFrame([row])


def duplicate_keys(data: pa.Table, keys: Sequence[str]) -> int:
    """Rows of `data` whose `keys` repeat an earlier row's (NULLs compare equal).

    Each key column is factorized (pandas hashing), the codes are combined pairwise into one
    integer code, and the distinct codes are counted: about twice as fast as an Arrow
    ``group_by`` over several string columns.
    """
    if data.num_rows == 0:
        return 0
    combined: npt.NDArray[np.int64] | None = None
    for key in keys:
        codes, uniques = pd.factorize(data.column(key).to_pandas(), use_na_sentinel=False)
        codes = codes.astype(np.int64)
        if combined is None:
            combined = codes
        else:
            combined, _ = pd.factorize(combined * (len(uniques) + 1) + codes)
    assert combined is not None
    return int(data.num_rows - len(pd.unique(combined)))


def merge_profiles(profiles: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Combine :func:`table_profile` rows of consecutive chunks of one table."""
    combined = pd.concat(profiles, ignore_index=True)
    merged: dict[str, Any] = {}
    for col in combined.columns:
        values = combined[col].dropna()
        if col.endswith("__min"):
            merged[col] = values.min() if len(values) else None
        elif col.endswith("__max"):
            merged[col] = values.max() if len(values) else None
        else:  # __rows, __nulls, __duplicate_keys add up
            merged[col] = values.sum()
    return pd.DataFrame([merged])


def aggregate_frames(
    data: pd.DataFrame | pa.Table, target: str
) -> list[tuple[str, pd.DataFrame, str]]:
    """Per-group aggregates a table's suite also checks (TPM sums per expression sample).

    They add up over disjoint chunks of samples, so a streamed commit concatenates them.
    """
    frames: list[tuple[str, pd.DataFrame, str]] = []
    columns = data.column_names if isinstance(data, pa.Table) else list(data.columns)
    if target == "expression" and {"sample_id", "tpm"} <= set(columns):
        if isinstance(data, pa.Table):
            grouped = (
                data.select(["sample_id", "tpm"]).group_by("sample_id").aggregate([("tpm", "sum")])
            )
            sums = grouped.rename_columns(["sample_id", "tpm_sum"]).to_pandas()
        else:
            sums = (
                data.groupby("sample_id", as_index=False)["tpm"]
                .sum()
                .rename(columns={"tpm": "tpm_sum"})
            )
        frames.append(("expression_samples", sums, target))
    return frames


def suite_frames(
    stage: str,
    data: pd.DataFrame | pa.Table,
    target: str,
    *,
    previous: pd.DataFrame | None = None,
    context: Mapping[str, Any] | None = None,
) -> list[tuple[str, pd.DataFrame, str]]:
    """The (stage, frame, target) triples a commit of `data` to `target` must pass."""
    frames = aggregate_frames(data, target)
    if isinstance(data, pa.Table) and data.num_rows > LARGE_TABLE_ROWS and stage != "features":
        return [("table_profile", table_profile(data, target), target), *frames]
    frame = data.to_pandas() if isinstance(data, pa.Table) else data
    if stage != "features":
        return [(stage, frame, target), *frames]
    fixed = [
        c
        for c in frame.columns
        if c in set(FEATURE_TABLE_BASE.names) | set(FEATURE_TABLE_TAIL.names)
    ]
    expected = (context or {}).get("expected_columns")
    profile = feature_profile(frame, previous, expected=expected)
    return [("features", frame[fixed], target), ("feature_values", profile, target)]
