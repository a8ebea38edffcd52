"""``radgen harmonize``: harmonize a feature table version and commit the result.

Reads a version of a feature table, optionally joins covariates from a SQL query, fits the
chosen method, checks that the batch effect shrank and the covariate effect survived (the
``harmonization`` suite: a failure stops the commit), writes ``<table>_harmonized`` as a new
version, stores the fitted parameters in ``harmonization_params`` (so new scans can be
harmonized with them later) and writes a before/after report.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from radgen.analysis.batch_effects import batch_effect, covariate_effects
from radgen.errors import ConfigError, InputError
from radgen.features.harmonize import ComBat, ComBatParams, moment_match
from radgen.features.harmonize_report import write_report
from radgen.platform import tables
from radgen.platform.runs import LineageInput, Run
from radgen.schemas.features import feature_of_column
from radgen.schemas.tables import FEATURE_TABLE_BASE, FEATURE_TABLE_TAIL

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["METHODS", "HarmonizeReport", "harmonize_table", "load_combat"]

log = logging.getLogger(__name__)

METHODS: tuple[str, ...] = (
    "combat",
    "combat-nonparametric",
    "combat-location-scale",
    "moment-matching",
)

#: A feature's batch effect may grow by this much (eta squared) before it counts as not reduced.
BATCH_SLACK = 0.01
#: Covariate coefficients after harmonization must stay within this fraction of before, or 2 SE.
COVARIATE_TOLERANCE = 0.25


@dataclass
class HarmonizeReport:
    """What a harmonization committed and how well it worked."""

    table: str
    version: int | None
    source: str
    method: str
    n_samples: int
    n_features: int
    batch_eta2_before: float
    batch_eta2_after: float
    covariates: dict[str, dict[str, float]] = field(default_factory=dict)
    report_path: str | None = None
    unchanged: bool = False  # identical to the current version: nothing was committed

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` document."""
        return {
            "table": self.table,
            "version": self.version,
            "unchanged": self.unchanged,
            "source": self.source,
            "method": self.method,
            "samples": self.n_samples,
            "features": self.n_features,
            "median_batch_eta2": {"before": self.batch_eta2_before, "after": self.batch_eta2_after},
            "covariates": self.covariates,
            "report": self.report_path,
        }


def _feature_columns(frame: pd.DataFrame, exclude: set[str]) -> list[str]:
    fixed = set(FEATURE_TABLE_BASE.names) | set(FEATURE_TABLE_TAIL.names) | exclude
    registered = [c for c in frame.columns if c not in fixed and feature_of_column(c) is not None]
    if registered:
        return registered
    return [c for c in frame.columns if c not in fixed and pd.api.types.is_float_dtype(frame[c])]


def _quality_frame(
    before: pd.DataFrame, after: pd.DataFrame, batch: pd.Series, covariates: pd.DataFrame | None
) -> tuple[pd.DataFrame, dict[str, dict[str, float]]]:
    """Per-feature checks of the ``harmonization`` suite, and a covariate summary."""
    eb, ea = batch_effect(before, batch), batch_effect(after, batch)
    frame = pd.DataFrame(
        {
            "feature": list(before.columns),
            "eta2_batch_before": eb["eta2"].to_numpy(),
            "eta2_batch_after": ea["eta2"].to_numpy(),
            "kruskal_h_before": eb["kruskal_h"].to_numpy(),
            "kruskal_h_after": ea["kruskal_h"].to_numpy(),
        }
    )
    frame["batch_effect_reduced"] = (
        frame["eta2_batch_after"] <= frame["eta2_batch_before"] + BATCH_SLACK
    )
    summary: dict[str, dict[str, float]] = {}
    frame["covariate_preserved"] = True
    if covariates is not None and not covariates.empty:
        cb = covariate_effects(before, batch, covariates)
        ca = covariate_effects(after, batch, covariates)
        merged = cb.merge(ca, on=["feature", "term"], suffixes=("_before", "_after"))
        allowed = np.maximum(
            COVARIATE_TOLERANCE * merged["coef_before"].abs(), 2 * merged["se_before"]
        )
        merged["ok"] = (merged["coef_after"] - merged["coef_before"]).abs() <= allowed
        per_feature = merged.groupby("feature")["ok"].all()
        frame["covariate_preserved"] = frame["feature"].map(per_feature).fillna(True).astype(bool)
        for term, part in merged.groupby("term"):
            summary[str(term)] = {
                "median_coef_before": float(part["coef_before"].median()),
                "median_coef_after": float(part["coef_after"].median()),
                "preserved_fraction": float(part["ok"].mean()),
            }
    return frame, summary


def _params_rows(model_rows: pd.DataFrame, out: str, method: str, run_id: str) -> pd.DataFrame:
    rows = model_rows.copy()
    rows["batch"] = rows["batch"].fillna("*")
    rows["output_table"] = out
    rows["method"] = method
    rows["run_id"] = run_id
    return rows


def _moment_params(values: pd.DataFrame, batch: pd.Series, g: pd.Series | None) -> pd.DataFrame:
    """Location, scale and genotype effect per batch, as moment matching estimates them."""
    batches = sorted(pd.unique(batch), key=str)
    onehot = np.eye(len(batches))[[batches.index(b) for b in batch]]
    x = onehot if g is None else np.column_stack([onehot, g.astype(float).to_numpy()])
    coef, *_ = np.linalg.lstsq(x, values.to_numpy(dtype=float), rcond=None)
    resid = values.to_numpy(dtype=float) - x @ coef
    rows = []
    for f, name in enumerate(values.columns):
        for j, b in enumerate(batches):
            sd = float(resid[batch.to_numpy() == b, f].std(ddof=1))
            rows += [
                {"feature": name, "batch": str(b), "parameter": "mu", "value": float(coef[j, f])},
                {"feature": name, "batch": str(b), "parameter": "sigma", "value": sd},
            ]
        if g is not None:
            rows.append(
                {"feature": name, "batch": None, "parameter": "theta", "value": float(coef[-1, f])}
            )
    return pd.DataFrame(rows)


def _fit(
    values: pd.DataFrame,
    batch: pd.Series,
    cov: pd.DataFrame | None,
    method: str,
    ref_batch: str | None,
    covariates: list[str],
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Fit and apply one harmonization method (runs in-process or as one Dask task)."""
    if method == "moment-matching":
        if ref_batch is None:
            raise ConfigError("--ref-batch", "moment matching needs the target batch (--ref-batch)")
        g = cov.iloc[:, 0] if cov is not None else None
        if cov is not None and cov.shape[1] > 1:
            raise ConfigError("--covariates", "moment matching preserves one genotype column")
        harmonized = moment_match(values, batch, g, target=ref_batch)
        param_rows = _moment_params(values, batch, g)
        spec: dict[str, Any] = {
            "method": method,
            "target": ref_batch,
            "genotype": covariates[:1],
        }
    else:
        model = ComBat(
            parametric=method != "combat-nonparametric",
            eb=method != "combat-location-scale",
            ref_batch=ref_batch,
        )
        harmonized = model.fit_transform(values, batch, cov)
        assert model.params_ is not None
        param_rows = model.params_.to_frame()
        spec = model.params_.spec()
    return harmonized, param_rows, spec


def harmonize_table(
    run: Run,
    *,
    table: str,
    version: int | None = None,
    batch_column: str = "scanner_batch",
    covariates: list[str] | None = None,
    join_sql: str | None = None,
    ref_batch: str | None = None,
    method: str = "combat",
    name: str | None = None,
    client: Client | None = None,
) -> HarmonizeReport:
    """Harmonize the feature columns of a table version; see the module docstring.

    Parameters
    ----------
    run : Run
        The open run.
    table : str
        Feature table to read.
    version : int, optional
        Its version; current when None.
    batch_column : str
        Column holding the batch (default ``scanner_batch``).
    covariates : list of str, optional
        Columns whose effects are preserved (from the table or from `join_sql`).
    join_sql : str, optional
        Query returning ``subject_id`` plus covariate columns, joined on ``subject_id``.
    ref_batch : str, optional
        Reference batch (ComBat) or target batch (moment matching, required there).
    method : str
        One of :data:`METHODS`.
    name : str, optional
        Output table; default ``<table>_harmonized``.
    client : distributed.Client, optional
        Run the fit as one task on this cluster (the coordinating process reads the table,
        validates and commits); in-process when None.

    Returns
    -------
    HarmonizeReport
    """
    if method not in METHODS:
        raise ConfigError(method, f"unknown method; choose one of {', '.join(METHODS)}")
    out_name = name or f"{table}_harmonized"
    source_version = tables.table_version(run.root, table) if version is None else version
    frame = tables.read_table(run.root, table, version=source_version).to_pandas()
    covariates = list(covariates or [])
    joined: list[str] = []
    if join_sql:
        from radgen.platform.catalog import Catalog

        extra = Catalog(run.root).sql(join_sql)
        if "subject_id" not in extra:
            raise ConfigError(join_sql, "the --join query must return a subject_id column")
        if extra["subject_id"].duplicated().any():
            raise ConfigError(join_sql, "the --join query returns a subject_id more than once")
        clash = sorted(set(extra.columns) & set(frame.columns) - {"subject_id"})
        if clash:
            raise ConfigError(
                join_sql, f"the --join query returns column(s) the table has: {', '.join(clash)}"
            )
        joined = [c for c in extra.columns if c != "subject_id"]
        frame = frame.merge(extra, on="subject_id", how="left", validate="many_to_one")
    for col in [batch_column, *covariates]:
        if col not in frame:
            raise ConfigError(
                col,
                f"no such column in {table}@{source_version}; columns are {', '.join(frame.columns)}",
            )
    missing = (
        frame[covariates].isna().any(axis=1) if covariates else pd.Series(False, index=frame.index)
    )
    if missing.any():
        raise InputError(
            table,
            f"{int(missing.sum())} row(s) have no value for covariate(s) {', '.join(covariates)}",
        )
    features = _feature_columns(frame, set(covariates) | {batch_column})
    if not features:
        raise InputError(table, "no feature columns to harmonize")
    values = frame[features].astype(float)
    batch = frame[batch_column].astype(str)
    cov = frame[covariates] if covariates else None
    fit_args = (values, batch, cov, method, ref_batch, covariates)
    try:
        if client is not None:  # one task: EB priors pool every feature, so the fit is one piece
            harmonized, param_rows, spec = client.submit(_fit, *fit_args, pure=False).result()
        else:
            harmonized, param_rows, spec = _fit(*fit_args)
    except ValueError as err:
        raise InputError(f"{table}@{source_version}", str(err)) from err

    checks, summary = _quality_frame(values, harmonized, batch, cov)
    run.validate("harmonization", checks, target=out_name)

    out = frame.drop(columns=joined).copy()
    out[features] = harmonized.to_numpy()
    if "feature_set_version" in out:
        out["feature_set_version"] = out["feature_set_version"].astype(str) + f"+{method}"
    out["run_id"] = run.run_id
    lineage = [LineageInput("table", f"{table}@{source_version}")]
    described = {
        "harmonization_method": method,
        "harmonization_ref_batch": str(ref_batch),
        "harmonization_covariates": ",".join(covariates),
        "harmonization_source": f"{table}@{source_version}",
    }
    out_version = run.commit(
        out_name, out, suite="features", mode="overwrite", lineage=lineage, metadata=described
    )
    unchanged = out_version is None
    if out_version is None:
        out_version = tables.table_version(run.root, out_name)
    params = _params_rows(param_rows, out_name, method, run.run_id).assign(
        output_version=out_version
    )
    run.commit("harmonization_params", params, suite=None)
    run.root.write_json(spec, "reports", "harmonize", out_name, str(out_version), "model.json")
    report_path = write_report(
        run.root,
        out_name,
        out_version,
        before=values,
        after=harmonized,
        batch=batch,
        checks=checks,
        covariates=summary,
        title=f"{table}@{source_version} -> {out_name}@{out_version} ({method})",
    )
    run.message = f"{out_name}@{out_version}: {method} on {len(features)} features" + (
        " (unchanged)" if unchanged else ""
    )
    return HarmonizeReport(
        table=out_name,
        version=out_version,
        source=f"{table}@{source_version}",
        method=method,
        n_samples=len(frame),
        n_features=len(features),
        batch_eta2_before=float(checks["eta2_batch_before"].median()),
        batch_eta2_after=float(checks["eta2_batch_after"].median()),
        covariates=summary,
        report_path=report_path,
        unchanged=unchanged,
    )


def load_combat(run_root: Any, table: str, version: int | None = None) -> ComBat:
    """The fitted ComBat model stored with a harmonized table version, ready to transform."""
    version = tables.table_version(run_root, table) if version is None else version
    spec = run_root.read_json("reports", "harmonize", table, str(version), "model.json")
    rows = tables.read_table(run_root, "harmonization_params").to_pandas()
    mine = rows[(rows["output_table"] == table) & (rows["output_version"] == version)].copy()
    mine["batch"] = mine["batch"].replace("*", None)
    if mine.empty:
        raise InputError(f"{table}@{version}", "no stored harmonization parameters")
    return ComBat.from_params(ComBatParams.from_frame(mine, spec))
