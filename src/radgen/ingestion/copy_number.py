"""Copy number: SEG segments, gene-level values from segments, and gene-level tables.

Gene-level values from segments: ``log2`` is the mean of the overlapping segments' seg_mean
weighted by overlap length; ``discrete`` is -2..2 with thresholds ``low`` (default 0.3) and
``high`` (default 1.0): ``|log2| >= high`` -> +-2, ``|log2| >= low`` -> +-1, else 0. The
defaults are the usual log2-ratio cut-offs for single-copy and high-level changes in a pure
tumour (log2(3/2) = 0.58 and log2(1/2) = -1 shrink towards 0 with normal contamination,
hence 0.3); they are parameters because purity and ploidy move them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from radgen.errors import InputError
from radgen.ingestion._tabular import (
    DEFAULT_PATIENT_PATTERN,
    MISSING,
    file_line,
    numeric,
    patient_ids,
    read_table,
    reject_duplicates,
    reject_first,
)
from radgen.ingestion.genome import chromosome_bounds, normalize_chrom

__all__ = ["discretize_log2", "parse_cna_gene", "parse_seg", "segments_to_genes"]

_SEG_ALIASES = {
    "sample_id": ("ID", "Sample", "sample", "ID_REF", "Tumor_Sample_Barcode", "GDC_Aliquot"),
    "chrom": ("chrom", "Chromosome", "chromosome", "chr"),
    "start": ("loc.start", "Start", "start", "Start.bp", "Start_Position"),
    "end": ("loc.end", "End", "end", "End.bp", "End_Position"),
    "num_markers": ("num.mark", "Num_Probes", "Num.Markers", "num_markers", "Num_Markers"),
    "seg_mean": ("seg.mean", "Segment_Mean", "Seg.CN", "seg_mean", "log2"),
}


def parse_seg(
    path: str, *, patient_pattern: str = DEFAULT_PATIENT_PATTERN, genome: str | None = None
) -> pd.DataFrame:
    """Read a SEG file (IGV/cBioPortal, GDC or maftools header) into ``cna_segments`` rows.

    Raises
    ------
    InputError
        A column is missing, a value is not a number, a segment ends before it starts, lies
        beyond its chromosome (`genome`, default the larger of hg19/hg38): the message names
        the line. Overlapping segments are accepted (cBioPortal accepts them).
    """
    frame = read_table(path)
    picked: dict[str, str] = {}
    for target, aliases in _SEG_ALIASES.items():
        found = next((a for a in aliases if a in frame.columns), None)
        if found is None and target != "num_markers":
            raise InputError(
                path, f"not a SEG file: no column for {target} (one of {', '.join(aliases)})"
            )
        if found is not None:
            picked[target] = found
    out = pd.DataFrame(
        {
            "sample_id": frame[picked["sample_id"]].str.strip(),
            "chrom": normalize_chrom(frame[picked["chrom"]]),
            "start": numeric(frame, picked["start"], integer=True, low=0),
            "end": numeric(frame, picked["end"], integer=True, low=0),
            "num_markers": numeric(frame, picked["num_markers"], integer=True, low=0)
            if "num_markers" in picked
            else pd.Series(pd.NA, index=frame.index, dtype="Int64"),
            "seg_mean": numeric(frame, picked["seg_mean"]),
        }
    )
    gaps = pd.concat(
        [out[["sample_id", "chrom"]].fillna("").eq(""), out[["start", "end", "seg_mean"]].isna()],
        axis=1,
    )
    reject_first(
        frame,
        gaps.any(axis=1),
        lambda row: (
            "no value for "
            + ", ".join(repr(picked[c]) for c in gaps.columns[gaps.iloc[row].to_numpy()])
        ),
    )
    reject_first(
        frame,
        (out["end"] < out["start"]).fillna(False),
        lambda row: (
            f"segment ends ({out['end'].iloc[row]}) before it starts ({out['start'].iloc[row]})"
        ),
    )
    limit = out["chrom"].map(chromosome_bounds(genome)).astype("float64")
    reject_first(
        frame,
        out["end"].astype("float64") > limit,
        lambda row: (
            f"segment end {out['end'].iloc[row]} lies beyond chromosome "
            f"{out['chrom'].iloc[row]} ({int(limit.iloc[row]):,} bp)"
        ),
    )
    out["patient_id"] = patient_ids(out["sample_id"], patient_pattern)
    return out


def discretize_log2(log2: pd.Series, *, low: float = 0.3, high: float = 1.0) -> pd.Series:
    """-2..2 calls from log2 ratios (see the module docstring); NULL stays NULL.

    Examples
    --------
    >>> discretize_log2(pd.Series([-1.2, -0.5, 0.1, 0.3, 1.0])).tolist()
    [-2, -1, 0, 1, 2]
    """
    if not 0 < low < high:
        raise InputError("thresholds", f"need 0 < low < high, got {low}, {high}")
    v = log2.astype("float64")
    calls = np.select([v >= high, v >= low, v <= -high, v <= -low], [2, 1, -2, -1], default=0)
    return pd.Series(calls, index=log2.index, dtype="Int64").where(v.notna())


def segments_to_genes(
    segments: pd.DataFrame, genes: pd.DataFrame, *, low: float = 0.3, high: float = 1.0
) -> pd.DataFrame:
    """Gene-level copy number from segments: overlap-length-weighted mean of seg_mean.

    Parameters
    ----------
    segments : pandas.DataFrame
        ``sample_id, patient_id, chrom, start, end, seg_mean`` (1-based inclusive).
    genes : pandas.DataFrame
        ``gene, chrom, start, end`` (1-based inclusive), e.g. from
        :func:`radgen.ingestion.genome.gene_intervals`.
    low, high : float
        Thresholds of the discrete calls.

    Returns
    -------
    pandas.DataFrame
        ``sample_id, patient_id, gene, log2, discrete`` for every gene overlapped by a
        segment of the sample.
    """
    parts = []
    for (sample, chrom), seg in segments.groupby(["sample_id", "chrom"], sort=False):
        g = genes[genes["chrom"] == chrom]
        if g.empty:
            continue
        seg = seg.sort_values("start")
        s_start = seg["start"].to_numpy(dtype=np.int64)
        s_end = seg["end"].to_numpy(dtype=np.int64)
        g_start = g["start"].to_numpy(dtype=np.int64)
        g_end = g["end"].to_numpy(dtype=np.int64)
        lo = np.searchsorted(
            s_end, g_start, side="left"
        )  # first segment ending at/after the gene start
        hi = np.searchsorted(
            s_start, g_end, side="right"
        )  # segments starting at/before the gene end
        n = np.maximum(hi - lo, 0)
        if not n.any():
            continue
        gene_idx = np.repeat(np.arange(len(g)), n)
        seg_idx = np.concatenate([np.arange(a, b) for a, b in zip(lo, hi, strict=True) if b > a])
        overlap = (
            np.minimum(g_end[gene_idx], s_end[seg_idx])
            - np.maximum(g_start[gene_idx], s_start[seg_idx])
            + 1
        )
        keep = overlap > 0
        weights = (
            pd.DataFrame(
                {
                    "gene_row": gene_idx[keep],
                    "w": overlap[keep].astype(np.float64),
                    "wv": overlap[keep] * seg["seg_mean"].to_numpy(dtype=np.float64)[seg_idx[keep]],
                }
            )
            .groupby("gene_row")
            .sum()
        )
        part = pd.DataFrame(
            {
                "sample_id": sample,
                "patient_id": seg["patient_id"].iloc[0],
                "gene": g["gene"].to_numpy()[weights.index.to_numpy()],
                "log2": (weights["wv"] / weights["w"]).to_numpy(),
            }
        )
        parts.append(part)
    if not parts:
        return pd.DataFrame(columns=["sample_id", "patient_id", "gene", "log2", "discrete"])
    out = pd.concat(parts, ignore_index=True)
    # a gene split across chromosomes or listed twice: average its rows, weighted equally
    out = out.groupby(["sample_id", "patient_id", "gene"], as_index=False)["log2"].mean()
    out["discrete"] = discretize_log2(out["log2"], low=low, high=high)
    return out


_ANNOTATIONS = {"Entrez_Gene_Id", "Cytoband", "Locus ID", "Gene Symbol", "Hugo_Symbol"}


def parse_cna_gene(
    path: str,
    *,
    values: str = "discrete",
    patient_pattern: str = DEFAULT_PATIENT_PATTERN,
    low: float = 0.3,
    high: float = 1.0,
) -> pd.DataFrame:
    """Read a gene-level copy-number table: cBioPortal discrete long, or wide (genes x samples).

    Parameters
    ----------
    path : str
        The file.
    values : {"discrete", "log2"}
        What the cells hold: -2..2 calls (anything else is an error) or continuous log2
        ratios (discrete calls are then derived with `low`/`high`).

    Returns
    -------
    pandas.DataFrame
        ``sample_id, patient_id, gene, log2, discrete``; missing cells are left out.

    Raises
    ------
    InputError
        A value outside -2..2 or not a number, a row without a gene, or a duplicate
        sample/gene pair: the message names the line.
    """
    if values not in {"discrete", "log2"}:
        raise InputError(values, "values are 'discrete' or 'log2'")
    frame = read_table(path)
    gene_col = next((c for c in ("Hugo_Symbol", "Gene Symbol", "gene") if c in frame.columns), None)
    entrez = frame["Entrez_Gene_Id"].str.strip() if "Entrez_Gene_Id" in frame else None
    if gene_col is None and entrez is None:
        raise InputError(path, "no gene column (Hugo_Symbol or Entrez_Gene_Id)")
    gene = (
        frame[gene_col].str.strip() if gene_col else pd.Series([""] * len(frame), index=frame.index)
    )
    if entrez is not None:
        gene = gene.where(gene != "", entrez)
    reject_first(frame, gene == "", lambda _: "no Hugo_Symbol or Entrez_Gene_Id")
    if {"Sample_Id", "Value"} <= set(frame.columns):  # DISCRETE_LONG
        cells = frame["Value"]
        long = pd.DataFrame(
            {
                "row": np.arange(len(frame)),
                "sample_id": frame["Sample_Id"].str.strip(),
                "gene": gene,
            }
        )
    else:
        samples = [c for c in frame.columns if c not in _ANNOTATIONS and c != gene_col]
        stacked = frame[samples].stack().rename("cell").reset_index()
        cells = stacked["cell"]
        long = pd.DataFrame(
            {
                "row": stacked["level_0"].to_numpy(),
                "sample_id": stacked["level_1"].str.strip(),
                "gene": gene.to_numpy()[stacked["level_0"].to_numpy()],
            }
        )
    lines = [file_line(frame, r) for r in long["row"]]
    discrete = values == "discrete"
    number = numeric(
        frame,
        "value",
        values=pd.Series(cells.to_numpy()),
        integer=discrete,
        low=-2 if discrete else None,
        high=2 if discrete else None,
        lines=lines,
        where=[f"sample {s!r}" for s in long["sample_id"]],
    )
    long["value"] = number.to_numpy()
    long["line"] = lines
    present = ~cells.astype(str).str.strip().isin(MISSING).to_numpy()
    long = long[present].reset_index(drop=True)
    reject_duplicates(
        frame, ["sample_id", "gene"], long, "sample/gene pair", lines=long["line"].tolist()
    )
    out = pd.DataFrame({"sample_id": long["sample_id"], "gene": long["gene"]})
    if values == "discrete":
        out["log2"] = np.nan
        out["discrete"] = long["value"].astype("Int64")
    else:
        out["log2"] = long["value"].astype("float64")
        out["discrete"] = discretize_log2(out["log2"], low=low, high=high)
    out["patient_id"] = patient_ids(out["sample_id"], patient_pattern)
    return out
