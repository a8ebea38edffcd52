"""Versioned tables: Delta Lake tables under ``ROOT/tables/<name>``.

Every write is a new Delta version carrying commit metadata (run id, code version, parameter
hash, suite status). Reads take a version or a timestamp. Only this module talks to
``deltalake``.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal

import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import CommitProperties, DeltaTable, write_deltalake
from deltalake.exceptions import CommitFailedError, DeltaError, TableNotFoundError

from radgen.errors import CatalogError, ConfigError, InputError, NotFoundError
from radgen.platform.storage import Root
from radgen.schemas.tables import schema_for

__all__ = [
    "TABLE_NAME",
    "conform",
    "list_tables",
    "read_table",
    "table_exists",
    "table_files",
    "table_history",
    "table_rows",
    "table_schema",
    "table_version",
    "vacuum_table",
    "write_batches",
    "write_table",
]

log = logging.getLogger(__name__)

#: Table names are SQL identifiers: lower case, digits and underscores.
TABLE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
TABLES_DIR = "tables"

WriteMode = Literal["append", "overwrite"]


def _check_name(name: str) -> None:
    if not TABLE_NAME.match(name):
        raise CatalogError(name, "table names are lower case letters, digits and '_' (max 63)")


def _storage_options(root: Root) -> dict[str, str] | None:
    """Translate the root's options for delta-rs (object_store keys)."""
    if root.is_local:
        return None
    opts: dict[str, str] = {}
    if root.protocol in {"s3", "s3a"}:
        endpoint = root.storage_options.get("endpoint_url")
        if endpoint:
            opts["AWS_ENDPOINT_URL"] = str(endpoint)
            if str(endpoint).startswith("http://"):
                opts["AWS_ALLOW_HTTP"] = "true"
        for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
            if os.environ.get(key):
                opts[key] = os.environ[key]
        opts["AWS_REGION"] = os.environ.get("AWS_REGION") or os.environ.get(
            "AWS_DEFAULT_REGION", "us-east-1"
        )
        if os.environ.get("RADGEN_S3_CONDITIONAL_PUT", "1") == "0":
            # stores without If-None-Match: commits are safe from one writer at a time only
            opts["AWS_S3_ALLOW_UNSAFE_RENAME"] = "true"
        else:
            # a Delta commit is created only if no other writer created that version first
            # (S3, MinIO and moto honour If-None-Match), so concurrent writers never lose one
            opts["conditional_put"] = "etag"
    return opts


def table_uri(root: Root, name: str) -> str:
    """Location of table `name` under `root`."""
    _check_name(name)
    return root.uri(TABLES_DIR, name)


def table_exists(root: Root, name: str) -> bool:
    """Whether table `name` has at least one committed version."""
    _check_name(name)
    return root.exists(TABLES_DIR, name, "_delta_log")


def list_tables(root: Root) -> list[str]:
    """Names of every table under the root, sorted."""
    return [n for n in root.listdir(TABLES_DIR) if TABLE_NAME.match(n) and table_exists(root, n)]


def _open(root: Root, name: str, version: int | None = None) -> DeltaTable:
    if not table_exists(root, name):
        raise NotFoundError(name, "no such table in this catalog")
    try:
        table = DeltaTable(table_uri(root, name), storage_options=_storage_options(root))
        if version is not None:
            table.load_as_version(version)
    except TableNotFoundError as err:
        raise NotFoundError(name, "no such table in this catalog") from err
    except DeltaError as err:
        raise NotFoundError(f"{name}@{version}", f"cannot load this version: {err}") from err
    return table


def table_version(root: Root, name: str) -> int:
    """Current (latest) version of table `name`."""
    return int(_open(root, name).version())


def table_rows(root: Root, name: str, version: int | None = None) -> int:
    """Number of rows in a version of table `name` (from the Delta log, no data read)."""
    return int(_open(root, name, version).count())


def conform(name: str, data: pa.Table) -> pa.Table:
    """Cast `data` to the declared schema of `name`, in declared column order.

    Columns the schema declares but `data` lacks are an error unless they are nullable (then
    they are filled with nulls). Extra columns are kept after the declared ones, so feature
    and clinical tables can carry their dynamic columns.

    Parameters
    ----------
    name : str
        Table name; its schema comes from :mod:`radgen.schemas.tables`.
    data : pyarrow.Table
        Rows to write.

    Returns
    -------
    pyarrow.Table
        `data` with declared types and order.

    Raises
    ------
    InputError
        A required column is missing or a value cannot be cast.
    """
    declared = schema_for(name)
    if declared is None:
        return data
    columns: list[pa.Array | pa.ChunkedArray] = []
    fields: list[pa.Field] = []
    for fld in declared:
        if fld.name in data.column_names:
            col = data.column(fld.name)
            try:
                col = col.cast(fld.type) if col.type != fld.type else col
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as err:
                raise InputError(name, f"column {fld.name!r} is not {fld.type}: {err}") from err
        elif fld.nullable:
            col = pa.nulls(data.num_rows, type=fld.type)
        else:
            raise InputError(name, f"required column {fld.name!r} is missing")
        columns.append(col)
        fields.append(fld)
    for extra in data.column_names:
        if declared.get_field_index(extra) < 0:
            columns.append(data.column(extra))
            fields.append(data.schema.field(extra))
    return pa.Table.from_arrays(columns, schema=pa.schema(fields))


def write_table(
    root: Root,
    name: str,
    data: pa.Table,
    *,
    mode: WriteMode = "append",
    metadata: Mapping[str, str] | None = None,
) -> int:
    """Commit `data` as a new version of table `name`.

    Parameters
    ----------
    root : Root
        Catalog root.
    name : str
        Table name.
    data : pyarrow.Table
        Rows, conformed to the declared schema first (:func:`conform`).
    mode : {"append", "overwrite"}
        Append rows to the current version, or replace its content. Both create a new
        version; older versions stay readable until vacuumed.
    metadata : mapping of str to str, optional
        Commit metadata (run id, code version, parameter hash, suite status).

    Returns
    -------
    int
        The new version number.
    """
    _check_name(name)
    data = conform(name, data)
    props = CommitProperties(custom_metadata=dict(metadata or {}))
    schema_mode: Literal["merge", "overwrite"] = "overwrite" if mode == "overwrite" else "merge"
    _delta_write(root, name, data, mode=mode, schema_mode=schema_mode, props=props)
    version = table_version(root, name)
    log.debug("committed %s@%d (%d rows, %s)", name, version, data.num_rows, mode)
    return version


def write_batches(
    root: Root,
    name: str,
    batches: Iterator[pa.RecordBatch],
    schema: pa.Schema,
    *,
    metadata: Mapping[str, str] | None = None,
) -> int:
    """Commit a stream of record batches as one new (appended) version of table `name`.

    Only one batch is in memory at a time, so a table far larger than memory is written in
    a single commit: readers see all of it or none of it.

    Parameters
    ----------
    root : Root
        Catalog root.
    name : str
        Table name.
    batches : iterator of pyarrow.RecordBatch
        Rows, each batch already in `schema`.
    schema : pyarrow.Schema
        Schema of every batch (the declared schema of `name`, see :func:`conform`).
    metadata : mapping of str to str, optional
        Commit metadata.

    Returns
    -------
    int
        The new version number.
    """
    _check_name(name)
    reader = pa.RecordBatchReader.from_batches(schema, batches)
    props = CommitProperties(custom_metadata=dict(metadata or {}))
    _delta_write(root, name, reader, mode="append", schema_mode="merge", props=props)
    return table_version(root, name)


def _delta_write(
    root: Root,
    name: str,
    data: pa.Table | pa.RecordBatchReader,
    *,
    mode: WriteMode,
    schema_mode: Literal["merge", "overwrite"],
    props: CommitProperties,
) -> None:
    """One Delta commit; a lost optimistic-concurrency race says to run the command again."""
    try:
        write_deltalake(
            table_uri(root, name),
            data,
            mode=mode,
            schema_mode=schema_mode,
            commit_properties=props,
            storage_options=_storage_options(root),
        )
    except CommitFailedError as err:
        raise CatalogError(
            name,
            "another writer committed a conflicting version first; nothing of this write was "
            f"committed: run the command again ({err})",
        ) from err
    except (DeltaError, pa.ArrowInvalid) as err:
        raise CatalogError(name, f"write failed, nothing committed: {err}") from err


def read_table(
    root: Root,
    name: str,
    *,
    version: int | None = None,
    as_of: dt.datetime | str | None = None,
    columns: Sequence[str] | None = None,
) -> pa.Table:
    """Read table `name` at a version, at a point in time, or current.

    Parameters
    ----------
    root : Root
        Catalog root.
    name : str
        Table name.
    version : int, optional
        Delta version; current when None.
    as_of : datetime or ISO string, optional
        Latest version committed at or before this time (exclusive with `version`).
    columns : sequence of str, optional
        Subset of columns.

    Returns
    -------
    pyarrow.Table
    """
    if version is not None and as_of is not None:
        raise CatalogError(name, "give a version or a timestamp, not both")
    if as_of is not None:
        version = version_as_of(root, name, as_of)
    table = _open(root, name, version)
    schema = pa.schema(table.schema().to_arrow())
    return _read_files(root, [str(u) for u in table.file_uris()], schema, columns)


def _fs_path(root: Root, uri: str) -> str:
    if root.is_local:
        return uri[len("file://") :] if uri.startswith("file://") else uri
    return uri.split("://", 1)[1] if "://" in uri else uri


def _read_files(
    root: Root, files: Sequence[str], schema: pa.Schema, columns: Sequence[str] | None
) -> pa.Table:
    """Read a version's Parquet files with pyarrow and align them to the table schema.

    Why not ``DeltaTable.to_pyarrow_table()``: in deltalake 1.6 reading through its own
    filesystem handler aborts the process at exit about half the time ("terminate called
    without an active exception"). Our tables are never partitioned and carry no deletion
    vectors, so the data of a version is exactly its files; files written before a schema
    merge lack the newer columns, which are filled with nulls here as Delta specifies.
    """
    wanted = pa.schema([schema.field(c) for c in columns]) if columns else schema
    fs = None if root.is_local else root.fs
    parts = []
    for uri in files:
        path = _fs_path(root, uri)
        present = set(pq.read_schema(path, filesystem=fs).names)
        part = pq.read_table(path, columns=[c for c in wanted.names if c in present], filesystem=fs)
        arrays = [
            part.column(f.name).cast(f.type)
            if f.name in present
            else pa.nulls(part.num_rows, type=f.type)
            for f in wanted
        ]
        parts.append(pa.Table.from_arrays(arrays, schema=wanted))
    if not parts:
        return wanted.empty_table()
    return pa.concat_tables(parts)


def version_as_of(root: Root, name: str, as_of: dt.datetime | str) -> int:
    """Latest version of `name` committed at or before `as_of`."""
    when = dt.datetime.fromisoformat(as_of) if isinstance(as_of, str) else as_of
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    stamp_ms = when.timestamp() * 1000
    candidates = [
        int(h["version"]) for h in table_history(root, name) if h["timestamp"] <= stamp_ms
    ]
    if not candidates:
        raise NotFoundError(f"{name}@{when.isoformat()}", "no version existed at that time")
    return max(candidates)


def table_files(root: Root, name: str, version: int | None = None) -> list[str]:
    """Data files (Parquet URIs) of a version of table `name`."""
    return [str(u) for u in _open(root, name, version).file_uris()]


def table_schema(root: Root, name: str, version: int | None = None) -> pa.Schema:
    """Arrow schema of a version of table `name`."""
    return pa.schema(_open(root, name, version).schema().to_arrow())


def table_history(root: Root, name: str) -> list[dict[str, Any]]:
    """Commit history of table `name`, newest first (Delta commit info + our metadata)."""
    return [dict(h) for h in _open(root, name).history()]


def vacuum_table(
    root: Root,
    name: str,
    *,
    retention_hours: int,
    keep_versions: Sequence[int] = (),
    dry_run: bool = False,
    metadata: Mapping[str, str] | None = None,
) -> list[str]:
    """Delete the data files of table `name` that no kept version needs.

    A file goes when the current version does not use it, no version in `keep_versions`
    uses it, and it was removed from the table (or, for a file no commit ever referenced,
    written) more than `retention_hours` ago. The current version and the kept versions stay
    readable; other old versions may not be. A real (not dry) run adds two commits (VACUUM
    START and END) with `metadata`; the content of the current version does not change.

    Returns
    -------
    list of str
        Names of the files removed (or that would be), in the table folder.

    Raises
    ------
    ConfigError
        Negative retention.
    CatalogError
        The Delta vacuum failed (nothing was removed, or the removal was partial and a rerun
        completes it).
    """
    if retention_hours < 0:
        raise ConfigError(name, f"retention must be >= 0 hours (got {retention_hours})")
    table = _open(root, name)
    present = set(root.listdir(TABLES_DIR, name))  # delta-rs also lists files already gone
    try:
        removed = table.vacuum(
            retention_hours=int(retention_hours),
            dry_run=dry_run,
            enforce_retention_duration=False,
            keep_versions=sorted(set(keep_versions)) or None,
            full=True,  # also files no commit references (left by interrupted writes)
            commit_properties=CommitProperties(custom_metadata=dict(metadata or {})),
        )
    except DeltaError as err:
        raise CatalogError(name, f"vacuum failed: {err}") from err
    # our tables are not partitioned: every data file sits in the table folder
    return sorted(
        n for n in {str(p).replace("\\", "/").rsplit("/", 1)[-1] for p in removed} if n in present
    )
