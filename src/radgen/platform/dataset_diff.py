"""What changed between two dataset versions: rows added, removed and changed by key.

Both versions are read through :func:`radgen.platform.datasets.read_dataset` (every file's
SHA-256 verified) and compared in DuckDB: a row is *added* when its key is only in the newer
version, *removed* when only in the older, *changed* when the key is in both and any shared
column differs (``IS DISTINCT FROM``, so NULL equals NULL and NaN equals NaN).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb
import pyarrow as pa

from radgen.errors import ConfigError
from radgen.platform.datasets import DatasetRef, read_dataset
from radgen.platform.storage import Root

__all__ = ["DEFAULT_KEYS", "diff_datasets"]

#: Key columns tried in order when none are given: the first set a dataset has in full.
DEFAULT_KEYS: tuple[tuple[str, ...], ...] = (
    ("roi_id",),
    ("sample_id", "gene"),
    ("sample_id", "gene_id"),
    ("sample_id", "feature"),
    ("series_uid",),
    ("subject_id",),
    ("patient_id",),
)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _keys_for(a: pa.Table, b: pa.Table, keys: Sequence[str] | None, label: str) -> list[str]:
    shared = set(a.column_names) & set(b.column_names)
    if keys:
        missing = [k for k in keys if k not in shared]
        if missing:
            raise ConfigError(label, f"key column(s) {', '.join(missing)} not in both versions")
        return list(keys)
    for candidate in DEFAULT_KEYS:
        if set(candidate) <= shared:
            return list(candidate)
    raise ConfigError(label, "no default key column in both versions; name them with --key")


def diff_datasets(
    root: Root,
    old: DatasetRef,
    new: DatasetRef,
    *,
    keys: Sequence[str] | None = None,
    examples: int = 5,
) -> dict[str, Any]:
    """Compare two dataset versions row by row.

    Parameters
    ----------
    root : Root
        Catalog root.
    old, new : DatasetRef
        The versions to compare (usually the same name).
    keys : sequence of str, optional
        Columns identifying a row; default the first of :data:`DEFAULT_KEYS` both have.
    examples : int
        Keys listed per category.

    Returns
    -------
    dict
        ``keys``, ``added``, ``removed``, ``changed``, ``unchanged`` (row counts),
        ``changed_columns`` (column -> rows where it differs), ``columns_added``,
        ``columns_removed``, and ``examples`` (a few keys per category).

    Raises
    ------
    ConfigError
        No usable key, or a key is NULL or repeats within a version.
    IntegrityError
        A file of either version does not match its manifest.
    """
    a, b = read_dataset(root, old), read_dataset(root, new)
    label = f"{old} vs {new}"
    key = _keys_for(a, b, keys, label)
    values = [c for c in a.column_names if c in set(b.column_names) and c not in key]
    con = duckdb.connect()
    try:
        con.register("a", a)
        con.register("b", b)
        k = ", ".join(_quote(c) for c in key)
        for side, table in (("a", old), ("b", new)):
            (dupes,) = con.execute(
                f"select count(*) - count(distinct ({k})) from {side}"
            ).fetchall()[0]
            if dupes:
                raise ConfigError(
                    label,
                    f"key ({', '.join(key)}) is NULL or repeats in {dupes} row(s) of {table}; "
                    "choose unique key columns with --key",
                )
        on = " and ".join(f"a.{_quote(c)} is not distinct from b.{_quote(c)}" for c in key)
        differs = {c: f"a.{_quote(c)} is distinct from b.{_quote(c)}" for c in values}
        per_column = ", ".join(
            f"count(*) filter (where {expr}) as {_quote(c)}" for c, expr in differs.items()
        )
        any_diff = " or ".join(differs.values()) or "false"
        row = con.execute(
            f"select count(*), count(*) filter (where {any_diff})"
            + (f", {per_column}" if per_column else "")
            + f" from a join b on {on}"
        ).fetchall()[0]
        matched, changed = int(row[0]), int(row[1])
        changed_columns = {c: int(n) for c, n in zip(values, row[2:], strict=True) if n}

        def listed(sql: str) -> list[Any]:
            rows = con.execute(sql + f" limit {int(examples)}").fetchall()
            return [r[0] if len(r) == 1 else list(r) for r in rows]

        added_sql = f"select {k} from b where not exists (select 1 from a where {on}) order by {k}"
        removed_sql = (
            f"select {k} from a where not exists (select 1 from b where {on}) order by {k}"
        )
        keys_b = ", ".join(f"b.{_quote(c)}" for c in key)
        changed_sql = f"select {keys_b} from a join b on {on} where {any_diff} order by {keys_b}"
        result = {
            "old": str(old),
            "new": str(new),
            "keys": key,
            "added": b.num_rows - matched,
            "removed": a.num_rows - matched,
            "changed": changed,
            "unchanged": matched - changed,
            "changed_columns": changed_columns,
            "columns_added": [c for c in b.column_names if c not in set(a.column_names)],
            "columns_removed": [c for c in a.column_names if c not in set(b.column_names)],
            "examples": {
                "added": listed(added_sql),
                "removed": listed(removed_sql),
                "changed": listed(changed_sql),
            },
        }
    finally:
        con.close()
    return result
