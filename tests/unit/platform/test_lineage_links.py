"""Lineage both ways: a table version lists the datasets and tables built on it; a dataset
version walks to the lineage of each table version it pinned."""

from __future__ import annotations

import pandas as pd

from radgen.platform.catalog import Catalog
from radgen.platform.datasets import publish_dataset
from radgen.platform.runs import LineageInput


def test_used_by_and_dataset_lineage(catalog: Catalog) -> None:
    with catalog.run("seed", {}) as run:
        run.commit("scores", pd.DataFrame({"roi_id": ["r1", "r2"], "v": [1.0, 2.0]}), suite=None)
    with catalog.run("datasets publish", {}) as run:
        publish_dataset(run, "cohort", "select * from scores")
    with catalog.run("derive", {}) as run:
        run.commit(
            "scores_z",
            pd.DataFrame({"roi_id": ["r1", "r2"], "z": [-1.0, 1.0]}),
            suite=None,
            lineage=[LineageInput("table", "scores@0")],
        )
    with catalog.run("seed", {}) as run:  # a new version that nothing uses yet
        run.commit("scores", pd.DataFrame({"roi_id": ["r3"], "v": [3.0]}), suite=None)

    assert catalog.lineage("scores", 0)["used_by"] == {
        "datasets": ["cohort@1"],
        "tables": ["scores_z@0"],
    }
    assert catalog.lineage("scores", 1)["used_by"] == {"datasets": [], "tables": []}

    trace = catalog.lineage("cohort", 1)
    assert trace["dataset"] == "cohort@1"
    assert trace["sql"] == "select * from scores"
    assert [(t["table"], t["version"]) for t in trace["tables"]] == [("scores", 0)]
    assert trace["tables"][0]["run"]["command"] == "seed"
