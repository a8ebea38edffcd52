"""Run a stage's suite with Great Expectations and decide whether a commit may go ahead.

Great Expectations validates pandas DataFrames (its SQL path on DuckDB is broken) in an
ephemeral context; it is imported lazily because the import alone costs about 3 s.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import os
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from radgen.errors import ValidationFailed
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

    def describe(self) -> str:
        """One line: severity, expectation, column and example offending values."""
        where = f" on {self.check.column}" if self.check.column else ""
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
                "target": self.target,
                "expectation": o.check.expectation,
                "column": o.check.column,
                "severity": o.check.severity,
                "success": o.success,
                "unexpected_count": o.unexpected_count,
                "details": json.dumps(
                    {"kwargs": o.check.kwargs, "examples": o.examples, "observed": o.observed},
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
        outcomes.append(
            ExpectationOutcome(
                check=check,
                success=bool(res.success),
                unexpected_count=int(detail.get("unexpected_count") or 0),
                examples=_clean(list(detail.get("partial_unexpected_list") or [])),
                observed=_clean(detail.get("observed_value")),
            )
        )
    result = SuiteResult(suite=stage, target=target, n_rows=len(data), outcomes=outcomes)
    log.info("%s suite on %s: %s (%d checks)", stage, target, result.status, len(outcomes))
    return result
