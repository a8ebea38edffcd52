"""``radgen analyze``: radiogenomic analyses over catalog tables, written as tables or reports."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from radgen.cli._common import (
    AllowWarningsOpt,
    CatalogOpt,
    JsonOpt,
    OptionalSchedulerOpt,
    client_if,
    emit,
    frame_table,
    open_catalog,
    out,
    records,
)
from radgen.cli.analyze_associate import associate_cmd

__all__ = ["analyze_app"]

analyze_app = typer.Typer(
    help="Link imaging features with genomics: CCF, associations, mechanistic links, maps.",
    no_args_is_help=True,
)
analyze_app.command("associate")(associate_cmd)


def _floats(raw: str | None, option: str) -> list[float] | None:
    """A comma-separated list of numbers, or None when the option is not given."""
    if raw is None:
        return None
    try:
        return [float(v) for v in raw.split(",") if v.strip()]
    except ValueError as err:
        raise typer.BadParameter(
            "comma-separated numbers, e.g. 0,500,1000", param_hint=option
        ) from err


def _names(raw: str) -> list[str]:
    return [v.strip() for v in raw.split(",") if v.strip()]


@analyze_app.command("ccf")
def ccf_cmd(
    purity_from: Annotated[
        str,
        typer.Option(
            "--purity-from",
            help="Imaging purity: TABLE.COLUMN, a features column name, or a TABLE with a "
            "'purity' column keyed by sample_id or subject_id.",
        ),
    ],
    assume_diploid: Annotated[
        bool,
        typer.Option(
            "--assume-diploid/--no-assume-diploid",
            help="Take CN_t = 2 where no copy number covers a mutation (else CCF is NULL).",
        ),
    ] = True,
    cn_normal: Annotated[
        float, typer.Option("--cn-normal", min=0, help="Copies in normal cells.")
    ] = 2.0,
    multiplicity: Annotated[
        float, typer.Option("--multiplicity", min=1, help="Mutated copies per tumour cell.")
    ] = 1.0,
    alpha: Annotated[
        float, typer.Option("--alpha", min=0, max=1, help="Level of the CCF > 1 test.")
    ] = 0.05,
    catalog: CatalogOpt = None,
    allow_warnings: AllowWarningsOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Cancer cell fraction of every mutation from VAF, copy number and imaging purity.

    CCF = v((1 - p) CN_n + p CN_t) / (p m); commits a new version of the `ccf` table.
    """
    from radgen.analysis.ccf_table import write_ccf_table

    cat = open_catalog(catalog)
    params = {
        "purity_from": purity_from, "assume_diploid": assume_diploid, "cn_normal": cn_normal,
        "multiplicity": multiplicity, "alpha": alpha,
    }  # fmt: skip
    with cat.run("analyze ccf", params, allow_warnings=allow_warnings) as run:
        report = write_ccf_table(
            run, purity_from, assume_diploid=assume_diploid, cn_normal=cn_normal,
            multiplicity=multiplicity, alpha=alpha,
        )  # fmt: skip

    def human() -> None:
        out.print(
            f"{report.table}@{report.version}: {report.n_with_ccf}/{report.n_mutations} mutations "
            f"with a CCF, {report.n_clonal} clonal, {report.n_over_one} above 1 beyond noise "
            f"(purity {report.purity_source})"
            + (" (unchanged: identical to the current version)" if report.unchanged else "")
        )
        out.print(
            "  copy number from: "
            + ", ".join(f"{k} {v}" for k, v in sorted(report.cn_sources.items()))
        )
        for reason, n in sorted(report.invalid.items()):
            out.print(f"  no CCF for {n} mutation(s): {reason}")

    emit(report.to_json(), as_json, human)


@analyze_app.command("links")
def links_cmd(
    features: Annotated[
        str, typer.Option("--features", help="Feature set NAME (table features_NAME) or table.")
    ],
    expression: Annotated[
        str, typer.Option("--expression", help="Expression table (long: sample_id, gene, value).")
    ] = "expression",
    value: Annotated[
        str, typer.Option("--value", help="Value column of a long expression table.")
    ] = "log2_tpm",
    maps: Annotated[
        list[str] | None,
        typer.Option(
            "--map",
            help="MEASURE=COLUMN[:PATTERN]: take MEASURE (adc_mean, adc_p10, rcbv, ktrans, "
            "r2star) from COLUMN over the ROIs whose series description matches PATTERN. "
            "Repeatable. Default: series recognised by description (ADC, R2*, rCBV, Ktrans).",
        ),
    ] = None,
    signature: Annotated[
        str,
        typer.Option("--signature", help="Comma-separated genes of the hypoxia score."),
    ] = "CA9,VEGFA,SLC2A1,PGK1,LDHA,BNIP3,ADM,NDRG1",
    confidence: Annotated[
        float, typer.Option("--confidence", min=0, max=1, help="Coverage of the intervals.")
    ] = 0.95,
    alpha: Annotated[
        float, typer.Option("--alpha", min=0, max=1, help="Significance level.")
    ] = 0.05,
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Also write the report as CSV to this file.")
    ] = None,
    catalog: CatalogOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Expected-sign links: ADC vs MKI67 (-), rCBV and Ktrans vs VEGFA (+), R2* vs hypoxia (+).

    Spearman rho with Fisher-z intervals and p-values; says whether each sign agrees and
    which features or genes are missing.
    """
    from radgen.analysis.links import (
        LINKS,
        expression_frame,
        imaging_frame,
        links_report,
        parse_maps,
    )
    from radgen.errors import ConfigError

    genes = _names(signature)
    if not genes:
        raise ConfigError("--signature", "give at least one gene")
    overrides = parse_maps(maps or [])
    cat = open_catalog(catalog)
    table = features if features.startswith("features_") else f"features_{features}"
    imaging, sources = imaging_frame(cat.root, table, maps=overrides)
    wanted = sorted({link.target for link in LINKS if link.target != "hypoxia_score"} | set(genes))
    expr = expression_frame(cat.root, expression, value=value, genes=wanted)
    report = links_report(imaging, expr, genes, confidence=confidence, alpha=alpha)
    if out_file is not None:
        out_file.parent.mkdir(parents=True, exist_ok=True)
        report.to_csv(out_file, index=False)
    missing = [s for s in report["status"] if s != "ok"]
    doc: dict[str, Any] = {
        "features": table,
        "expression": expression,
        "subjects": len(imaging.index.intersection(expr.index)),
        "measures": sources,
        "links": records(report),
        "missing": missing,
        "csv": None if out_file is None else str(out_file),
    }

    def human() -> None:
        shown = report[["imaging", "target", "expected_sign", "n", "status"]].copy()
        shown["rho [CI]"] = [
            "" if r != r else f"{r:+.3f} [{lo:+.3f}, {hi:+.3f}]"
            for r, lo, hi in zip(report["rho"], report["ci_low"], report["ci_high"], strict=True)
        ]
        shown["p"] = ["" if p != p else f"{p:.3g}" for p in report["p_value"]]
        shown["agrees"] = report["agrees"].astype("string").fillna("")
        shown["supported"] = report["supported"].astype("string").fillna("")
        out.print(frame_table(shown, title=f"{table} x {expression}"))
        for name, where in sources.items():
            out.print(f"  {name}: {where}")

    emit(doc, as_json, human)


class MapKind(StrEnum):
    """Parametric maps of ``radgen analyze maps``."""

    adc = "adc"
    r2star = "r2star"


class FitMethod(StrEnum):
    """Fits of ``radgen analyze maps``."""

    loglinear = "loglinear"
    nonlinear = "nonlinear"


@analyze_app.command("maps")
def maps_cmd(
    kind: Annotated[MapKind, typer.Option("--kind", help="Map to compute.")],
    series: Annotated[
        str,
        typer.Option(
            "--series", help="Comma-separated source series, one per b-value or echo time."
        ),
    ],
    b_values: Annotated[
        str | None,
        typer.Option("--b-values", help="adc: b-values in s/mm^2, in the order of --series."),
    ] = None,
    echo_times: Annotated[
        str | None,
        typer.Option(
            "--echo-times",
            help="r2star: echo times in ms, in the order of --series (default: the series' TE).",
        ),
    ] = None,
    method: Annotated[
        FitMethod, typer.Option("--method", help="r2star fit: log-linear or non-linear LS.")
    ] = FitMethod.loglinear,
    copy_rois: Annotated[
        bool,
        typer.Option("--copy-rois/--no-copy-rois", help="Copy the sources' ROIs onto the map."),
    ] = True,
    catalog: CatalogOpt = None,
    scheduler: OptionalSchedulerOpt = None,
    allow_warnings: AllowWarningsOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Fit an ADC or R2* map chunk by chunk and store it as a new image series.

    ADC: ln S = ln S0 - b ADC (stored in um^2/s); R2*: S = S0 exp(-TE R2*) (stored in 1/s).
    The map keeps the modality, subject and scanner of its sources and lists them as
    derived_from; `radgen features compute` then includes it.
    """
    from radgen.analysis.maps import write_map_series
    from radgen.errors import ConfigError

    uids = _names(series)
    if kind == MapKind.adc and echo_times is not None:
        raise ConfigError("--echo-times", "is for --kind r2star; ADC takes --b-values")
    if kind == MapKind.r2star and b_values is not None:
        raise ConfigError("--b-values", "is for --kind adc; R2* takes --echo-times")
    values = (
        _floats(b_values, "--b-values")
        if kind == MapKind.adc
        else _floats(echo_times, "--echo-times")
    )
    cat = open_catalog(catalog)
    params = {
        "kind": kind.value, "series": uids, "values": values, "method": method.value,
        "copy_rois": copy_rois,
    }  # fmt: skip
    with (
        cat.run("analyze maps", params, allow_warnings=allow_warnings) as run,
        client_if(scheduler),
    ):
        fit: Literal["loglinear", "nonlinear"] = (
            "nonlinear" if method == FitMethod.nonlinear else "loglinear"
        )
        report = write_map_series(run, kind.value, uids, values, method=fit, copy_rois=copy_rois)

    def human() -> None:
        state = "unchanged" if report.unchanged else "wrote"
        out.print(
            f"{state} {report.kind} map {report.series_uid} ({report.units}, shape "
            f"{report.shape}) from {len(report.sources)} series at {report.values}"
        )
        if report.n_invalid:
            out.print(f"  {report.n_invalid} voxels could not be fitted (stored as 0)")
        if report.rois:
            out.print(f"  ROIs on the map: {', '.join(report.rois)}")

    emit(report.to_json(), as_json, human)
