"""Clinical tables: cBioPortal patient or sample files (4 ``#`` header rows) and plain TSV/CSV."""

from __future__ import annotations

import re

import pandas as pd

from radgen.errors import InputError
from radgen.ingestion._tabular import (
    DEFAULT_PATIENT_PATTERN,
    MISSING,
    patient_ids,
    read_table,
    reject_first,
)

__all__ = ["parse_clinical"]

_PATIENT = ("PATIENT_ID", "patient_id", "Patient_ID", "case_submitter_id", "bcr_patient_barcode")
_SAMPLE = ("SAMPLE_ID", "sample_id", "Sample_ID", "Tumor_Sample_Barcode")
_RESERVED = {"patient_id", "sample_id", "source_file", "file_sha256", "run_id"}


def _sql_name(name: str) -> str:
    cleaned = re.sub(r"[^0-9a-zA-Z]+", "_", name.strip()).strip("_").lower()
    return cleaned if cleaned and not cleaned[0].isdigit() else f"c_{cleaned}"


def _read(path: str) -> pd.DataFrame:
    if path.lower().endswith((".csv", ".csv.gz")):
        try:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        except (OSError, pd.errors.ParserError, UnicodeDecodeError) as err:
            raise InputError(path, f"cannot read as CSV: {err}") from err
        frame.attrs = {"path": path, "first_line": 2}
        return frame
    return read_table(path)


def parse_clinical(
    path: str, *, id_column: str | None = None, patient_pattern: str = DEFAULT_PATIENT_PATTERN
) -> pd.DataFrame:
    """Read a clinical table with typed, SQL-safe columns.

    A sample-level file (a ``SAMPLE_ID`` column, or a sample barcode column) gives one row
    per sample with its ``patient_id`` (from ``PATIENT_ID`` when present, else derived with
    `patient_pattern`); a patient-level file gives one row per patient with ``sample_id``
    NULL. Columns whose values all parse as numbers become numbers; missing markers
    (``NA``, ``[Not Available]`` ...) become NULL.

    Raises
    ------
    InputError
        No patient column, or a patient (sample) that appears twice, naming the line.
    """
    frame = _read(path)
    sample_col = next((c for c in _SAMPLE if c in frame.columns), None)
    patient_col = id_column or next((c for c in _PATIENT if c in frame.columns), None)
    if id_column and id_column not in frame.columns:
        raise InputError(path, f"no column {id_column!r}; columns are {', '.join(frame.columns)}")
    if patient_col is None and sample_col is None:
        raise InputError(
            path, f"no patient id column (looked for {', '.join(_PATIENT)}); use --id-column"
        )
    if sample_col is not None and sample_col != id_column:
        samples = frame[sample_col].str.strip()
        patients = (
            frame[patient_col].str.strip() if patient_col else patient_ids(samples, patient_pattern)
        )
        out = pd.DataFrame({"patient_id": patients, "sample_id": samples})
        key = "sample_id"
    else:
        assert patient_col is not None
        out = pd.DataFrame({"patient_id": frame[patient_col].str.strip(), "sample_id": None})
        key = "patient_id"
    reject_first(
        frame,
        out[key].duplicated(),
        lambda row: f"{key} {out[key].iloc[row]!r} appears more than once",
    )
    used = {patient_col, sample_col}
    for col in frame.columns:
        if col in used:
            continue
        name = _sql_name(col)
        if name in _RESERVED:
            name = f"clinical_{name}"
        values = frame[col].map(lambda v: None if str(v).strip() in MISSING else str(v).strip())
        numbers = pd.to_numeric(values, errors="coerce")
        if values.notna().any() and (numbers.notna() == values.notna()).all():
            out[name] = numbers.astype("float64")
        else:
            out[name] = values.astype(object)
    return out
