from __future__ import annotations

import datetime as dt
import time

import pyarrow as pa
import pytest

from radgen.errors import CatalogError, InputError, NotFoundError
from radgen.platform import tables
from radgen.platform.catalog import Catalog


def _batch(uids: list[str]) -> pa.Table:
    n = len(uids)
    return pa.table(
        {
            "scanner_batch": uids,
            "label": ["CT | X"] * n,
            "run_id": ["r-test"] * n,
        }
    )


def test_every_write_is_a_new_version_and_old_versions_stay_readable(catalog: Catalog) -> None:
    root = catalog.root
    v0 = tables.table_version(root, "scanner_batches")
    v1 = tables.write_table(root, "scanner_batches", _batch(["a", "b"]), metadata={"run_id": "r1"})
    v2 = tables.write_table(root, "scanner_batches", _batch(["c"]), metadata={"run_id": "r2"})
    assert (v1, v2) == (v0 + 1, v0 + 2)
    assert tables.read_table(root, "scanner_batches", version=v1).num_rows == 2
    assert tables.read_table(root, "scanner_batches").num_rows == 3
    history = tables.table_history(root, "scanner_batches")
    assert [h["run_id"] for h in history[:2]] == ["r2", "r1"]


def test_time_travel_by_timestamp(catalog: Catalog) -> None:
    root = catalog.root
    tables.write_table(root, "scanner_batches", _batch(["a"]))
    time.sleep(0.05)
    between = dt.datetime.now(dt.UTC)
    time.sleep(0.05)
    tables.write_table(root, "scanner_batches", _batch(["b"]))
    assert tables.read_table(root, "scanner_batches", as_of=between).num_rows == 1
    with pytest.raises(NotFoundError, match="no version existed"):
        tables.read_table(root, "scanner_batches", as_of=dt.datetime(2000, 1, 1, tzinfo=dt.UTC))


def test_conform_fills_nullable_and_rejects_missing_required() -> None:
    out = tables.conform("scanner_batches", _batch(["a"]))
    assert out.column("manufacturer").null_count == 1
    assert out.schema.field("kvp").type == pa.float64()
    with pytest.raises(InputError, match="required column 'label' is missing"):
        tables.conform("scanner_batches", pa.table({"scanner_batch": ["a"], "run_id": ["r"]}))


def test_bad_names_and_missing_tables(catalog: Catalog) -> None:
    with pytest.raises(CatalogError, match="lower case"):
        tables.table_uri(catalog.root, "Bad-Name")
    with pytest.raises(NotFoundError, match="no such table"):
        tables.read_table(catalog.root, "nope")
    with pytest.raises(NotFoundError, match="cannot load this version"):
        tables.read_table(catalog.root, "series", version=99)


def test_init_creates_every_declared_table_empty(catalog: Catalog) -> None:
    from radgen.schemas.tables import TABLES

    listing = catalog.list_tables().set_index("table")
    assert set(TABLES) <= set(listing.index)
    assert listing.loc["series", "rows"] == 0
