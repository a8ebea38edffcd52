"""Chromosome names and lengths (GRCh37/hg19, GRCh38/hg38) and gene annotations (BED, GTF)."""

from __future__ import annotations

import gzip
import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from radgen.errors import InputError

__all__ = [
    "CHROM_LENGTHS",
    "chromosome_bounds",
    "gene_intervals",
    "gene_lengths",
    "normalize_chrom",
]

_CHROMS = [*(str(i) for i in range(1, 23)), "X", "Y", "M"]
_HG19 = [249250621, 243199373, 198022430, 191154276, 180915260, 171115067, 159138663, 146364022,
         141213431, 135534747, 135006516, 133851895, 115169878, 107349540, 102531392, 90354753,
         81195210, 78077248, 59128983, 63025520, 48129895, 51304566, 155270560, 59373566, 16571]  # fmt: skip
_HG38 = [248956422, 242193529, 198295559, 190214555, 181538259, 170805979, 159345973, 145138636,
         138394717, 133797422, 135086622, 133275309, 114364328, 107043718, 101991189, 90338345,
         83257441, 80373285, 58617616, 64444167, 46709983, 50818468, 156040895, 57227415, 16569]  # fmt: skip

#: Chromosome lengths by build (UCSC/GRC primary assemblies).
CHROM_LENGTHS: Mapping[str, Mapping[str, int]] = {
    "hg19": dict(zip(_CHROMS, _HG19, strict=True)),
    "hg38": dict(zip(_CHROMS, _HG38, strict=True)),
}
_ALIASES = {
    "grch37": "hg19",
    "hg19": "hg19",
    "37": "hg19",
    "grch38": "hg38",
    "hg38": "hg38",
    "38": "hg38",
}


def normalize_chrom(values: pd.Series) -> pd.Series:
    """``chr1`` -> ``1``, ``23`` -> ``X``, ``24`` -> ``Y``, ``MT`` -> ``M`` (cBioPortal's conventions)."""
    out = values.astype(str).str.strip().str.removeprefix("chr").str.removeprefix("CHR")
    return out.replace({"23": "X", "24": "Y", "MT": "M", "x": "X", "y": "Y"})


def chromosome_bounds(build: str | None) -> Mapping[str, int]:
    """Chromosome lengths of `build`; with None, the larger of hg19 and hg38 (lenient)."""
    if build is None:
        return {c: max(CHROM_LENGTHS["hg19"][c], CHROM_LENGTHS["hg38"][c]) for c in _CHROMS}
    key = _ALIASES.get(build.lower())
    if key is None:
        raise InputError(build, "unknown genome build; use hg19/GRCh37 or hg38/GRCh38")
    return CHROM_LENGTHS[key]


def _open(path: str):  # type: ignore[no-untyped-def]
    return gzip.open(path, "rt") if path.endswith(".gz") else Path(path).open()


def _gtf_genes(path: str) -> pd.DataFrame:
    rows = []
    name_re = re.compile(r'gene_name "([^"]+)"')
    id_re = re.compile(r'gene_id "([^"]+)"')
    with _open(path) as fh:
        for number, line in enumerate(fh, start=1):
            if line.startswith("#") or not line.strip():
                continue
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 9:
                raise InputError(path, f"line {number}: a GTF line has 9 tab-separated fields")
            if parts[2] not in {"gene", "exon"}:
                continue
            name = name_re.search(parts[8]) or id_re.search(parts[8])
            if name is None:
                raise InputError(path, f"line {number}: no gene_name or gene_id attribute")
            gid = id_re.search(parts[8])
            rows.append(
                (
                    parts[2],
                    parts[0],
                    int(parts[3]),
                    int(parts[4]),
                    name.group(1),
                    gid.group(1) if gid else name.group(1),
                )
            )
    frame = pd.DataFrame(rows, columns=["feature", "chrom", "start", "end", "gene", "gene_id"])
    if frame.empty:
        raise InputError(path, "no gene or exon lines in this GTF")
    return frame


def gene_intervals(path: str) -> pd.DataFrame:
    """Gene coordinates from a BED (0-based, half-open) or GTF (1-based) file, as 1-based inclusive.

    Returns
    -------
    pandas.DataFrame
        ``gene, chrom, start, end``; one row per gene (the span of its ``gene`` lines in a GTF).
    """
    if re.search(r"\.gtf(\.gz)?$", path):
        gtf = _gtf_genes(path)
        genes = gtf[gtf["feature"] == "gene"]
        if genes.empty:  # exon-only GTF: span of the exons
            genes = gtf
        out = genes.groupby(["gene", "chrom"], as_index=False).agg(
            start=("start", "min"), end=("end", "max")
        )
    else:
        try:
            bed = pd.read_csv(
                path, sep="\t", header=None, comment="#", dtype=str, usecols=[0, 1, 2, 3]
            )
        except (OSError, ValueError, pd.errors.ParserError) as err:
            raise InputError(path, f"not a BED file with chrom, start, end, name: {err}") from err
        bed.columns = ["chrom", "start", "end", "gene"]
        out = pd.DataFrame(
            {
                "gene": bed["gene"],
                "chrom": bed["chrom"],
                "start": pd.to_numeric(bed["start"]).astype(np.int64) + 1,
                "end": pd.to_numeric(bed["end"]).astype(np.int64),
            }
        )
    out["chrom"] = normalize_chrom(out["chrom"])
    return out.sort_values(["chrom", "start"]).reset_index(drop=True)


def gene_lengths(path: str) -> pd.Series:
    """Gene lengths for TPM/FPKM: union of exon lengths from a GTF, or a two-column table.

    Parameters
    ----------
    path : str
        A GTF (``.gtf``/``.gtf.gz``) or a tab-separated ``gene_id<TAB>length`` file (header
        optional).

    Returns
    -------
    pandas.Series
        Length in bp, indexed by gene id (GTF: both gene_id and gene_name are indexed).
    """
    if re.search(r"\.gtf(\.gz)?$", path):
        exons = _gtf_genes(path)
        exons = exons[exons["feature"] == "exon"]
        if exons.empty:
            raise InputError(path, "no exon lines to measure gene lengths")
        lengths: dict[str, int] = {}
        for (gid, gene), part in exons.groupby(["gene_id", "gene"]):
            spans = part.sort_values("start")[["start", "end"]].to_numpy()
            total, cur_s, cur_e = 0, int(spans[0, 0]), int(spans[0, 1])
            for s, e in spans[1:]:
                if s > cur_e:
                    total += cur_e - cur_s + 1
                    cur_s, cur_e = int(s), int(e)
                else:
                    cur_e = max(cur_e, int(e))
            total += cur_e - cur_s + 1
            lengths[str(gid)] = total
            lengths.setdefault(str(gene), total)
        return pd.Series(lengths, dtype="float64")
    table = pd.read_csv(path, sep="\t", header=None, dtype=str, comment="#")
    if table.shape[1] < 2:
        raise InputError(path, "a lengths file has two columns: gene_id and length")
    values = pd.to_numeric(table.iloc[:, 1], errors="coerce")
    if values.isna().iloc[0]:  # a header line
        table, values = table.iloc[1:], values.iloc[1:]
    if values.isna().any() or (values < 0).any():
        raise InputError(path, "lengths must be non-negative numbers")
    return pd.Series(values.to_numpy(dtype=float), index=table.iloc[:, 0].str.strip())
