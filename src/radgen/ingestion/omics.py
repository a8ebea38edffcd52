"""``radgen ingest omics``: parse one omics file, validate, commit tidy tables linked to subjects.

Kinds (one per format; parsers live in their own modules):

========================  ================================================  =====================
kind                      input                                             tables
========================  ================================================  =====================
``mutations``             MAF (plain, gzipped, cBioPortal extended)         mutations, gene_mutation
``cna-segments``          SEG (IGV/cBioPortal, GDC, maftools headers)       cna_segments (+ cna_gene
                                                                            with ``genes``)
``cna-gene``              cBioPortal discrete long/wide, continuous log2    cna_gene
``expression``            HTSeq counts or a gene x sample count matrix     expression (+ matrix)
``rsem``                  RSEM ``genes.results``                            expression
``methylation``           beta matrix (probes or genes x samples)           methylation (+ matrix)
``clinical``              cBioPortal patient/sample files, TSV, CSV         clinical
``subjects``              mapping ``sample_id, [patient_id,] subject_id``   subjects
========================  ================================================  =====================

Every ingest also records, for each new sample, its patient and imaging subject in
``subjects`` (by default the patient id from the barcode rule is the imaging subject id; a
``subjects`` mapping file overrides that), so one SQL join links features to genotype.
Nothing is committed unless the whole file parses and passes its suites.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from radgen.errors import InputError, ValidationFailed
from radgen.ingestion._kinds import KINDS
from radgen.ingestion._tabular import (
    DEFAULT_PATIENT_PATTERN,
    READ_ERRORS,
    clip,
    open_text,
    patient_ids,
    read_table,
    reject_first,
    require,
)
from radgen.ingestion.clinical import parse_clinical
from radgen.ingestion.copy_number import parse_cna_gene, parse_seg, segments_to_genes
from radgen.ingestion.deid import Deidentifier
from radgen.ingestion.expression import parse_htseq, parse_rsem, read_count_matrix
from radgen.ingestion.genome import gene_intervals, gene_lengths
from radgen.ingestion.methylation import parse_methylation
from radgen.ingestion.mutations import (
    NONSYNONYMOUS,
    VARIANT_CLASSES,
    gene_mutation_matrix,
    parse_maf,
)
from radgen.platform import tables
from radgen.platform.matrices import write_matrix
from radgen.platform.runs import LineageInput, Run
from radgen.platform.storage import file_sha256
from radgen.validation.profiles import LARGE_TABLE_ROWS

__all__ = [
    "DEFAULT_PATIENT_PATTERN",
    "KINDS",
    "NONSYNONYMOUS",
    "VARIANT_CLASSES",
    "OmicsOptions",
    "OmicsReport",
    "gene_mutation_matrix",
    "ingest_omics",
    "parse_clinical",
    "parse_cna_gene",
    "parse_maf",
    "parse_methylation",
    "parse_rsem",
    "parse_seg",
    "patient_ids",
    "read_case_list",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OmicsOptions:
    """Options of ``radgen ingest omics`` (each used by the kinds it names)."""

    sample_id: str | None = None  # rsem, expression (HTSeq): the sample of a one-sample file
    patient_pattern: str = DEFAULT_PATIENT_PATTERN  # every kind: sample -> patient rule
    id_column: str | None = None  # clinical: the patient column
    genes: str | None = None  # cna-segments: BED or GTF to derive cna_gene
    thresholds: tuple[float, float] = (0.3, 1.0)  # cna-segments, cna-gene: |log2| for +-1 and +-2
    values: str = "discrete"  # cna-gene: discrete or log2
    lengths: str | None = None  # expression: GTF or gene<TAB>length file
    genome: str | None = None  # mutations, cna-segments: hg19/hg38 bounds
    samples: str | None = None  # mutations: case list of sequenced samples
    classes: tuple[str, ...] = NONSYNONYMOUS  # mutations: classes that count as mutated
    deidentify: bool = True  # every kind: subjects link to pseudonymized imaging subjects


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


def read_case_list(path: str) -> list[str]:
    """Sample ids of a cBioPortal case list (``case_list_ids: a<TAB>b``) or one id per line."""
    text = Path(path).read_text()
    for line in text.splitlines():
        if line.startswith("case_list_ids:"):
            return [s.strip() for s in line.split(":", 1)[1].split("\t") if s.strip()]
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def _is_htseq(path: str) -> bool:
    """Two columns, the second a number from the first line on (no header): HTSeq-count."""
    head: list[list[str]] = []
    try:
        with open_text(path) as fh:
            for line in fh:
                if not line.startswith("#"):
                    head.append(line.rstrip("\r\n").split("\t"))
                if len(head) == 5:
                    break
    except READ_ERRORS as err:
        raise InputError(path, f"cannot read: {err}") from err
    if not head or any(len(cells) != 2 for cells in head):
        return False
    return bool(pd.to_numeric(pd.Series([c[1] for c in head]), errors="coerce").notna().all())


def _matrix(
    run: Run, table: str, value: str, long: pd.DataFrame, feature: str, sha: str, source: str
) -> dict[str, Any]:
    wide = long.pivot(index=feature, columns="sample_id", values=value)
    matrix_id = f"{table}-{sha[:12]}"
    rel = f"matrices/{matrix_id}.zarr"
    write_matrix(
        run.root,
        rel,
        wide.to_numpy(dtype=np.float64),
        features=[str(f) for f in wide.index],
        samples=[str(s) for s in wide.columns],
        value=value,
    )
    return {
        "matrix_id": matrix_id,
        "table_name": table,
        "value": value,
        "path": rel,
        "n_features": wide.shape[0],
        "n_samples": wide.shape[1],
        "source_file": source,
        "file_sha256": sha,
        "run_id": run.run_id,
    }


def _subjects(run: Run, samples: pd.DataFrame, opts: OmicsOptions) -> pd.DataFrame:
    """Links sample -> patient -> imaging subject by the barcode rule.

    The imaging subject is the patient id, pseudonymized with the catalog key as
    ``radgen ingest dicom`` does (unless ``deidentify`` is off), so features join genotype.
    """
    pairs = (
        samples[["sample_id", "patient_id"]]
        .dropna(subset=["sample_id"])
        .drop_duplicates("sample_id")
    )
    return pairs.assign(
        subject_id=_imaging_subjects(run, pairs["patient_id"], opts),
        rule=f"pattern {opts.patient_pattern}",
        run_id=run.run_id,
    )


def _imaging_subjects(run: Run, ids: pd.Series, opts: OmicsOptions) -> pd.Series:
    """Imaging subject ids of DICOM PatientIDs (keyed pseudonyms when de-identifying)."""
    if not opts.deidentify:
        return ids
    deid = Deidentifier.for_root(run.root)
    return ids.map(lambda v: None if v is None or v != v else deid.subject(str(v)))


def _ingest_mapping(run: Run, path: str, options: OmicsOptions) -> pd.DataFrame:
    frame = read_table(path)
    require(frame, path, ["sample_id", "subject_id"], "subjects mapping")
    mapping = pd.DataFrame(
        {
            "sample_id": frame["sample_id"].str.strip(),
            # the DICOM PatientID of the images, pseudonymized like the series' subject_id
            "subject_id": _imaging_subjects(run, frame["subject_id"].str.strip(), options),
            "patient_id": frame["patient_id"].str.strip()
            if "patient_id" in frame
            else patient_ids(frame["sample_id"].str.strip(), options.patient_pattern),
        }
    )
    if mapping["sample_id"].duplicated().any():
        raise InputError(
            path,
            f"sample {mapping['sample_id'][mapping['sample_id'].duplicated()].iloc[0]!r} is mapped twice",
        )
    if "collected_at" in frame:  # for point-in-time joins: only omics collected before a date
        raw = frame["collected_at"].str.strip()
        when = pd.to_datetime(raw.replace("", None), utc=True, errors="coerce", format="ISO8601")
        reject_first(
            frame,
            when.isna() & raw.ne("") & raw.notna(),
            lambda row: f"collected_at {raw.iloc[row]!r} is not an ISO date",
        )
        if options.deidentify:  # modified dates: the subject's shift, as for its images
            deid = Deidentifier.for_root(run.root)
            when = when - frame["subject_id"].str.strip().map(deid.date_shift)
        mapping["collected_at"] = when
    existing = tables.read_table(run.root, "subjects").to_pandas()
    kept = existing[~existing["sample_id"].isin(set(mapping["sample_id"]))]
    return pd.concat(
        [kept, mapping.assign(rule=f"mapping {Path(path).name}", run_id=run.run_id)],
        ignore_index=True,
    )


def _ingest_count_matrix(
    run: Run,
    path: str,
    lengths: pd.Series | None,
    opts: OmicsOptions,
    source: dict[str, str],
    sha: str,
    lineage: list[LineageInput],
    report: OmicsReport,
) -> OmicsReport:
    """A count matrix: rows streamed into one commit, a few samples at a time (bounded memory)."""
    matrix = read_count_matrix(path, lengths, patient_pattern=opts.patient_pattern)
    present = set(_distinct(run, "expression", "sample_id"))
    new = [s for s in matrix.samples if s not in present]
    if new:
        version = run.commit_stream(
            "expression",
            lambda: matrix.chunks(source, skip=present),
            suite="omics",
            lineage=lineage,
        )
        report.tables["expression"] = len(new) * len(matrix.genes) if version is not None else 0
        matrix_id = f"expression-{sha[:12]}"
        rel = f"matrices/{matrix_id}.zarr"
        write_matrix(
            run.root, rel, matrix.tpm, features=matrix.genes, samples=matrix.samples, value="tpm"
        )
        row = {
            "matrix_id": matrix_id, "table_name": "expression", "value": "tpm", "path": rel,
            "n_features": len(matrix.genes), "n_samples": len(matrix.samples),
            "source_file": source["source_file"], "file_sha256": sha, "run_id": run.run_id,
        }  # fmt: skip
        run.commit("omics_matrices", pd.DataFrame([row]), suite="omics", lineage=lineage)
        report.tables["omics_matrices"] = 1
    pairs = pd.DataFrame({"sample_id": matrix.samples, "patient_id": matrix.patients})
    links = _subjects(run, pairs, opts)
    if run.commit("subjects", links, suite="omics") is not None:
        report.tables["subjects"] = len(links)
    report.samples = len(matrix.samples)
    run.message = "expression: " + ", ".join(f"{k} +{v} rows" for k, v in report.tables.items())
    return report


def _grid_chunks(
    grid: pd.DataFrame, run_id: str, *, skip: set[str], samples_per_chunk: int = 200
) -> Iterator[pa.Table]:
    """``gene_mutation`` rows a few hundred samples at a time (the grid is sample-major)."""
    codes, _ = pd.factorize(grid["sample_id"])  # categorical codes: no 10^7 strings
    starts = np.flatnonzero(np.diff(codes, prepend=-1) != 0)
    bounds = [*starts.tolist(), len(grid)]
    for first in range(0, len(starts), samples_per_chunk):
        lo, hi = bounds[first], bounds[min(first + samples_per_chunk, len(starts))]
        chunk = grid.iloc[lo:hi]
        if skip:
            chunk = chunk[~chunk["sample_id"].isin(list(skip))]
        if len(chunk):
            yield pa.Table.from_pandas(chunk.assign(run_id=run_id), preserve_index=False)


def _distinct(run: Run, table: str, column: str) -> list[Any]:
    """Distinct values of one column of the current version of `table` (empty if none)."""
    if not tables.table_exists(run.root, table):
        return []
    return list(
        set(tables.read_table(run.root, table, columns=[column]).column(column).to_pylist())
    )


def _stored_types(run: Run, path: str, table: str, rows: pd.DataFrame) -> pd.DataFrame:
    """`rows` with the types `table` already stores for its free-form (e.g. clinical) columns.

    A column typed from an earlier file's values stays that type: numbers become text in a
    text column; text where numbers are stored is an error naming the column and value.
    """
    if not tables.table_exists(run.root, table):
        return rows
    stored = tables.table_schema(run.root, table)
    out = rows.copy()
    for name in rows.columns:
        if stored.get_field_index(name) < 0:
            continue
        kind = stored.field(name).type
        values = rows[name]
        if pa.types.is_floating(kind) or pa.types.is_integer(kind):
            numbers = pd.to_numeric(values, errors="coerce")
            bad = values.notna() & numbers.isna()
            if bad.any():
                raise InputError(
                    path,
                    f"column {name!r}: {values[bad].iloc[0]!r} is not a number "
                    f"(earlier files stored numbers in {table}.{name})",
                )
            out[name] = numbers.astype("float64")
        elif (pa.types.is_string(kind) or pa.types.is_large_string(kind)) and (
            pd.api.types.is_numeric_dtype(values)
        ):
            out[name] = values.map(lambda v: None if pd.isna(v) else f"{v:g}").astype(object)
    return out


def _refuse_replacing(run: Run, path: str, sha: str, table: str, samples: pd.Series) -> None:
    """Raise if a sample of `samples` already has rows in `table` from another file.

    A one-sample file (RSEM, HTSeq) holds the whole profile of its sample: appending only the
    genes not yet stored would mix two files in one profile (its TPM would not sum to 1e6).
    """
    again = set(samples) & set(_distinct(run, table, "sample_id"))
    if not again:  # the usual case: one column read, as for a count matrix
        return
    stored = tables.read_table(run.root, table, columns=["sample_id", "file_sha256"])
    sources = stored.group_by(["sample_id", "file_sha256"]).aggregate([]).to_pandas()
    other = sources[sources["sample_id"].isin(again) & (sources["file_sha256"] != sha)]
    if len(other):
        raise InputError(
            path,
            f"sample {other['sample_id'].iloc[0]!r} already has {table} values from another "
            "file; not replaced",
        )


def ingest_omics(
    run: Run, path: str, kind: str, options: OmicsOptions | None = None
) -> OmicsReport:
    """Parse, validate and commit one omics file (see the module docstring).

    Parameters
    ----------
    run : Run
        The open run.
    path : str
        The file (plain or gzipped).
    kind : str
        One of :data:`KINDS`.
    options : OmicsOptions, optional
        Kind-specific options.

    Returns
    -------
    OmicsReport

    Raises
    ------
    InputError
        The file does not exist or is not of the given kind (naming the line and reason);
        nothing is committed then.
    ValidationFailed
        A suite refused the rows (the message names the file, then the table).
    """
    try:
        return _ingest_omics(run, path, kind, options)
    except ValidationFailed as err:  # a suite refused a table: name the file too
        details = [clip(line) for line in err.details]
        raise ValidationFailed(path, clip(f"{err.path}: {err.reason}"), details) from err
    except InputError as err:  # a table or an option file: name the file too
        reason = err.reason if err.path == path else f"{err.path}: {err.reason}"
        if err.path == path and clip(reason) == reason:
            raise
        raise type(err)(path, clip(reason)) from err  # a 1 MB cell is not quoted whole


def _ingest_omics(
    run: Run, path: str, kind: str, options: OmicsOptions | None = None
) -> OmicsReport:
    opts = options or OmicsOptions()
    if kind not in KINDS:
        raise InputError(kind, f"unknown omics kind; choose one of {', '.join(KINDS)}")
    if not Path(path).is_file():
        raise InputError(path, "no such file")
    sha = file_sha256(path)
    source_file = str(Path(path).resolve())
    report = OmicsReport(kind=kind, path=str(path))
    source = {"source_file": source_file, "file_sha256": sha, "run_id": run.run_id}
    lineage = [LineageInput("file", source_file, sha)]
    low, high = opts.thresholds
    staged: list[
        tuple[str, pd.DataFrame, str]
    ] = []  # (table, rows, suite): all parsed before any commit
    matrices: list[tuple[str, str, pd.DataFrame, str]] = []  # (table, value, rows, feature column)
    linked: pd.DataFrame | None = None
    grid: pd.DataFrame | None = None  # a gene_mutation grid too large to commit in one piece

    if kind == "mutations":
        muts = parse_maf(path, patient_pattern=opts.patient_pattern, genome=opts.genome)
        sequenced = read_case_list(opts.samples) if opts.samples else None
        matrix = gene_mutation_matrix(muts, samples=sequenced, classes=opts.classes)
        if sequenced is not None:
            matrix["patient_id"] = patient_ids(matrix["sample_id"], opts.patient_pattern)
        staged.append(("mutations", muts.assign(**source), "omics"))
        if len(matrix) > LARGE_TABLE_ROWS:  # committed after the staged tables, in sample chunks
            grid = matrix
        else:
            staged.append(("gene_mutation", matrix.assign(run_id=run.run_id), "omics"))
        linked = matrix[["sample_id", "patient_id"]].drop_duplicates("sample_id").astype("str")
    elif kind == "cna-segments":
        seg = parse_seg(path, patient_pattern=opts.patient_pattern, genome=opts.genome)
        staged.append(("cna_segments", seg.assign(**source), "omics"))
        if opts.genes:
            genes = gene_intervals(opts.genes)
            by_gene = segments_to_genes(seg, genes, low=low, high=high)
            staged.append(("cna_gene", by_gene.assign(measure="segments", **source), "omics"))
            lineage.append(
                LineageInput("file", str(Path(opts.genes).resolve()), file_sha256(opts.genes))
            )
        linked = seg
    elif kind == "cna-gene":
        gene_level = parse_cna_gene(
            path, values=opts.values, patient_pattern=opts.patient_pattern, low=low, high=high
        )
        staged.append(("cna_gene", gene_level.assign(measure=opts.values, **source), "omics"))
        linked = gene_level
    elif kind in {"expression", "rsem"}:
        if kind == "rsem":
            expr = parse_rsem(path, sample_id=opts.sample_id, patient_pattern=opts.patient_pattern)
        else:
            lengths = gene_lengths(opts.lengths) if opts.lengths else None
            if opts.lengths:
                lineage.append(
                    LineageInput(
                        "file", str(Path(opts.lengths).resolve()), file_sha256(opts.lengths)
                    )
                )
            if not _is_htseq(path):  # a matrix; featureCounts tables carry their own lengths
                return _ingest_count_matrix(run, path, lengths, opts, source, sha, lineage, report)
            if lengths is None:
                raise InputError(
                    path, "expression from counts needs gene lengths: --lengths FILE or a GTF"
                )
            expr = parse_htseq(
                path, lengths, sample_id=opts.sample_id, patient_pattern=opts.patient_pattern
            )
        _refuse_replacing(run, path, sha, "expression", expr["sample_id"])
        staged.insert(0, ("expression", expr.assign(**source), "omics"))
        linked = expr
    elif kind == "methylation":
        meth = parse_methylation(path, patient_pattern=opts.patient_pattern)
        staged.append(("methylation", meth.assign(**source), "omics"))
        matrices.append(("methylation", "beta", meth, "feature"))
        linked = meth
    elif kind == "clinical":
        clin = parse_clinical(path, id_column=opts.id_column, patient_pattern=opts.patient_pattern)
        clin = _stored_types(run, path, "clinical", clin)
        staged.append(("clinical", clin.assign(**source), "omics"))
        linked = clin if clin["sample_id"].notna().any() else None
    else:  # subjects
        staged.append(("subjects", _ingest_mapping(run, path, opts), "omics"))

    for table, rows, suite in staged:
        version = run.commit(
            table,
            rows,
            suite=suite,
            mode="overwrite" if table == "subjects" else "append",
            lineage=lineage,
        )
        report.tables[table] = len(rows) if version is not None else 0
    if grid is not None:
        present = set(_distinct(run, "gene_mutation", "sample_id"))
        version = run.commit_stream(
            "gene_mutation",
            lambda: _grid_chunks(grid, run.run_id, skip=present),
            suite="omics",
            lineage=lineage,
        )
        n_new = int((~grid["sample_id"].isin(list(present))).sum()) if present else len(grid)
        report.tables["gene_mutation"] = n_new if version is not None else 0
    if matrices and report.tables.get(matrices[0][0]):
        # the same values as a features x samples Zarr matrix, written once the rows are in
        rows = pd.DataFrame(
            [_matrix(run, t, v, frame, f, sha, source_file) for t, v, frame, f in matrices]
        )
        run.commit("omics_matrices", rows, suite="omics", lineage=lineage)
        report.tables["omics_matrices"] = len(rows)
    if linked is not None:
        links = _subjects(run, linked, opts)
        if run.commit("subjects", links, suite="omics") is not None:
            report.tables["subjects"] = len(links)
    if linked is not None and "sample_id" in linked:
        report.samples = int(linked["sample_id"].nunique())
    run.message = f"{kind}: " + ", ".join(f"{k} +{v} rows" for k, v in report.tables.items())
    return report
