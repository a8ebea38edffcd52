"""`tables vacuum`: unreferenced old files go, dataset-pinned and current versions stay readable."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from radgen.cli import main
from radgen.platform import tables
from radgen.platform.catalog import Catalog
from radgen.platform.datasets import publish_dataset
from radgen.platform.retention import vacuum


def _write(catalog: Catalog, values: list[float]) -> None:
    frame = pd.DataFrame({"roi_id": [f"r{i}" for i in range(len(values))], "v": values})
    with catalog.run("seed", {}) as run:
        run.commit("scores", frame, suite=None, mode="overwrite")


@pytest.fixture
def history(catalog: Catalog) -> Catalog:
    _write(catalog, [0.0])  # v0, pinned by cohort@1 below
    with catalog.run("datasets publish", {}) as run:
        publish_dataset(run, "cohort", "select * from scores")
    _write(catalog, [1.0, 1.0])  # v1: nobody needs it
    _write(catalog, [2.0, 2.0, 2.0])  # v2: current
    return catalog


def _files(catalog: Catalog) -> set[str]:
    folder = Path(catalog.root.url) / "tables" / "scores"
    return {p.name for p in folder.glob("*.parquet")}


def test_vacuum_keeps_pinned_and_current_versions(history: Catalog) -> None:
    v0, v1, v2 = (
        set(map(lambda u: Path(u).name, tables.table_files(history.root, "scores", v)))
        for v in (0, 1, 2)
    )
    orphan = Path(history.root.url) / "tables" / "scores" / "part-orphan-from-a-crash.parquet"
    orphan.write_bytes(b"PAR1 half a file")
    before = _files(history)

    with history.run("tables vacuum", {}) as run:
        dry = vacuum(run, retention_hours=0, names=["scores"], dry_run=True)
    assert _files(history) == before  # a dry run removes nothing
    assert set(dry[0]["removed"]) == v1 | {orphan.name}

    with history.run("tables vacuum", {}) as run:
        done = vacuum(run, retention_hours=0, names=["scores"])
    assert set(done[0]["removed"]) == v1 | {orphan.name}
    assert done[0]["kept_versions"] == [0]
    assert _files(history) == v0 | v2
    assert history.table("scores", version=0)["v"].tolist() == [0.0]
    assert history.sql("select count(*) as n from scores")["n"][0] == 3  # index still current
    assert history.dataset("cohort", 1)["v"].tolist() == [0.0]


def test_retention_protects_recent_files(history: Catalog) -> None:
    with history.run("tables vacuum", {}) as run:
        report = vacuum(run, retention_hours=1, names=["scores"])
    assert report[0]["removed"] == []
    assert history.table("scores", version=1)["v"].tolist() == [1.0, 1.0]


def test_cli_vacuum_says_what_it_removed(
    history: Catalog, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["tables", "vacuum", "--retention-hours", "0", "--table", "scores"]
    assert main([*args, "--json", "--catalog", history.root.url]) == 0
    report = json.loads(capsys.readouterr().out)
    assert len(report[0]["removed"]) == 1
    assert main([*args, "--catalog", history.root.url]) == 0
    assert "removed 0 file(s)" in capsys.readouterr().out
    assert main(["tables", "vacuum", "--retention-hours", "-1", "--catalog", history.root.url]) == 1
