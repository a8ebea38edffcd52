"""Reading tab-separated omics files as text, with errors that name the file and the line.

Every parser reads cells as strings (nothing is guessed), turns missing markers into NULL
and converts numbers explicitly, so a bad cell is reported as
``file.tsv: line 12, column 't_alt_count': 'x' is not a number``.
"""

from __future__ import annotations

import gzip
import re
import zlib
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import pandas as pd

from radgen.errors import InputError

__all__ = [
    "DEFAULT_PATIENT_PATTERN",
    "MISSING",
    "READ_ERRORS",
    "clip",
    "file_line",
    "numeric",
    "patient_ids",
    "read_table",
    "reject_duplicates",
    "reject_first",
    "require",
]

DEFAULT_PATIENT_PATTERN = r"^([^-]+-[^-]+-[^-]+)"

#: Cell values that mean "no value" in TCGA, cBioPortal and R outputs.
MISSING = frozenset(
    {
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
)


#: What reading a truncated, corrupt or binary (gzipped) text file raises.
READ_ERRORS: tuple[type[Exception], ...] = (
    OSError,  # gzip.BadGzipFile included
    EOFError,  # a gzip stream that ends early
    zlib.error,  # corrupt deflate data
    UnicodeDecodeError,
    pd.errors.ParserError,
)


def clip(text: str, *, word: int = 80, total: int = 1000) -> str:
    """`text` for a one-line message: long runs without blanks (a 1 MB cell) and the whole cut."""
    short = re.sub(
        rf"\S{{{word + 1},}}", lambda m: f"{m.group()[: word - 20]}…({len(m.group())} chars)", text
    )
    return short if len(short) <= total else short[: total - 1] + "…"


def patient_ids(samples: pd.Series, pattern: str = DEFAULT_PATIENT_PATTERN) -> pd.Series:
    """Patient id of each sample id: the first group of `pattern`, else the sample id itself."""
    regex = re.compile(pattern)
    codes, uniques = pd.factorize(samples.astype(str))  # the regex runs once per distinct id
    mapped = [m.group(1) if (m := regex.match(s)) else s for s in uniques]
    return pd.Series(np.asarray(mapped, dtype=object)[codes], index=samples.index, dtype="str")


def open_text(path: str) -> TextIO:
    """A text file, gunzipped when its name ends in .gz (undecodable bytes replaced)."""
    return (
        gzip.open(path, "rt", errors="replace")
        if str(path).endswith(".gz")
        else Path(path).open(errors="replace")
    )


def leading_comment_lines(path: str) -> int:
    """Lines at the top that start with ``#`` (MAF version line, cBioPortal header rows)."""
    count = 0
    with open_text(path) as fh:
        for line in fh:
            if not line.startswith("#"):
                break
            count += 1
    return count


def read_table(path: str, *, comments: bool = True, header: bool = True) -> pd.DataFrame:
    """Read a tab-separated file (plain or gzipped) as strings.

    Only whole lines starting with ``#`` at the top are skipped: a ``#`` inside a value is
    data. ``frame.attrs["first_line"]`` is the file line number of the first data row.

    Raises
    ------
    InputError
        Unreadable, empty, or ragged file.
    """
    try:
        skip = leading_comment_lines(path) if comments else 0
        frame = pd.read_csv(
            path,
            sep="\t",
            skiprows=skip,
            header=0 if header else None,
            dtype=str,
            keep_default_na=False,
            compression="infer",
            low_memory=False,
        )
    except READ_ERRORS as err:
        raise InputError(path, f"cannot read as a tab-separated table: {err}") from err
    except pd.errors.EmptyDataError as err:
        raise InputError(path, "empty file") from err
    if not isinstance(
        frame.index, pd.RangeIndex
    ):  # pandas took the extra leading fields as an index
        raise InputError(
            path,
            f"line {skip + 2}: more fields than the header's {frame.shape[1]} "
            "(trailing tabs, or row names without a header cell?)",
        )
    frame.attrs["first_line"] = skip + (2 if header else 1)
    frame.attrs["path"] = str(path)
    return frame


def file_line(frame: pd.DataFrame, row: int) -> int:
    """File line number of data row `row` (0-based position) of a frame from :func:`read_table`."""
    return int(frame.attrs.get("first_line", 2)) + int(row)


def reject_first(frame: pd.DataFrame, flagged: Any, reason: Callable[[int], str]) -> None:
    """Raise naming the file and line of the first flagged row of `frame`; nothing if none.

    `flagged` is a boolean mask over the rows (array or Series); `reason(row)` says what is
    wrong with that row (0-based position).
    """
    mask = np.asarray(flagged, dtype=bool)
    if mask.any():
        row = int(np.flatnonzero(mask)[0])
        raise InputError(
            frame.attrs.get("path", ""), f"line {file_line(frame, row)}: {reason(row)}"
        )


def require(frame: pd.DataFrame, path: str, columns: Sequence[str], what: str) -> None:
    """Raise naming the missing columns if `frame` lacks any of `columns`."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputError(path, f"not a {what}: missing column(s) {', '.join(missing)}")


def numeric(
    frame: pd.DataFrame,
    column: str,
    *,
    integer: bool = False,
    low: float | None = None,
    high: float | None = None,
    values: pd.Series | None = None,
    lines: Sequence[int] | None = None,
    where: Sequence[str] | None = None,
) -> pd.Series:
    """Column `column` as numbers; missing markers become NULL.

    Parameters
    ----------
    frame : pandas.DataFrame
        A frame from :func:`read_table` (for the file name and line numbers).
    column : str
        Column to convert (also the name used in messages).
    integer : bool
        Require whole numbers (returns a nullable Int64 Series).
    low, high : float, optional
        Inclusive bounds; a value outside is an error.
    values : pandas.Series, optional
        Cells to convert instead of ``frame[column]``.
    lines : sequence of int, optional
        File line of each value (for values not laid out one per data row).
    where : sequence of str, optional
        Extra location of each value for messages (e.g. the sample of a wide-table cell).

    Raises
    ------
    InputError
        Naming the file, the line, the column and the offending value.
    """
    path = frame.attrs.get("path", "")
    raw = frame[column] if values is None else values
    stripped = raw.astype("str").str.strip()
    cleaned = stripped.where(~stripped.isin(list(MISSING)) & raw.notna(), None)
    numbers = pd.to_numeric(cleaned, errors="coerce")
    checks = [
        (cleaned.notna() & numbers.isna(), "is not a number"),
        (numbers.notna() & ~np.isfinite(numbers.astype("float64")), "is not a finite number"),
    ]
    if integer:
        checks.append((numbers.notna() & (numbers % 1 != 0), "is not a whole number"))
        checks.append((numbers.abs() >= 2.0**63, "is too large"))  # beyond int64
    if low is not None:
        checks.append((numbers < low, f"is below {low:g}"))
    if high is not None:
        checks.append((numbers > high, f"is above {high:g}"))
    first: tuple[int, str] | None = None  # the earliest offending row, whatever the reason
    for bad, why in checks:
        flagged = np.flatnonzero(bad.fillna(False).to_numpy(dtype=bool))
        if flagged.size and (first is None or flagged[0] < first[0]):
            first = (int(flagged[0]), why)
    if first is not None:
        row, why = first
        line = int(lines[row]) if lines is not None else file_line(frame, row)
        place = f", {where[row]}" if where is not None else ""
        raise InputError(
            path, f"line {line}, column {column!r}{place}: {cleaned.iloc[row]!r} {why}"
        )
    return numbers.astype("Int64") if integer else numbers.astype("float64")


def reject_duplicates(
    frame: pd.DataFrame,
    keys: Iterable[str],
    parsed: pd.DataFrame,
    what: str,
    *,
    lines: Sequence[int] | None = None,
) -> None:
    """Raise naming the first line whose `keys` repeat an earlier line's (in `parsed`).

    `lines` gives the file line of each parsed row when rows are not one per data line.
    """
    keys = list(keys)
    dupes = parsed.duplicated(subset=keys).to_numpy()
    if dupes.any():
        row = int(np.flatnonzero(dupes)[0])
        shown = ", ".join(f"{k}={parsed[k].iloc[row]!r}" for k in keys)
        line = int(lines[row]) if lines is not None else file_line(frame, row)
        raise InputError(frame.attrs.get("path", ""), f"line {line}: duplicate {what} ({shown})")
