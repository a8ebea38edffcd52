"""Expression: RSEM gene results, HTSeq counts and count matrices -> TPM, FPKM, log2(1 + TPM).

radgen computes TPM and FPKM itself from counts and lengths, the same way for every input:

- ``TPM_i = (c_i / L_i) / sum_j (c_j / L_j) * 1e6``
- ``FPKM_i = c_i * 1e9 / (L_i * sum_j c_j)``

where ``L`` is the effective length (RSEM) or the gene length (union of exons, from a GTF or
a lengths file). Genes with zero length get TPM and FPKM 0 and stay out of the TPM
denominator. On RSEM's own output this reproduces its TPM/FPKM columns up to RSEM's rounding
of every column to two decimals.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa

from radgen.errors import InputError
from radgen.ingestion._tabular import (
    DEFAULT_PATIENT_PATTERN,
    READ_ERRORS,
    leading_comment_lines,
    numeric,
    patient_ids,
    read_table,
    reject_duplicates,
    reject_first,
    require,
)

__all__ = [
    "CountMatrix",
    "normalize_counts",
    "parse_count_matrix",
    "parse_htseq",
    "parse_rsem",
    "read_count_matrix",
]


def normalize_counts(
    counts: npt.ArrayLike, lengths: npt.ArrayLike
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """TPM and FPKM of one sample from counts and lengths (formulas in the module docstring).

    Examples
    --------
    >>> tpm, fpkm = normalize_counts([10, 20, 0], [1000, 2000, 0])
    >>> tpm.round(1).tolist(), fpkm.round(1).tolist()
    ([500000.0, 500000.0, 0.0], [333333333.3, 333333333.3, 0.0])
    """
    c = np.asarray(counts, dtype=np.float64)
    length = np.asarray(lengths, dtype=np.float64)
    usable = length > 0
    rate = np.zeros_like(c)
    with np.errstate(over="ignore", invalid="ignore"):  # absurd counts give inf: callers check
        rate[usable] = c[usable] / length[usable]
        total_rate = rate.sum()
        tpm = rate / total_rate * 1e6 if total_rate > 0 else np.zeros_like(c)
        total = c.sum()
        fpkm = np.zeros_like(c)
        if total > 0:
            fpkm[usable] = c[usable] * 1e9 / (length[usable] * total)
    return tpm, fpkm


def _symbol(gene_ids: pd.Series) -> pd.Series:
    """``TP53|7157`` (TCGA legacy) -> ``TP53``; other ids carry no symbol."""
    return gene_ids.map(lambda g: g.split("|")[0] if re.match(r"^[^|?]+\|\d+$", g) else None)


def _frame(
    path: str,
    sample: str,
    gene_id: pd.Series,
    counts: pd.Series,
    lengths: npt.ArrayLike,
    pattern: str,
) -> pd.DataFrame:
    tpm, fpkm = normalize_counts(counts.to_numpy(dtype=np.float64), lengths)
    _require_finite(path, tpm, fpkm)
    out = pd.DataFrame(
        {
            "sample_id": sample,
            "gene_id": gene_id.to_numpy(),
            "gene": _symbol(gene_id).to_numpy(),
            "count": counts.to_numpy(dtype=np.float64),
            "length": np.asarray(lengths, dtype=np.float64),
            "tpm": tpm,
            "fpkm": fpkm,
        }
    )
    out["log2_tpm"] = np.log2(1.0 + out["tpm"])
    out["patient_id"] = patient_ids(out["sample_id"], pattern)
    return out


def _require_finite(path: str, *values: npt.NDArray[np.float64]) -> None:
    """Raise if normalization overflowed (counts or lengths beyond any real sequencing run)."""
    if not all(np.isfinite(v).all() for v in values):
        raise InputError(path, "counts or gene lengths out of range: TPM or FPKM overflows")


def _sample_from_name(path: str, suffixes: str) -> str:
    name = Path(path).name
    stem = re.sub(suffixes, "", name)
    return stem if stem != name else name.split(".")[0]


def parse_rsem(
    path: str, *, sample_id: str | None = None, patient_pattern: str = DEFAULT_PATIENT_PATTERN
) -> pd.DataFrame:
    """Read an RSEM ``genes.results`` file; TPM/FPKM recomputed from expected_count and effective_length.

    The sample id is `sample_id`, else the file name before ``.genes.results`` (and an
    optional ``.rsem``).

    Raises
    ------
    InputError
        A required column is missing, a value is not a number or negative, a gene repeats.
    """
    frame = read_table(path, comments=False)
    require(
        frame, path, ["gene_id", "expected_count", "effective_length"], "RSEM genes.results file"
    )
    sample = sample_id or _sample_from_name(path, r"(\.rsem)?\.genes\.results(\.gz)?$")
    parsed = pd.DataFrame({"gene_id": frame["gene_id"].str.strip()})
    reject_duplicates(frame, ["gene_id"], parsed, "gene")
    counts = numeric(frame, "expected_count", low=0)
    lengths = numeric(frame, "effective_length", low=0).fillna(0.0)
    return _frame(path, sample, parsed["gene_id"], counts.fillna(0.0), lengths, patient_pattern)


def _lookup_lengths(gene_ids: pd.Series, lengths: pd.Series, path: str) -> npt.NDArray[np.float64]:
    """Length of each gene id; ids with a version suffix (ENSG...15) also match without it."""
    direct = gene_ids.map(lengths)
    unversioned = gene_ids.str.replace(r"\.\d+$", "", regex=True).map(
        lengths.rename(index=lambda i: re.sub(r"\.\d+$", "", str(i)))
    )
    found = direct.fillna(unversioned)
    if found.isna().all():
        raise InputError(
            path, "no gene of the file has a length in --lengths/--gtf (check the gene ids)"
        )
    missing = int(found.isna().sum())
    if missing:
        raise InputError(
            path, f"{missing} gene(s) have no length, e.g. {gene_ids[found.isna()].iloc[0]!r}"
        )
    result: npt.NDArray[np.float64] = found.to_numpy(dtype=np.float64)
    return result


def parse_htseq(
    path: str,
    lengths: pd.Series,
    *,
    sample_id: str | None = None,
    patient_pattern: str = DEFAULT_PATIENT_PATTERN,
) -> pd.DataFrame:
    """Read HTSeq-count output (``gene<TAB>count``, ``__`` summary lines dropped).

    Raises
    ------
    InputError
        Not two columns, a count that is not a non-negative whole number, a repeated gene,
        a gene without a length.
    """
    frame = read_table(path, comments=False, header=False)
    if frame.shape[1] != 2:
        raise InputError(
            path, f"HTSeq counts have 2 columns (gene, count); this file has {frame.shape[1]}"
        )
    frame.columns = ["gene_id", "count"]
    keep = ~frame["gene_id"].str.startswith("__")
    frame_kept = frame[keep]
    frame_kept.attrs = dict(frame.attrs)
    parsed = pd.DataFrame({"gene_id": frame_kept["gene_id"].str.strip()})
    reject_duplicates(frame_kept, ["gene_id"], parsed, "gene")
    counts = numeric(frame_kept, "count", integer=True, low=0).astype("float64")
    sample = sample_id or _sample_from_name(path, r"(\.htseq)?\.counts?(\.txt)?(\.gz)?$")
    return _frame(
        path,
        sample,
        parsed["gene_id"],
        counts,
        _lookup_lengths(parsed["gene_id"], lengths, path),
        patient_pattern,
    )


def _strict_matrix(path: str, lengths: pd.Series | None, patient_pattern: str) -> pd.DataFrame:
    """Cell-by-cell reading: slow, but its errors name the line and the sample."""
    frame = read_table(path)
    if frame.shape[1] < 2:
        raise InputError(path, "a count matrix has a gene column and at least one sample column")
    gene_col = frame.columns[0]
    genes = frame[gene_col].str.strip()
    reject_first(frame, genes.fillna("").eq(""), lambda _: f"no gene id in column {gene_col!r}")
    reject_duplicates(frame, [gene_col], pd.DataFrame({gene_col: genes}), "gene")
    gene_lengths = _lookup_lengths(genes, lengths, path)
    parts = []
    annotation = set(_annotation_columns(frame.columns[1:]))
    for sample in [c for c in frame.columns[1:] if c not in annotation]:
        counts = numeric(frame, sample, low=0).fillna(0.0)
        parts.append(
            _frame(path, str(sample).strip(), genes, counts, gene_lengths, patient_pattern)
        )
    return pd.concat(parts, ignore_index=True)


@dataclass
class CountMatrix:
    """A gene x sample count matrix with its lengths, TPM and FPKM, kept as arrays.

    The long ``expression`` rows are produced a few samples at a time (:meth:`chunks`), so a
    20,000 x 1,000 matrix never becomes a 20-million-row frame in memory.
    """

    genes: list[str]
    samples: list[str]
    patients: list[str]
    counts: npt.NDArray[np.float64]  # genes x samples
    lengths: npt.NDArray[np.float64]
    tpm: npt.NDArray[np.float64]
    fpkm: npt.NDArray[np.float64]

    def chunks(
        self, extra: Mapping[str, str], *, samples_per_chunk: int = 50, skip: Iterable[str] = ()
    ) -> Iterator[pa.Table]:
        """Long rows (plus the constant `extra` columns), `samples_per_chunk` samples at a time.

        Text columns are built by Arrow ``take`` from the short lists of genes and samples, so
        no per-row Python string is created.
        """
        skipped = set(skip)
        keep = np.array([j for j, s in enumerate(self.samples) if s not in skipped], dtype=np.int64)
        n_genes = len(self.genes)
        gene_ids = pa.array(self.genes, type=pa.string())
        symbols = pa.array(_symbol(pd.Series(self.genes)).tolist(), type=pa.string())
        samples = pa.array(self.samples, type=pa.string())
        patients = pa.array(self.patients, type=pa.string())
        for start in range(0, len(keep), samples_per_chunk):
            group = keep[start : start + samples_per_chunk]
            per_row_sample = pa.array(np.repeat(group, n_genes))
            per_row_gene = pa.array(np.tile(np.arange(n_genes, dtype=np.int64), len(group)))
            tpm = self.tpm[:, group].T.ravel()
            columns: dict[str, pa.Array] = {
                "sample_id": samples.take(per_row_sample),
                "patient_id": patients.take(per_row_sample),
                "gene_id": gene_ids.take(per_row_gene),
                "gene": symbols.take(per_row_gene),
                "count": pa.array(self.counts[:, group].T.ravel()),
                "length": pa.array(np.tile(self.lengths, len(group))),
                "tpm": pa.array(tpm),
                "fpkm": pa.array(self.fpkm[:, group].T.ravel()),
                "log2_tpm": pa.array(np.log2(1.0 + tpm)),
            }
            n = len(group) * n_genes
            for key, value in extra.items():
                columns[key] = pa.array([value], type=pa.string()).take(
                    pa.array(np.zeros(n, dtype=np.int64))
                )
            yield pa.table(columns)

    def to_frame(self) -> pd.DataFrame:
        """All rows as one DataFrame (fine for small matrices and tests)."""
        whole = self.chunks({}, samples_per_chunk=max(1, len(self.samples)))
        return pa.concat_tables(list(whole)).to_pandas()


#: Columns of count tables that describe the gene rather than a sample (featureCounts writes
#: Chr, Start, End, Strand, Length; cBioPortal-style tables carry Entrez ids and symbols).
ANNOTATION_COLUMNS = frozenset(
    {
        "chr", "start", "end", "strand", "length", "entrez_gene_id", "hugo_symbol", "gene_name",
        "gene_symbol", "symbol", "description", "gene_type", "gene_biotype", "name",
    }
)  # fmt: skip


def _annotation_columns(columns: Iterable[Any]) -> list[str]:
    return [str(c) for c in columns if str(c).strip().lower() in ANNOTATION_COLUMNS]


#: What reading a broken matrix raises (pandas reports a bad number or header as ValueError).
_MATRIX_ERRORS: tuple[type[Exception], ...] = (*READ_ERRORS, ValueError)


def read_count_matrix(
    path: str, lengths: pd.Series | None, *, patient_pattern: str = DEFAULT_PATIENT_PATTERN
) -> CountMatrix:
    """Read and normalize a gene x sample count matrix (first column gene ids).

    Leading ``#`` lines (featureCounts' command line) are skipped and gene annotation columns
    (:data:`ANNOTATION_COLUMNS`) are not samples. Gene lengths come from `lengths`, else
    from the file's own ``Length`` column (featureCounts).

    The matrix is read as numbers and normalized column-wise in one pass; only when a cell is
    not a non-negative number is the file re-read cell by cell, so the error names its line
    and sample.

    Raises
    ------
    InputError
        A count that is not a non-negative number (naming line and sample), a repeated gene,
        a gene without a length, no lengths at all.
    """
    try:
        wide = pd.read_csv(
            path,
            sep="\t",
            skiprows=leading_comment_lines(path),
            index_col=0,
            compression="infer",
            engine="c",
        )
    except _MATRIX_ERRORS as err:
        raise InputError(path, f"cannot read as a tab-separated matrix: {err}") from err
    annotation = _annotation_columns(wide.columns)
    own = next((c for c in annotation if c.strip().lower() == "length"), None)
    if lengths is None:
        if own is None:
            raise InputError(
                path, "expression from counts needs gene lengths: --lengths FILE or a GTF"
            )
        lengths = pd.to_numeric(wide[own].astype(str), errors="coerce")  # huge ints: inf
        lengths.index = wide.index.astype(str).str.strip()
    wide = wide.drop(columns=annotation)
    numeric_cols = all(pd.api.types.is_numeric_dtype(t) for t in wide.dtypes)
    values = wide.to_numpy(dtype=np.float64) if numeric_cols else np.zeros((0, 0))
    bad = (
        wide.shape[1] < 1
        or not numeric_cols
        or not np.isfinite(values).all()  # NaN (a missing count) and inf
        or (values < 0).any()
    )
    genes = pd.Series(wide.index.astype(str).str.strip())
    if bad or genes.duplicated().any() or genes.fillna("").eq("").any():
        _strict_matrix(path, lengths, patient_pattern)  # raises, naming the line
        raise InputError(path, "not a matrix of non-negative counts")
    gene_len = _lookup_lengths(genes, lengths, path)
    counts = values
    usable = gene_len > 0
    rate = np.zeros_like(counts)
    fpkm = np.zeros_like(counts)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        rate[usable] = counts[usable] / gene_len[usable, None]
        sums = rate.sum(axis=0)
        fpkm[usable] = counts[usable] * 1e9 / (gene_len[usable, None] * counts.sum(axis=0))
        _require_finite(path, gene_len, rate, sums, np.where(np.isnan(fpkm), 0.0, fpkm))
        tpm = np.nan_to_num(rate / sums * 1e6)  # 0/0: a sample without counts
    samples = [str(c).strip() for c in wide.columns]
    return CountMatrix(
        genes=genes.tolist(),
        samples=samples,
        patients=patient_ids(pd.Series(samples), patient_pattern).tolist(),
        counts=counts,
        lengths=gene_len,
        tpm=tpm,
        fpkm=np.nan_to_num(fpkm),
    )


def parse_count_matrix(
    path: str, lengths: pd.Series, *, patient_pattern: str = DEFAULT_PATIENT_PATTERN
) -> pd.DataFrame:
    """Read a gene x sample count matrix into ``expression`` rows (see :func:`read_count_matrix`).

    Returns
    -------
    pandas.DataFrame
        Rows sample by sample, gene order within each sample as in the file.
    """
    return read_count_matrix(path, lengths, patient_pattern=patient_pattern).to_frame()
