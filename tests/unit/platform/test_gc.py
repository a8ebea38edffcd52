"""``radgen catalog gc``: orphans of interrupted writes go, committed files never do."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from radgen.cli import main
from radgen.platform import tables
from radgen.platform.catalog import Catalog
from radgen.platform.gc import collect_garbage, referenced_delta_files
from radgen.platform.volumes import write_volume


def _batches(*ids: str) -> pd.DataFrame:
    return pd.DataFrame({"scanner_batch": list(ids), "label": list(ids), "run_id": "r"})


def _every_version(catalog: Catalog) -> dict[str, list[list[dict[str, object]]]]:
    """Content of every version of every table: what gc must never change."""
    out = {}
    for name in tables.list_tables(catalog.root):
        versions = range(tables.table_version(catalog.root, name) + 1)
        out[name] = [tables.read_table(catalog.root, name, version=v).to_pylist() for v in versions]
    return out


@pytest.fixture
def littered(catalog: Catalog) -> tuple[Catalog, set[str]]:
    """A catalog with three versions of a table, a volume, a dataset, and the litter of
    interrupted runs of every kind gc knows."""
    with catalog.run("one", {}) as run:
        run.commit("scanner_batches", _batches("a"), suite="dicom")
    with catalog.run("two", {}) as run:
        run.commit("scanner_batches", _batches("b"), suite="dicom")
    root = Path(catalog.root.url)
    table_dir = root / "tables" / "scanner_batches"
    data_file = next(p for p in table_dir.glob("*.parquet"))
    shutil.copy(data_file, table_dir / "part-00000-killed-before-commit.parquet")
    (table_dir / "_delta_log" / "_commit_4f2a.json.tmp").write_text("{}")
    write_volume(catalog.root, "images/1.2.3.zarr", np.zeros((2, 3, 3), np.int16), name="image",
                 attrs={})  # fmt: skip
    staged = root / "images" / ".tmp-0badc0de-1.2.4.zarr"
    staged.mkdir()
    (staged / "zarr.json").write_text("{}")
    (root / "datasets" / "cohort" / "2" / "data").mkdir(parents=True)
    (root / "datasets" / "cohort" / "2" / "data" / "part-00000.parquet").write_bytes(b"PAR1")
    (root / "reports" / "harmonize" / "scanner_batches" / "9").mkdir(parents=True)
    (root / "reports" / "harmonize" / "scanner_batches" / "9" / "model.json").write_text("{}")
    expected = {
        "tables/scanner_batches/part-00000-killed-before-commit.parquet",
        "tables/scanner_batches/_delta_log/_commit_4f2a.json.tmp",
        "images/1.2.3.zarr",
        "images/.tmp-0badc0de-1.2.4.zarr",
        "datasets/cohort/2",
        "reports/harmonize/scanner_batches/9",
    }
    return catalog, expected


def test_gc_removes_exactly_the_orphans_and_keeps_every_version(
    littered: tuple[Catalog, set[str]],
) -> None:
    catalog, expected = littered
    before = _every_version(catalog)
    used = referenced_delta_files(catalog.root, "scanner_batches")
    assert len(used) >= 2
    # young files are left alone: a running command may still commit them
    assert collect_garbage(catalog.root).removed == []
    dry = collect_garbage(catalog.root, older_than_minutes=0, dry_run=True)
    assert {r["path"] for r in dry.removed} == expected
    assert all(catalog.root.exists(p) for p in expected)
    done = collect_garbage(catalog.root, older_than_minutes=0)
    assert {r["path"] for r in done.removed} == expected
    assert done.n_bytes > 0
    assert not any(catalog.root.exists(p) for p in expected)
    assert _every_version(catalog) == before
    for f in used:  # every file any version uses is still there
        assert catalog.root.exists("tables", "scanner_batches", f)
    assert collect_garbage(catalog.root, older_than_minutes=0).removed == []


def test_gc_keeps_volumes_rows_name(catalog: Catalog) -> None:
    write_volume(catalog.root, "images/9.9.zarr", np.ones((2, 2, 2), np.int16), name="image",
                 attrs={})  # fmt: skip
    tables.write_table(
        catalog.root, "series", tables.conform("series", _series_row("9.9", "images/9.9.zarr"))
    )
    assert collect_garbage(catalog.root, older_than_minutes=0).removed == []
    assert catalog.root.exists("images", "9.9.zarr", "zarr.json")


def _series_row(uid: str, path: str) -> pa.Table:
    now = pd.Timestamp.now(tz="UTC")
    return pa.Table.from_pylist(
        [
            {
                "series_uid": uid, "modality": "CT", "n_instances": 2, "shape": [2, 2, 2],
                "spacing": [1.0, 1.0, 1.0], "rows": 2, "columns": 2, "spacing_z": 1.0,
                "spacing_y": 1.0, "spacing_x": 1.0, "origin": [0.0, 0.0, 0.0], "zarr_path": path,
                "content_hash": "0" * 64, "scanner_batch": "sb", "run_id": "r", "ingested_at": now,
            }
        ]
    )  # fmt: skip


def test_cli_gc_json_and_bad_age(
    littered: tuple[Catalog, set[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    catalog, expected = littered
    at = ["--catalog", catalog.root.url]
    assert main(["catalog", "gc", "--older-than", "0", "--json", *at]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {r["path"] for r in report["removed"]} == expected
    assert main(["catalog", "gc", "--older-than", "-1", *at]) == 1
    assert (
        capsys.readouterr().err.strip()
        == "ConfigError: --older-than: must be >= 0 minutes (got -1.0)"
    )
