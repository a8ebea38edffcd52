"""Omics files -> tidy tables keyed by sample and patient.

Parsers are pure functions from a file to DataFrames; :func:`ingest_omics` validates and
commits them. Supported kinds: ``mutations`` (MAF, plain or gzipped, cBioPortal extended
MAF too), ``rsem`` (RSEM ``genes.results``), ``cna-segments`` (SEG and its GDC/maftools
header variants), ``methylation`` (wide beta-value table) and ``clinical`` (tab-separated,
cBioPortal ``#`` header rows allowed).

Patient ids are derived from sample ids with a regular expression whose first group is the
patient; the default takes the first three ``-``-separated fields, as in TCGA barcodes
(``TCGA-A1-A0SB-01`` -> ``TCGA-A1-A0SB``). Ids that do not match are their own patient.
"""

from __future__ import annotations

import gzip
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from radgen.errors import InputError
from radgen.ingestion._kinds import KINDS
from radgen.platform.runs import LineageInput, Run
from radgen.platform.storage import file_sha256

__all__ = [
    "DEFAULT_PATIENT_PATTERN",
    "KINDS",
    "NONSYNONYMOUS",
    "OmicsReport",
    "gene_mutation_matrix",
    "ingest_omics",
    "parse_clinical",
    "parse_maf",
    "parse_methylation",
    "parse_rsem",
    "parse_seg",
    "patient_ids",
]

log = logging.getLogger(__name__)

DEFAULT_PATIENT_PATTERN = r"^([^-]+-[^-]+-[^-]+)"

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


@dataclass
class OmicsReport:
    """What one omics ingest committed; ``to_json()`` is the CLI's ``--json`` output."""

    kind: str
    path: str
    tables: dict[str, int] = field(default_factory=dict)
    samples: int = 0

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` document."""
        return {"kind": self.kind, "path": self.path, "rows": self.tables, "samples": self.samples}


def patient_ids(samples: pd.Series, pattern: str = DEFAULT_PATIENT_PATTERN) -> pd.Series:
    """Patient id of each sample id: the first group of `pattern`, else the sample id."""
    regex = re.compile(pattern)
    return samples.map(lambda s: m.group(1) if (m := regex.match(str(s))) else str(s))


def _leading_comment_lines(path: str) -> int:
    """Number of lines at the top of the file that start with ``#`` (MAF, cBioPortal headers)."""
    opener = gzip.open if str(path).endswith(".gz") else open
    count = 0
    with opener(path, "rt", errors="replace") as fh:
        for line in fh:
            if not line.startswith("#"):
                break
            count += 1
    return count


def _read_table(path: str, *, comment: str | None = "#", header: int | None = 0) -> pd.DataFrame:
    """Read a tab-separated file as text; only whole lines starting with `comment` at the top are skipped."""
    try:
        skip = _leading_comment_lines(path) if comment else 0
        frame = pd.read_csv(
            path,
            sep="\t",
            skiprows=skip,
            header=header,
            dtype=str,
            keep_default_na=False,
            compression="infer",
            low_memory=False,
        )
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, EOFError, gzip.BadGzipFile) as err:
        raise InputError(path, f"cannot read as a tab-separated table: {err}") from err
    except pd.errors.EmptyDataError as err:
        raise InputError(path, "empty file") from err
    return frame


def _require(frame: pd.DataFrame, path: str, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputError(path, f"not a {what}: missing column(s) {', '.join(missing)}")


_NA = {
    "",
    "NA",
    "N/A",
    "NaN",
    "nan",
    ".",
    "[Not Available]",
    "[Not Applicable]",
    "[Unknown]",
    "null",
    "NULL",
}


def _numeric(values: pd.Series, path: str, column: str, *, integer: bool = False) -> pd.Series:
    cleaned = values.map(lambda v: None if str(v).strip() in _NA else str(v).strip())
    numbers = pd.to_numeric(cleaned, errors="coerce")
    bad = cleaned.notna() & numbers.isna()
    if bad.any():
        first = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputError(
            path, f"column {column!r} row {first + 1}: {cleaned.iloc[first]!r} is not a number"
        )
    if integer:
        if (numbers.dropna() % 1 != 0).any():
            raise InputError(path, f"column {column!r} holds non-integer values")
        return numbers.astype("Int64")
    return numbers.astype("float64")


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
)


def parse_maf(path: str, *, patient_pattern: str = DEFAULT_PATIENT_PATTERN) -> pd.DataFrame:
    """Read a MAF into ``mutations`` rows (without run columns).

    ``vaf`` is ``t_alt_count / (t_alt_count + t_ref_count)``, NULL when either count is
    missing or both are zero.

    Raises
    ------
    InputError
        A required MAF column is missing or a count is not a number.
    """
    maf = _read_table(path)
    canonical = {c.lower(): c for c in _MAF_COLUMNS}
    maf = maf.rename(
        columns={c: canonical[c.lower()] for c in maf.columns if c.lower() in canonical}
    )
    _require(
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
    out = pd.DataFrame(
        {
            "sample_id": maf["Tumor_Sample_Barcode"].str.strip(),
            "gene": maf["Hugo_Symbol"].str.strip(),
            "variant_classification": maf["Variant_Classification"].str.strip(),
            "variant_type": maf.get("Variant_Type", pd.Series([""] * len(maf)))
            .str.strip()
            .replace("", None),
            "chrom": maf["Chromosome"].str.strip().str.removeprefix("chr"),
            "start": _numeric(maf["Start_Position"], path, "Start_Position", integer=True),
            "end": _numeric(
                maf.get("End_Position", maf["Start_Position"]), path, "End_Position", integer=True
            ),
            "ref": maf.get("Reference_Allele", pd.Series([""] * len(maf))).str.strip(),
            "alt": maf.get("Tumor_Seq_Allele2", pd.Series([""] * len(maf))).str.strip(),
        }
    )
    if (out["sample_id"] == "").any() or (out["gene"] == "").any():
        raise InputError(path, "empty Tumor_Sample_Barcode or Hugo_Symbol")
    for col in ("t_ref_count", "t_alt_count"):
        out[col] = (
            _numeric(maf[col], path, col, integer=True)
            if col in maf
            else pd.Series(pd.NA, index=maf.index, dtype="Int64")
        )
    depth = out["t_ref_count"] + out["t_alt_count"]
    vaf = out["t_alt_count"].astype("Float64") / depth.astype("Float64").where(depth > 0)
    out["vaf"] = vaf.astype("float64")
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
        Sequenced samples; default every sample in `mutations` (a sample with only silent
        variants is still sequenced).
    genes : sequence of str, optional
        Gene panel; default every gene in `mutations`.
    classes : sequence of str
        Variant classes that count.

    Returns
    -------
    pandas.DataFrame
        One row per (sample, gene): ``sample_id, patient_id, gene, mutated, n_variants``.
    """
    sample_list = sorted(set(samples) if samples is not None else set(mutations["sample_id"]))
    gene_list = sorted(set(genes) if genes is not None else set(mutations["gene"]))
    patients = dict(zip(mutations["sample_id"], mutations["patient_id"], strict=False))
    hits = mutations[mutations["variant_classification"].isin(list(classes))]
    counts = hits.groupby(["sample_id", "gene"]).size()
    grid = pd.MultiIndex.from_product([sample_list, gene_list], names=["sample_id", "gene"])
    n = counts.reindex(grid, fill_value=0).astype("int64")
    out = n.rename("n_variants").reset_index()
    out["mutated"] = out["n_variants"] > 0
    out["patient_id"] = out["sample_id"].map(lambda s: patients.get(s, s))
    return out[["sample_id", "patient_id", "gene", "mutated", "n_variants"]]


def parse_rsem(
    path: str, *, sample_id: str | None = None, patient_pattern: str = DEFAULT_PATIENT_PATTERN
) -> pd.DataFrame:
    """Read an RSEM ``genes.results`` file into ``expression`` rows.

    The sample id is `sample_id`, else the file name before ``.genes.results`` (and an
    optional ``.rsem``). Gene ids of the form ``SYMBOL|ENTREZ`` (TCGA legacy) give ``gene``.
    ``log2_tpm1`` is ``log2(1 + TPM)``.

    Raises
    ------
    InputError
        A required column is missing or a value is not a number.
    """
    frame = _read_table(path, comment=None)
    _require(frame, path, ["gene_id", "expected_count", "TPM", "FPKM"], "RSEM genes.results file")
    if sample_id is None:
        name = Path(path).name
        sample_id = re.sub(r"(\.rsem)?\.genes\.results(\.gz)?$", "", name)
        if sample_id == name:
            sample_id = name.split(".")[0]
    gene_id = frame["gene_id"].str.strip()
    symbol = gene_id.map(
        lambda g: (
            g.split("|")[0] if re.match(r"^[^|]+\|\d+$", g) and not g.startswith("?") else None
        )
    )
    out = pd.DataFrame(
        {
            "sample_id": sample_id,
            "gene_id": gene_id,
            "gene": symbol,
            "expected_count": _numeric(frame["expected_count"], path, "expected_count"),
            "effective_length": _numeric(frame["effective_length"], path, "effective_length")
            if "effective_length" in frame
            else np.nan,
            "tpm": _numeric(frame["TPM"], path, "TPM"),
            "fpkm": _numeric(frame["FPKM"], path, "FPKM"),
        }
    )
    out["log2_tpm1"] = np.log2(1.0 + out["tpm"])
    out["patient_id"] = patient_ids(out["sample_id"], patient_pattern)
    return out


_SEG_ALIASES = {
    "sample_id": ("ID", "Sample", "sample", "ID_REF", "Tumor_Sample_Barcode"),
    "chrom": ("chrom", "Chromosome", "chromosome", "chr"),
    "start": ("loc.start", "Start", "start", "Start.bp", "Start_Position"),
    "end": ("loc.end", "End", "end", "End.bp", "End_Position"),
    "num_markers": ("num.mark", "Num_Probes", "Num.Markers", "num_markers", "Num_Markers"),
    "seg_mean": ("seg.mean", "Segment_Mean", "Seg.CN", "seg_mean", "log2"),
}


def parse_seg(path: str, *, patient_pattern: str = DEFAULT_PATIENT_PATTERN) -> pd.DataFrame:
    """Read a SEG file (IGV/cBioPortal, GDC or maftools header) into ``cna_segments`` rows.

    Raises
    ------
    InputError
        A column is missing, a value is not a number, or a segment ends before it starts.
    """
    frame = _read_table(path)
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
            "chrom": frame[picked["chrom"]].str.strip().str.removeprefix("chr"),
            "start": _numeric(frame[picked["start"]], path, picked["start"], integer=True),
            "end": _numeric(frame[picked["end"]], path, picked["end"], integer=True),
            "num_markers": _numeric(
                frame[picked["num_markers"]], path, picked["num_markers"], integer=True
            )
            if "num_markers" in picked
            else pd.Series(pd.NA, index=frame.index, dtype="Int64"),
            "seg_mean": _numeric(frame[picked["seg_mean"]], path, picked["seg_mean"]),
        }
    )
    backwards = out["end"] < out["start"]
    if backwards.any():
        row = int(np.flatnonzero(backwards.to_numpy())[0])
        raise InputError(
            path,
            f"row {row + 1}: segment ends ({out['end'].iloc[row]}) before it starts ({out['start'].iloc[row]})",
        )
    out["patient_id"] = patient_ids(out["sample_id"], patient_pattern)
    return out


def parse_methylation(
    path: str, *, id_columns: int | None = None, patient_pattern: str = DEFAULT_PATIENT_PATTERN
) -> pd.DataFrame:
    """Read a wide beta-value table (probes or genes x samples) into ``methylation`` rows.

    The first column is the probe (or gene) id. Known annotation columns (``Entrez_Gene_Id``,
    ``Composite Element REF`` ...) are dropped; every other column is a sample. ``m_value`` is
    ``log2(beta / (1 - beta))`` with beta clipped to [1e-6, 1 - 1e-6].

    Raises
    ------
    InputError
        A value is not a number.
    """
    frame = _read_table(path)
    if frame.shape[1] < 2:
        raise InputError(path, "not a methylation table: needs an id column and sample columns")
    id_col = frame.columns[0]
    skip = {"Entrez_Gene_Id", "Gene_Symbol", "Chromosome", "Genomic_Coordinate", "Hugo_Symbol"} - {
        id_col
    }
    if id_columns is not None:
        skip |= set(frame.columns[1:id_columns])
    samples = [c for c in frame.columns[1:] if c not in skip]
    wide = pd.DataFrame(
        {c: _numeric(frame[c], path, c) for c in samples}
    )  # errors name column and row
    wide.insert(0, "probe_id", frame[id_col].str.strip())
    long = wide.melt(id_vars="probe_id", var_name="sample_id", value_name="beta")
    out = pd.DataFrame(
        {
            "sample_id": long["sample_id"].str.strip(),
            "probe_id": long["probe_id"],
            "beta": long["beta"].astype("float64"),
        }
    )
    clipped = out["beta"].clip(1e-6, 1 - 1e-6)
    out["m_value"] = np.log2(clipped / (1 - clipped))
    out["patient_id"] = patient_ids(out["sample_id"], patient_pattern)
    return out


def _sql_name(name: str) -> str:
    cleaned = re.sub(r"[^0-9a-zA-Z]+", "_", name.strip()).strip("_").lower()
    return cleaned if cleaned and not cleaned[0].isdigit() else f"c_{cleaned}"


def parse_clinical(path: str, *, id_column: str | None = None) -> pd.DataFrame:
    """Read a clinical table (one row per patient) with typed, SQL-safe columns.

    The patient column is `id_column`, else the first of ``PATIENT_ID``, ``patient_id``,
    ``Tumor_Sample_Barcode``, ``case_submitter_id``. Columns whose values all parse as numbers
    become numbers; missing markers (``NA``, ``[Not Available]`` ...) become NULL.

    Raises
    ------
    InputError
        No patient column, or a patient appears twice.
    """
    frame = _read_table(path)
    candidates = (
        [id_column]
        if id_column
        else ["PATIENT_ID", "patient_id", "Tumor_Sample_Barcode", "case_submitter_id"]
    )
    found = next((c for c in candidates if c in frame.columns), None)
    if found is None:
        raise InputError(
            path, f"no patient id column (looked for {', '.join(candidates)}); use --id-column"
        )
    out = pd.DataFrame({"patient_id": frame[found].str.strip()})
    dupes = out["patient_id"].duplicated()
    if dupes.any():
        raise InputError(
            path, f"patient {out['patient_id'][dupes].iloc[0]!r} appears more than once"
        )
    for col in frame.columns:
        if col == found:
            continue
        name = _sql_name(col)
        if name in {"patient_id", "source_file", "file_sha256", "run_id"}:
            name = f"clinical_{name}"
        values = frame[col].map(lambda v: None if str(v).strip() in _NA else str(v).strip())
        numbers = pd.to_numeric(values, errors="coerce")
        if values.notna().any() and (numbers.notna() == values.notna()).all():
            out[name] = numbers.astype("float64")
        else:
            out[name] = values.astype(object)
    return out


def ingest_omics(
    run: Run,
    path: str,
    kind: str,
    *,
    sample_id: str | None = None,
    patient_pattern: str = DEFAULT_PATIENT_PATTERN,
    id_column: str | None = None,
) -> OmicsReport:
    """Parse, validate and commit one omics file.

    Parameters
    ----------
    run : Run
        The open run.
    path : str
        The file (plain or gzipped).
    kind : str
        One of :data:`KINDS`.
    sample_id : str, optional
        Sample of a single-sample file (``rsem``).
    patient_pattern : str
        Regular expression whose first group is the patient id of a sample id.
    id_column : str, optional
        Patient column of a ``clinical`` table.

    Returns
    -------
    OmicsReport

    Raises
    ------
    InputError
        The file does not exist or is not of the given kind.
    """
    if not Path(path).is_file():
        raise InputError(path, "no such file")
    sha = file_sha256(path)
    report = OmicsReport(kind=kind, path=str(path))
    source = {"source_file": str(Path(path).resolve()), "file_sha256": sha, "run_id": run.run_id}
    lineage = [LineageInput("file", str(Path(path).resolve()), sha)]

    def commit(name: str, frame: pd.DataFrame, stage: str = "omics") -> None:
        version = run.commit(name, frame, suite=stage, lineage=lineage)
        report.tables[name] = len(frame) if version is not None else 0

    if kind == "mutations":
        muts = parse_maf(path, patient_pattern=patient_pattern)
        commit("mutations", muts.assign(**source))
        commit("gene_mutation", gene_mutation_matrix(muts).assign(run_id=run.run_id))
        report.samples = int(muts["sample_id"].nunique())
    elif kind == "rsem":
        expr = parse_rsem(path, sample_id=sample_id, patient_pattern=patient_pattern)
        commit("expression", expr.assign(**source))
        report.samples = 1
    elif kind == "cna-segments":
        seg = parse_seg(path, patient_pattern=patient_pattern)
        commit("cna_segments", seg.assign(**source))
        report.samples = int(seg["sample_id"].nunique())
    elif kind == "methylation":
        meth = parse_methylation(path, patient_pattern=patient_pattern)
        commit("methylation", meth.assign(**source))
        report.samples = int(meth["sample_id"].nunique())
    elif kind == "clinical":
        clin = parse_clinical(path, id_column=id_column)
        commit("clinical", clin.assign(**source))
        report.samples = len(clin)
    else:
        raise InputError(kind, f"unknown omics kind; choose one of {', '.join(KINDS)}")
    run.message = f"{kind}: " + ", ".join(f"{k} +{v} rows" for k, v in report.tables.items())
    return report
