"""`datasets diff`: rows added, removed and changed between versions, against a hand count."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from radgen.cli import main
from radgen.errors import ConfigError
from radgen.platform.catalog import Catalog
from radgen.platform.dataset_diff import diff_datasets
from radgen.platform.datasets import parse_ref, publish_dataset

SQL = "select * from scores order by roi_id"


def _version(catalog: Catalog, frame: pd.DataFrame) -> None:
    with catalog.run("seed", {}) as run:
        run.commit("scores", frame, suite=None, mode="overwrite")
    with catalog.run("datasets publish", {}) as run:
        publish_dataset(run, "cohort", SQL)


@pytest.fixture
def two_versions(catalog: Catalog) -> Catalog:
    _version(
        catalog,
        pd.DataFrame(
            {
                "roi_id": ["r1", "r2", "r3", "r4"],
                "stat_mean": [1.0, 2.0, math.nan, 4.0],
                "grade": ["a", None, "c", "d"],
            }
        ),
    )
    _version(
        catalog,
        pd.DataFrame(
            {
                # r1 unchanged; r2 grade NULL -> "b"; r3 NaN stays NaN (unchanged); r4 removed;
                # r5 added; r3 stat_mean unchanged but a new column appears everywhere
                "roi_id": ["r1", "r2", "r3", "r5"],
                "stat_mean": [1.0, 2.0, math.nan, 5.0],
                "grade": ["a", "b", "c", "e"],
                "site": ["x", "x", "y", "y"],
            }
        ),
    )
    return catalog


def test_diff_counts_match_the_hand_count(two_versions: Catalog) -> None:
    result = diff_datasets(two_versions.root, parse_ref("cohort@1"), parse_ref("cohort@2"))
    assert result["keys"] == ["roi_id"]
    assert (result["added"], result["removed"], result["changed"], result["unchanged"]) == (
        1,
        1,
        1,
        2,
    )
    assert result["changed_columns"] == {"grade": 1}  # NULL -> "b"; NaN vs NaN is no change
    assert result["columns_added"] == ["site"]
    assert result["columns_removed"] == []
    assert result["examples"] == {"added": ["r5"], "removed": ["r4"], "changed": ["r2"]}


def test_diff_of_a_version_with_itself_is_empty(two_versions: Catalog) -> None:
    result = diff_datasets(two_versions.root, parse_ref("cohort@2"), parse_ref("cohort@2"))
    assert (result["added"], result["removed"], result["changed"]) == (0, 0, 0)
    assert result["unchanged"] == 4


def test_unknown_or_repeated_keys_are_refused(two_versions: Catalog) -> None:
    with pytest.raises(ConfigError, match="not in both versions"):
        diff_datasets(
            two_versions.root, parse_ref("cohort@1"), parse_ref("cohort@2"), keys=["site"]
        )
    with pytest.raises(ConfigError, match="NULL or repeats"):
        diff_datasets(
            two_versions.root, parse_ref("cohort@1"), parse_ref("cohort@2"), keys=["stat_mean"]
        )


def test_cli_diff_json(two_versions: Catalog, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        ["datasets", "diff", "cohort@1", "cohort@2", "--json", "--catalog", two_versions.root.url]
    )
    assert code == 0
    assert json.loads(capsys.readouterr().out)["changed_columns"] == {"grade": 1}
