"""MAF files -> ``mutations`` rows and the complete ``gene_mutation`` matrix."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from radgen.errors import InputError
from radgen.ingestion._tabular import (
    DEFAULT_PATIENT_PATTERN,
    numeric,
    patient_ids,
    read_table,
    reject_first,
    require,
)
from radgen.ingestion.genome import chromosome_bounds, normalize_chrom

__all__ = ["NONSYNONYMOUS", "VARIANT_CLASSES", "gene_mutation_matrix", "parse_maf"]

#: Variant classes that count as a mutation of the gene (MAF specification names).
NONSYNONYMOUS: tuple[str, ...] = (
    "Frame_Shift_Del",
    "Frame_Shift_Ins",
    "Splice_Site",
    "Translation_Start_Site",
    "Nonsense_Mutation",
    "Nonstop_Mutation",
    "In_Frame_Del",
    "In_Frame_Ins",
    "Missense_Mutation",
)

#: Every Variant_Classification the MAF specification (GDC, cBioPortal) allows.
VARIANT_CLASSES: frozenset[str] = frozenset(
    {
        *NONSYNONYMOUS,
        "Silent", "Splice_Region", "3'UTR", "5'UTR", "3'Flank", "5'Flank", "IGR", "Intron", "RNA",
        "Targeted_Region", "De_novo_Start_InFrame", "De_novo_Start_OutOfFrame", "Unknown", "Fusion",
    }
)  # fmt: skip

#: MAF columns radgen reads; headers are matched case-insensitively (``End_position`` occurs).
_MAF_COLUMNS = (
    "Hugo_Symbol",
    "Tumor_Sample_Barcode",
    "Variant_Classification",
    "Variant_Type",
    "Chromosome",
    "Start_Position",
    "End_Position",
    "Reference_Allele",
    "Tumor_Seq_Allele2",
    "t_ref_count",
    "t_alt_count",
    "NCBI_Build",
)


def _text(maf: pd.DataFrame, column: str) -> pd.Series:
    if column not in maf:
        return pd.Series([None] * len(maf), index=maf.index, dtype=object)
    return maf[column].str.strip().replace("", None)


def _check_positions(
    maf: pd.DataFrame, chrom: pd.Series, start: pd.Series, end: pd.Series, build: str | None
) -> None:
    """Intervals must be valid and lie within the chromosome (vectorized over rows)."""
    s = start.astype("float64").to_numpy()
    e = end.astype("float64").to_numpy()
    bad = (s < 1) | (e < s - 1)  # insertions: End = Start - 1 is allowed
    reject_first(
        maf,
        np.where(np.isnan(s), False, bad),
        lambda row: f"position {start.iloc[row]}-{end.iloc[row]} is not a valid interval",
    )
    limit = chrom.map(chromosome_bounds(build)).astype("float64")
    if build is None and "NCBI_Build" in maf:
        builds = maf["NCBI_Build"].str.strip()
        for value in builds.unique():
            try:
                bounds = chromosome_bounds(value or None)
            except InputError:
                continue  # an unknown build label: keep the lenient bounds
            rows = (builds == value).to_numpy()
            limit[rows] = chrom[rows].map(bounds).astype("float64")
    reject_first(
        maf,
        np.fmax(s, e) > limit.to_numpy(),
        lambda row: (
            f"position {start.iloc[row]} lies beyond chromosome "
            f"{chrom.iloc[row]} ({int(limit.iloc[row]):,} bp)"
        ),
    )


def parse_maf(
    path: str,
    *,
    patient_pattern: str = DEFAULT_PATIENT_PATTERN,
    genome: str | None = None,
    classes: frozenset[str] = VARIANT_CLASSES,
) -> pd.DataFrame:
    """Read a MAF (plain or gzipped, cBioPortal extended) into ``mutations`` rows.

    ``vaf`` is ``t_alt_count / (t_alt_count + t_ref_count)``, NULL when a count is missing or
    both are zero. Positions are checked against the chromosome lengths of `genome` (else the
    row's NCBI_Build, else the larger of hg19 and hg38).

    Raises
    ------
    InputError
        Missing column, unknown Variant_Classification, non-numeric count, invalid or
        out-of-bounds position: the message names the file and the line.
    """
    maf = read_table(path)
    canonical = {c.lower(): c for c in _MAF_COLUMNS}
    maf = maf.rename(
        columns={c: canonical[c.lower()] for c in maf.columns if c.lower() in canonical}
    )
    require(
        maf,
        path,
        [
            "Hugo_Symbol",
            "Tumor_Sample_Barcode",
            "Variant_Classification",
            "Chromosome",
            "Start_Position",
        ],
        "MAF",
    )
    klass = maf["Variant_Classification"].str.strip()
    reject_first(
        maf,
        ~klass.isin(list(classes)),
        lambda row: f"unknown Variant_Classification {klass.iloc[row]!r}",
    )
    sample, gene = maf["Tumor_Sample_Barcode"].str.strip(), maf["Hugo_Symbol"].str.strip()
    reject_first(
        maf, (sample == "") | (gene == ""), lambda _: "empty Tumor_Sample_Barcode or Hugo_Symbol"
    )
    start = numeric(maf, "Start_Position", integer=True)
    end = numeric(maf, "End_Position", integer=True) if "End_Position" in maf else start
    chrom = normalize_chrom(maf["Chromosome"])
    reject_first(
        maf,
        start.isna().to_numpy() | chrom.fillna("").eq("").to_numpy(),
        lambda _: "no Chromosome or Start_Position",
    )
    _check_positions(maf, chrom, start, end, genome)
    counts = {
        col: numeric(maf, col, integer=True, low=0)
        if col in maf
        else pd.Series(pd.NA, index=maf.index, dtype="Int64")
        for col in ("t_ref_count", "t_alt_count")
    }
    depth = counts["t_ref_count"] + counts["t_alt_count"]
    vaf = counts["t_alt_count"].astype("Float64") / depth.astype("Float64").where(depth > 0)
    out = pd.DataFrame(
        {
            "sample_id": sample,
            "gene": gene,
            "variant_classification": klass,
            "variant_type": _text(maf, "Variant_Type"),
            "chrom": chrom,
            "start": start,
            "end": end,
            "ref": _text(maf, "Reference_Allele").fillna(""),
            "alt": _text(maf, "Tumor_Seq_Allele2").fillna(""),
            "t_ref_count": counts["t_ref_count"],
            "t_alt_count": counts["t_alt_count"],
            "vaf": vaf.astype("float64"),
        }
    )
    out["patient_id"] = patient_ids(out["sample_id"], patient_pattern)
    return out.drop_duplicates(["sample_id", "gene", "chrom", "start", "ref", "alt"]).reset_index(
        drop=True
    )


def gene_mutation_matrix(
    mutations: pd.DataFrame,
    *,
    samples: Sequence[str] | None = None,
    genes: Sequence[str] | None = None,
    classes: Sequence[str] = NONSYNONYMOUS,
) -> pd.DataFrame:
    """Complete sample x gene table of ``mutated`` (any variant of the given classes).

    Parameters
    ----------
    mutations : pandas.DataFrame
        ``mutations`` rows (``sample_id``, ``patient_id``, ``gene``, ``variant_classification``).
    samples : sequence of str, optional
        Sequenced samples (a case list); default every sample in `mutations` (a sample with
        only silent variants is still sequenced).
    genes : sequence of str, optional
        Gene panel; default every gene in `mutations`.
    classes : sequence of str
        Variant classes that count.

    Returns
    -------
    pandas.DataFrame
        One row per (sample, gene): ``sample_id, patient_id, gene, mutated, n_variants``.
    """
    sample_list = sorted(set(samples) if samples is not None else mutations["sample_id"].unique())
    gene_list = sorted(set(genes) if genes is not None else mutations["gene"].unique())
    pairs = mutations[["sample_id", "patient_id"]].drop_duplicates("sample_id")
    patients = dict(zip(pairs["sample_id"], pairs["patient_id"], strict=True))
    hits = mutations[mutations["variant_classification"].isin(list(classes))]
    # count hits on the sample x gene grid by integer codes (the grid can be 10^7 cells)
    s_code = pd.Index(sample_list).get_indexer(hits["sample_id"])
    g_code = pd.Index(gene_list).get_indexer(hits["gene"])
    inside = (s_code >= 0) & (g_code >= 0)
    n_genes = len(gene_list)
    grid = np.bincount(
        s_code[inside] * n_genes + g_code[inside], minlength=len(sample_list) * n_genes
    )
    sample_idx = np.repeat(np.arange(len(sample_list)), n_genes)
    gene_idx = np.tile(np.arange(n_genes), len(sample_list))
    patient_of = pd.Categorical([patients.get(s, s) for s in sample_list])
    # categoricals: 10^7 rows of text without 10^7 Python strings (Arrow keeps them encoded)
    out = pd.DataFrame(
        {
            "sample_id": pd.Categorical.from_codes(sample_idx, sample_list),
            "patient_id": pd.Categorical.from_codes(
                patient_of.codes[sample_idx], patient_of.categories
            ),
            "gene": pd.Categorical.from_codes(gene_idx, gene_list),
            "mutated": grid > 0,
            "n_variants": grid.astype("int64"),
        }
    )
    return out[["sample_id", "patient_id", "gene", "mutated", "n_variants"]]
