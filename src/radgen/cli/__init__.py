"""The ``radgen`` command line: parse arguments, call the Python API, map errors to exit codes.

Exit codes: 0 success, 1 a radgen error (bad input, failed suite, missing catalog object;
one line on stderr naming the file and the reason), 2 a usage error.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from radgen.cli._common import (
    AllowWarningsOpt,
    CatalogOpt,
    JsonOpt,
    OptionalSchedulerOpt,
    QuietOpt,
    SchedulerOpt,
    client_if,
    cluster_run,
    emit,
    err,
    frame_table,
    open_catalog,
    out,
    records,
    setup_logging,
)
from radgen.cli.analyze import analyze_app
from radgen.errors import RadgenError, ValidationFailed
from radgen.ingestion._kinds import KINDS as OMICS_KINDS

__all__ = ["app", "main"]

log = logging.getLogger("radgen")

app = typer.Typer(
    name="radgen",
    help="Radiogenomics data catalog and feature store.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
ingest_app = typer.Typer(help="Ingest DICOM series, masks and omics files.", no_args_is_help=True)
features_app = typer.Typer(help="Compute radiomic features.", no_args_is_help=True)
datasets_app = typer.Typer(help="Publish, list and pull versioned datasets.", no_args_is_help=True)
catalog_app = typer.Typer(help="Maintain the catalog index.", no_args_is_help=True)
tables_app = typer.Typer(help="List tables and their versions.", no_args_is_help=True)
cluster_app = typer.Typer(
    help="Start or stop a local Dask scheduler and workers in the background.",
    no_args_is_help=True,
)
app.add_typer(ingest_app, name="ingest")
app.add_typer(features_app, name="features")
app.add_typer(datasets_app, name="datasets")
app.add_typer(catalog_app, name="catalog")
app.add_typer(tables_app, name="tables")
app.add_typer(cluster_app, name="cluster")
app.add_typer(analyze_app, name="analyze")


@app.command()
def init(catalog: CatalogOpt = None, as_json: JsonOpt = False) -> None:
    """Create an empty catalog (safe to run again)."""
    from radgen.platform.catalog import Catalog

    cat = Catalog.init(catalog)
    emit(cat.info(), as_json, lambda: out.print(f"catalog ready at {cat.root.url}"))


@app.command()
def demo(
    catalog: CatalogOpt = None,
    patients: Annotated[int, typer.Option("--patients", min=2, help="Synthetic patients.")] = 12,
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
    scheduler: SchedulerOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Generate a synthetic cohort and run the whole pipeline on it."""
    from radgen.demo import run_demo
    from radgen.platform.storage import resolve_root

    root = resolve_root(catalog)
    say: Callable[[str], None] = (
        (lambda line: err.print(f"[dim]demo[/] {line}"))
        if as_json
        else (lambda line: out.print(f"• {line}"))
    )
    summary = run_demo(root.url, n_patients=patients, seed=seed, scheduler=scheduler, say=say)
    flag = (
        ""
        if root.url.endswith("radgen-catalog") and Path(root.url) == Path.cwd() / "radgen-catalog"
        else f" --catalog {root.url}"
    )

    def human() -> None:
        out.print(
            f"\n[bold]Done.[/] The catalog is at [cyan]{root.url}[/] (inputs in {summary['cohort']})."
        )
        out.print("\nTry next:")
        out.print(
            f'  radgen sql{flag} "select scanner_batch, count(*) from features_radiomics group by 1"'
        )
        out.print(f"  radgen lineage{flag} features_radiomics")
        out.print(f"  radgen datasets pull{flag} demo-cohort@1 --to out/")
        out.print(
            '  python -c "import radgen; '
            f"print(radgen.open_catalog('{root.url}').sql('select * from series').head())\""
        )
        out.print(
            '  python -c "import duckdb; con = duckdb.connect('
            f"'{root.url}/catalog.duckdb', read_only=True); "
            "print(con.sql('select * from features_radiomics limit 5'))\""
        )

    emit(summary, as_json, human)


class Fmt(StrEnum):
    """Output formats of ``radgen sql``."""

    table = "table"
    csv = "csv"
    json = "json"


@app.command()
def sql(
    query: Annotated[str, typer.Argument(help="DuckDB SQL over the catalog's tables.")],
    catalog: CatalogOpt = None,
    fmt: Annotated[Fmt, typer.Option("--format", help="Output format.")] = Fmt.table,
    as_json: JsonOpt = False,
) -> None:
    """Query the current version of every table with SQL."""
    frame = open_catalog(catalog).sql(query)
    if as_json or fmt == Fmt.json:
        emit(records(frame), True, lambda: None)
    elif fmt == Fmt.csv:
        frame.to_csv(sys.stdout, index=False)
    else:
        out.print(frame_table(frame))


#: ``--no-deid`` of the ingest commands (one meaning: identifiers kept as the files have them).
NoDeidOpt = Annotated[
    bool,
    typer.Option(
        "--no-deid",
        help="Keep patient ids, UIDs and dates as the files have them (default: PS3.15 "
        "de-identification; omics samples link to the pseudonymized imaging subjects).",
    ),
]


@ingest_app.command("dicom")
def ingest_dicom_cmd(
    paths: Annotated[
        list[Path], typer.Argument(help="DICOM files or folders (searched recursively).")
    ],
    catalog: CatalogOpt = None,
    scheduler: SchedulerOpt = None,
    no_deid: NoDeidOpt = False,
    batch_fields: Annotated[
        str | None,
        typer.Option(
            "--batch-fields",
            help="Comma-separated header fields that define a scanner batch "
            "(default: modality,manufacturer,manufacturer_model_name,convolution_kernel,kvp,"
            "magnetic_field_strength, or scanner_batch_fields in ROOT/config/radgen.yaml).",
        ),
    ] = None,
    allow_warnings: AllowWarningsOpt = False,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Ingest DICOM series: sort by geometry, de-identify, write Zarr volumes, quarantine bad files."""
    from radgen.ingestion.dicom import batch_fields as checked_fields
    from radgen.ingestion.dicom import find_files
    from radgen.ingestion.ingest_dicom import ingest_dicom

    find_files(paths)  # fail fast on a missing path or option, before starting a cluster
    fields = None if batch_fields is None else checked_fields(batch_fields)
    cat = open_catalog(catalog)
    params: dict[str, Any] = {"paths": [str(p) for p in paths], "deidentify": not no_deid}
    if fields is not None:
        params["batch_fields"] = list(fields)
    with cluster_run(
        cat, "ingest dicom", params, allow_warnings, scheduler, not (quiet or as_json)
    ) as (
        run,
        client,
        progress,
    ):
        report = ingest_dicom(
            run,
            paths,
            client,
            deidentify=not no_deid,
            batch_fields=fields,
            progress=progress,
        )

    def human() -> None:
        for s in report.series:
            out.print(
                f"ingested {s['series_uid']} {s['modality']} {s['shape']} spacing {s['spacing']} ({s['scanner_batch']})"
            )
        for uid in report.unchanged:
            out.print(f"unchanged {uid}")
        for q in report.quarantined:
            out.print(f"[yellow]quarantined[/] {q.path}: {q.reason}")

    emit(report.to_json(), as_json, human)


@ingest_app.command("masks")
def ingest_masks_cmd(
    paths: Annotated[
        list[Path],
        typer.Argument(
            help="NIfTI (.nii, .nii.gz), DICOM SEG or RTSTRUCT files, or folders of them."
        ),
    ],
    series: Annotated[
        str | None,
        typer.Option(
            "--series",
            help="SeriesInstanceUID the masks lie on (overrides the series a SEG or RTSTRUCT references).",
        ),
    ] = None,
    catalog: CatalogOpt = None,
    allow_warnings: AllowWarningsOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Ingest NIfTI, DICOM SEG or RTSTRUCT masks onto the grid of an ingested series.

    Each SEG segment and each RTSTRUCT ROI becomes its own mask (structures may overlap);
    RTSTRUCT contours are filled by voxel centre with the even-odd rule (inner contours are
    holes). A SEG must share the series' rows, columns, pixel spacing and orientation.
    """
    from radgen.ingestion.masks import ingest_masks

    cat = open_catalog(catalog)
    with cat.run(
        "ingest masks",
        {"paths": [str(p) for p in paths], "series": series},
        allow_warnings=allow_warnings,
    ) as run:
        report = ingest_masks(run, paths, series_uid=series)

    def human() -> None:
        for r in report.rois:
            out.print(
                f"ROI {r['roi_id']} ({r['name']}) on {r['series_uid']}: {r['n_voxels']} voxels, "
                f"{r['volume_ml']:.2f} ml"
            )
        for path in report.unchanged:
            out.print(f"unchanged {path}")
        for q in report.quarantined:
            out.print(f"[yellow]quarantined[/] {q.path}: {q.reason}")

    emit(report.to_json(), as_json, human)


#: Omics file kinds ``radgen ingest omics`` reads (one list: :data:`radgen.ingestion.omics.KINDS`).
OmicsKind = StrEnum("OmicsKind", {kind.replace("-", "_"): kind for kind in OMICS_KINDS})  # type: ignore[misc]


@ingest_app.command("omics")
def ingest_omics_cmd(
    path: Annotated[Path, typer.Argument(help="The omics file (plain or gzipped).")],
    kind: Annotated[OmicsKind, typer.Option("--kind", help="What the file holds.")],
    sample_id: Annotated[
        str | None,
        typer.Option("--sample-id", help="Sample of a one-sample file (rsem, HTSeq counts)."),
    ] = None,
    patient_pattern: Annotated[
        str | None,
        typer.Option(
            "--patient-pattern", help="Regex whose first group is the patient id of a sample id."
        ),
    ] = None,
    id_column: Annotated[
        str | None, typer.Option("--id-column", help="Patient column of a clinical table.")
    ] = None,
    genes: Annotated[
        Path | None,
        typer.Option("--genes", help="cna-segments: BED or GTF of genes; also writes cna_gene."),
    ] = None,
    thresholds: Annotated[
        str,
        typer.Option(
            "--thresholds", help="cna: |log2| cut-offs for +-1 and +-2 calls, 'LOW,HIGH'."
        ),
    ] = "0.3,1.0",
    values: Annotated[
        str, typer.Option("--values", help="cna-gene: 'discrete' (-2..2) or 'log2' (continuous).")
    ] = "discrete",
    lengths: Annotated[
        Path | None, typer.Option("--lengths", help="expression: GTF or 'gene_id<TAB>length' file.")
    ] = None,
    genome: Annotated[
        str | None,
        typer.Option(
            "--genome", help="mutations, cna-segments: hg19 or hg38 bounds (default: both)."
        ),
    ] = None,
    samples: Annotated[
        Path | None,
        typer.Option("--samples", help="mutations: case list of the sequenced samples."),
    ] = None,
    no_deid: NoDeidOpt = False,
    catalog: CatalogOpt = None,
    allow_warnings: AllowWarningsOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Ingest a MAF, SEG, gene-level CNA, counts, RSEM, methylation, clinical or subjects file."""
    from radgen.ingestion.omics import DEFAULT_PATIENT_PATTERN, OmicsOptions, ingest_omics

    try:
        low, high = (float(v) for v in thresholds.split(","))
    except ValueError as err:
        raise typer.BadParameter("LOW,HIGH, e.g. 0.3,1.0", param_hint="--thresholds") from err
    options = OmicsOptions(
        sample_id=sample_id,
        patient_pattern=patient_pattern or DEFAULT_PATIENT_PATTERN,
        id_column=id_column,
        genes=None if genes is None else str(genes),
        thresholds=(low, high),
        values=values,
        lengths=None if lengths is None else str(lengths),
        genome=genome,
        samples=None if samples is None else str(samples),
        deidentify=not no_deid,
    )
    cat = open_catalog(catalog)
    params = {
        "path": str(path),
        "kind": kind.value,
        **{k: str(v) for k, v in options.__dict__.items()},
    }
    with cat.run("ingest omics", params, allow_warnings=allow_warnings) as run:
        report = ingest_omics(run, str(path), kind.value, options)
    emit(
        report.to_json(),
        as_json,
        lambda: out.print(
            f"{kind.value}: " + ", ".join(f"{t} +{n} rows" for t, n in report.tables.items())
        ),
    )


@features_app.command("compute")
def features_compute_cmd(
    config: Annotated[
        Path | None, typer.Option("--config", help="PyRadiomics-style YAML settings.")
    ] = None,
    name: Annotated[
        str, typer.Option("--name", help="Feature set name; the table is features_<name>.")
    ] = "radiomics",
    where: Annotated[
        str | None,
        typer.Option(
            "--where",
            help="SQL condition on rois JOIN series, e.g. \"series.modality = 'CT'\".",
        ),
    ] = None,
    catalog: CatalogOpt = None,
    scheduler: SchedulerOpt = None,
    allow_warnings: AllowWarningsOpt = False,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Compute features for every ROI on the Dask cluster; commit a new table version."""
    from radgen.features.compute import compute_features
    from radgen.features.settings import load_settings

    settings = load_settings(config)
    cat = open_catalog(catalog)
    params = {"settings": settings.as_params(), "name": name, "where": where}
    with cluster_run(
        cat, "features compute", params, allow_warnings, scheduler, not (quiet or as_json)
    ) as (
        run,
        client,
        progress,
    ):
        report = compute_features(run, client, settings, name=name, where=where, progress=progress)
    emit(
        report.to_json(),
        as_json,
        lambda: out.print(
            f"{report.table}@{report.version}: {report.n_rois} ROIs x {report.n_features} features"
            + (" (unchanged: identical to the current version)" if report.unchanged else "")
        ),
    )


@features_app.command("list")
def features_list_cmd(
    family: Annotated[
        str | None,
        typer.Option("--family", help="Only this IBSI family (stat, ih, morph, cm, ...)."),
    ] = None,
    convention: Annotated[
        str | None,
        typer.Option(
            "--convention", help="Only features the convention computes: ibsi or pyradiomics."
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """The feature registry: key in both conventions, IBSI id, family, unit, invariance."""
    from radgen.errors import ConfigError
    from radgen.schemas.features import FEATURES

    if convention not in {None, "ibsi", "pyradiomics"}:
        raise ConfigError("--convention", f"expected ibsi or pyradiomics, got {convention!r}")
    rows = []
    for f in FEATURES.values():
        if family is not None and f.family != family:
            continue
        if convention == "ibsi" and not f.ibsi:
            continue
        if convention == "pyradiomics" and f.pyradiomics is None:
            continue
        rows.append(
            {
                "ibsi_tag": f.tag if f.ibsi else None,
                "ibsi_id": f.ibsi_id or None,
                "name": f.name,
                "family": f.family,
                "unit": f.unit,
                "ibsi_keys": f.ibsi_keys(),
                "pyradiomics": f.pyradiomics,
                "discretised": f.discretised,
                "roi_zscore_invariant": f.roi_zscore_invariant,
            }
        )
    if not rows:
        raise ConfigError("--family", f"no registered feature in family {family!r}")

    def human() -> None:
        import pandas as pd

        frame = pd.DataFrame(rows)
        frame["aggr"] = [len(k) if len(k) > 1 else "" for k in frame.pop("ibsi_keys")]
        frame["invariant"] = frame.pop("roi_zscore_invariant").map({True: "yes", False: "no"})
        shown = ["ibsi_tag", "ibsi_id", "family", "unit", "aggr", "pyradiomics", "invariant"]
        out.print(frame_table(frame[shown].fillna(""), title=f"{len(rows)} features"))

    emit(rows, as_json, human)


#: Harmonization methods (one list: :data:`radgen.features.harmonize_table.METHODS`).
HarmonizeMethod = StrEnum(  # type: ignore[misc]
    "HarmonizeMethod",
    {
        m.replace("-", "_"): m
        for m in ("combat", "combat-nonparametric", "combat-location-scale", "moment-matching")
    },
)


@app.command()
def harmonize(
    table: Annotated[str, typer.Option("--table", help="Feature table to harmonize.")],
    version: Annotated[
        int | None, typer.Option("--version", help="Its version (default: current).")
    ] = None,
    batch: Annotated[str, typer.Option("--batch", help="Batch column.")] = "scanner_batch",
    covariates: Annotated[
        str | None,
        typer.Option("--covariates", help="Comma-separated columns whose effects are preserved."),
    ] = None,
    join: Annotated[
        str | None,
        typer.Option(
            "--join", help="SQL returning subject_id + covariate columns, joined on subject_id."
        ),
    ] = None,
    ref_batch: Annotated[
        str | None,
        typer.Option(
            "--ref-batch", help="Reference batch (kept unchanged; moment matching target)."
        ),
    ] = None,
    method: Annotated[
        HarmonizeMethod, typer.Option("--method", help="Harmonization method.")
    ] = "combat",  # type: ignore[assignment]
    name: Annotated[
        str | None, typer.Option("--name", help="Output table (default: TABLE_harmonized).")
    ] = None,
    catalog: CatalogOpt = None,
    scheduler: OptionalSchedulerOpt = None,
    allow_warnings: AllowWarningsOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Remove scanner batch effects from a feature table; commit a new versioned table + report."""
    from radgen.features.harmonize_table import harmonize_table

    cov = [c.strip() for c in covariates.split(",") if c.strip()] if covariates else []
    params = {
        "table": table, "version": version, "batch": batch, "covariates": cov, "join": join,
        "ref_batch": ref_batch, "method": str(method), "name": name,
    }  # fmt: skip
    cat = open_catalog(catalog)
    with (
        cat.run("harmonize", params, allow_warnings=allow_warnings) as run,
        client_if(scheduler) as client,  # the fit is one task
    ):
        report = harmonize_table(
            run, table=table, version=version, batch_column=batch, covariates=cov, join_sql=join,
            ref_batch=ref_batch, method=str(method), name=name, client=client,
        )  # fmt: skip

    def human() -> None:
        out.print(
            f"{report.table}@{report.version} from {report.source} ({report.method}, {report.n_features} features)"
            + (" (unchanged: identical to the current version)" if report.unchanged else "")
        )
        out.print(
            f"  batch effect (median eta²): {report.batch_eta2_before:.3f} -> {report.batch_eta2_after:.3f}"
        )
        for term, v in report.covariates.items():
            out.print(
                f"  {term}: median coefficient {v['median_coef_before']:.4g} -> {v['median_coef_after']:.4g} "
                f"(preserved in {v['preserved_fraction']:.0%} of features)"
            )
        out.print(f"  report: {report.report_path}")

    emit(report.to_json(), as_json, human)


@datasets_app.command("publish")
def datasets_publish_cmd(
    name: Annotated[str, typer.Argument(help="Dataset name.")],
    query: Annotated[str, typer.Option("--sql", help="Query that defines the dataset.")],
    description: Annotated[str, typer.Option("--description", help="Free text.")] = "",
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="Point in time (ISO date/time, UTC if no zone): getvariable('as_of') in the SQL.",
        ),
    ] = None,
    catalog: CatalogOpt = None,
    allow_warnings: AllowWarningsOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Freeze a query over the current table versions as a new immutable dataset version."""
    from radgen.platform.datasets import publish_dataset

    cat = open_catalog(catalog)
    params = {"name": name, "sql": query, "description": description, "as_of": as_of}
    with cat.run("datasets publish", params, allow_warnings=allow_warnings) as run:
        manifest = publish_dataset(run, name, query, description=description, as_of=as_of)
    emit(
        manifest,
        as_json,
        lambda: out.print(
            f"published {name}@{manifest['version']}: {manifest['n_rows']} rows, tables {manifest['table_versions']}"
        ),
    )


@datasets_app.command("list")
def datasets_list_cmd(catalog: CatalogOpt = None, as_json: JsonOpt = False) -> None:
    """List published dataset versions."""
    frame = open_catalog(catalog).list_datasets()
    emit(records(frame), as_json, lambda: out.print(frame_table(frame)))


class PullFmt(StrEnum):
    """File formats of ``radgen datasets pull``."""

    parquet = "parquet"
    csv = "csv"


@datasets_app.command("pull")
def datasets_pull_cmd(
    ref: Annotated[str, typer.Argument(help="NAME@VERSION (NAME alone: the latest version).")],
    to: Annotated[Path, typer.Option("--to", help="Destination folder.")],
    fmt: Annotated[PullFmt, typer.Option("--format", help="Data file format.")] = PullFmt.parquet,
    catalog: CatalogOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Copy a dataset version to a folder, verifying every file's SHA-256."""
    from radgen.platform.datasets import parse_ref, pull_dataset

    result = pull_dataset(open_catalog(catalog).root, parse_ref(ref), to, fmt=fmt.value)
    emit(
        result,
        as_json,
        lambda: out.print(
            f"pulled {result['dataset']}@{result['version']} to {to}: "
            f"{len(result['files'])} file(s), every SHA-256 verified"
        ),
    )


@datasets_app.command("diff")
def datasets_diff_cmd(
    old: Annotated[str, typer.Argument(help="NAME@A, the older version.")],
    new: Annotated[str, typer.Argument(help="NAME@B, the newer version.")],
    key: Annotated[
        str | None,
        typer.Option(
            "--key", help="Comma-separated key columns (default: roi_id, sample_id+gene, ...)."
        ),
    ] = None,
    catalog: CatalogOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Rows added, removed and changed (by key) between two dataset versions, and which columns changed."""
    from radgen.platform.dataset_diff import diff_datasets
    from radgen.platform.datasets import parse_ref

    keys = [k.strip() for k in key.split(",") if k.strip()] if key else None
    result = diff_datasets(open_catalog(catalog).root, parse_ref(old), parse_ref(new), keys=keys)

    def human() -> None:
        out.print(
            f"{result['old']} -> {result['new']} by ({', '.join(result['keys'])}): "
            f"+{result['added']} added, -{result['removed']} removed, "
            f"~{result['changed']} changed, {result['unchanged']} unchanged"
        )
        for column, n in result["changed_columns"].items():
            out.print(f"  {column}: {n} row(s) differ")
        for what in ("columns_added", "columns_removed"):
            if result[what]:
                out.print(f"  {what.replace('_', ' ')}: {', '.join(result[what])}")
        for what, listed in result["examples"].items():
            if listed:
                out.print(f"  e.g. {what}: {', '.join(map(str, listed))}")

    emit(result, as_json, human)


@tables_app.command("list")
def tables_list_cmd(catalog: CatalogOpt = None, as_json: JsonOpt = False) -> None:
    """List tables with their current version and row count."""
    frame = open_catalog(catalog).list_tables()
    emit(records(frame), as_json, lambda: out.print(frame_table(frame)))


@tables_app.command("history")
def tables_history_cmd(
    name: Annotated[str, typer.Argument(help="Table name.")],
    catalog: CatalogOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show the versions of a table with their run and suite status."""
    frame = open_catalog(catalog).history(name)
    emit(records(frame), as_json, lambda: out.print(frame_table(frame, title=name)))


@tables_app.command("vacuum")
def tables_vacuum_cmd(
    table: Annotated[
        list[str] | None, typer.Option("--table", help="Table(s) to vacuum (default: all).")
    ] = None,
    retention_hours: Annotated[
        int,
        typer.Option(
            "--retention-hours",
            help="Keep files unreferenced for less than this (default: a week).",
        ),
    ] = 168,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List what would be removed; remove nothing.")
    ] = False,
    catalog: CatalogOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Delete old table files; versions pinned by published datasets are always kept."""
    from radgen.platform.retention import vacuum

    cat = open_catalog(catalog)
    params = {"tables": table or "all", "retention_hours": retention_hours, "dry_run": dry_run}
    with cat.run("tables vacuum", params) as run:
        report = vacuum(run, retention_hours=retention_hours, names=table, dry_run=dry_run)

    def human() -> None:
        verb = "would remove" if dry_run else "removed"
        for entry in report:
            kept = entry["kept_versions"]
            note = (
                f" (kept versions {', '.join(map(str, kept))}: pinned by datasets)" if kept else ""
            )
            if entry["removed"] or kept:
                out.print(f"{entry['table']}: {verb} {len(entry['removed'])} file(s){note}")
                for path in entry["removed"]:
                    out.print(f"  {path}")
        total = sum(len(e["removed"]) for e in report)
        out.print(f"{verb} {total} file(s) in {len(report)} table(s)")

    emit(report, as_json, human)


@app.command()
def lineage(
    ref: Annotated[str, typer.Argument(help="TABLE[@VERSION] or DATASET[@VERSION].")],
    show_all: Annotated[
        bool, typer.Option("--all", help="List every input, not the first 10 of each kind.")
    ] = False,
    catalog: CatalogOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show where a table or dataset version came from (run, code, parameters, inputs) and its users."""
    name, _, version = ref.partition("@")
    if version and not version.isdigit():
        raise typer.BadParameter("VERSION must be a whole number", param_hint="REF")
    trace = open_catalog(catalog).lineage(name, int(version) if version else None)

    def human_dataset() -> None:
        out.print(f"[bold]dataset {trace['dataset']}[/] ({trace['n_rows']} rows)")
        out.print(f"  sql: {trace['sql']}")
        out.print(f"  manifest sha256 {trace['manifest_sha256']}")
        out.print(f"  run {trace['run_id']}, code version {trace['code_version']}")
        out.print(
            "  pinned tables: " + ", ".join(f"{t['table']}@{t['version']}" for t in trace["tables"])
        )
        for table in trace["tables"]:
            run = table["run"]
            n_inputs = sum(len(v) for v in table["inputs"].values())
            out.print(
                f"    {table['table']}@{table['version']}: {run.get('command')} run {run.get('run_id')}, "
                f"{n_inputs} input(s) ({', '.join(sorted(table['inputs'])) or 'none'})"
            )

    def human() -> None:
        if "dataset" in trace:
            human_dataset()
            return
        run = trace["run"]
        out.print(
            f"[bold]{trace['table']}@{trace['version']}[/] (current {trace['current_version']})"
        )
        out.print(
            f"  run {run.get('run_id')}: {run.get('command')} ({run.get('status', 'unknown')})"
        )
        out.print(
            f"  code version {run.get('code_version')}, parameter hash {run.get('param_hash')}"
        )
        out.print(
            f"  suite {trace['suite']['status']}"
            + "".join(
                f"; failed {f['expectation']} on {f['column']}" for f in trace["suite"]["failed"]
            )
        )
        for kind, items in sorted(trace["inputs"].items()):
            out.print(f"  {len(items)} input {kind}:")
            for item in items if show_all else items[:10]:
                out.print(
                    f"    {item['id']}"
                    + (f"  sha256 {item['sha256'][:16]}…" if item["sha256"] else "")
                )
            if not show_all and len(items) > 10:
                out.print(f"    … {len(items) - 10} more (--all)")
        used = trace.get("used_by", {})
        if used.get("datasets") or used.get("tables"):
            out.print(
                "  used by: " + ", ".join([*used.get("datasets", []), *used.get("tables", [])])
            )

    emit(trace, as_json, human)


@catalog_app.command("rebuild")
def catalog_rebuild_cmd(catalog: CatalogOpt = None, as_json: JsonOpt = False) -> None:
    """Rebuild catalog.duckdb from the files under the root alone."""
    shown = open_catalog(catalog).rebuild_index()
    emit(shown, as_json, lambda: out.print(f"rebuilt the index: {len(shown)} tables"))


@catalog_app.command("gc")
def catalog_gc_cmd(
    older_than: Annotated[
        float,
        typer.Option(
            "--older-than",
            help="Minutes: leave younger files alone (a running command may still commit them).",
        ),
    ] = 60.0,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list what would go.")] = False,
    catalog: CatalogOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Remove what interrupted runs left behind; never a file a committed version uses."""
    from radgen.platform.gc import collect_garbage

    cat = open_catalog(catalog)
    report = collect_garbage(cat.root, older_than_minutes=older_than, dry_run=dry_run)

    def human() -> None:
        verb = "would remove" if dry_run else "removed"
        for item in report.removed:
            out.print(f"{verb} {item['path']}: {item['reason']}")
        out.print(f"{verb} {len(report.removed)} orphans, {report.n_bytes / 1e6:.1f} MB")

    emit(report.to_json(), as_json, human)


@app.command()
def validate(
    stage: Annotated[
        list[str] | None, typer.Option("--stage", help="Stage(s) to check (default: all).")
    ] = None,
    table: Annotated[
        str | None, typer.Option("--table", help="Check one table (its stage is inferred).")
    ] = None,
    version: Annotated[
        int | None, typer.Option("--version", help="With --table: the version (default: current).")
    ] = None,
    report: Annotated[
        Path | None, typer.Option("--report", help="Write a static HTML report into this folder.")
    ] = None,
    catalog: CatalogOpt = None,
    scheduler: OptionalSchedulerOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run the data-quality suites on stored data, record the results, optionally write a report."""
    from radgen.platform import tables
    from radgen.validation.catalog_check import validate_catalog

    cat = open_catalog(catalog)
    params = {"stages": stage or "all", "table": table, "version": version}
    # with a scheduler, the chunked image statistics run on the cluster's workers
    with cat.run("validate", params) as run, client_if(scheduler):
        results = validate_catalog(
            run, stage, table=table, version=version, say=lambda line: err.print(line)
        )
        failed = [r for r in results if r.status == "failed"]
        run.message = f"{len(results)} suites, {len(failed)} failed"
    page = None
    if report is not None:
        from radgen.validation.report import write_report

        history = tables.read_table(cat.root, "quality_results").to_pandas()
        page = write_report(results, report, title=cat.root.url, history=history)
    doc = {
        "suites": [
            {
                "suite": r.suite,
                "target": r.target,
                "version": r.table_version,
                "status": r.status,
                "rows": r.n_rows,
                "failed": [o.describe() for o in r.failures],
            }
            for r in results
        ],
        "report": None if page is None else str(page),
    }

    def human() -> None:
        for r in results:
            colour = {"passed": "green", "warnings": "yellow", "failed": "red"}[r.status]
            where = r.target if r.table_version is None else f"{r.target}@{r.table_version}"
            out.print(
                f"[{colour}]{r.status:8}[/] {r.suite:14} {where} ({len(r.outcomes)} checks, {r.n_rows} rows)"
            )
            for o in r.failures:
                out.print(f"           {o.describe()}", markup=False)
        if page is not None:
            out.print(f"report: {page}")

    emit(doc, as_json, human)
    if failed:
        names = ", ".join(f"{r.suite}:{r.target}" for r in failed)
        raise RadgenError("validate", f"{len(failed)} suite(s) failed: {names}")


@cluster_app.command("up")
def cluster_up_cmd(
    workers: Annotated[int, typer.Option("--workers", "-n", help="Worker processes.")] = 2,
    threads: Annotated[int, typer.Option("--threads", help="Threads per worker.")] = 1,
    memory_limit: Annotated[
        str, typer.Option("--memory-limit", help="Per worker, e.g. 4GiB (default: share RAM).")
    ] = "auto",
    as_json: JsonOpt = False,
) -> None:
    """Start `dask scheduler` and workers on 127.0.0.1 as background processes."""
    from radgen.platform.cluster import cluster_up

    info = cluster_up(workers, threads=threads, memory_limit=memory_limit)

    def human() -> None:
        out.print(f"Dask scheduler {info.address} with {info.workers} worker(s)")
        out.print(f"  dashboard: {info.dashboard}")
        out.print(f"  logs: {info.state}")
        out.print(f"  use it:   export RADGEN_SCHEDULER={info.address}")
        out.print("  stop it:  radgen cluster down")

    emit(info.to_json(), as_json, human)


@cluster_app.command("down")
def cluster_down_cmd(as_json: JsonOpt = False) -> None:
    """Stop the scheduler and workers started by `radgen cluster up`."""
    from radgen.platform.cluster import cluster_down

    stopped = cluster_down()
    emit(
        {"stopped": stopped.to_json() if stopped else None},
        as_json,
        lambda: out.print(
            f"stopped {stopped.address} and its workers" if stopped else "no cluster was running"
        ),
    )


@cluster_app.command("status")
def cluster_status_cmd(as_json: JsonOpt = False) -> None:
    """Show the cluster started by `radgen cluster up`, if it is running."""
    from radgen.platform.cluster import cluster_status

    info = cluster_status()
    emit(
        {"running": info.to_json() if info else None},
        as_json,
        lambda: out.print(
            f"{info.address}: {info.workers} worker(s), dashboard {info.dashboard}"
            if info
            else "no cluster running (start one with: radgen cluster up)"
        ),
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``radgen`` console script; returns the exit code."""
    args = sys.argv[1:] if argv is None else argv
    setup_logging(quiet="--quiet" in args or "-q" in args or "--json" in args)
    try:
        app(args=args, prog_name="radgen")  # usage errors: message + SystemExit(2)
    except RadgenError as error:
        if isinstance(error, ValidationFailed) and error.details:
            for line in error.details:
                err.print(f"  {line}", markup=False, highlight=False)
        sys.stderr.write(error.one_line() + "\n")
        return 1
    except SystemExit as done:
        return done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
