from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa

from radgen.platform import index, tables
from radgen.platform.catalog import Catalog


def _write(catalog: Catalog, uid: str) -> int:
    return tables.write_table(
        catalog.root,
        "scanner_batches",
        pa.table({"scanner_batch": [uid], "label": ["L"], "run_id": ["r"]}),
    )


def test_plain_duckdb_reads_current_versions_read_only(catalog: Catalog) -> None:
    _write(catalog, "a")
    index.refresh(catalog.root, ["scanner_batches"])
    path = Path(catalog.root.url) / "catalog.duckdb"
    con = duckdb.connect(str(path), read_only=True)
    try:
        assert con.execute("select scanner_batch from scanner_batches").fetchall() == [("a",)]
        # an empty table still has its typed columns
        cols = {r[0]: r[1] for r in con.execute("describe series").fetchall()}
    finally:
        con.close()
    assert cols["n_instances"] == "BIGINT"
    assert cols["spacing"] == "DOUBLE[]"


def test_views_track_versions_and_stale_views_are_found(catalog: Catalog) -> None:
    v = _write(catalog, "a")
    assert "scanner_batches" in index.stale(catalog.root)
    index.refresh(catalog.root, ["scanner_batches"])
    assert index.views(catalog.root)["scanner_batches"] == v
    assert index.stale(catalog.root) == []


def test_rebuild_from_files_alone(catalog: Catalog) -> None:
    _write(catalog, "a")
    _write(catalog, "b")
    path = Path(catalog.root.url) / "catalog.duckdb"
    path.unlink()
    shown = catalog.rebuild_index()
    assert shown["scanner_batches"] == tables.table_version(catalog.root, "scanner_batches")
    got = catalog.sql("select scanner_batch from scanner_batches order by 1")
    assert got["scanner_batch"].tolist() == ["a", "b"]


def test_views_union_by_name_only_when_file_schemas_differ(catalog: Catalog) -> None:
    with catalog.run("seed", {}) as run:
        run.commit("scores", pd.DataFrame({"roi_id": ["r1"], "v": [1.0]}), suite=None)
        run.commit("scores", pd.DataFrame({"roi_id": ["r2"], "v": [2.0]}), suite=None)
        run.commit("grown", pd.DataFrame({"roi_id": ["r1"], "v": [1.0]}), suite=None)
        run.commit("grown", pd.DataFrame({"roi_id": ["r2"], "v": [2.0], "w": ["x"]}), suite=None)
    path = Path(catalog.root.url) / "catalog.duckdb"
    with duckdb.connect(str(path), read_only=True) as con:
        sql = dict(con.execute("select view_name, sql from duckdb_views()").fetchall())
    assert "union_by_name = true" not in sql["scores"]
    assert "union_by_name = true" in sql["grown"]
    grown = catalog.sql("select roi_id, v, w from grown order by roi_id")
    assert grown["w"].isna().tolist() == [True, False]
    assert catalog.sql("select sum(v) as s from scores")["s"][0] == 3.0
