"""Published datasets: a query frozen over pinned table versions, verified by SHA-256.

``ROOT/datasets/<name>/<version>/`` holds the result as Parquet under ``data/`` and a
``manifest.json`` listing every file with its size and SHA-256, the pinned table versions,
the SQL, the code version, the parameter hash, the suite result, the row count and the
schema. Versions are integers from 1, immutable and never overwritten.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import logging
import re
import shutil
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from radgen.errors import CatalogError, ConfigError, IntegrityError, NotFoundError
from radgen.platform import tables
from radgen.platform.runs import Run, canonical_json
from radgen.platform.storage import Root

__all__ = [
    "DATASET_NAME",
    "DatasetRef",
    "dataset_manifest",
    "list_datasets",
    "parse_ref",
    "publish_dataset",
    "pull_dataset",
    "query_pinned",
    "read_dataset",
    "safe_member_path",
]

log = logging.getLogger(__name__)

DATASET_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")
DATASETS_DIR = "datasets"
MANIFEST = "manifest.json"
_ROWS_PER_FILE = 1_000_000
_BLOCK = 1 << 20


@dataclass(frozen=True)
class DatasetRef:
    """A dataset name and version (None = latest)."""

    name: str
    version: int | None = None

    def __str__(self) -> str:
        return self.name if self.version is None else f"{self.name}@{self.version}"


def parse_ref(text: str) -> DatasetRef:
    """Parse ``NAME@VERSION`` (or ``NAME`` for the latest version).

    Examples
    --------
    >>> parse_ref("demo-cohort@1")
    DatasetRef(name='demo-cohort', version=1)
    """
    name, sep, version = text.partition("@")
    if not DATASET_NAME.match(name):
        raise ConfigError(text, "dataset names are lower case letters, digits, '.', '_' and '-'")
    if not sep:
        return DatasetRef(name)
    if not version.isdigit() or int(version) < 1:
        raise ConfigError(text, "a dataset version is a whole number from 1")
    return DatasetRef(name, int(version))


def _versions(root: Root, name: str) -> list[int]:
    """Published versions: folders whose manifest was written (it is written last)."""
    folders = [v for v in root.listdir(DATASETS_DIR, name) if v.isdigit()]
    return sorted(int(v) for v in folders if root.exists(DATASETS_DIR, name, v, MANIFEST))


def _resolve(root: Root, ref: DatasetRef) -> int:
    versions = _versions(root, ref.name)
    if not versions:
        raise NotFoundError(ref.name, "no such dataset; see `radgen datasets list`")
    if ref.version is None:
        return versions[-1]
    if ref.version not in versions:
        raise NotFoundError(str(ref), f"no such version; published versions are {versions}")
    return ref.version


def query_pinned(
    root: Root, sql: str, pins: dict[str, int], *, as_of: dt.datetime | None = None
) -> pa.Table:
    """Run `sql` on the given table versions only, in a private in-memory DuckDB.

    Parameters
    ----------
    root : Root
        Catalog root.
    sql : str
        A SELECT over catalog tables.
    pins : dict of str to int
        Table name -> version each name resolves to.
    as_of : datetime, optional
        Bound to the DuckDB variable ``as_of`` (``getvariable('as_of')`` in `sql`) for
        point-in-time queries.

    Returns
    -------
    pyarrow.Table
    """
    con = duckdb.connect(":memory:")
    try:
        if not root.is_local:
            con.register_filesystem(root.fs)
        con.execute("SET TimeZone = 'UTC'")
        if as_of is not None:
            con.execute("SET VARIABLE as_of = ?::TIMESTAMPTZ", [as_of])
        for name, version in pins.items():
            data = tables.read_table(root, name, version=version)
            con.register(f"_pin_{name}", data)
            con.execute(f'CREATE VIEW "{name}" AS SELECT * FROM "_pin_{name}"')
        try:
            result: pa.Table = con.sql(sql).to_arrow_table()
        except duckdb.Error as err:
            raise ConfigError(sql, f"query failed: {err}") from err
    finally:
        con.close()
    return result


def _referenced_tables(sql: str) -> set[str]:
    """Tables a query reads.

    DuckDB's ``get_table_names`` binds ``JOIN ... USING`` and fails on it; the parse tree
    (``json_serialize_sql``, no binding) is walked instead then.
    """
    try:
        return set(duckdb.get_table_names(sql))
    except duckdb.BinderException:
        pass
    except duckdb.Error as err:
        raise ConfigError(sql, f"not a valid query: {err}") from err
    (raw,) = duckdb.sql("select json_serialize_sql($1::VARCHAR)", params=[sql]).fetchall()[0]
    tree = json.loads(raw)
    if tree.get("error"):
        raise ConfigError(sql, f"not a valid query: {tree.get('error_message', '')}")
    names: set[str] = set()
    ctes: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "BASE_TABLE" and node.get("table_name"):
                names.add(str(node["table_name"]))
            for entry in (node.get("cte_map") or {}).get("map", []):
                ctes.add(str(entry.get("key")))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(tree)
    return names - ctes


def _pins_for(root: Root, sql: str) -> dict[str, int]:
    referenced = _referenced_tables(sql)
    known = set(tables.list_tables(root))
    missing = sorted(set(referenced) - known)
    if missing:
        raise NotFoundError(", ".join(missing), "no such table in this catalog")
    if not referenced:
        raise ConfigError(sql, "the query reads no catalog table")
    return {name: tables.table_version(root, name) for name in sorted(referenced)}


def _as_datetime(value: dt.datetime | str | None) -> dt.datetime | None:
    """An aware datetime (naive input is UTC); ConfigError for text that is not ISO 8601."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError as err:
            raise ConfigError(value, "--as-of must be an ISO date or date-time") from err
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


def publish_dataset(
    run: Run,
    name: str,
    sql: str,
    *,
    description: str = "",
    as_of: dt.datetime | str | None = None,
) -> dict[str, Any]:
    """Freeze `sql` over the current table versions as the next version of dataset `name`.

    Parameters
    ----------
    run : Run
        The open run.
    name : str
        Dataset name.
    sql : str
        Query over catalog tables.
    description : str
        Free text stored in the manifest.
    as_of : datetime or ISO string, optional
        Point in time of the cohort: bound to ``getvariable('as_of')`` in `sql` (see the
        guide's point-in-time pattern) and recorded in the manifest; naive times are UTC.

    Returns
    -------
    dict
        The manifest.
    """
    root = run.root
    if not DATASET_NAME.match(name):
        raise ConfigError(name, "dataset names are lower case letters, digits, '.', '_' and '-'")
    when = _as_datetime(as_of)
    if when is None and "getvariable('as_of')" in sql.replace('"', "'").replace(" ", ""):
        raise ConfigError(sql, "the query reads getvariable('as_of'): give --as-of")
    pins = _pins_for(root, sql)
    latest = _versions(root, name)
    stamp = None if when is None else when.isoformat()
    if latest:
        previous, _ = _manifest(root, name, latest[-1])
        if (
            previous["sql"] == sql
            and previous["table_versions"] == pins
            and previous.get("as_of") == stamp
        ):
            log.info("%s@%d already freezes this query over these versions", name, latest[-1])
            run.message = f"{name}@{latest[-1]} unchanged"
            return {**previous, "unchanged": True}
    result = query_pinned(root, sql, pins, as_of=when)
    suite = run.validate("datasets", result.to_pandas(), target=f"dataset {name}")
    version = (_versions(root, name) or [0])[-1] + 1
    final = f"{DATASETS_DIR}/{name}/{version}"
    # Local disks: stage and rename. Object stores have no rename: write in place, the
    # manifest last, so a version without its manifest was never published.
    staging = f"{DATASETS_DIR}/{name}/.tmp-{uuid.uuid4().hex}" if root.is_local else final
    if not root.is_local:
        root.remove(final)
    files = []
    stored_schema = result.schema
    for i, start in enumerate(range(0, max(result.num_rows, 1), _ROWS_PER_FILE)):
        part = result.slice(start, _ROWS_PER_FILE)
        data = _parquet_bytes(part)
        stored_schema = pq.read_schema(io.BytesIO(data))  # as readers will see it
        rel = f"data/part-{i:05d}.parquet"
        root.write_bytes(data, staging, rel)
        files.append(
            {
                "path": rel,
                "size": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
                "rows": part.num_rows,
            }
        )
    manifest = {
        "name": name,
        "version": version,
        "description": description,
        "created_at": dt.datetime.now(dt.UTC).isoformat(),
        "sql": sql,
        "as_of": stamp,
        "table_versions": pins,
        "n_rows": result.num_rows,
        "schema": [{"name": f.name, "type": str(f.type)} for f in stored_schema],
        "files": files,
        "code_version": run.code_version,
        "param_hash": run.param_hash,
        "run_id": run.run_id,
        "suite": {"name": suite.suite, "status": suite.status, "checks": len(suite.outcomes)},
    }
    manifest_bytes = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
    if root.is_local:
        root.write_bytes(manifest_bytes, staging, MANIFEST)
        if root.exists(final):
            root.remove(staging)
            raise CatalogError(f"{name}@{version}", "was published concurrently; publish again")
        try:  # rename onto a version another publisher just created fails: never overwrite it
            root.move((staging,), (final,))
        except OSError as err:
            root.remove(staging)
            raise CatalogError(
                f"{name}@{version}", f"was published concurrently; publish again ({err.strerror})"
            ) from err
    else:
        root.write_bytes(manifest_bytes, final, MANIFEST, overwrite=False)
    row = {
        "name": name,
        "version": version,
        "description": description,
        "sql": sql,
        "n_rows": result.num_rows,
        "manifest_sha256": hashlib.sha256(manifest_bytes).hexdigest(),
        "table_versions": canonical_json(pins),
        "path": final,
        "run_id": run.run_id,
        "published_at": dt.datetime.now(dt.UTC),
    }
    from radgen.platform.runs import LineageInput

    run.commit(
        "datasets",
        pd.DataFrame([row]),
        suite="datasets",
        lineage=[LineageInput("table", f"{t}@{v}") for t, v in pins.items()],
    )
    run.message = f"published {name}@{version} ({result.num_rows} rows)"
    return manifest


def _manifest(root: Root, name: str, version: int) -> tuple[dict[str, Any], bytes]:
    raw = root.read_bytes(DATASETS_DIR, name, str(version), MANIFEST)
    expected = _recorded_manifest_hash(root, name, version)
    actual = hashlib.sha256(raw).hexdigest()
    if expected is not None and expected != actual:
        raise IntegrityError(
            root.uri(DATASETS_DIR, name, str(version), MANIFEST),
            f"SHA-256 {actual} does not match the recorded {expected}",
        )
    return json.loads(raw), raw


def _recorded_manifest_hash(root: Root, name: str, version: int) -> str | None:
    if not tables.table_exists(root, "datasets"):
        return None
    frame = tables.read_table(
        root, "datasets", columns=["name", "version", "manifest_sha256"]
    ).to_pandas()
    hit = frame[(frame["name"] == name) & (frame["version"] == version)]
    return None if hit.empty else str(hit["manifest_sha256"].iloc[0])


def safe_member_path(path: str, manifest: str) -> str:
    """`path` if it names a file inside a dataset folder, else IntegrityError.

    A manifest is data, so its paths are checked before they are read or written: no
    absolute paths, no drive letters, no ``..`` segments, no backslashes.
    """
    parts = path.split("/")
    if (
        not path
        or path.startswith("/")
        or "\\" in path
        or ":" in path
        or any(p in {"", ".", ".."} for p in parts)
    ):
        raise IntegrityError(manifest, f"file path {path!r} leaves the dataset folder; refused")
    return path


def _verified_bytes(root: Root, base: str, entry: dict[str, Any]) -> bytes:
    safe_member_path(str(entry.get("path", "")), root.uri(base, MANIFEST))
    data = root.read_bytes(base, entry["path"])
    digest = hashlib.sha256(data).hexdigest()
    if len(data) != int(entry["size"]) or digest != entry["sha256"]:
        raise IntegrityError(
            root.uri(base, entry["path"]),
            f"SHA-256 {digest} ({len(data)} bytes) does not match the manifest's "
            f"{entry['sha256']} ({entry['size']} bytes)",
        )
    return data


def pull_dataset(
    root: Root, ref: DatasetRef, to: str | Path, *, fmt: Literal["parquet", "csv"] = "parquet"
) -> dict[str, Any]:
    """Copy a dataset version to `to`, verifying every file's SHA-256 against its manifest.

    Parameters
    ----------
    root : Root
        Catalog root.
    ref : DatasetRef
        Dataset and version (latest when None).
    to : path-like
        Destination folder (created); receives ``manifest.json`` and ``data/``.
    fmt : {"parquet", "csv"}
        Format of the data files written; CSV is converted from the verified Parquet.

    Returns
    -------
    dict
        ``{"dataset", "version", "files": [{"path", "sha256", "size"}], "verified": True}``.

    Raises
    ------
    IntegrityError
        A stored file does not match its recorded hash; nothing partial is left behind.
    """
    version = _resolve(root, ref)
    manifest, raw = _manifest(root, ref.name, version)
    base = f"{DATASETS_DIR}/{ref.name}/{version}"
    target = Path(to)
    verified = [(entry, _verified_bytes(root, base, entry)) for entry in manifest["files"]]
    written = []
    staging = target / f".radgen-pull-{uuid.uuid4().hex}"
    try:
        (staging / "data").mkdir(parents=True, exist_ok=True)
        (staging / MANIFEST).write_bytes(raw)
        for entry, data in verified:
            if fmt == "parquet":
                out_rel, payload = entry["path"], data
            else:
                sink = io.BytesIO()
                pacsv.write_csv(pq.read_table(io.BytesIO(data)), sink)
                out_rel, payload = str(Path(entry["path"]).with_suffix(".csv")), sink.getvalue()
            (staging / out_rel).write_bytes(payload)
            written.append(
                {
                    "path": out_rel,
                    "size": len(payload),
                    "sha256": hashlib.sha256(payload).hexdigest(),
                }
            )
        for item in [MANIFEST, *[w["path"] for w in written]]:
            dest = target / item
            dest.parent.mkdir(parents=True, exist_ok=True)
            (staging / item).replace(dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return {
        "dataset": ref.name,
        "version": version,
        "files": written,
        "verified": True,
        "to": str(target),
    }


def read_dataset(root: Root, ref: DatasetRef) -> pa.Table:
    """Read a dataset version into memory after verifying every file's hash."""
    version = _resolve(root, ref)
    manifest, _ = _manifest(root, ref.name, version)
    base = f"{DATASETS_DIR}/{ref.name}/{version}"
    parts = [pq.read_table(io.BytesIO(_verified_bytes(root, base, e))) for e in manifest["files"]]
    return pa.concat_tables(parts) if parts else pa.table({})


def dataset_manifest(root: Root, ref: DatasetRef) -> tuple[dict[str, Any], str]:
    """The manifest of a dataset version and its SHA-256 (checked against the ``datasets`` row)."""
    version = _resolve(root, ref)
    manifest, raw = _manifest(root, ref.name, version)
    return manifest, hashlib.sha256(raw).hexdigest()


def dataset_files(root: Root, ref: DatasetRef) -> Sequence[str]:
    """URIs of the verified data files of a dataset version (for Dask readers)."""
    version = _resolve(root, ref)
    manifest, _ = _manifest(root, ref.name, version)
    base = f"{DATASETS_DIR}/{ref.name}/{version}"
    for entry in manifest["files"]:
        _verified_bytes(root, base, entry)
    return [root.uri(base, e["path"]) for e in manifest["files"]]


def list_datasets(root: Root) -> pd.DataFrame:
    """Every published dataset version (from the ``datasets`` table)."""
    if not tables.table_exists(root, "datasets"):
        return pd.DataFrame(columns=["name", "version", "n_rows", "published_at", "description"])
    frame = tables.read_table(root, "datasets").to_pandas()
    cols = ["name", "version", "n_rows", "published_at", "description", "table_versions"]
    return frame[cols].sort_values(["name", "version"]).reset_index(drop=True)
