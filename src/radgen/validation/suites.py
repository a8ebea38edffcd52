"""Which expectations each stage's suite holds.

Most expectations are derived from the table schemas in :mod:`radgen.schemas.tables`
(required columns not null, key columns unique, declared ranges), so a schema change updates
its suite. Stage-specific checks are added below. Great Expectations runs them
(:mod:`radgen.validation.gate`); this module only declares them, without importing it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd
import pyarrow as pa

from radgen.errors import ConfigError
from radgen.schemas.tables import key_columns, schema_for
from radgen.validation.profiles import DRIFT_K

__all__ = ["STAGES", "Check", "Severity", "checks_for"]

Severity = Literal["critical", "warning", "info"]


@dataclass(frozen=True)
class Check:
    """One expectation: a Great Expectations class name, its arguments and a severity.

    Critical checks block a commit; warning checks block unless ``--allow-warnings``.
    """

    expectation: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    severity: Severity = "critical"

    @property
    def column(self) -> str | None:
        """The column the check is about, if any."""
        col = self.kwargs.get("column")
        if col is None and "column_list" in self.kwargs:
            return ",".join(self.kwargs["column_list"])
        return None if col is None else str(col)


def _schema_checks(schema: pa.Schema, present: Sequence[str]) -> list[Check]:
    """Checks implied by a declared schema, for the columns present in the data."""
    checks: list[Check] = []
    for fld in schema:
        if fld.name not in present:
            continue
        meta = {k.decode(): v.decode() for k, v in (fld.metadata or {}).items()}
        if not fld.nullable:
            checks.append(Check("ExpectColumnValuesToNotBeNull", {"column": fld.name}))
        lo, hi = meta.get("min"), meta.get("max")
        numeric = pa.types.is_floating(fld.type) or pa.types.is_integer(fld.type)
        if numeric and (lo is not None or hi is not None):
            severity: Severity = "warning" if meta.get("severity") == "warning" else "critical"
            bounds = {
                "min_value": None if lo is None else float(lo),
                "max_value": None if hi is None else float(hi),
            }
            checks.append(
                Check("ExpectColumnValuesToBeBetween", {"column": fld.name, **bounds}, severity)
            )
    keys = [k for k in key_columns(schema) if k in present]
    if len(keys) == 1:
        checks.append(Check("ExpectColumnValuesToBeUnique", {"column": keys[0]}))
    elif len(keys) > 1:
        checks.append(Check("ExpectCompoundColumnsToBeUnique", {"column_list": keys}))
    return checks


#: Image modalities radgen ingests as volumes (DICOM PS3.3 C.7.3.1.1.1 defined terms).
IMAGE_MODALITIES = (
    "CT", "MR", "PT", "NM", "US", "CR", "DX", "MG", "XA", "RF", "OT", "SC", "IO", "PX", "OPT",
    "ES", "SM", "XC", "RG", "BI", "DG", "GM", "OCT",
)  # fmt: skip


def _dicom_checks(data: pd.DataFrame) -> list[Check]:
    if "modality" not in data:
        return []
    return [
        Check(
            "ExpectColumnValuesToBeInSet",
            {"column": "modality", "value_set": list(IMAGE_MODALITIES)},
        )
    ]


def _image_checks(data: pd.DataFrame) -> list[Check]:
    """Per-series array statistics computed chunk by chunk (see ``ingestion.dicom``)."""
    return [
        Check("ExpectColumnValuesToBeBetween", {"column": "n_nonfinite", "max_value": 0}),
        Check("ExpectColumnValuesToBeBetween", {"column": "n_voxels", "min_value": 1}),
        Check("ExpectColumnValuesToBeBetween", {"column": "spacing_cv", "max_value": 0.01}),
        Check(
            "ExpectColumnValuesToBeInSet",
            {"column": "in_plausible_range", "value_set": [True]},
            "warning",
        ),
    ]


def _mask_checks(data: pd.DataFrame) -> list[Check]:
    return [
        # one connected component unless allowed (--allow-warnings)
        Check(
            "ExpectColumnValuesToBeBetween",
            {"column": "n_components", "min_value": 1, "max_value": 1},
            "warning",
        ),
        # plausible lesion volume: from one cubic millimetre to five litres
        Check(
            "ExpectColumnValuesToBeBetween",
            {"column": "volume_ml", "min_value": 0.001, "max_value": 5000.0},
            "warning",
        ),
    ]


def _feature_checks(data: pd.DataFrame) -> list[Check]:
    """Row checks of a feature table: its identifying columns (the schema adds the rest)."""
    return [
        Check("ExpectColumnToExist", {"column": c})
        for c in ("roi_id", "series_uid", "scanner_batch")
    ]


def _feature_value_checks(data: pd.DataFrame) -> list[Check]:
    """Checks on the per-feature profile (see ``validation.profiles.feature_profile``)."""
    return [
        Check("ExpectColumnValuesToBeInSet", {"column": "present", "value_set": [True]}),
        # finite values, or NaN where the feature documents it
        Check("ExpectColumnValuesToBeBetween", {"column": "unexpected_missing", "max_value": 0}),
        Check("ExpectColumnValuesToBeBetween", {"column": "n_infinite", "max_value": 0}),
        Check(
            "ExpectColumnValuesToBeBetween", {"column": "drift_z", "max_value": DRIFT_K}, "warning"
        ),
    ]


def _harmonization_checks(data: pd.DataFrame) -> list[Check]:
    """Per-feature outcome of a harmonization (see ``features.harmonize_table``)."""
    return [
        Check(
            "ExpectColumnValuesToBeInSet",
            {"column": "batch_effect_reduced", "value_set": [True], "mostly": 0.9},
        ),
        Check(
            "ExpectColumnValuesToBeInSet",
            {"column": "covariate_preserved", "value_set": [True], "mostly": 0.9},
        ),
        Check(
            "ExpectColumnMedianToBeBetween",
            {
                "column": "eta2_batch_after",
                "max_value": float(data["eta2_batch_before"].median()) + 0.01,
            }
            if "eta2_batch_before" in data
            else {"column": "eta2_batch_after", "max_value": 1.0},
        ),
    ]


def _expression_sample_checks(data: pd.DataFrame) -> list[Check]:
    """TPM sums to a million per sample (within the rounding of files that round TPM)."""
    return [
        Check(
            "ExpectColumnValuesToBeBetween",
            {"column": "tpm_sum", "min_value": 0.995e6, "max_value": 1.005e6},
        )
    ]


def _profile_checks(schema: pa.Schema) -> list[Check]:
    """Checks of a large table's one-row aggregate profile (``validation.profiles.table_profile``).

    The same contract the schema implies for rows: required columns without nulls, values
    within the declared range (min and max of the column), no repeated key.
    """
    checks = []
    for fld in schema:
        meta = {k.decode(): v.decode() for k, v in (fld.metadata or {}).items()}
        if not fld.nullable:
            checks.append(
                Check(
                    "ExpectColumnValuesToBeBetween",
                    {"column": f"{fld.name}__nulls", "max_value": 0},
                )
            )
        severity: Severity = "warning" if meta.get("severity") == "warning" else "critical"
        if "min" in meta:
            kw = {"column": f"{fld.name}__min", "min_value": float(meta["min"])}
            checks.append(Check("ExpectColumnValuesToBeBetween", kw, severity))
        if "max" in meta:
            kw = {"column": f"{fld.name}__max", "max_value": float(meta["max"])}
            checks.append(Check("ExpectColumnValuesToBeBetween", kw, severity))
    if key_columns(schema):
        checks.append(
            Check("ExpectColumnValuesToBeBetween", {"column": "__duplicate_keys", "max_value": 0})
        )
    return checks


def _no_extra_checks(data: pd.DataFrame) -> list[Check]:
    return []


_EXTRA: dict[str, Callable[[pd.DataFrame], list[Check]]] = {
    "dicom": _dicom_checks,
    "images": _image_checks,
    "masks": _mask_checks,
    "features": _feature_checks,
    "feature_values": _feature_value_checks,
    "expression_samples": _expression_sample_checks,
    "table_profile": _no_extra_checks,  # its checks come from the schema, see checks_for
    "harmonization": _harmonization_checks,
    "omics": _no_extra_checks,
    "quarantine": _no_extra_checks,
    "datasets": _no_extra_checks,
}

#: Every stage that has a suite.
STAGES: tuple[str, ...] = tuple(sorted(_EXTRA))


def checks_for(stage: str, data: pd.DataFrame, target: str) -> list[Check]:
    """The checks of the suite of `stage` for table `target` and the columns of `data`.

    The suite is: at least one row, the checks implied by the declared schema of `target`
    (when it has one), and the extra checks of the stage.

    Raises
    ------
    ConfigError
        If `stage` has no suite.
    """
    try:
        extra = _EXTRA[stage]
    except KeyError as err:
        raise ConfigError(stage, f"no such suite; stages are {', '.join(STAGES)}") from err
    checks = [Check("ExpectTableRowCountToBeBetween", {"min_value": 1})]
    schema = schema_for(target)
    if stage == "table_profile":
        profile = _profile_checks(schema) if schema is not None else []
        return checks + [c for c in profile if c.column in data.columns]
    if schema is not None:
        checks += _schema_checks(schema, list(data.columns))
    return checks + extra(data)
