"""Imaging-omics association report: CCA, PLS or the factor model over two catalog tables.

Steps of :func:`write_associate_report` (``radgen analyze associate``):

1. **Features**: a ``features_<name>`` table, numeric feature columns only (identifiers,
   scanner metadata and bookkeeping columns left out), averaged over the ROIs of a subject.
2. **Omics**: a long table (sample, gene, value: ``expression`` uses ``log2_tpm``,
   ``methylation`` ``m_value``, ``cna_gene`` ``log2``, ``gene_mutation`` ``mutated``; any other
   table with a gene-like key column and one numeric column, or ``--value``) pivoted to samples
   x genes, or a wide table (one numeric column per gene). Samples map to imaging subjects
   through ``subjects`` (sample_id -> subject_id; a table with its own ``subject_id`` column is
   used as is); several samples of one subject are averaged.
3. **Alignment**: subjects present in both blocks (at least `min_samples`); variables with
   more than 20 % missing values or without variance are dropped, remaining gaps filled with
   the variable's mean (the factor model keeps them missing, and also uses subjects with only
   one of the two blocks); the `top_genes` most variable genes are kept.
4. **Model**: :class:`~radgen.analysis.cca.RegularizedCCA` (penalties by CV),
   :class:`~radgen.analysis.pls.PLSSVD` (+ the held-out R^2 of
   :class:`~radgen.analysis.pls.PLSRegression` predicting the omics block) or
   :class:`~radgen.analysis.factors.FactorModel`, each with held-out correlations and
   permutation p-values (``assess``).
5. **Report**: ``report.html`` with relative links to ``correlations.png`` (in-sample vs
   held-out per component), ``loadings.png`` (top features and genes), ``variance.png``
   (factors: variance explained per view and factor), and ``summary.json`` with every number.
"""

from __future__ import annotations

import html
import io
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from radgen.analysis.cca import RegularizedCCA
from radgen.analysis.factors import FactorModel
from radgen.analysis.pls import PLSSVD, PLSRegression
from radgen.errors import CatalogError, ConfigError, InputError, NotFoundError
from radgen.platform import tables
from radgen.platform.storage import Root, resolve_root
from radgen.schemas.tables import FEATURE_TABLE_BASE, FEATURE_TABLE_TAIL

__all__ = [
    "METHODS",
    "OMICS_VALUES",
    "AssociationBlocks",
    "load_blocks",
    "run_association",
    "write_associate_report",
]

#: Methods of ``radgen analyze associate``.
METHODS = ("cca", "pls", "factors")

#: Long omics tables radgen writes: (key columns, first non-null wins; value column).
OMICS_VALUES: dict[str, tuple[tuple[str, ...], str]] = {
    "expression": (("gene", "gene_id"), "log2_tpm"),
    "methylation": (("feature",), "m_value"),
    "cna_gene": (("gene",), "log2"),
    "gene_mutation": (("gene",), "mutated"),
}

_KEY_CANDIDATES = ("gene", "gene_id", "feature", "probe", "variable")
_NOT_VALUES = {
    "sample_id", "patient_id", "subject_id", "source_file", "file_sha256", "run_id",
    "length", "count", "n_variants", "start", "end", "num_markers",
}  # fmt: skip
_FEATURE_META = {f.name for f in FEATURE_TABLE_BASE} | {f.name for f in FEATURE_TABLE_TAIL}
_MAX_MISSING = 0.2
_TOP_SHOWN = 10


@dataclass
class AssociationBlocks:
    """Two aligned blocks, rows = imaging subjects.

    Attributes
    ----------
    features, omics : pandas.DataFrame
        Index ``subject_id``; complete (imputed) for CCA/PLS, NaN rows for subjects missing a
        block when `keep_unpaired`.
    features_table, omics_table : str
    features_version, omics_version : int
    value : str
        Omics value used (column, or ``"wide"``).
    n_paired : int
        Subjects with both blocks.
    notes : list of str
        What was dropped, averaged or imputed.
    """

    features: pd.DataFrame
    omics: pd.DataFrame
    features_table: str
    omics_table: str
    features_version: int
    omics_version: int
    value: str
    n_paired: int
    notes: list[str] = field(default_factory=list)


def _exists(root: Root, name: str) -> bool:
    try:
        return tables.table_exists(root, name)
    except CatalogError:
        return False


def _feature_table_name(root: Root, name: str) -> str:
    for candidate in (name, f"features_{name}"):
        if _exists(root, candidate):
            return candidate
    raise NotFoundError(name, "no such feature table (tried it and features_<name>)")


def _read(cat: Any, name: str, columns: list[str] | None = None) -> pd.DataFrame:
    frame = cat.table(name, columns=columns)
    if not isinstance(frame, pd.DataFrame):  # pragma: no cover - Catalog.table returns pandas
        raise CatalogError(name, "expected a pandas table")
    return frame


def _feature_block(cat: Any, name: str, notes: list[str]) -> pd.DataFrame:
    frame = _read(cat, name)
    if "subject_id" not in frame:
        raise InputError(name, "has no subject_id column; cannot link it to omics samples")
    frame = frame[frame["subject_id"].notna()]
    cols = [
        c
        for c in frame.columns
        if c not in _FEATURE_META
        and pd.api.types.is_numeric_dtype(frame[c])
        and not pd.api.types.is_bool_dtype(frame[c])
    ]
    if not cols:
        raise InputError(name, "has no numeric feature column")
    if frame.empty:
        raise InputError(name, "has no row with a subject_id")
    counts = frame.groupby("subject_id").size()
    if (counts > 1).any():
        notes.append(
            f"{name}: {int((counts > 1).sum())} subject(s) have several ROIs; their features "
            "are averaged"
        )
    block = frame.groupby("subject_id")[cols].mean().astype(np.float64)
    block.index = block.index.astype(str)
    return block


def _omics_long_spec(cat: Any, name: str, value: str | None) -> tuple[list[str], str] | None:
    """Key columns (first non-null wins) and value column of a long table; None if wide."""
    schema = tables.table_schema(cat.root, name)
    columns = [f.name for f in schema]
    if value is not None and value not in columns:
        raise InputError(value, f"no such column in {name} (columns: {', '.join(columns)})")
    if name in OMICS_VALUES:
        known, default = OMICS_VALUES[name]
        return [k for k in known if k in columns], value or default
    keys = [k for k in _KEY_CANDIDATES if k in columns][:1]
    if not keys:
        if value is not None:
            raise InputError(
                name, f"--value needs a gene-like key column ({', '.join(_KEY_CANDIDATES)})"
            )
        return None
    if value is not None:
        return keys, value
    numeric = [
        f.name
        for f in schema
        if f.name not in _NOT_VALUES
        and f.name not in keys
        and (
            pa.types.is_integer(f.type)
            or pa.types.is_floating(f.type)
            or pa.types.is_boolean(f.type)
        )
    ]
    if len(numeric) != 1:
        raise InputError(
            name,
            f"cannot tell which column holds the values ({', '.join(numeric) or 'none numeric'}); "
            "pass --value COLUMN",
        )
    return keys, numeric[0]


def _omics_block(
    cat: Any, name: str, value: str | None, notes: list[str]
) -> tuple[pd.DataFrame, str, str]:
    """Samples x genes, the id column of the rows (sample_id or subject_id), the value used."""
    if not _exists(cat.root, name):
        raise NotFoundError(name, "no such omics table in this catalog")
    columns = [f.name for f in tables.table_schema(cat.root, name)]
    id_col = "subject_id" if "subject_id" in columns else "sample_id"
    if id_col not in columns:
        raise InputError(name, "has neither sample_id nor subject_id; cannot link it to subjects")
    spec = _omics_long_spec(cat, name, value)
    if spec is None:
        frame = _read(cat, name)
        numeric = [
            c
            for c in frame.columns
            if c not in _NOT_VALUES
            and (pd.api.types.is_numeric_dtype(frame[c]) or pd.api.types.is_bool_dtype(frame[c]))
        ]
        if not numeric:
            raise InputError(name, "has no numeric column to use as omics variables")
        wide = frame.groupby(frame[id_col].astype(str))[numeric].mean().astype(np.float64)
        return wide, id_col, "wide"
    keys, val = spec
    frame = _read(cat, name, columns=[id_col, *keys, val])
    if frame.empty:
        raise InputError(name, "is empty")
    key = frame[keys[0]].astype("string")
    for extra in keys[1:]:
        key = key.fillna(frame[extra].astype("string"))
    frame = frame.assign(_key=key, _value=pd.to_numeric(frame[val], errors="coerce"))
    frame = frame[frame["_key"].notna() & frame["_value"].notna()]
    if frame.empty:
        raise InputError(name, f"has no non-missing {val} value")
    dup = frame.duplicated([id_col, "_key"]).sum()
    if dup:
        notes.append(f"{name}: {int(dup)} repeated (sample, gene) rows averaged")
    wide = frame.pivot_table(
        index=frame[id_col].astype(str), columns="_key", values="_value", aggfunc="mean"
    ).astype(np.float64)
    wide.columns = [str(c) for c in wide.columns]
    wide.columns.name = None
    return wide, id_col, val


def _to_subjects(
    cat: Any, wide: pd.DataFrame, id_col: str, name: str, notes: list[str]
) -> pd.DataFrame:
    if id_col == "subject_id":
        return wide
    links = (
        _read(cat, "subjects", columns=["sample_id", "subject_id"])
        if _exists(cat.root, "subjects")
        else pd.DataFrame(columns=["sample_id", "subject_id"])
    )
    mapping = dict(
        zip(links["sample_id"].astype(str), links["subject_id"].astype(str), strict=True)
    )
    subject = pd.Series(wide.index.map(lambda s: mapping.get(s)), index=wide.index, dtype="object")
    unmapped = int(subject.isna().sum())
    if unmapped:
        notes.append(f"{name}: {unmapped} sample(s) not in the subjects table were left out")
    keep = subject.notna().to_numpy()
    wide = wide[keep]
    subject = subject[keep]
    counts = subject.value_counts()
    if (counts > 1).any():
        notes.append(
            f"{name}: {int((counts > 1).sum())} subject(s) have several samples; they are averaged"
        )
    out = wide.groupby(subject.to_numpy()).mean()
    out.index = out.index.astype(str)
    out.index.name = "subject_id"
    return out


def _clean(block: pd.DataFrame, label: str, notes: list[str], *, impute: bool) -> pd.DataFrame:
    """Drop variables with > 20 % missing or no variance; impute the rest with the mean."""
    missing = block.isna().mean()
    too_sparse = missing > _MAX_MISSING
    if too_sparse.any():
        notes.append(
            f"{label}: {int(too_sparse.sum())} variable(s) with more than "
            f"{_MAX_MISSING:.0%} missing values dropped"
        )
        block = block.loc[:, ~too_sparse]
    sd = block.std(skipna=True)
    constant = ~(sd > 1e-12 * block.abs().max().clip(lower=1.0))
    if constant.any():
        notes.append(f"{label}: {int(constant.sum())} constant variable(s) dropped")
        block = block.loc[:, ~constant]
    if block.shape[1] == 0:
        raise InputError(label, f"no variable varies across the {len(block)} matched subjects")
    if impute and block.isna().any().any():
        notes.append(f"{label}: {int(block.isna().sum().sum())} missing value(s) set to the mean")
        block = block.fillna(block.mean())
    return block


def load_blocks(
    cat: Any,
    features: str,
    omics: str,
    *,
    value: str | None = None,
    top_genes: int = 500,
    min_samples: int = 10,
    keep_unpaired: bool = False,
) -> AssociationBlocks:
    """Read, pivot and align a feature table and an omics table (steps 1-3 of the module).

    Parameters
    ----------
    cat : Catalog
        An open catalog.
    features : str
        Feature table (``radiomics`` or ``features_radiomics``).
    omics : str
        Omics table.
    value : str, optional
        Value column of the omics table (default: see :data:`OMICS_VALUES`).
    top_genes : int, default 500
        Keep the most variable omics variables.
    min_samples : int, default 10
        Fewest subjects with both blocks.
    keep_unpaired : bool, default False
        Also keep subjects with only one block (NaN in the other; for the factor model).

    Raises
    ------
    NotFoundError
        A table that does not exist.
    InputError
        No usable columns, too few matched subjects, constant blocks.
    """
    if top_genes < 1:
        raise ConfigError("top_genes", f"must be at least 1, got {top_genes}")
    notes: list[str] = []
    ftable = _feature_table_name(cat.root, features)
    fblock = _feature_block(cat, ftable, notes)
    wide, id_col, used = _omics_block(cat, omics, value, notes)
    oblock = _to_subjects(cat, wide, id_col, omics, notes)
    paired = fblock.index.intersection(oblock.index)
    if len(paired) < min_samples:
        raise InputError(
            f"{ftable} x {omics}",
            f"only {len(paired)} subject(s) have both imaging features and omics "
            f"(at least {min_samples} needed); check the subjects table links samples to subjects",
        )
    rows = fblock.index.union(oblock.index) if keep_unpaired else paired
    rows = rows.sort_values()
    f = _clean(fblock.reindex(paired), ftable, notes, impute=not keep_unpaired)
    o = _clean(oblock.reindex(paired), omics, notes, impute=not keep_unpaired)
    if o.shape[1] > top_genes:
        order = o.var().sort_values(ascending=False, kind="stable").index[:top_genes]
        notes.append(f"{omics}: kept the {top_genes} most variable of {o.shape[1]} variables")
        o = o.loc[:, o.columns.isin(order)]
    f = fblock.loc[:, f.columns].reindex(rows) if keep_unpaired else f.reindex(rows)
    o = oblock.loc[:, o.columns].reindex(rows) if keep_unpaired else o.reindex(rows)
    if keep_unpaired and len(rows) > len(paired):
        notes.append(
            f"{len(rows) - len(paired)} subject(s) with only one of the two blocks kept "
            "(missing view)"
        )
    return AssociationBlocks(
        features=f,
        omics=o,
        features_table=ftable,
        omics_table=omics,
        features_version=tables.table_version(cat.root, ftable),
        omics_version=tables.table_version(cat.root, omics),
        value=used,
        n_paired=len(paired),
        notes=notes,
    )


def _top(names: list[str], values: np.ndarray[Any, Any], n: int) -> list[dict[str, Any]]:
    order = np.argsort(-np.abs(values), kind="stable")[:n]
    return [{"name": names[i], "loading": float(values[i])} for i in order]


def run_association(
    blocks: AssociationBlocks,
    method: str,
    *,
    n_components: int = 3,
    n_permutations: int | None = None,
    n_splits: int = 5,
    seed: int = 0,
) -> dict[str, Any]:
    """Fit and assess one model on aligned blocks (step 4 of the module).

    Parameters
    ----------
    blocks : AssociationBlocks
    method : {"cca", "pls", "factors"}
    n_components : int, default 3
        Canonical pairs or PLS components; for the factor model the initial number of
        factors is ``max(2 * n_components, 5)`` (ARD switches the unneeded ones off).
    n_permutations : int, optional
        Default 200 (CCA, PLS) or 50 (factors, each permutation refits the model).
    n_splits : int, default 5
        Folds of the held-out correlations.
    seed : int, default 0

    Returns
    -------
    dict
        ``components`` (component, in_sample, heldout, p_value), ``top_features`` and
        ``top_genes`` per component, and method-specific entries (``penalties``,
        ``heldout_r2``, ``variance_explained``, ``factor_kind``).
    """
    if method not in METHODS:
        raise ConfigError("method", f"must be one of {', '.join(METHODS)}, got {method!r}")
    if n_components < 1:
        raise ConfigError("n_components", f"must be at least 1, got {n_components}")
    x, y = blocks.features, blocks.omics
    fnames, gnames = [str(c) for c in x.columns], [str(c) for c in y.columns]
    perms = n_permutations if n_permutations is not None else (50 if method == "factors" else 200)
    n = blocks.n_paired
    splits = max(2, min(n_splits, n))
    out: dict[str, Any] = {"method": method}
    if method == "factors":
        views = {"imaging": x.to_numpy(), blocks.omics_table: y.to_numpy()}
        model = FactorModel(max(2 * n_components, 5), random_state=seed)
        model.assess(views, n_splits=splits, n_permutations=perms, seed=seed)
        in_sample = model.cross_view_correlations_
        heldout = model.heldout_correlations_
        p_values = model.p_values_
        wx, wy = model.weights_["imaging"], model.weights_[blocks.omics_table]
        r2 = model.r2_
        out["variance_explained"] = {
            view: {f: float(r2.loc[view, f]) for f in r2.columns} for view in r2.index
        }
        out["variance_explained_total"] = {k: float(v) for k, v in model.r2_total_.items()}
        out["factor_kind"] = list(model.factor_kind_)
        out["active_views"] = [list(v) for v in model.active_views_]
        out["converged"] = model.converged_
        labels = list(r2.columns)
    else:
        xa, ya = x.to_numpy(), y.to_numpy()
        outer = n - math.ceil(n / splits)  # smallest training part, then the penalty search's
        inner = outer - math.ceil(outer / min(splits, outer))
        ranks = [int(np.linalg.matrix_rank((b - b.mean(axis=0)) / b.std(axis=0))) for b in (xa, ya)]
        k = min(n_components, *ranks, max(1, inner - 1))
        if k < n_components:
            blocks.notes.append(
                f"{k} component(s) instead of {n_components}: block ranks {ranks[0]} (features) "
                f"and {ranks[1]} (omics), {n} subjects"
            )
        labels = [f"Component{i + 1}" for i in range(k)]
        if method == "cca":
            cca = RegularizedCCA(k, random_state=seed).assess(
                xa, ya, n_splits=splits, n_permutations=perms, seed=seed
            )
            in_sample, heldout, p_values = (
                cca.canonical_correlations_, cca.heldout_correlations_, cca.p_values_,
            )  # fmt: skip
            wx, wy = cca.x_structure_, cca.y_structure_
            out["penalties"] = [float(v) for v in cca.penalties_]
        else:
            pls = PLSSVD(k).assess(xa, ya, n_splits=splits, n_permutations=perms, seed=seed)
            in_sample, heldout, p_values = (
                pls.correlations_,
                pls.heldout_correlations_,
                pls.p_values_,
            )
            wx, wy = pls.x_structure_, pls.y_structure_
            out["singular_values"] = [float(v) for v in pls.singular_values_]
            reg = PLSRegression(k).assess(xa, ya, n_splits=splits, n_permutations=1, seed=seed)
            out["heldout_r2"] = reg.heldout_r2_
    out["components"] = [
        {
            "component": label,
            "in_sample": float(in_sample[i]),
            "heldout": float(heldout[i]),
            "p_value": float(p_values[i]),
        }
        for i, label in enumerate(labels)
    ]
    out["top_features"] = {
        label: _top(fnames, wx[:, i], _TOP_SHOWN) for i, label in enumerate(labels)
    }
    out["top_genes"] = {label: _top(gnames, wy[:, i], _TOP_SHOWN) for i, label in enumerate(labels)}
    out["loading_kind"] = (
        "posterior mean weight (standardized units)"
        if method == "factors"
        else "structure coefficient (correlation of the variable with the component score)"
    )
    out["n_permutations"] = perms
    out["n_splits"] = splits
    return out


# -- figures ----------------------------------------------------------------------------------


def _png(draw: Callable[[Any], None], size: tuple[float, float]) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=size)
    try:
        draw(fig)
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=90)
    finally:
        plt.close(fig)
    return buffer.getvalue()


def _correlations_png(result: dict[str, Any]) -> bytes:
    comps = result["components"]
    labels = [c["component"] for c in comps]

    def draw(fig: Any) -> None:
        ax = fig.add_subplot(1, 1, 1)
        pos = np.arange(len(labels))
        ax.bar(pos - 0.2, [c["in_sample"] for c in comps], 0.4, label="in-sample")
        ax.bar(pos + 0.2, [c["heldout"] for c in comps], 0.4, label="held-out (CV)")
        for i, c in enumerate(comps):
            top = max(c["in_sample"], c["heldout"], 0.0)
            ax.text(i, top + 0.02, f"p={c['p_value']:.3g}", ha="center", fontsize=8)
        ax.axhline(0, color="black", linewidth=0.6)
        ax.set_xticks(pos, labels, fontsize=8)
        ax.set_ylim(min(-0.1, *(c["heldout"] - 0.05 for c in comps)), 1.1)
        kind = "cross-view correlation" if result["method"] == "factors" else "correlation"
        ax.set_ylabel(kind)
        ax.legend(fontsize=8, loc="lower right")
        ax.set_title(f"{result['method']}: in-sample vs held-out {kind}", fontsize=10)

    return _png(draw, (max(4.0, 1.2 * len(labels) + 2), 3.6))


def _loadings_png(result: dict[str, Any], omics: str) -> bytes:
    shown = list(result["top_features"])[:2]

    def draw(fig: Any) -> None:
        for col, label in enumerate(shown):
            for row, (title, entries) in enumerate(
                (("imaging features", result["top_features"][label]),
                 (omics, result["top_genes"][label]))
            ):  # fmt: skip
                ax = fig.add_subplot(2, len(shown), row * len(shown) + col + 1)
                names = [e["name"] for e in entries][::-1]
                vals = [e["loading"] for e in entries][::-1]
                ax.barh(names, vals, color=["tab:red" if v < 0 else "tab:blue" for v in vals])
                ax.axvline(0, color="black", linewidth=0.6)
                ax.tick_params(labelsize=7)
                ax.set_title(f"{label}: top {title}", fontsize=9)

    return _png(draw, (6.0 * len(shown), 7.0))


def _variance_png(result: dict[str, Any]) -> bytes:
    ve = result["variance_explained"]
    views = list(ve)
    factors = list(ve[views[0]])
    grid = np.array([[ve[v][f] for f in factors] for v in views])

    def draw(fig: Any) -> None:
        ax = fig.add_subplot(1, 1, 1)
        im = ax.imshow(grid, cmap="viridis", vmin=0, aspect="auto")
        ax.set_xticks(range(len(factors)), factors, fontsize=8, rotation=45)
        ax.set_yticks(range(len(views)), views, fontsize=8)
        for i in range(len(views)):
            for j in range(len(factors)):
                ax.text(
                    j, i, f"{grid[i, j]:.0%}", ha="center", va="center", color="white", fontsize=8
                )
        fig.colorbar(im, ax=ax, label="variance explained (R²)")
        ax.set_title("Variance explained per view and factor", fontsize=10)

    return _png(draw, (max(4.5, 0.9 * len(factors) + 3), 1.0 + 0.8 * len(views)))


# -- page ---------------------------------------------------------------------------------------


def _page(summary: dict[str, Any], files: list[str]) -> str:
    esc = html.escape
    res = summary["result"]
    rows = "".join(
        f"<tr><td>{esc(c['component'])}</td><td>{c['in_sample']:.3f}</td>"
        f"<td>{c['heldout']:.3f}</td><td>{c['p_value']:.3g}</td>"
        + (
            f"<td>{esc(res['factor_kind'][i])}</td><td>{esc(', '.join(res['active_views'][i]))}</td>"
            if res["method"] == "factors"
            else ""
        )
        + "</tr>"
        for i, c in enumerate(res["components"])
    )
    extra_head = "<th>kind</th><th>active in</th>" if res["method"] == "factors" else ""
    extras = []
    if "penalties" in res:
        extras.append(f"ridge penalties chosen by cross-validation: lx = {res['penalties'][0]:g}, "
                      f"ly = {res['penalties'][1]:g}")  # fmt: skip
    if "heldout_r2" in res:
        extras.append(
            f"PLS regression predicting {esc(summary['omics']['table'])} from the features: "
            f"held-out R² = {res['heldout_r2']:.3f}"
        )
    notes = "".join(f"<li>{esc(n)}</li>" for n in summary["notes"]) or "<li>none</li>"
    images = "".join(
        f'<p><img alt="{esc(f)}" src="{esc(f)}"></p>' for f in files if f.endswith(".png")
    )
    stat = (
        "cross-view correlation corr(E[z | imaging], E[z | omics])"
        if res["method"] == "factors"
        else "correlation of the paired component scores"
    )
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>radgen associate: {esc(summary["title"])}</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:2px 8px;text-align:right}}
td:first-child,th:first-child{{text-align:left}}</style></head><body>
<h1>Imaging-omics association ({esc(res["method"])})</h1>
<p>{esc(summary["title"])}: {summary["n_subjects"]} subjects with both blocks,
{summary["features"]["n_variables"]} imaging features, {summary["omics"]["n_variables"]}
omics variables ({esc(summary["omics"]["value"])}).</p>
<h2>Components</h2>
<p>Statistic: {stat}. Held-out: {res["n_splits"]}-fold cross-validation (model refitted per
fold). p-value: {res["n_permutations"]} permutations of the omics rows.</p>
<table><tr><th>component</th><th>in-sample</th><th>held-out</th><th>permutation p</th>{extra_head}</tr>
{rows}</table>
<ul>{"".join(f"<li>{e}</li>" for e in extras)}</ul>
<h2>Figures</h2>{images}
<h2>Notes</h2><ul>{notes}</ul>
<p>Every number is in <a href="summary.json">summary.json</a>.</p>
</body></html>
"""


def write_associate_report(
    cat: Any,
    features: str,
    omics: str,
    method: str,
    *,
    out: str | None = None,
    value: str | None = None,
    top_genes: int = 500,
    n_components: int = 3,
    n_permutations: int | None = None,
    n_splits: int = 5,
    seed: int = 0,
    min_samples: int = 10,
) -> dict[str, Any]:
    """Run the whole association analysis and write the report (module docstring).

    Parameters
    ----------
    cat : Catalog
        An open catalog.
    features, omics : str
        Feature table and omics table.
    method : {"cca", "pls", "factors"}
    out : str, optional
        Output folder (local path or fsspec URL); default
        ``ROOT/reports/associate/<features>__<omics>__<method>``.
    value, top_genes, min_samples
        See :func:`load_blocks`.
    n_components, n_permutations, n_splits, seed
        See :func:`run_association`.

    Returns
    -------
    dict
        The summary also written to ``summary.json`` (inputs, counts, notes, results, files,
        ``report``: the location of ``report.html``).
    """
    if method not in METHODS:
        raise ConfigError("method", f"must be one of {', '.join(METHODS)}, got {method!r}")
    blocks = load_blocks(
        cat, features, omics, value=value, top_genes=top_genes, min_samples=min_samples,
        keep_unpaired=method == "factors",
    )  # fmt: skip
    result = run_association(
        blocks, method, n_components=n_components, n_permutations=n_permutations,
        n_splits=n_splits, seed=seed,
    )  # fmt: skip
    if out is None:
        target = cat.root
        base: tuple[str, ...] = (
            "reports", "associate", f"{blocks.features_table}__{omics}__{method}",
        )  # fmt: skip
    else:
        target, base = resolve_root(out), ()
    pngs = {
        "correlations.png": _correlations_png(result),
        "loadings.png": _loadings_png(result, omics),
    }
    if method == "factors":
        pngs["variance.png"] = _variance_png(result)
    files = [*pngs, "summary.json", "report.html"]
    title = (
        f"{blocks.features_table}@{blocks.features_version} x "
        f"{blocks.omics_table}@{blocks.omics_version}"
    )
    summary: dict[str, Any] = {
        "title": title,
        "method": method,
        "features": {
            "table": blocks.features_table,
            "version": blocks.features_version,
            "n_variables": int(blocks.features.shape[1]),
        },
        "omics": {
            "table": blocks.omics_table,
            "version": blocks.omics_version,
            "value": blocks.value,
            "n_variables": int(blocks.omics.shape[1]),
        },
        "n_subjects": blocks.n_paired,
        "n_subjects_total": len(blocks.features),
        "parameters": {
            "n_components": n_components,
            "n_permutations": result["n_permutations"],
            "n_splits": result["n_splits"],
            "seed": seed,
            "top_genes": top_genes,
            "min_samples": min_samples,
        },
        "notes": list(blocks.notes),
        "result": result,
        "files": files,
        "report": target.uri(*base, "report.html"),
    }
    for name, data in pngs.items():
        target.write_bytes(data, *base, name)
    target.write_bytes(
        (json.dumps(summary, indent=2, allow_nan=False) + "\n").encode(), *base, "summary.json"
    )
    target.write_bytes(_page(summary, files).encode(), *base, "report.html")  # last: complete
    return summary
