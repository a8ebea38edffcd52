"""For every stage: data violating each critical expectation is refused and nothing changes.

The violations are generated from the suites themselves (radgen.validation.suites.checks_for),
so a new schema column or range gets its own case without editing this file.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from radgen.errors import ValidationFailed
from radgen.platform import tables
from radgen.platform.catalog import Catalog
from radgen.validation.suites import Check, checks_for

NOW = pd.Timestamp(dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
SHA = "a" * 64


def _two(**columns: object) -> pd.DataFrame:
    return pd.DataFrame({k: v if isinstance(v, list) else [v, v] for k, v in columns.items()})


SCANNER = {"manufacturer": "ACME", "manufacturer_model_name": "X1", "kvp": 120.0, "convolution_kernel": "B30f",
           "slice_thickness": 2.5, "pixel_spacing": [[0.8, 0.8], [0.8, 0.8]]}  # fmt: skip

VALID: dict[str, tuple[str, Callable[[], pd.DataFrame]]] = {
    "series": ("dicom", lambda: _two(
        series_uid=["1.2.3", "1.2.4"], modality="CT", n_instances=10, shape=[[10, 4, 4]] * 2,
        spacing=[[2.5, 0.8, 0.8]] * 2, rows=4, columns=4, spacing_z=2.5, spacing_y=0.8, spacing_x=0.8,
        origin=[[0.0, 0.0, 0.0]] * 2, zarr_path=["images/a.zarr", "images/b.zarr"],
        content_hash=SHA, scanner_batch="sb-1", run_id="r", ingested_at=NOW, **SCANNER)),
    "instances": ("dicom", lambda: _two(
        sop_uid=["1.1", "1.2"], frame_number=1, series_uid="1.2.3", slice_index=[0, 1], source_path=["a.dcm", "b.dcm"],
        file_sha256=SHA, run_id="r")),
    "scanner_batches": ("dicom", lambda: _two(scanner_batch=["sb-1", "sb-2"], label="CT", run_id="r")),
    "quarantine": ("quarantine", lambda: _two(
        path=["x", "y"], run_id="r", kind="dicom", reason="not DICOM", quarantined_at=NOW)),
    "rois": ("masks", lambda: _two(
        roi_id=["m:1", "m:2"], mask_id="m", series_uid="1.2.3", label=[1, 2], n_voxels=100, volume_ml=0.16,
        n_components=1, mask_path="masks/m.zarr", source_path="m.nii.gz", file_sha256=SHA, run_id="r")),
    "mutations": ("omics", lambda: _two(
        sample_id="S1-01", patient_id="S1", gene=["TP53", "KRAS"], variant_classification="Missense_Mutation",
        chrom="17", start=100, end=100, ref="C", alt="T", t_ref_count=50, t_alt_count=10, vaf=10 / 60,
        source_file="a.maf", file_sha256=SHA, run_id="r")),
    "gene_mutation": ("omics", lambda: _two(
        sample_id="S1-01", patient_id="S1", gene=["TP53", "KRAS"], mutated=[True, False], n_variants=[1, 0],
        run_id="r")),
    "cna_segments": ("omics", lambda: _two(
        sample_id="S1-01", patient_id="S1", chrom="7", start=[1, 5001], end=[5000, 9000], num_markers=10,
        seg_mean=-0.3, source_file="a.seg", file_sha256=SHA, run_id="r")),
    "cna_gene": ("omics", lambda: _two(
        sample_id="S1-01", patient_id="S1", gene=["TP53", "KRAS"], measure="log2", log2=0.1, discrete=0,
        source_file="c.txt", file_sha256=SHA, run_id="r")),
    "expression": ("omics", lambda: _two(
        sample_id="S1-01", patient_id="S1", gene_id=["TP53|7157", "KRAS|3845"], count=10.0,
        length=900.0, tpm=5e5, fpkm=4.0, log2_tpm=np.log2(1 + 5e5), source_file="r.gz", file_sha256=SHA,
        run_id="r")),
    "methylation": ("omics", lambda: _two(
        sample_id="S1-01", patient_id="S1", feature=["cg1", "cg2"], beta=0.4, m_value=np.log2(0.4 / 0.6),
        source_file="m.tsv", file_sha256=SHA, run_id="r")),
    "clinical": ("omics", lambda: _two(patient_id=["P1", "P2"], sample_id=["P1-01", "P2-01"], age=[60.0, 70.0],
                                        source_file="c.tsv", file_sha256=SHA, run_id="r")),
    "subjects": ("omics", lambda: _two(sample_id=["P1-01", "P2-01"], patient_id=["P1", "P2"],
                                        subject_id=["P1", "P2"], rule="pattern", run_id="r")),
    "features_test": ("features", lambda: _two(
        subject_id=["P1", "P2"], series_uid=["1.2.3", "1.2.4"], roi_id=["m:1", "m:2"], scanner_batch="sb-1",
        stat_mean=[10.0, 12.0], stat_cov=[0.1, 0.2], ih_entropy_fbs_w25=[1.5, 1.7], feature_set_version="v",
        run_id="r", **SCANNER)),
}  # fmt: skip


def _violate(frame: pd.DataFrame, check: Check) -> pd.DataFrame | None:
    """A copy of `frame` breaking `check` (None where the check cannot be broken by rows)."""
    bad = frame.copy()
    kind, kw = check.expectation, check.kwargs
    if kind == "ExpectColumnValuesToNotBeNull":
        bad[kw["column"]] = bad[kw["column"]].astype(object)
        bad.loc[0, kw["column"]] = None
    elif kind == "ExpectColumnValuesToBeBetween":
        col = kw["column"]
        value = kw["min_value"] - 1 if kw.get("min_value") is not None else kw["max_value"] + 1
        if pd.api.types.is_integer_dtype(bad[col]):
            value = int(np.floor(value)) if kw.get("min_value") is not None else int(np.ceil(value))
        bad.loc[0, col] = value
    elif kind == "ExpectColumnValuesToBeUnique":
        bad.loc[1, kw["column"]] = bad.loc[0, kw["column"]]
    elif kind == "ExpectCompoundColumnsToBeUnique":
        for col in kw["column_list"]:
            bad.loc[1, col] = bad.loc[0, col]
    elif kind == "ExpectColumnValuesToMatchRegex":
        bad.loc[0, kw["column"]] = "not a modality!"
    else:
        return None  # row count, column existence: not a property of row values
    return bad


def _cases() -> Iterator[tuple[str, str, Check]]:
    for table, (stage, build) in VALID.items():
        for check in checks_for(stage, build(), table):
            if check.severity == "critical" and _violate(build(), check) is not None:
                yield table, stage, check


CASES = list(_cases())


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    cat = Catalog.init(str(tmp_path_factory.mktemp("gate") / "cat"))
    for table, (stage, build) in VALID.items():
        with cat.run("seed", {"table": table}) as run:
            run.commit(table, build(), suite=stage, mode="overwrite")
    return cat


def test_every_stage_has_cases() -> None:
    assert {stage for _, stage, _ in CASES} == {"dicom", "quarantine", "masks", "omics", "features"}


@pytest.mark.parametrize(
    ("table", "stage", "check"), CASES, ids=[f"{t}-{c.expectation}-{c.column}" for t, _, c in CASES]
)
def test_violation_is_refused_and_the_previous_version_stays(
    catalog: Catalog, table: str, stage: str, check: Check
) -> None:
    before = tables.table_version(catalog.root, table)
    rows = tables.table_rows(catalog.root, table)
    bad = _violate(VALID[table][1](), check)
    assert bad is not None
    with pytest.raises(ValidationFailed) as info, catalog.run("violate", {"table": table}) as run:
        run.commit(table, bad, suite=stage, mode="overwrite")
    assert check.expectation in str(info.value)
    assert tables.table_version(catalog.root, table) == before
    assert tables.table_rows(catalog.root, table) == rows
    assert catalog.sql(f"select count(*) as n from {table}")["n"].iloc[0] == rows


@pytest.mark.parametrize(
    ("change", "expectation"),
    [
        (lambda f: f.assign(stat_mean=[np.nan, 1.0]), "unexpected_missing"),
        (lambda f: f.assign(stat_mean=[np.inf, 1.0]), "n_infinite"),
    ],
)
def test_feature_values_are_gated(catalog: Catalog, change, expectation: str) -> None:  # type: ignore[no-untyped-def]
    before = tables.table_version(catalog.root, "features_test")
    with pytest.raises(ValidationFailed, match=expectation), catalog.run("violate", {}) as run:
        run.commit(
            "features_test", change(VALID["features_test"][1]()), suite="features", mode="overwrite"
        )
    assert tables.table_version(catalog.root, "features_test") == before


def test_documented_nan_passes_and_missing_expected_column_fails(catalog: Catalog) -> None:
    frame = VALID["features_test"][1]().assign(stat_cov=[np.nan, 0.2])  # cov may be NaN (zero mean)
    with catalog.run("ok", {}) as run:
        assert run.commit("features_test", frame, suite="features", mode="overwrite") is not None
    before = tables.table_version(catalog.root, "features_test")
    with pytest.raises(ValidationFailed, match="present"), catalog.run("violate", {}) as run:
        run.commit(
            "features_test", frame.assign(stat_mean=[11.0, 12.0]), suite="features", mode="overwrite",
            suite_context={"expected_columns": ["stat_mean", "stat_var"]},
        )  # fmt: skip
    assert tables.table_version(catalog.root, "features_test") == before


def test_drift_is_a_warning_that_allow_warnings_lets_through(catalog: Catalog) -> None:
    base = VALID["features_test"][1]()
    shifted = base.assign(stat_mean=[1000.0, 1001.0])
    before = tables.table_version(catalog.root, "features_test")
    with pytest.raises(ValidationFailed, match="drift_z") as info, catalog.run("drift", {}) as run:
        run.commit("features_test", shifted, suite="features", mode="overwrite")
    assert "--allow-warnings" in str(info.value)
    assert tables.table_version(catalog.root, "features_test") == before
    with catalog.run("drift", {}, allow_warnings=True) as run:
        assert (
            run.commit("features_test", shifted, suite="features", mode="overwrite") == before + 1
        )
    stored = catalog.sql("select suite, table_version, success from quality_results where expectation = "
                         "'ExpectColumnValuesToBeBetween' and \"column\" = 'drift_z' and not success")  # fmt: skip
    assert (stored["table_version"] == before + 1).any()


@pytest.mark.parametrize(
    ("stat", "value"), [("n_nonfinite", 3), ("n_voxels", 0), ("spacing_cv", 0.2)]
)
def test_images_gate_refuses_before_any_table_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stat: str, value: float
) -> None:
    from distributed import Client

    from radgen.demo import write_ct_series
    from radgen.ingestion import ingest_dicom as module

    real = module.assemble_series

    def corrupt(*args, **kwargs):  # type: ignore[no-untyped-def]
        result = real(*args, **kwargs)
        if result.image_stats is not None:
            result.image_stats[stat] = value
        return result

    monkeypatch.setattr(module, "assemble_series", corrupt)
    cat = Catalog.init(str(tmp_path / "cat"))
    write_ct_series(tmp_path / "in", np.zeros((4, 6, 6)), spacing=(2.0, 1.0, 1.0))
    versions = cat.list_tables().set_index("table")["version"].to_dict()
    with (
        Client(
            processes=False, n_workers=1, threads_per_worker=1, dashboard_address=":0"
        ) as client,
        pytest.raises(ValidationFailed, match=stat),
        cat.run("ingest dicom", {}) as run,
    ):
        module.ingest_dicom(run, [tmp_path / "in"], client)
    after = cat.list_tables().set_index("table")["version"].to_dict()
    assert {t: v for t, v in after.items() if t not in {"runs", "quality_results"}} == {
        t: v for t, v in versions.items() if t not in {"runs", "quality_results"}
    }


PROFILED = [
    (t, s, c)
    for t, s, c in CASES
    if s != "features"
    and c.expectation
    in {
        "ExpectColumnValuesToNotBeNull",
        "ExpectColumnValuesToBeBetween",
        "ExpectColumnValuesToBeUnique",
        "ExpectCompoundColumnsToBeUnique",
    }
]


@pytest.mark.parametrize(
    ("table", "stage", "check"),
    PROFILED,
    ids=[f"{t}-{c.expectation}-{c.column}" for t, _, c in PROFILED],
)
def test_large_tables_are_gated_through_their_profile(
    catalog: Catalog, monkeypatch: pytest.MonkeyPatch, table: str, stage: str, check: Check
) -> None:
    from radgen.validation import profiles

    monkeypatch.setattr(profiles, "LARGE_TABLE_ROWS", 0)  # every table counts as large
    before = tables.table_version(catalog.root, table)
    bad = _violate(VALID[table][1](), check)
    with (
        pytest.raises(ValidationFailed, match="table_profile") as info,
        catalog.run("violate", {"table": table}) as run,
    ):
        run.commit(table, bad, suite=stage, mode="overwrite")
    assert (
        check.column is None
        or check.column.split(",")[0] in str(info.value)
        or "__duplicate_keys" in str(info.value)
    )
    assert tables.table_version(catalog.root, table) == before
