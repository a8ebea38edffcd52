from __future__ import annotations

import pandas as pd
import pytest

from radgen.errors import ValidationFailed
from radgen.platform import tables
from radgen.platform.catalog import Catalog
from radgen.platform.runs import LineageInput


def _batches(*uids: str) -> pd.DataFrame:
    return pd.DataFrame(
        {"scanner_batch": list(uids), "label": ["L"] * len(uids), "run_id": ["x"] * len(uids)}
    )


def test_failed_suite_blocks_the_commit_and_is_recorded(catalog: Catalog) -> None:
    before = tables.table_version(catalog.root, "mutations")
    bad = pd.DataFrame(
        {
            "sample_id": ["S1"],
            "patient_id": ["P1"],
            "gene": ["TP53"],
            "variant_classification": ["Missense_Mutation"],
            "chrom": ["17"],
            "start": [1],
            "ref": ["C"],
            "alt": ["T"],
            "vaf": [1.7],
            "source_file": ["f.maf"],
            "file_sha256": ["0" * 64],
            "run_id": ["x"],
        }
    )
    with (
        pytest.raises(ValidationFailed, match="nothing was committed") as info,
        catalog.run("test gate", {}) as run,
    ):
        run.commit("mutations", bad, suite="omics")
    assert any("vaf=1.7" in line and "sample_id=" in line for line in info.value.details)
    assert tables.table_version(catalog.root, "mutations") == before
    runs = catalog.sql("select status, message from runs where command = 'test gate'")
    assert runs["status"].tolist() == ["rejected"]
    failed = catalog.sql('select expectation, "column" from quality_results where not success')
    assert ("ExpectColumnValuesToBeBetween", "vaf") in set(
        failed.itertuples(index=False, name=None)
    )


def test_append_commits_only_new_keys_so_reruns_change_nothing(catalog: Catalog) -> None:
    with catalog.run("first", {}) as run:
        v1 = run.commit("scanner_batches", _batches("a", "b"), suite="dicom")
    with catalog.run("again", {}) as run:
        v2 = run.commit("scanner_batches", _batches("a", "b"), suite="dicom")
        v3 = run.commit("scanner_batches", _batches("b", "c"), suite="dicom")
    assert v1 is not None
    assert v2 is None
    assert v3 == v1 + 1
    assert sorted(catalog.table("scanner_batches")["scanner_batch"]) == ["a", "b", "c"]


def test_commit_records_metadata_lineage_and_refreshes_the_view(catalog: Catalog) -> None:
    with catalog.run("lineage test", {"alpha": 1}) as run:
        version = run.commit(
            "scanner_batches",
            _batches("z"),
            suite="dicom",
            lineage=[LineageInput("file", "/in/a.dcm", "ab" * 32)],
        )
    assert catalog.sql("select scanner_batch from scanner_batches")["scanner_batch"].tolist() == [
        "z"
    ]
    trace = catalog.lineage("scanner_batches")
    assert trace["version"] == version
    assert trace["run"]["param_hash"] == run.param_hash
    assert trace["run"]["code_version"] == run.code_version
    assert trace["run"]["params"] == {"alpha": 1}
    assert trace["inputs"]["file"] == [{"id": "/in/a.dcm", "sha256": "ab" * 32}]
    assert trace["suite"]["status"] == "passed"


def test_run_that_raises_is_recorded_as_failed(catalog: Catalog) -> None:
    with pytest.raises(RuntimeError, match="boom"), catalog.run("explodes", {}):
        raise RuntimeError("boom")
    assert catalog.sql("select status, message from runs where command = 'explodes'").iloc[
        0
    ].tolist() == [
        "failed",
        "boom",
    ]
