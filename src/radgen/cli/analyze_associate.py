"""``radgen analyze associate``: CCA, PLS or a factor model linking imaging features and omics.

Registered on the ``analyze`` group in :mod:`radgen.cli.analyze`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from radgen.cli._common import CatalogOpt, JsonOpt, emit, open_catalog, out

__all__ = ["AssociateMethod", "associate_cmd"]


class AssociateMethod(StrEnum):
    """Models of ``radgen analyze associate``."""

    cca = "cca"
    pls = "pls"
    factors = "factors"


def associate_cmd(
    features: Annotated[
        str,
        typer.Option("--features", help="Feature table (NAME or features_NAME), one row per ROI."),
    ],
    omics: Annotated[
        str,
        typer.Option(
            "--omics",
            help="Omics table: expression, methylation, cna_gene, gene_mutation, or any "
            "long (sample, gene, value) or wide (sample x genes) table.",
        ),
    ],
    method: Annotated[
        AssociateMethod,
        typer.Option(
            "--method",
            help="cca: ridge-regularized CCA (penalties by CV); pls: PLS-SVD (+ PLS regression "
            "R²); factors: multi-view Bayesian factor model with ARD.",
        ),
    ] = AssociateMethod.cca,
    out_dir: Annotated[
        str | None,
        typer.Option(
            "--out",
            help="Folder for report.html, PNGs and summary.json "
            "(default: ROOT/reports/associate/<features>__<omics>__<method>).",
        ),
    ] = None,
    value: Annotated[
        str | None,
        typer.Option(
            "--value",
            help="Omics value column (default: log2_tpm, m_value, log2, mutated by table).",
        ),
    ] = None,
    top_genes: Annotated[
        int, typer.Option("--top-genes", min=1, help="Keep the N most variable omics variables.")
    ] = 500,
    components: Annotated[
        int, typer.Option("--components", min=1, help="Canonical pairs / PLS components.")
    ] = 3,
    permutations: Annotated[
        int | None,
        typer.Option(
            "--permutations",
            min=1,
            help="Permutations for the p-values (default 200; 50 for factors).",
        ),
    ] = None,
    folds: Annotated[
        int, typer.Option("--folds", min=2, help="Cross-validation folds (held-out values).")
    ] = 5,
    min_samples: Annotated[
        int, typer.Option("--min-samples", min=3, help="Fewest subjects with both blocks.")
    ] = 10,
    seed: Annotated[int, typer.Option("--seed", help="Seed of folds and permutations.")] = 0,
    catalog: CatalogOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Associate imaging features with omics (CCA, PLS or factors); write an HTML report.

    Reports in-sample and held-out (cross-validated) correlations per component with
    permutation p-values, the top features and genes, and for factors the variance each
    factor explains per view.
    """
    from radgen.analysis.associate_report import write_associate_report

    cat = open_catalog(catalog)
    summary = write_associate_report(
        cat,
        features,
        omics,
        str(method),
        out=out_dir,
        value=value,
        top_genes=top_genes,
        n_components=components,
        n_permutations=permutations,
        n_splits=folds,
        seed=seed,
        min_samples=min_samples,
    )

    def human() -> None:
        res = summary["result"]
        out.print(
            f"{method} on {summary['n_subjects']} subjects: "
            f"{summary['features']['n_variables']} features x "
            f"{summary['omics']['n_variables']} {summary['omics']['table']} variables"
        )
        for i, c in enumerate(res["components"]):
            kind = f" ({res['factor_kind'][i]})" if "factor_kind" in res else ""
            out.print(
                f"  {c['component']}{kind}: r = {c['in_sample']:.3f} in-sample, "
                f"{c['heldout']:.3f} held-out, permutation p = {c['p_value']:.3g}",
                highlight=False,
                markup=False,
            )
        for note in summary["notes"]:
            out.print(f"  note: {note}", highlight=False, markup=False)
        out.print(f"report: {summary['report']}", highlight=False, markup=False)

    emit(summary, as_json, human)
