"""Mechanistic links report: imaging biomarkers against the genes that explain them.

Each link pairs an imaging measure with a gene (or score) and the sign biology predicts:

==============  ================  ========  =============================================
imaging          target            expected  why
==============  ================  ========  =============================================
ADC mean, p10    MKI67             negative  proliferating, dense tumour restricts diffusion
rCBV             VEGFA             positive  VEGF-driven angiogenesis raises blood volume
Ktrans           VEGFA             positive  VEGF makes vessels leaky
R2*              hypoxia score     positive  deoxyhaemoglobin shortens T2*
==============  ================  ========  =============================================

The hypoxia score is the mean z-score of HIF targets (:data:`HIF_TARGETS` by default):
each gene is standardized over the subjects, ``z_gs = (x_gs - mean_g) / sd_g``, and
``score_s = mean_g z_gs`` over the genes measured for the subject.

Every link is a Spearman rank correlation ``rho`` over the subjects with both values, with a
Fisher-z confidence interval using the Bonett-Wright variance for Spearman's rho,
``tanh(atanh(rho) -+ z_(1-a/2) sqrt((1 + rho^2 / 2) / (n - 3)))``, and the two-sided p-value
of :func:`scipy.stats.spearmanr`. ``agrees`` says whether the observed sign is the expected
one; ``supported`` whether it also is significant at `alpha`.

From a catalog (:func:`imaging_frame`), an imaging measure is found per ROI of a feature
table through the series the ROI lies on: its ``series_description`` matched by
:data:`SERIES_PATTERNS` (``ADC``/``apparent diffusion``, ``R2*``/``R2star``, ``rCBV``/``CBV``,
``Ktrans``; the maps of ``radgen analyze maps`` are named ``ADC map`` and ``R2* map``), or
its units (``um2/s``, ``mm2/s`` for ADC). The first-order mean (``stat_mean``, or the
PyRadiomics ``original_firstorder_Mean``) gives ``adc_mean``, ``rcbv``, ``ktrans`` and
``r2star``, the 10th percentile (``stat_p10`` / ``original_firstorder_10Percentile``)
``adc_p10``; subjects with several ROIs get their mean. ``--map NAME=COLUMN[:PATTERN]``
overrides a measure: COLUMN of the table, over the ROIs whose series description matches
the regular expression PATTERN (all ROIs without one).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from scipy import stats

from radgen.errors import ConfigError, InputError, NotFoundError
from radgen.platform import tables
from radgen.platform.storage import Root

__all__ = [
    "HIF_TARGETS",
    "IMAGING_MEASURES",
    "LINKS",
    "SERIES_PATTERNS",
    "Link",
    "expression_frame",
    "hypoxia_score",
    "imaging_frame",
    "links_report",
    "parse_maps",
    "series_kind",
    "spearman_ci",
]

#: HIF-1 target genes of the default hypoxia signature.
HIF_TARGETS: tuple[str, ...] = ("CA9", "VEGFA", "SLC2A1", "PGK1", "LDHA", "BNIP3", "ADM", "NDRG1")

#: Name of the hypoxia signature score among the link targets.
HYPOXIA_SCORE = "hypoxia_score"


@dataclass(frozen=True)
class Link:
    """One expected association.

    Attributes
    ----------
    imaging : str
        Imaging measure (a column of the imaging frame).
    target : str
        Gene symbol, or ``hypoxia_score``.
    expected_sign : int
        -1 or +1.
    rationale : str
        The mechanism, in a few words.
    """

    imaging: str
    target: str
    expected_sign: int
    rationale: str


#: The links the report computes, in order.
LINKS: tuple[Link, ...] = (
    Link("adc_mean", "MKI67", -1, "proliferation raises cellularity, restricting diffusion"),
    Link("adc_p10", "MKI67", -1, "proliferation raises cellularity, restricting diffusion"),
    Link("rcbv", "VEGFA", +1, "VEGF-driven angiogenesis raises blood volume"),
    Link("ktrans", "VEGFA", +1, "VEGF raises vessel permeability"),
    Link("r2star", HYPOXIA_SCORE, +1, "hypoxia raises deoxyhaemoglobin, shortening T2*"),
)

#: Imaging measures: name -> (series kind, statistic).
IMAGING_MEASURES: Mapping[str, tuple[str, str]] = {
    "adc_mean": ("adc", "mean"),
    "adc_p10": ("adc", "p10"),
    "rcbv": ("rcbv", "mean"),
    "ktrans": ("ktrans", "mean"),
    "r2star": ("r2star", "mean"),
}

#: Series descriptions recognised as each kind of parametric map (case-insensitive).
SERIES_PATTERNS: Mapping[str, str] = {
    "adc": r"(?<![a-z])ADC(?![a-z])|apparent\s+diffusion",
    "r2star": r"R2\*|(?<![a-z0-9])R2[ _-]?star(?![a-z])",
    "rcbv": r"(?<![a-z])r?CBV(?![a-z])|blood\s+volume",
    "ktrans": r"(?<![a-z])K[ _-]?trans(?![a-z])",
}

#: Units recognised as each kind (when the description says nothing).
SERIES_UNITS: Mapping[str, tuple[str, ...]] = {"adc": ("um2/s", "mm2/s", "10^-6 mm2/s")}

#: Feature columns holding each statistic, first present wins.
STAT_COLUMNS: Mapping[str, tuple[str, ...]] = {
    "mean": ("stat_mean", "original_firstorder_Mean", "firstorder_Mean", "mean"),
    "p10": ("stat_p10", "original_firstorder_10Percentile", "firstorder_10Percentile", "p10"),
}


def series_kind(description: str | None, units: str | None = None) -> str | None:
    """Kind of parametric map a series holds (``adc``, ``r2star``, ``rcbv``, ``ktrans``) or None.

    Examples
    --------
    >>> series_kind("ADC map (radgen, from 3 series)"), series_kind("T2 FLAIR")
    ('adc', None)
    """
    text = description or ""
    for kind, pattern in SERIES_PATTERNS.items():
        if re.search(pattern, text, flags=re.IGNORECASE):
            return kind
    for kind, names in SERIES_UNITS.items():
        if units is not None and units.strip().lower() in names:
            return kind
    return None


def _by_subject(frame: pd.DataFrame, what: str) -> pd.DataFrame:
    if "subject_id" in frame.columns:
        frame = frame.set_index("subject_id")
    if frame.index.has_duplicates:
        raise InputError(what, "one row per subject expected; average repeated subjects first")
    frame.index = frame.index.astype(str)
    return frame


def spearman_ci(
    x: Any, y: Any, *, confidence: float = 0.95
) -> tuple[float, float, float, float, int]:
    """Spearman's rho with a Fisher-z (Bonett-Wright) interval and its two-sided p-value.

    ``rho`` is the Pearson correlation of the ranks (average ranks for ties); the interval
    is ``tanh(atanh(rho) -+ z sqrt((1 + rho^2/2) / (n - 3)))`` with ``z`` the
    ``(1 + confidence)/2`` normal quantile; the p-value is :func:`scipy.stats.spearmanr`'s.

    Parameters
    ----------
    x, y : array_like
        Paired values; pairs with a missing value are dropped.
    confidence : float
        Coverage of the interval.

    Returns
    -------
    (rho, ci_low, ci_high, p_value, n)

    Raises
    ------
    InputError
        Fewer than 4 complete pairs, a constant variable, or `confidence` not in (0, 1).
    """
    if not 0.0 < confidence < 1.0:
        raise InputError("confidence", f"must be strictly between 0 and 1, got {confidence!r}")
    a = np.asarray(x, dtype=float)
    b = np.asarray(y, dtype=float)
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    n = len(a)
    if n < 4:
        raise InputError("spearman", f"{n} complete pair(s); at least 4 are needed")
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        raise InputError("spearman", "a variable is constant over the subjects")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # |rho| = 1 gives t = inf
        res = stats.spearmanr(a, b)
    rho = float(res.statistic)
    z = float(stats.norm.ppf(0.5 + confidence / 2.0))
    centre = np.arctanh(np.clip(rho, -1 + 1e-15, 1 - 1e-15))
    half = z * np.sqrt((1.0 + rho * rho / 2.0) / (n - 3))
    return rho, float(np.tanh(centre - half)), float(np.tanh(centre + half)), float(res.pvalue), n


def hypoxia_score(
    expression: pd.DataFrame, signature: Sequence[str] = HIF_TARGETS
) -> tuple[pd.Series, list[str]]:
    """Mean z-score of the signature genes per subject.

    ``z_gs = (x_gs - mean_g) / sd_g`` over the subjects (``sd`` with ``n - 1``), then
    ``score_s = mean_g z_gs`` over the genes measured for subject ``s``. Genes missing from
    `expression`, or constant, are left out.

    Parameters
    ----------
    expression : pandas.DataFrame
        Subjects x genes (log-scale expression), indexed by subject or with ``subject_id``.
    signature : sequence of str
        Gene symbols.

    Returns
    -------
    (pandas.Series, list of str)
        The score per subject (NaN without any signature gene) and the genes used.
    """
    wide = _by_subject(expression, "expression")
    used = []
    for gene in dict.fromkeys(signature):
        if gene in wide.columns:
            values = pd.to_numeric(wide[gene], errors="coerce")
            if values.notna().sum() >= 2 and values.std() > 0:
                used.append(gene)
    if not used:
        return pd.Series(np.nan, index=wide.index, name=HYPOXIA_SCORE), []
    block = wide[used].apply(pd.to_numeric, errors="coerce")
    z = (block - block.mean()) / block.std()
    return z.mean(axis=1, skipna=True).rename(HYPOXIA_SCORE), used


def links_report(
    features: pd.DataFrame,
    expression: pd.DataFrame,
    signature: Sequence[str] = HIF_TARGETS,
    *,
    links: Sequence[Link] = LINKS,
    confidence: float = 0.95,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Test each expected imaging-gene association; say which agree and which are missing.

    For each link whose imaging measure and target exist: Spearman's rho over the subjects
    with both, its Fisher-z (Bonett-Wright) interval and two-sided p-value
    (:func:`spearman_ci`); ``agrees = sign(rho) == expected_sign``; ``supported = agrees and
    p < alpha``. The ``hypoxia_score`` target is :func:`hypoxia_score` of `signature`.

    Parameters
    ----------
    features : pandas.DataFrame
        One row per subject (index or ``subject_id`` column) with imaging measures as
        columns: ``adc_mean``, ``adc_p10``, ``rcbv``, ``ktrans``, ``r2star`` (any subset).
    expression : pandas.DataFrame
        One row per subject with gene symbols as columns (log-scale expression).
    signature : sequence of str
        Genes of the hypoxia score (:data:`HIF_TARGETS` by default).
    links : sequence of Link
        Links to compute (:data:`LINKS` by default).
    confidence : float
        Coverage of the intervals.
    alpha : float
        Level of ``supported``.

    Returns
    -------
    pandas.DataFrame
        One row per link: ``imaging, target, expected_sign`` (``negative``/``positive``),
        ``n, rho, ci_low, ci_high, p_value, agrees, supported`` (nullable booleans),
        ``status`` (``ok``, or why the link was not computed: a missing measure or gene, too
        few subjects, a constant variable), ``detail`` (genes of the score) and
        ``rationale``.

    Raises
    ------
    InputError
        No subject has both imaging and expression data, or a frame repeats a subject.
    ConfigError
        `confidence` or `alpha` not in (0, 1).
    """
    if not 0.0 < alpha < 1.0:
        raise ConfigError("alpha", f"must be strictly between 0 and 1, got {alpha!r}")
    if not 0.0 < confidence < 1.0:
        raise ConfigError("confidence", f"must be strictly between 0 and 1, got {confidence!r}")
    img = _by_subject(features, "features")
    expr = _by_subject(expression, "expression")
    common = img.index.intersection(expr.index)
    if len(common) == 0:
        raise InputError(
            "subject_id",
            f"no subject has both imaging features ({len(img)} subjects) and expression "
            f"({len(expr)} subjects)",
        )
    score, used = hypoxia_score(expr, signature)
    rows = []
    for link in links:
        row: dict[str, Any] = {
            "imaging": link.imaging,
            "target": link.target,
            "expected_sign": "negative" if link.expected_sign < 0 else "positive",
            "n": 0,
            "rho": np.nan,
            "ci_low": np.nan,
            "ci_high": np.nan,
            "p_value": np.nan,
            "agrees": pd.NA,
            "supported": pd.NA,
            "status": "ok",
            "detail": "",
            "rationale": link.rationale,
        }
        if link.target == HYPOXIA_SCORE:
            row["detail"] = (
                f"{len(used)}/{len(dict.fromkeys(signature))} genes: {', '.join(used)}"
                if used
                else "no signature gene measured"
            )
        if link.imaging not in img.columns:
            row["status"] = f"missing imaging measure {link.imaging}"
        elif link.target == HYPOXIA_SCORE and not used:
            row["status"] = f"missing {HYPOXIA_SCORE}: none of {', '.join(signature)} measured"
        elif link.target != HYPOXIA_SCORE and link.target not in expr.columns:
            row["status"] = f"missing gene {link.target}"
        else:
            target = score if link.target == HYPOXIA_SCORE else expr[link.target]
            x = pd.to_numeric(img.loc[common, link.imaging], errors="coerce")
            y = pd.to_numeric(target.loc[common], errors="coerce")
            try:
                rho, lo, hi, p, n = spearman_ci(x, y, confidence=confidence)
            except InputError as err:
                row["status"] = err.reason
                row["n"] = int((x.notna() & y.notna()).sum())
            else:
                agrees = bool(np.sign(rho) == link.expected_sign)
                row.update(n=n, rho=rho, ci_low=lo, ci_high=hi, p_value=p, agrees=agrees)
                row["supported"] = agrees and p < alpha
        rows.append(row)
    out = pd.DataFrame(rows)
    for col in ("agrees", "supported"):
        out[col] = out[col].astype("boolean")
    return out


# -- catalog -----------------------------------------------------------------------------------


def parse_maps(items: Sequence[str]) -> dict[str, tuple[str, str | None]]:
    """``NAME=COLUMN[:PATTERN]`` options as ``{name: (column, pattern)}``.

    Raises
    ------
    ConfigError
        Malformed item, unknown measure name, or a pattern that is not a regular expression.
    """
    out: dict[str, tuple[str, str | None]] = {}
    for item in items:
        name, sep, rest = item.partition("=")
        name = name.strip().lower()
        if not sep or not rest.strip():
            raise ConfigError("--map", f"{item!r}: expected NAME=COLUMN[:PATTERN]")
        if name not in IMAGING_MEASURES:
            raise ConfigError("--map", f"{name!r} is not one of {', '.join(IMAGING_MEASURES)}")
        column, _, pattern = rest.partition(":")
        if pattern:
            try:
                re.compile(pattern)
            except re.error as err:
                raise ConfigError(
                    "--map", f"{pattern!r} is not a regular expression: {err}"
                ) from err
        out[name] = (column.strip(), pattern or None)
    return out


def _stat_column(columns: Sequence[str], stat: str) -> str | None:
    return next((c for c in STAT_COLUMNS[stat] if c in columns), None)


def imaging_frame(
    root: Root,
    table: str,
    *,
    maps: Mapping[str, tuple[str, str | None]] | None = None,
) -> tuple[pd.DataFrame, dict[str, str]]:
    """Imaging measures per subject from a feature table (see the module docstring).

    Parameters
    ----------
    root : Root
        Catalog root.
    table : str
        Feature table (``features_<name>``).
    maps : mapping, optional
        ``{measure: (column, series pattern or None)}`` overrides (:func:`parse_maps`).

    Returns
    -------
    (pandas.DataFrame, dict)
        Subjects x found measures, and for each found measure where it came from.

    Raises
    ------
    NotFoundError
        The table does not exist or has no rows.
    ConfigError
        A ``--map`` column is not in the table.
    """
    if not tables.table_exists(root, table) or tables.table_rows(root, table) == 0:
        raise NotFoundError(table, "no such feature table, or it has no rows")
    feats = tables.read_table(root, table).to_pandas()
    for col in ("subject_id", "series_uid"):
        if col not in feats.columns:
            raise InputError(table, f"no {col} column; is it a feature table?")
    series = tables.read_table(
        root, "series", columns=["series_uid", "series_description", "units"]
    ).to_pandas()
    feats = feats.merge(series, on="series_uid", how="left")
    feats["_kind"] = [
        series_kind(d if isinstance(d, str) else None, u if isinstance(u, str) else None)
        for d, u in zip(feats["series_description"], feats["units"], strict=True)
    ]
    feats = feats[feats["subject_id"].notna()]
    measures: dict[str, pd.Series] = {}
    sources: dict[str, str] = {}
    for name, (kind, stat) in IMAGING_MEASURES.items():
        override = (maps or {}).get(name)
        if override is not None:
            column, pattern = override
            if column not in feats.columns:
                raise ConfigError("--map", f"{table} has no column {column!r}")
            rows = feats
            if pattern:
                described = feats["series_description"].fillna("").astype(str)
                rows = feats[described.str.contains(pattern, case=False, regex=True)]
            where = f"{table}.{column}" + (f" on series matching {pattern!r}" if pattern else "")
        else:
            found = _stat_column(list(feats.columns), stat)
            rows = feats[feats["_kind"] == kind]
            if found is None or rows.empty:
                continue
            column = found
            where = f"{table}.{column} on {kind} series"
        values = pd.to_numeric(rows[column], errors="coerce")
        per_subject = values.groupby(rows["subject_id"].astype(str)).mean().dropna()
        if per_subject.empty:
            continue
        measures[name] = per_subject
        sources[name] = f"{where} ({len(rows)} ROIs, {len(per_subject)} subjects)"
    frame = pd.DataFrame(measures)
    frame.index.name = "subject_id"
    return frame, sources


def expression_frame(
    root: Root, table: str = "expression", *, value: str = "log2_tpm", genes: Sequence[str] = ()
) -> pd.DataFrame:
    """Subjects x genes from a long expression table (mean over a subject's samples).

    Samples link to subjects through ``subjects`` (else ``patient_id`` is the subject id);
    the gene symbol is ``gene``, or ``gene_id`` up to a ``|``.

    Parameters
    ----------
    root : Root
        Catalog root.
    table : str
        Long table with ``sample_id``, ``gene`` or ``gene_id`` and `value`; or a wide table
        with ``subject_id`` and one column per gene.
    value : str
        Value column of a long table.
    genes : sequence of str
        Only these genes (all when empty).

    Returns
    -------
    pandas.DataFrame
        Indexed by ``subject_id``.

    Raises
    ------
    NotFoundError
        No such table, or no rows.
    InputError
        The table has neither the long nor the wide layout.
    """
    if not tables.table_exists(root, table) or tables.table_rows(root, table) == 0:
        raise NotFoundError(table, "no such expression table, or it has no rows")
    names = tables.table_schema(root, table).names
    if "subject_id" in names and "gene" not in names and "gene_id" not in names:
        wide = tables.read_table(root, table).to_pandas()
        keep = ["subject_id", *[g for g in genes if g in wide.columns]] if genes else list(wide)
        numeric = wide[keep].drop(columns="subject_id").apply(pd.to_numeric, errors="coerce")
        return numeric.groupby(wide["subject_id"].astype(str)).mean()
    needed = {"sample_id", value}
    if not needed <= set(names) or not ({"gene", "gene_id"} & set(names)):
        raise InputError(
            table, f"expected sample_id, gene (or gene_id) and {value!r} columns, or a wide table"
        )
    cols = [c for c in ("sample_id", "patient_id", "gene", "gene_id", value) if c in names]
    data = tables.read_table(root, table, columns=cols)
    symbol = data.column("gene") if "gene" in cols else None
    if "gene_id" in cols:
        from_id = pc.replace_substring_regex(
            data.column("gene_id"), pattern=r"\|.*$", replacement=""
        )
        symbol = from_id if symbol is None else pc.coalesce(symbol, from_id)
    assert symbol is not None
    data = data.append_column("_symbol", symbol)
    subjects = None
    if tables.table_exists(root, "subjects"):
        subjects = tables.read_table(
            root, "subjects", columns=["sample_id", "subject_id"]
        ).to_pandas()
    mapping = (
        {}
        if subjects is None
        else dict(zip(subjects["sample_id"], subjects["subject_id"], strict=True))
    )

    def subject_of(frame: pd.DataFrame) -> pd.Series:
        subject = frame["sample_id"].map(mapping)
        if "patient_id" in frame.columns:
            subject = subject.fillna(frame["patient_id"])
        return subject.astype("string")

    id_cols = [c for c in ("sample_id", "patient_id") if c in cols]
    everyone = subject_of(data.select(id_cols).group_by(id_cols).aggregate([]).to_pandas())
    if genes:
        data = data.filter(
            pc.is_in(data.column("_symbol"), value_set=pa.array(list(genes), type=pa.string()))
        )
    frame = data.to_pandas()
    frame["subject_id"] = subject_of(frame)
    frame = frame[frame["subject_id"].notna()]
    values = pd.to_numeric(frame[value], errors="coerce")
    wide = values.groupby([frame["subject_id"], frame["_symbol"]]).mean().unstack("_symbol")
    wide.columns.name = None
    wide.index = wide.index.astype(str)
    wide = wide.reindex(sorted(set(everyone.dropna().astype(str)) | set(wide.index)))
    wide.index.name = "subject_id"
    return wide
