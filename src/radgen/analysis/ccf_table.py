"""``radgen analyze ccf``: join mutations, copy number and an imaging purity into a ``ccf`` table.

For every row of ``mutations`` the join finds

* the **VAF** ``t_alt_count / (t_alt_count + t_ref_count)`` (the table's ``vaf`` when the
  counts are missing);
* the **tumour copy number** ``CN_t`` at the locus, first match wins:

  1. ``cna_segments``: the segment of the same sample containing the position (chromosome
     names compared without a ``chr`` prefix);
  2. ``cna_gene`` log2 ratios (``measure`` ``log2`` or ``segments``) of the gene;
  3. ``cna_gene`` discrete calls of the gene, read as tumour copy numbers
     ``{-2: 0, -1: 1, 0: 2, 1: 3, 2: 4}``;
  4. diploid (``CN_t = 2``) when `assume_diploid`, else missing (CCF NULL).

  A log2 ratio ``r`` is taken as the bulk signal over a diploid normal, not corrected for
  purity: the mixture carries ``(1 - p) CN_n + p CN_t = CN_n 2^r`` copies, so
  ``CN_t = CN_n (2^r - (1 - p)) / p`` (negative when ``2^r < 1 - p``: impossible, CCF NULL);
* the **purity** ``p`` of the sample from `purity_from`: a column of a features table (the
  mean over the subject's ROIs) or a table with ``purity`` and ``sample_id`` or
  ``subject_id``. Samples link to imaging subjects through ``subjects`` (else their
  ``patient_id`` is taken as the subject id).

The CCF, its Clopper-Pearson interval, the clonal call and the test of ``CCF > 1`` come from
:func:`radgen.analysis.purity.ccf_table` (``CCF = v ((1 - p) CN_n + p CN_t) / (p m)``, with
multiplicity ``m`` and ``CN_n`` given for every row). Each run commits the whole table as a
new version of ``ccf``, with the versions of its input tables as lineage.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from radgen.analysis.purity import ccf_table as purity_ccf_table
from radgen.errors import ConfigError, InputError, NotFoundError
from radgen.platform import tables
from radgen.platform.runs import LineageInput, Run
from radgen.platform.storage import Root

__all__ = [
    "DISCRETE_COPIES",
    "CcfReport",
    "cn_from_log2",
    "copy_number_at",
    "read_purity",
    "write_ccf_table",
]

log = logging.getLogger(__name__)

#: Tumour copy number read from a discrete (GISTIC-style) call.
DISCRETE_COPIES = {-2: 0.0, -1: 1.0, 0: 2.0, 1: 3.0, 2: 4.0}

_MUTATION_KEYS = ["sample_id", "gene", "chrom", "start", "ref", "alt"]


def cn_from_log2(log2: Any, purity: Any, cn_normal: float = 2.0) -> Any:
    """Tumour copy number from a bulk log2 copy-number ratio and the purity.

    ``(1 - p) CN_n + p CN_t = CN_n 2^r``  =>  ``CN_t = CN_n (2^r - (1 - p)) / p``.

    Parameters
    ----------
    log2 : array_like
        Log2 ratio ``r`` of the sample against a normal of ``CN_n`` copies.
    purity : array_like
        Purity ``p`` in (0, 1]; NaN elsewhere.
    cn_normal : float
        ``CN_n``.

    Returns
    -------
    ndarray
        ``CN_t`` (NaN where `log2` or `purity` is missing or ``p`` is not in (0, 1]).

    Examples
    --------
    >>> float(cn_from_log2(np.log2(0.75), 0.5))  # one copy lost in half the cells
    1.0
    """
    r = np.asarray(log2, dtype=float)
    p = np.asarray(purity, dtype=float)
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(r) & np.isfinite(p) & (p > 0) & (p <= 1)
    p_safe = np.where(ok, p, 1.0)
    r_safe = np.where(ok, r, 0.0)
    return np.where(ok, cn_normal * (np.exp2(r_safe) - (1.0 - p_safe)) / p_safe, np.nan)


def _chrom(values: pd.Series) -> pd.Series:
    return values.astype("string").str.replace(r"^chr", "", case=False, regex=True).str.upper()


def copy_number_at(
    mutations: pd.DataFrame,
    segments: pd.DataFrame | None,
    genes: pd.DataFrame | None,
) -> pd.DataFrame:
    """The copy-number measurement of each mutation's locus (see the module docstring).

    Parameters
    ----------
    mutations : pandas.DataFrame
        ``sample_id, gene, chrom, start`` per row.
    segments : pandas.DataFrame, optional
        ``cna_segments`` rows (``sample_id, chrom, start, end, seg_mean``).
    genes : pandas.DataFrame, optional
        ``cna_gene`` rows (``sample_id, gene, measure, log2, discrete``).

    Returns
    -------
    pandas.DataFrame
        Aligned with `mutations`: ``cn_log2`` (a log2 ratio to convert with the purity),
        ``cn_discrete_copies`` (a copy number read from a discrete call) and ``cn_source``.
    """
    n = len(mutations)
    log2 = np.full(n, np.nan)
    copies = np.full(n, np.nan)
    source = np.full(n, None, dtype=object)
    sample = mutations["sample_id"].astype(str).to_numpy()
    gene = mutations["gene"].astype(str).to_numpy()
    if segments is not None and len(segments):
        chrom = _chrom(mutations["chrom"]).to_numpy()
        pos = pd.to_numeric(mutations["start"], errors="coerce").to_numpy(float)
        seg = segments.assign(_chrom=_chrom(segments["chrom"]))
        for (s, c), group in seg.groupby(["sample_id", "_chrom"], sort=False):
            rows = np.flatnonzero((sample == s) & (chrom == c))
            if not len(rows):
                continue
            lo = group["start"].to_numpy(float)
            hi = group["end"].to_numpy(float)
            inside = (pos[rows, None] >= lo[None, :]) & (pos[rows, None] <= hi[None, :])
            hit = inside.any(axis=1)
            first = inside.argmax(axis=1)
            values = group["seg_mean"].to_numpy(float)[first]
            take = rows[hit & np.isfinite(values)]
            log2[take] = values[hit & np.isfinite(values)]
            source[take] = "cna_segments"
    if genes is not None and len(genes):
        g = genes.copy()
        g["log2"] = pd.to_numeric(g["log2"], errors="coerce")
        continuous = (
            g[g["measure"].isin(["log2", "segments"]) & g["log2"].notna()]
            .drop_duplicates(["sample_id", "gene"])
            .set_index(["sample_id", "gene"])["log2"]
        )
        calls = (
            g[(g["measure"] == "discrete") & g["discrete"].notna()]
            .drop_duplicates(["sample_id", "gene"])
            .set_index(["sample_id", "gene"])["discrete"]
        )
        keys = pd.MultiIndex.from_arrays([sample, gene])
        found = continuous.reindex(keys).to_numpy(float)
        take = pd.isna(source) & np.isfinite(found)
        log2[take] = found[take]
        source[take] = "cna_gene:log2"
        call = calls.reindex(keys).astype("float").to_numpy()
        mapped = np.array([DISCRETE_COPIES.get(int(c), np.nan) if np.isfinite(c) else np.nan
                           for c in call])  # fmt: skip
        take = pd.isna(source) & np.isfinite(mapped)
        copies[take] = mapped[take]
        source[take] = "cna_gene:discrete"
    return pd.DataFrame(
        {
            "cn_log2": log2,
            "cn_discrete_copies": copies,
            "cn_source": pd.array(source, dtype="string"),
        },
        index=mutations.index,
    )


def _current(root: Root, name: str) -> pd.DataFrame | None:
    if not tables.table_exists(root, name) or tables.table_rows(root, name) == 0:
        return None
    return tables.read_table(root, name).to_pandas()


def _resolve_purity(root: Root, spec: str) -> tuple[str, str]:
    """``(table, column)`` named by `spec`: ``TABLE.COLUMN``, ``TABLE`` or a feature column."""
    spec = spec.strip()
    if not spec:
        raise ConfigError("--purity-from", "empty; give TABLE, TABLE.COLUMN or a feature column")
    if "." in spec:
        name, column = spec.split(".", 1)
        if not tables.table_exists(root, name):
            raise NotFoundError(name, "no such table (given in --purity-from)")
        if column not in tables.table_schema(root, name).names:
            raise NotFoundError(spec, f"table {name} has no column {column!r}")
        return name, column
    if tables.TABLE_NAME.match(spec) and tables.table_exists(root, spec):
        names = tables.table_schema(root, spec).names
        if "purity" not in names:
            raise InputError(
                spec, "has no 'purity' column; name the column as TABLE.COLUMN in --purity-from"
            )
        return spec, "purity"
    holders = [
        t
        for t in tables.list_tables(root)
        if t.startswith("features_") and spec in tables.table_schema(root, t).names
    ]
    if not holders:
        raise NotFoundError(spec, "neither a table nor a column of any features_* table")
    if len(holders) > 1:
        raise ConfigError(
            "--purity-from",
            f"{spec!r} is a column of {', '.join(holders)}; name one as TABLE.COLUMN",
        )
    return holders[0], spec


def read_purity(root: Root, spec: str) -> tuple[pd.DataFrame, str, str]:
    """Purity per sample or subject from `spec` (see :func:`_resolve_purity`).

    Returns
    -------
    (pandas.DataFrame, str, str)
        ``(frame, key, source)``: `frame` has columns `key` (``sample_id`` or ``subject_id``)
        and ``purity`` (the mean of the rows of each key), `source` is ``TABLE@V.COLUMN``.

    Raises
    ------
    InputError
        The table has no ``sample_id``/``subject_id``/``patient_id`` column, or no value of
        the column is a purity in (0, 1].
    """
    name, column = _resolve_purity(root, spec)
    names = tables.table_schema(root, name).names
    key = next((k for k in ("sample_id", "subject_id", "patient_id") if k in names), None)
    if key is None:
        raise InputError(name, "has no sample_id, subject_id or patient_id column to join on")
    frame = tables.read_table(root, name, columns=[key, column]).to_pandas()
    values = pd.to_numeric(frame[column], errors="coerce")
    if values.notna().sum() == 0:
        raise InputError(f"{name}.{column}", "no numeric value to use as purity")
    if not ((values > 0) & (values <= 1)).any():
        raise InputError(
            f"{name}.{column}",
            f"values range {values.min():.4g}..{values.max():.4g}: not purities in (0, 1]",
        )
    grouped = (
        frame.assign(purity=values)
        .dropna(subset=[key])
        .groupby(key, as_index=False)["purity"]
        .agg(["mean", "count"])
    )
    several = int((grouped["count"] > 1).sum())
    if several:
        log.info("%s.%s: purity averaged over several rows for %d %ss", name, column, several, key)
    out = grouped.rename(columns={"mean": "purity"})[[key, "purity"]]
    if key == "patient_id":  # a patient-keyed table: the subjects mapping joins on patient
        out = out.rename(columns={"patient_id": "subject_id"})
        key = "subject_id"
    version = tables.table_version(root, name)
    return out, key, f"{name}@{version}.{column}"


@dataclass
class CcfReport:
    """What :func:`write_ccf_table` committed."""

    table: str
    version: int | None
    n_mutations: int
    n_with_ccf: int
    n_clonal: int
    n_over_one: int
    purity_source: str
    cn_sources: dict[str, int] = field(default_factory=dict)
    invalid: dict[str, int] = field(default_factory=dict)
    unchanged: bool = False

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` document."""
        return {
            "table": self.table,
            "version": self.version,
            "unchanged": self.unchanged,
            "mutations": self.n_mutations,
            "with_ccf": self.n_with_ccf,
            "clonal": self.n_clonal,
            "over_one": self.n_over_one,
            "purity_source": self.purity_source,
            "cn_sources": self.cn_sources,
            "invalid": self.invalid,
        }


def _subject_of(root: Root, mutations: pd.DataFrame) -> pd.Series:
    subjects = _current(root, "subjects")
    by_sample: dict[str, str] = {}
    if subjects is not None:
        by_sample = dict(zip(subjects["sample_id"], subjects["subject_id"], strict=True))
    mapped = mutations["sample_id"].map(by_sample)
    return mapped.fillna(mutations["patient_id"]).astype("string")


def write_ccf_table(
    run: Run,
    purity_from: str,
    *,
    assume_diploid: bool = True,
    cn_normal: float = 2.0,
    multiplicity: float = 1.0,
    alpha: float = 0.05,
    confidence: float = 0.95,
) -> CcfReport:
    """Compute the CCF of every mutation and commit the ``ccf`` table (see the module docstring).

    Parameters
    ----------
    run : Run
        The open run.
    purity_from : str
        ``TABLE.COLUMN``, ``TABLE`` (with a ``purity`` column) or a features column name.
    assume_diploid : bool, default True
        ``CN_t = 2`` where no copy number covers a mutation (``cn_source`` says so).
    cn_normal : float, default 2
        Copies in normal cells.
    multiplicity : float, default 1
        Mutated copies per tumour cell.
    alpha : float
        Level of the ``CCF > 1`` test.
    confidence : float
        Coverage of the CCF interval.

    Returns
    -------
    CcfReport

    Raises
    ------
    NotFoundError
        No mutations, or `purity_from` names nothing.
    InputError
        No mutation's sample has a purity.
    """
    root = run.root
    mutations = _current(root, "mutations")
    if mutations is None:
        raise NotFoundError("mutations", "no rows yet; ingest a MAF with `radgen ingest omics`")
    purity, key, source = read_purity(root, purity_from)
    frame = mutations.copy()
    frame["subject_id"] = _subject_of(root, frame)
    joined = frame.merge(purity, on=key, how="left", validate="many_to_one")
    if joined["purity"].notna().sum() == 0:
        raise InputError(
            purity_from,
            f"no mutated sample has a purity here (joined on {key}; "
            f"e.g. {', '.join(map(str, purity[key].head(3)))} vs "
            f"{', '.join(map(str, frame[key].head(3)))})",
        )
    segments = _current(root, "cna_segments")
    genes = _current(root, "cna_gene")
    cn = copy_number_at(joined, segments, genes)
    cn_t = np.where(
        np.isfinite(cn["cn_log2"]),
        cn_from_log2(cn["cn_log2"], joined["purity"], cn_normal),
        cn["cn_discrete_copies"],
    )
    cn_source = np.array([None if pd.isna(v) else str(v) for v in cn["cn_source"]], dtype=object)
    if assume_diploid:
        fill = cn["cn_source"].isna().to_numpy()
        cn_t = np.where(fill, 2.0, cn_t)
        cn_source[fill] = "diploid"
    alt = pd.to_numeric(joined["t_alt_count"], errors="coerce").astype(float).to_numpy()
    ref = pd.to_numeric(joined["t_ref_count"], errors="coerce").astype(float).to_numpy()
    depth = alt + ref
    with np.errstate(invalid="ignore", divide="ignore"):
        vaf = np.where(depth > 0, alt / np.where(depth > 0, depth, 1.0), np.nan)
    joined = joined.assign(
        t_depth=depth,
        vaf=pd.Series(vaf, index=joined.index).fillna(joined["vaf"].astype(float)),
        cn_tumor=cn_t,
        cn_normal=float(cn_normal),
        cn_source=pd.array(cn_source, dtype="string"),
        multiplicity=float(multiplicity),
        purity_source=source,
    )
    with_ccf = purity_ccf_table(
        joined,
        purity="purity",
        cn_tumor="cn_tumor",
        cn_normal="cn_normal",
        multiplicity="multiplicity",
        vaf="vaf",
        alt="t_alt_count",
        depth="t_depth",
        alpha=alpha,
        confidence=confidence,
    )
    no_cn = with_ccf["cn_source"].isna() & with_ccf["ccf_invalid"].eq(
        "cn_tumor negative or missing"
    )
    with_ccf.loc[no_cn, "ccf_invalid"] = "no copy number at the locus"
    no_purity = with_ccf["purity"].isna()
    with_ccf.loc[no_purity, "ccf_invalid"] = f"no purity for the sample in {source}"
    with_ccf.loc[no_purity, "purity_source"] = pd.NA
    with_ccf["t_depth"] = pd.array(
        [pd.NA if not np.isfinite(d) else int(d) for d in depth], dtype="Int64"
    )
    with_ccf["run_id"] = run.run_id
    out = with_ccf.sort_values(_MUTATION_KEYS).reset_index(drop=True)
    from radgen.schemas.tables import TABLES

    out = out[[c for c in TABLES["ccf"].names if c in out.columns]]
    lineage = [
        LineageInput("table", f"{name}@{tables.table_version(root, name)}")
        for name in ("mutations", "subjects", "cna_segments", "cna_gene")
        if tables.table_exists(root, name)
    ]
    lineage.append(LineageInput("table", source.rsplit(".", 1)[0]))
    version = run.commit("ccf", out, suite="omics", mode="overwrite", lineage=lineage)
    unchanged = version is None
    if version is None:
        version = tables.table_version(root, "ccf")
    report = CcfReport(
        table="ccf",
        version=version,
        n_mutations=len(out),
        n_with_ccf=int(out["ccf"].notna().sum()),
        n_clonal=int(out["clonal"].fillna(False).sum()),
        n_over_one=int(out["over1_flag"].fillna(False).sum()),
        purity_source=source,
        cn_sources={str(k): int(v) for k, v in out["cn_source"].value_counts().items()},
        invalid={str(k): int(v) for k, v in out["ccf_invalid"].value_counts().items()},
        unchanged=unchanged,
    )
    run.message = (
        f"ccf: {report.n_with_ccf}/{report.n_mutations} mutations with a CCF "
        f"(purity {source})" + (" (unchanged)" if unchanged else "")
    )
    return report
