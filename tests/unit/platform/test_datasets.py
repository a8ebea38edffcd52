from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from radgen.errors import ConfigError, IntegrityError, NotFoundError
from radgen.platform.catalog import Catalog
from radgen.platform.datasets import parse_ref, publish_dataset, pull_dataset, safe_member_path

SQL = "select scanner_batch, label from scanner_batches order by 1"


def _seed(catalog: Catalog, *uids: str) -> None:
    rows = pd.DataFrame(
        {"scanner_batch": list(uids), "label": [f"L{u}" for u in uids], "run_id": ["x"] * len(uids)}
    )
    with catalog.run("seed", {}) as run:
        run.commit("scanner_batches", rows, suite="dicom")


def _publish(catalog: Catalog, name: str = "cohort", sql: str = SQL) -> dict[str, object]:
    with catalog.run("datasets publish", {"name": name}) as run:
        return publish_dataset(run, name, sql, description="test")


def test_publish_freezes_the_query_and_manifest_hashes_every_file(catalog: Catalog) -> None:
    _seed(catalog, "a", "b")
    manifest = _publish(catalog)
    assert manifest["version"] == 1
    assert manifest["n_rows"] == 2
    folder = Path(catalog.root.url) / "datasets" / "cohort" / "1"
    for entry in manifest["files"]:  # type: ignore[attr-defined]
        data = (folder / entry["path"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"]
        assert len(data) == entry["size"]
    assert manifest["table_versions"] == {
        "scanner_batches": catalog.list_tables()
        .set_index("table")
        .loc["scanner_batches", "version"]
    }
    # later table versions do not change a published version
    _seed(catalog, "c")
    assert catalog.dataset("cohort", 1)["scanner_batch"].tolist() == ["a", "b"]
    assert _publish(catalog)["version"] == 2
    assert catalog.dataset("cohort")["scanner_batch"].tolist() == ["a", "b", "c"]


def test_republishing_the_same_pins_returns_the_existing_version(catalog: Catalog) -> None:
    _seed(catalog, "a")
    first = _publish(catalog)
    again = _publish(catalog)
    assert again["version"] == first["version"]
    assert again.get("unchanged") is True
    assert catalog.list_datasets()["version"].tolist() == [1]


def test_pull_verifies_and_a_changed_byte_names_the_file(catalog: Catalog, tmp_path: Path) -> None:
    _seed(catalog, "a", "b")
    manifest = _publish(catalog)
    result = pull_dataset(catalog.root, parse_ref("cohort@1"), tmp_path / "out")
    out = tmp_path / "out"
    assert json.loads((out / "manifest.json").read_text()) == manifest
    assert pq.read_table(out / "data" / "part-00000.parquet").num_rows == 2
    assert result["verified"] is True

    stored = Path(catalog.root.url) / "datasets" / "cohort" / "1" / "data" / "part-00000.parquet"
    raw = bytearray(stored.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    stored.write_bytes(bytes(raw))
    with pytest.raises(IntegrityError, match=r"part-00000\.parquet") as info:
        pull_dataset(catalog.root, parse_ref("cohort@1"), tmp_path / "again")
    assert "does not match the manifest" in info.value.reason
    assert not (tmp_path / "again" / "data" / "part-00000.parquet").exists()


def test_manifest_tampering_is_detected(catalog: Catalog, tmp_path: Path) -> None:
    _seed(catalog, "a")
    _publish(catalog)
    path = Path(catalog.root.url) / "datasets" / "cohort" / "1" / "manifest.json"
    doc = json.loads(path.read_text())
    doc["n_rows"] = 99
    path.write_text(json.dumps(doc))
    with pytest.raises(IntegrityError, match=r"manifest\.json"):
        pull_dataset(catalog.root, parse_ref("cohort@1"), tmp_path / "o")


def test_csv_pull(catalog: Catalog, tmp_path: Path) -> None:
    _seed(catalog, "a")
    _publish(catalog)
    pull_dataset(catalog.root, parse_ref("cohort"), tmp_path / "csv", fmt="csv")
    assert pd.read_csv(tmp_path / "csv" / "data" / "part-00000.csv")["scanner_batch"].tolist() == [
        "a"
    ]


def test_bad_refs_and_queries(catalog: Catalog) -> None:
    with pytest.raises(ConfigError, match="whole number"):
        parse_ref("cohort@x")
    with pytest.raises(ConfigError, match="lower case"):
        parse_ref("Cohort")
    with pytest.raises(NotFoundError, match="no such dataset"):
        catalog.dataset("missing", 1)
    with pytest.raises(NotFoundError, match="no such table"):
        _publish(catalog, sql="select * from not_a_table")
    _seed(catalog, "a")
    _publish(catalog)
    with pytest.raises(NotFoundError, match=r"published versions are \[1\]"):
        catalog.dataset("cohort", 7)


def test_an_empty_result_is_refused_and_no_version_appears(catalog: Catalog) -> None:
    from radgen.errors import ValidationFailed

    _seed(catalog, "a")
    with pytest.raises(ValidationFailed, match="ExpectTableRowCountToBeBetween"):
        _publish(catalog, sql="select * from scanner_batches where scanner_batch = 'none'")
    assert catalog.list_datasets().empty
    assert not (Path(catalog.root.url) / "datasets" / "cohort").exists()


def test_validate_finds_a_dataset_whose_files_no_longer_match(catalog: Catalog) -> None:
    from radgen.validation.catalog_check import validate_catalog

    _seed(catalog, "a", "b")
    _publish(catalog)
    with catalog.run("validate", {}) as run:
        assert [r.status for r in validate_catalog(run, ["datasets"])] == ["passed"]
    stored = Path(catalog.root.url) / "datasets" / "cohort" / "1" / "data" / "part-00000.parquet"
    stored.write_bytes(stored.read_bytes()[:-10] + b"0123456789")
    with catalog.run("validate", {}) as run:
        (result,) = validate_catalog(run, ["datasets"])
    assert result.status == "failed"
    assert next(o.check.expectation for o in result.failures) == "FileHashMatchesManifest"


@pytest.mark.parametrize(
    "path", ["../evil.parquet", "data/../../evil", "/etc/passwd", "C:/x", "data\\..\\x", "", "./x"]
)
def test_manifest_paths_that_leave_the_folder_are_refused(path: str) -> None:
    with pytest.raises(IntegrityError, match="leaves the dataset folder"):
        safe_member_path(path, "manifest.json")


def test_safe_member_paths_pass() -> None:
    assert safe_member_path("data/part-00000.parquet", "m") == "data/part-00000.parquet"


def test_pull_refuses_an_escaping_manifest_and_writes_nothing(
    catalog: Catalog, tmp_path: Path
) -> None:
    _seed(catalog, "a")
    _publish(catalog)
    path = Path(catalog.root.url) / "datasets" / "cohort" / "1" / "manifest.json"
    doc = json.loads(path.read_text())
    doc["files"][0]["path"] = "../../../../escaped.parquet"
    path.write_text(json.dumps(doc))
    with pytest.raises(IntegrityError):
        pull_dataset(catalog.root, parse_ref("cohort@1"), tmp_path / "o" / "deep")
    assert not list(tmp_path.rglob("escaped.parquet"))
    assert not (tmp_path / "o" / "deep").exists() or not any((tmp_path / "o" / "deep").iterdir())
