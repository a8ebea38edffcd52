"""The catalog handle users hold: ``radgen.open_catalog(root)``.

:class:`Catalog` delegates: tables to :mod:`~radgen.platform.tables`, the SQL index to
:mod:`~radgen.platform.index`, volumes to :mod:`~radgen.platform.volumes`, datasets to
:mod:`~radgen.platform.datasets` and lineage to :mod:`~radgen.platform.lineage`.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Mapping
from typing import Any

import pandas as pd
import pyarrow as pa
import xarray as xr

from radgen._version import code_version
from radgen.errors import CatalogError, ConfigError, NotFoundError
from radgen.platform import datasets, index, lineage, matrices, tables, volumes
from radgen.platform.runs import Run
from radgen.platform.storage import Root, resolve_root
from radgen.schemas.tables import TABLES

__all__ = ["MARKER", "Catalog"]

log = logging.getLogger(__name__)

#: File that marks a directory as a radgen catalog root.
MARKER = "radgen.json"
FORMAT_VERSION = 1


class Catalog:
    """A radgen catalog: versioned tables, images, masks and datasets under one root.

    Create one with :func:`radgen.open_catalog` (existing) or :meth:`Catalog.init` (new).

    Parameters
    ----------
    root : Root
        The resolved root.
    """

    def __init__(self, root: Root) -> None:
        self.root = root

    def __repr__(self) -> str:
        return f"Catalog({self.root.url!r})"

    # -- life cycle -------------------------------------------------------------------------

    @classmethod
    def open(cls, root: str | Root | None = None) -> Catalog:
        """Open an existing catalog (see :func:`radgen.open_catalog`)."""
        resolved = root if isinstance(root, Root) else resolve_root(root)
        if not resolved.exists(MARKER):
            raise CatalogError(
                resolved.url, "no radgen catalog here; run `radgen init` (or `radgen demo`) first"
            )
        return cls(resolved)

    @classmethod
    def init(cls, root: str | Root | None = None) -> Catalog:
        """Create a catalog (idempotent): folders, every declared table (empty) and the index.

        Returns
        -------
        Catalog
        """
        resolved = root if isinstance(root, Root) else resolve_root(root)
        resolved.makedirs()
        for folder in ("images", "masks", "tables", "datasets"):
            resolved.makedirs(folder)
        if not resolved.exists(MARKER):
            resolved.write_json(
                {
                    "format_version": FORMAT_VERSION,
                    "created_at": dt.datetime.now(dt.UTC).isoformat(),
                    "created_by": code_version(),
                },
                MARKER,
            )
        from radgen.ingestion.deid import Deidentifier

        Deidentifier.for_root(resolved)  # the pseudonymization key, made once per catalog
        created = []
        for name, schema in TABLES.items():
            if not tables.table_exists(resolved, name):
                empty = pa.Table.from_pylist([], schema=schema)
                tables.write_table(
                    resolved,
                    name,
                    empty,
                    metadata={"command": "init", "code_version": code_version()},
                )
                created.append(name)
        if created or not index.index_path(resolved).exists():
            index.refresh(resolved)
        return cls(resolved)

    def run(self, command: str, params: Mapping[str, Any], *, allow_warnings: bool = False) -> Run:
        """Start a run that commits table versions (use as a context manager)."""
        stale = index.stale(self.root)
        if stale:
            log.info("refreshing stale views: %s", ", ".join(stale))
            index.refresh(self.root, stale)
        return Run(self.root, command, params, allow_warnings=allow_warnings)

    # -- queries ----------------------------------------------------------------------------

    def sql(self, query: str) -> pd.DataFrame:
        """Run a SQL query over the current version of every table.

        Parameters
        ----------
        query : str
            DuckDB SQL; every table is a view named after it (``series``,
            ``features_radiomics`` ...).

        Returns
        -------
        pandas.DataFrame
        """
        import duckdb

        try:
            statements = duckdb.extract_statements(query)
        except duckdb.Error as err:
            raise ConfigError(query, f"not valid SQL: {' '.join(str(err).split())}") from err
        allowed = {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN}
        refused = sorted({s.type.name for s in statements if s.type not in allowed})
        if refused:
            raise ConfigError(
                query,
                f"the catalog is read-only here: {', '.join(refused)} statements are not allowed "
                "(only SELECT and EXPLAIN); tables change through radgen commands",
            )
        with index.connect(self.root, read_only=True) as con:
            try:
                return con.sql(query).df() if query.strip() else pd.DataFrame()
            except duckdb.Error as err:
                raise ConfigError(query, f"query failed: {' '.join(str(err).split())}") from err

    def list_tables(self) -> pd.DataFrame:
        """Every table with its current version and row count."""
        rows = [
            {
                "table": name,
                "version": tables.table_version(self.root, name),
                "rows": tables.table_rows(self.root, name),
            }
            for name in tables.list_tables(self.root)
        ]
        return pd.DataFrame(rows, columns=["table", "version", "rows"])

    def table(
        self,
        name: str,
        version: int | None = None,
        *,
        as_of: dt.datetime | str | None = None,
        columns: list[str] | None = None,
        dask: bool = False,
    ) -> Any:
        """Read a table: current version, a given `version`, or the version current `as_of`.

        Parameters
        ----------
        name : str
            Table name.
        version : int, optional
            Delta version.
        as_of : datetime or ISO string, optional
            Point in time.
        columns : list of str, optional
            Column subset.
        dask : bool, default False
            Return a lazy Dask DataFrame over the version's Parquet files.

        Returns
        -------
        pandas.DataFrame or dask.dataframe.DataFrame
        """
        if dask:
            import dask.dataframe as dd

            if as_of is not None:
                version = tables.version_as_of(self.root, name, as_of)
            files = tables.table_files(self.root, name, version)
            if not files:
                return dd.from_pandas(self.table(name, version, columns=columns), npartitions=1)
            return dd.read_parquet(
                files, columns=columns, storage_options=self.root.storage_options or None
            )
        return tables.read_table(
            self.root, name, version=version, as_of=as_of, columns=columns
        ).to_pandas()

    def series_uid(self, uid: str) -> str:
        """The catalog's id of a series given its catalog id or its original DICOM UID.

        De-identified series are stored under keyed UIDs; this maps the SeriesInstanceUID
        of the files to it with the catalog's key.

        Raises
        ------
        NotFoundError
            Neither the UID nor its keyed replacement is in the catalog.
        """
        from radgen.ingestion.deid import Deidentifier

        for candidate in (uid, Deidentifier.for_root(self.root).uid(uid)):
            if volumes.volume_exists(self.root, f"images/{candidate}.zarr"):
                return candidate
        raise NotFoundError(uid, "no such series in this catalog")

    def image(self, series_uid: str) -> xr.DataArray:
        """The volume of a series as a lazy, Dask-backed DataArray with mm coordinates.

        Parameters
        ----------
        series_uid : str
            The catalog's series id, or the original SeriesInstanceUID of a de-identified
            series (see :meth:`series_uid`).

        Returns
        -------
        xarray.DataArray
            Dims ``("z", "y", "x")``; values after the modality LUT; attrs ``spacing`` (z, y, x
            mm), ``origin`` (x, y, z LPS mm), ``direction`` (3x3), ``modality``, ``units``,
            ``sop_instance_uids``.
        """
        uid = self.series_uid(series_uid)
        return volumes.open_volume(self.root, f"images/{uid}.zarr", name="image", label=uid)

    def mask(self, mask_id: str) -> xr.DataArray:
        """A label mask on its image's grid, as a lazy DataArray (see :meth:`image`)."""
        mask_id = mask_id.split(":", 1)[0]
        rel = f"masks/{mask_id}.zarr"
        if not volumes.volume_exists(self.root, rel):
            raise NotFoundError(mask_id, "no such mask in this catalog")
        return volumes.open_volume(self.root, rel, name="mask", label=mask_id)

    def matrix(self, matrix_id: str) -> xr.DataArray:
        """An omics matrix (``omics_matrices`` row) as a lazy DataArray, dims (feature, sample)."""
        rows = self.sql(
            f"select path from omics_matrices where matrix_id = '{matrix_id.replace(chr(39), '')}'"
        )
        if rows.empty:
            raise NotFoundError(matrix_id, "no such matrix; see the omics_matrices table")
        return matrices.open_matrix(self.root, str(rows["path"].iloc[0]))

    def dataset(self, name: str, version: int | None = None, *, dask: bool = False) -> Any:
        """A published dataset version, verified by SHA-256 (latest version when None).

        Returns
        -------
        pandas.DataFrame or dask.dataframe.DataFrame
        """
        ref = datasets.DatasetRef(name, version)
        if dask:
            import dask.dataframe as dd

            return dd.read_parquet(
                list(datasets.dataset_files(self.root, ref)),
                storage_options=self.root.storage_options or None,
            )
        return datasets.read_dataset(self.root, ref).to_pandas()

    def list_datasets(self) -> pd.DataFrame:
        """Every published dataset version."""
        return datasets.list_datasets(self.root)

    def lineage(self, name: str, version: int | None = None) -> dict[str, Any]:
        """Where a table version came from and who uses it; for a dataset, each pinned table's.

        `name` is looked up as a table first, then as a published dataset.
        """
        try:
            is_table = tables.table_exists(self.root, name)
        except CatalogError:  # not even a valid table name (dataset names allow '-' and '.')
            is_table = False
        if not is_table and name in set(self.list_datasets()["name"]):
            return lineage.trace_dataset(self.root, name, version)
        return lineage.trace(self.root, name, version)

    def history(self, name: str) -> pd.DataFrame:
        """Versions of a table, newest first, with their run and suite status."""
        rows = []
        for entry in tables.table_history(self.root, name):
            metrics = entry.get("operationMetrics") or {}
            rows.append(
                {
                    "version": entry.get("version"),
                    "timestamp": pd.to_datetime(entry.get("timestamp"), unit="ms", utc=True),
                    "operation": entry.get("operation"),
                    "rows_added": metrics.get("num_added_rows"),
                    "run_id": entry.get("run_id"),
                    "command": entry.get("command"),
                    "suite": entry.get("suite"),
                }
            )
        return pd.DataFrame(rows)

    def rebuild_index(self) -> dict[str, int]:
        """Rebuild ``catalog.duckdb`` from the files under the root."""
        return index.rebuild(self.root)

    def info(self) -> dict[str, Any]:
        """Root, format and creation details."""
        return {"root": self.root.url, **json.loads(self.root.read_bytes(MARKER))}
