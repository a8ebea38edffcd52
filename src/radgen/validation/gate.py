"""Run a stage's suite with Great Expectations and decide whether a commit may go ahead.

Great Expectations validates pandas DataFrames (its SQL path on DuckDB is broken) in an
ephemeral context; it is imported lazily because the import alone costs about 3 s.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import math
import os
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from radgen.errors import ValidationFailed
from radgen.schemas.tables import key_columns as schema_keys
from radgen.schemas.tables import schema_for
from radgen.validation.suites import Check, checks_for

__all__ = ["ExpectationOutcome", "SuiteResult", "run_suite"]

log = logging.getLogger(__name__)

_EXAMPLES = 5


@dataclass(frozen=True)
class ExpectationOutcome:
    """The outcome of one check on one batch of rows."""

    check: Check
    success: bool
    unexpected_count: int
    examples: list[Any]
    observed: Any
    example_rows: list[dict[str, Any]] = field(default_factory=list)

    def describe(self) -> str:
        """One line: severity, expectation, column and example offending rows (or values)."""
        where = f" on {self.check.column}" if self.check.column else ""
        if self.example_rows:
            rows = "; ".join(
                ", ".join(f"{k}={v!r}" for k, v in r.items()) for r in self.example_rows[:_EXAMPLES]
            )
            shown = f"; e.g. rows [{rows}]"
        else:
            shown = f"; e.g. {self.examples[:_EXAMPLES]}" if self.examples else ""
        count = f" ({self.unexpected_count} rows)" if self.unexpected_count else ""
        observed = "" if self.observed is None else f"; observed {self.observed}"
        return f"[{self.check.severity}] {self.check.expectation}{where}{count}{shown}{observed}"


@dataclass
class SuiteResult:
    """All outcomes of one suite run on one target."""

    suite: str
    target: str
    n_rows: int
    outcomes: list[ExpectationOutcome] = field(default_factory=list)
    evaluated_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    table_version: int | None = None

    @property
    def suite_version(self) -> str:
        """Hash of the checks the suite held: changes when a schema or a stage's checks change."""
        spec = sorted(
            json.dumps(
                [o.check.expectation, o.check.kwargs, o.check.severity], sort_keys=True, default=str
            )
            for o in self.outcomes
        )
        return hashlib.sha256("\n".join(spec).encode()).hexdigest()[:12]

    @property
    def failures(self) -> list[ExpectationOutcome]:
        """Failed checks of every severity."""
        return [o for o in self.outcomes if not o.success]

    def blocking(self, *, allow_warnings: bool = False) -> list[ExpectationOutcome]:
        """Failed checks that stop a commit."""
        stops = {"critical"} if allow_warnings else {"critical", "warning"}
        return [o for o in self.failures if o.check.severity in stops]

    @property
    def status(self) -> str:
        """``passed``, ``warnings`` (only warning/info checks failed) or ``failed``."""
        if any(o.check.severity == "critical" for o in self.failures):
            return "failed"
        return "warnings" if self.failures else "passed"

    def raise_if_blocking(self, *, allow_warnings: bool = False) -> None:
        """Raise :class:`ValidationFailed` naming every blocking failure.

        Raises
        ------
        ValidationFailed
        """
        stops = self.blocking(allow_warnings=allow_warnings)
        if not stops:
            for warning in self.failures:
                log.warning("%s suite on %s: %s", self.suite, self.target, warning.describe())
            return
        lines = [o.describe() for o in stops]
        hint = (
            ""
            if allow_warnings or any(o.check.severity == "critical" for o in stops)
            else ("; --allow-warnings lets warning-level failures through")
        )
        raise ValidationFailed(
            self.target,
            f"{self.suite} suite failed {len(stops)} of {len(self.outcomes)} expectations; "
            f"nothing was committed{hint}: " + " | ".join(lines),
            details=lines,
        )

    def rows(self, run_id: str) -> list[dict[str, Any]]:
        """Rows for the ``quality_results`` table."""
        return [
            {
                "run_id": run_id,
                "suite": self.suite,
                "suite_version": self.suite_version,
                "target": self.target,
                "table_version": self.table_version,
                "expectation": o.check.expectation,
                "column": o.check.column,
                "severity": o.check.severity,
                "success": o.success,
                "unexpected_count": o.unexpected_count,
                "observed": json.dumps(o.observed, default=_jsonable),
                "details": json.dumps(
                    {
                        "kwargs": o.check.kwargs,
                        "examples": o.examples,
                        "example_rows": o.example_rows,
                    },
                    default=_jsonable,
                ),
                "n_rows": self.n_rows,
                "evaluated_at": self.evaluated_at,
            }
            for o in self.outcomes
        ]


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def _clean(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item"):
        return _clean(value.item())
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def _frame_for_gx(data: pd.DataFrame) -> pd.DataFrame:
    """Great Expectations cannot hash list cells; show them as text."""
    out = data.copy()
    for col in out.columns:
        if out[col].dtype == object and out[col].map(lambda v: isinstance(v, list | tuple)).any():
            out[col] = out[col].map(lambda v: None if v is None else str(list(v)))
        elif hasattr(out[col].dtype, "pyarrow_dtype"):
            out[col] = out[col].astype(object)
    return out


def _example_rows(
    data: pd.DataFrame, index: Any, check: Check, keys: list[str]
) -> list[dict[str, Any]]:
    """The offending rows, shown by their key columns and the checked column."""
    if not index:
        return []
    columns = list(dict.fromkeys(c for c in keys if c in data.columns))
    checked = check.kwargs.get("column_list") or ([check.column] if check.column else [])
    columns += [c for c in checked if c in data.columns and c not in columns]
    if not columns:
        return []
    positions = [i for i in list(index)[:_EXAMPLES] if i in data.index]
    picked = data.loc[positions, columns]
    return [{k: _clean(v) for k, v in row.items()} for row in picked.to_dict("records")]


def _match(pending: list[tuple[str, Check]], kind: str, kwargs: dict[str, Any]) -> Check:
    """Take the check a Great Expectations result belongs to (unsaved suites carry no ids)."""
    for i, (pending_kind, check) in enumerate(pending):
        if pending_kind == kind and all(kwargs.get(k) == v for k, v in check.kwargs.items()):
            return pending.pop(i)[1]
    raise RuntimeError(f"Great Expectations returned a result for an unknown check {kind} {kwargs}")


def run_suite(stage: str, data: pd.DataFrame, *, target: str) -> SuiteResult:
    """Evaluate the suite of `stage` on `data` (rows about to be committed to `target`).

    Parameters
    ----------
    stage : str
        Suite name, one of :data:`radgen.validation.suites.STAGES`.
    data : pandas.DataFrame
        Rows to validate; not modified.
    target : str
        Table (or object) the rows are for; its declared schema adds checks.

    Returns
    -------
    SuiteResult
        Every outcome; call :meth:`SuiteResult.raise_if_blocking` to gate a commit.
    """
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    checks = checks_for(stage, data, target)
    declared = schema_for(target)
    key_columns = (schema_keys(declared) if declared is not None else []) + [
        "feature",
        "series_uid",
    ]
    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    source = ctx.data_sources.add_pandas(f"radgen_{stage}")
    batch_def = source.add_dataframe_asset(target).add_batch_definition_whole_dataframe("all")
    suite = gx.ExpectationSuite(name=f"{stage}:{target}")
    pending: list[tuple[str, Check]] = []
    for check in checks:
        expectation = getattr(gx.expectations, check.expectation)(**check.kwargs)
        suite.add_expectation(expectation)
        pending.append((str(expectation.expectation_type), check))
    batch = batch_def.get_batch(batch_parameters={"dataframe": _frame_for_gx(data)})
    validation = batch.validate(suite, result_format="SUMMARY")
    outcomes = []
    for res in validation.results:
        check = _match(
            pending, str(res.expectation_config.type), dict(res.expectation_config.kwargs)
        )
        detail = res.result or {}
        rows = _example_rows(data, detail.get("partial_unexpected_index_list"), check, key_columns)
        outcomes.append(
            ExpectationOutcome(
                check=check,
                success=bool(res.success),
                unexpected_count=int(detail.get("unexpected_count") or 0),
                examples=_clean(list(detail.get("partial_unexpected_list") or [])),
                observed=_clean(detail.get("observed_value")),
                example_rows=[] if res.success else rows,
            )
        )
    result = SuiteResult(suite=stage, target=target, n_rows=len(data), outcomes=outcomes)
    log.info("%s suite on %s: %s (%d checks)", stage, target, result.status, len(outcomes))
    return result
