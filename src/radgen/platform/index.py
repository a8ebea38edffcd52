"""The DuckDB index ``ROOT/catalog.duckdb``: one SQL view per table over its current version.

The index holds no data of its own. Each view reads exactly the Parquet files of the current
Delta version of its table, so any DuckDB client can open the file read-only and query
``series`` or ``features_radiomics`` without radgen installed. The table
``radgen_tables`` records which version each view shows. Everything here can be rebuilt
from the files under the root (:func:`rebuild`).

For a remote root (``s3://...``) the index is kept in a local cache and uploaded after each
refresh; its views read the remote files through the fsspec filesystem radgen registers.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import logging
import os
import random
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pyarrow as pa

from radgen.errors import CatalogError
from radgen.platform import tables
from radgen.platform.storage import Root

__all__ = ["INDEX_FILE", "connect", "index_path", "rebuild", "refresh", "views"]

log = logging.getLogger(__name__)

INDEX_FILE = "catalog.duckdb"
_META = "radgen_tables"


def index_path(root: Root) -> Path:
    """Local path of the DuckDB index of `root` (a cache file for remote roots)."""
    if root.is_local:
        return root.local_path(INDEX_FILE)
    cache = Path(os.environ.get("RADGEN_CACHE", Path.home() / ".cache" / "radgen"))
    digest = hashlib.sha256(root.url.encode()).hexdigest()[:16]
    return cache / digest / INDEX_FILE


def _download(root: Root, target: Path) -> None:
    if not root.is_local and root.exists(INDEX_FILE):
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(root.read_bytes(INDEX_FILE))


def _upload(root: Root, source: Path) -> None:
    if not root.is_local:
        root.write_bytes(source.read_bytes(), INDEX_FILE)


def _register_fs(con: duckdb.DuckDBPyConnection, root: Root) -> None:
    if not root.is_local:
        con.register_filesystem(root.fs)


#: How long to wait for another process's lock on the index (it is held only while views are
#: rewritten, well under a second), in seconds; ``RADGEN_LOCK_TIMEOUT`` overrides it.
LOCK_TIMEOUT = 60.0


def _open_waiting(path: Path, *, read_only: bool) -> duckdb.DuckDBPyConnection:
    """Connect to the index file, waiting while another process holds its lock.

    DuckDB lets one process write a database file or several read it, never both: a commit
    refreshing the views blocks readers and other writers for a moment, so both wait with
    backoff instead of failing.
    """
    deadline = time.monotonic() + float(os.environ.get("RADGEN_LOCK_TIMEOUT", LOCK_TIMEOUT))
    delay = 0.02
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as err:
            if "lock" not in str(err).lower() or time.monotonic() > deadline:
                raise CatalogError(
                    str(path), f"cannot open the catalog index (try again): {err}"
                ) from err
        except duckdb.Error as err:
            raise CatalogError(str(path), f"cannot open the catalog index: {err}") from err
        time.sleep(delay * (0.5 + random.random()))
        delay = min(delay * 2, 0.5)


@contextlib.contextmanager
def connect(root: Root, *, read_only: bool = True) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the index; closes it (and uploads it for remote roots) on exit.

    Parameters
    ----------
    root : Root
        Catalog root.
    read_only : bool, default True
        Several readers may share the file; one writer at a time (the coordinator).

    Yields
    ------
    duckdb.DuckDBPyConnection
    """
    path = index_path(root)
    if not root.is_local:
        _download(root, path)
    if read_only and not path.exists():
        raise CatalogError(root.url, "no catalog here; run `radgen init` first")
    path.parent.mkdir(parents=True, exist_ok=True)
    con = _open_waiting(path, read_only=read_only)
    try:
        _register_fs(con, root)
        yield con
    finally:
        con.close()
    if not read_only:
        _upload(root, path)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _ensure_meta(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {_META} ("
        "name VARCHAR PRIMARY KEY, version BIGINT, n_files BIGINT, location VARCHAR, "
        "refreshed_at TIMESTAMPTZ)"
    )


def _empty_table_name(name: str) -> str:
    return f"_empty_{name}"


def _refresh_one(con: duckdb.DuckDBPyConnection, root: Root, name: str) -> int:
    version = tables.table_version(root, name)
    files = tables.table_files(root, name, version)
    view = _quote(name)
    empty = _quote(_empty_table_name(name))
    con.execute(f"DROP VIEW IF EXISTS {view}")
    con.execute(f"DROP TABLE IF EXISTS {empty}")
    if files:
        listing = ", ".join(_literal(_local_or_url(f)) for f in files)
        # union_by_name makes every query read every file's footer: only when columns differ
        (n_schemas,) = con.execute(
            "SELECT count(DISTINCT sig) FROM (SELECT file_name, string_agg(name || ':' || "
            "coalesce(type, '') || ':' || coalesce(logical_type, ''), ',' ORDER BY name) AS sig "
            f"FROM parquet_schema([{listing}]) GROUP BY file_name)"
        ).fetchall()[0]
        union = ", union_by_name = true" if n_schemas > 1 else ""
        con.execute(f"CREATE VIEW {view} AS SELECT * FROM read_parquet([{listing}]{union})")
    else:
        schema = tables.table_schema(root, name, version)
        placeholder = pa.table({f.name: pa.array([], type=f.type) for f in schema})
        con.register("_radgen_empty", placeholder)
        try:
            con.execute(f"CREATE TABLE {empty} AS SELECT * FROM _radgen_empty")
        finally:
            con.unregister("_radgen_empty")
        con.execute(f"CREATE VIEW {view} AS SELECT * FROM {empty}")
    con.execute(
        f"INSERT OR REPLACE INTO {_META} VALUES (?, ?, ?, ?, ?)",
        [name, version, len(files), tables.table_uri(root, name), dt.datetime.now(dt.UTC)],
    )
    return version


def _local_or_url(uri: str) -> str:
    return uri[len("file://") :] if uri.startswith("file://") else uri


def refresh(root: Root, names: list[str] | None = None) -> dict[str, int]:
    """Point the views of `names` (default: every table) at their current versions.

    Returns
    -------
    dict of str to int
        The version each refreshed view now shows.
    """
    names = tables.list_tables(root) if names is None else names
    shown: dict[str, int] = {}
    with connect(root, read_only=False) as con:
        _ensure_meta(con)
        for name in names:
            shown[name] = _refresh_one(con, root, name)
    return shown


def views(root: Root) -> dict[str, int]:
    """Table name -> version each view shows (empty if the index has none)."""
    with connect(root, read_only=True) as con:
        present = con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [_META]
        ).fetchall()
        if not present or not present[0][0]:
            return {}
        rows = con.execute(f"SELECT name, version FROM {_META} ORDER BY name").fetchall()
    return {str(name): int(version) for name, version in rows}


def stale(root: Root) -> list[str]:
    """Tables whose view does not show their current version (e.g. after a crash)."""
    shown = views(root)
    return [n for n in tables.list_tables(root) if shown.get(n) != tables.table_version(root, n)]


def rebuild(root: Root) -> dict[str, int]:
    """Recreate the index from the files under the root alone.

    The old index is replaced only once the new one is complete.

    Returns
    -------
    dict of str to int
        Version shown for every table.
    """
    path = index_path(root)
    fresh = path.with_name(path.name + ".rebuild")
    fresh.unlink(missing_ok=True)
    fresh.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(fresh))
    shown: dict[str, int] = {}
    try:
        _register_fs(con, root)
        _ensure_meta(con)
        for name in tables.list_tables(root):
            shown[name] = _refresh_one(con, root, name)
    finally:
        con.close()
    wal = fresh.with_name(fresh.name + ".wal")
    wal.unlink(missing_ok=True)
    fresh.replace(path)
    _upload(root, path)
    return shown
