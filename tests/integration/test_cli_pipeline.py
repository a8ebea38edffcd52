"""The pipeline through the CLI, as a user runs it, on a small synthetic cohort.

Independent checks: the first-order mean is recomputed from the DICOM files (pydicom) and the
NIfTI masks (nibabel) with NumPy; the planted TP53 effect comes from the cohort's truth file;
plain DuckDB reads the index without radgen; real `dask scheduler`/`dask worker` processes
compute the same features as the default LocalCluster.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pydicom
import pytest

from radgen.demo import DEMO_GENOTYPE_SQL, generate_cohort
from radgen.ingestion.deid import Deidentifier
from radgen.platform.storage import Root
from radgen.testing import DaskProcesses

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BIN = Path(sys.executable).parent
RADGEN = str(BIN / "radgen")
SETTINGS = """\
setting:
  binWidth: 25
  resegmentRange: [-1000, 3000]
imageType:
  Original: {}
featureClass:
  firstorder:
"""


def radgen(
    *args: str, check: bool = True, catalog: Path | None = None
) -> subprocess.CompletedProcess[str]:
    cmd = [RADGEN, *args]
    if catalog is not None:
        cmd += ["--catalog", str(catalog)]
    env = {**os.environ, "GX_ANALYTICS_ENABLED": "False"}
    env.pop("RADGEN_SCHEDULER", None)
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    if check and done.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
        )
    return done


class Pipeline:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.catalog = root / "catalog"
        self.cohort = generate_cohort(root / "cohort", n_patients=6, seed=7, shape=(16, 64, 64))
        self.config = root / "params.yaml"
        self.config.write_text(SETTINGS)
        radgen("init", catalog=self.catalog)
        # de-identified by default: stored subject ids and UIDs are keyed replacements
        self.deid = Deidentifier.for_root(Root.from_string(str(self.catalog)))
        self.ingest = json.loads(
            radgen(
                "ingest", "dicom", str(root / "cohort" / "dicom"), "--json", catalog=self.catalog
            ).stdout
        )
        first = self.cohort.patients[0]
        mask = root / "cohort" / "masks" / f"{first['patient_id']}_tumour.nii.gz"
        radgen("ingest", "masks", str(mask), "--series", first["series_uid"], catalog=self.catalog)
        # the others find their image by voxel grid alone (one is already in: unchanged)
        self.masks = json.loads(
            radgen(
                "ingest", "masks", str(root / "cohort" / "masks"), "--json", catalog=self.catalog
            ).stdout
        )
        omics = root / "cohort" / "omics"
        radgen(
            "ingest",
            "omics",
            str(omics / "cohort.maf"),
            "--kind",
            "mutations",
            catalog=self.catalog,
        )
        radgen(
            "ingest",
            "omics",
            str(omics / "clinical.tsv"),
            "--kind",
            "clinical",
            catalog=self.catalog,
        )
        first_rsem = sorted((omics / "rsem").glob("*.genes.results.gz"))[0]
        radgen("ingest", "omics", str(first_rsem), "--kind", "rsem", catalog=self.catalog)
        self.features = json.loads(
            radgen(
                "features", "compute", "--config", str(self.config), "--json", catalog=self.catalog
            ).stdout
        )
        self.dataset_sql = (
            "select f.subject_id, f.roi_id, f.scanner_batch, f.stat_mean, f.stat_var, g.mutated "
            "from features_radiomics f join subjects s on s.subject_id = f.subject_id "
            "join gene_mutation g on g.sample_id = s.sample_id and g.gene = 'TP53' "
            "order by f.subject_id"
        )
        radgen("datasets", "publish", "cohort", "--sql", self.dataset_sql, catalog=self.catalog)

    def sql(self, query: str) -> pd.DataFrame:
        out = radgen("sql", query, "--format", "json", catalog=self.catalog).stdout
        return pd.DataFrame(json.loads(out))


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Pipeline:
    return Pipeline(tmp_path_factory.mktemp("pipeline"))


def _dicom_volume(folder: Path) -> np.ndarray:
    slices = [pydicom.dcmread(p) for p in folder.glob("*.dcm")]
    slices.sort(key=lambda ds: float(ds.ImagePositionPatient[2]))
    return np.stack(
        [ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept) for ds in slices]
    )


def test_ingest_json_reports_every_series(pipeline: Pipeline) -> None:
    series = pipeline.ingest["series"]
    assert len(series) == 6
    assert {s["series_uid"] for s in series} == {
        pipeline.deid.uid(p["series_uid"]) for p in pipeline.cohort.patients
    }
    assert all(s["shape"] == [16, 64, 64] for s in series)
    assert pipeline.ingest["quarantined"] == []


def test_first_order_mean_equals_numpy_over_the_roi(pipeline: Pipeline) -> None:
    rows = pipeline.sql("select subject_id, stat_mean, stat_max from features_radiomics")
    got = dict(zip(rows["subject_id"], rows["stat_mean"], strict=True))
    assert len(got) == 6
    for p in pipeline.cohort.patients:
        volume = _dicom_volume(pipeline.root / "cohort" / "dicom" / p["patient_id"])
        nifti = nib.load(pipeline.root / "cohort" / "masks" / f"{p['patient_id']}_tumour.nii.gz")
        mask = np.transpose(np.asarray(nifti.dataobj), (2, 1, 0))  # (x, y, z) -> (z, y, x)
        values = volume[mask == 1]
        values = values[(values >= -1000) & (values <= 3000)]
        subject = pipeline.deid.subject(p["patient_id"])
        assert got[subject] == pytest.approx(float(np.mean(values)), rel=1e-12)


def test_planted_genotype_effect_is_visible(pipeline: Pipeline) -> None:
    frame = pipeline.sql(
        "select s.patient_id, f.stat_var, g.mutated from features_radiomics f "
        "join subjects s on s.subject_id = f.subject_id "
        "join gene_mutation g on g.sample_id = s.sample_id and g.gene = 'TP53'"
    )
    truth = {p["patient_id"]: p["tp53_mutated"] for p in pipeline.cohort.patients}
    assert dict(zip(frame["patient_id"], frame["mutated"], strict=True)) == truth
    mutated = frame.loc[frame["mutated"], "stat_var"]
    wild = frame.loc[~frame["mutated"], "stat_var"]
    assert len(mutated) == 3
    assert len(wild) == 3
    assert mutated.min() > 2 * wild.max()


def test_features_carry_scanner_metadata(pipeline: Pipeline) -> None:
    frame = pipeline.sql(
        "select scanner_batch, manufacturer, convolution_kernel, kvp, count(*) as n "
        "from features_radiomics group by all order by 2"
    )
    assert frame["manufacturer"].tolist() == ["GE MEDICAL SYSTEMS", "Philips", "SIEMENS"]
    assert frame["n"].tolist() == [2, 2, 2]
    assert frame["scanner_batch"].nunique() == 3


def test_features_carry_the_acquisition_time_of_their_dicom(pipeline: Pipeline) -> None:
    frame = pipeline.sql(
        "select f.roi_id, f.series_uid, strftime(f.acquired_at, '%Y%m%d%H%M%S') as f_at, "
        "strftime(s.acquired_at, '%Y%m%d%H%M%S') as s_at "
        "from features_radiomics f join series s using (series_uid)"
    )
    assert frame["f_at"].tolist() == frame["s_at"].tolist()
    for patient in pipeline.cohort.patients:  # StudyDate + StudyTime of the written files
        ds = pydicom.dcmread(
            next((pipeline.root / "cohort" / "dicom" / patient["patient_id"]).glob("*.dcm"))
        )
        row = frame[frame["series_uid"] == pipeline.deid.uid(patient["series_uid"])]
        recorded = dt.datetime.strptime(f"{ds.StudyDate}{ds.StudyTime}", "%Y%m%d%H%M%S")
        shifted = recorded - pipeline.deid.date_shift(patient["patient_id"])  # modified dates
        assert row["f_at"].iloc[0] == shifted.strftime("%Y%m%d%H%M%S")


def test_sql_prints_a_table(pipeline: Pipeline) -> None:
    out = radgen(
        "sql",
        "select scanner_batch, count(*) from features_radiomics group by 1",
        catalog=pipeline.catalog,
    ).stdout
    assert "scanner_batch" in out
    assert out.count("sb-") == 3


def test_plain_duckdb_reads_the_index_without_radgen(pipeline: Pipeline) -> None:
    code = (
        "import sys, duckdb, json\n"
        f"con = duckdb.connect({str(pipeline.catalog / 'catalog.duckdb')!r}, read_only=True)\n"
        "a = con.execute('select count(*) from series').fetchall()[0][0]\n"
        "b = con.execute('select count(*) from features_radiomics where stat_mean is not null').fetchall()[0][0]\n"
        "print(json.dumps([a, b, 'radgen' in sys.modules]))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == [6, 6, False]


def test_dataset_pull_verifies_and_detects_a_changed_byte(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    done = radgen(
        "datasets",
        "pull",
        "cohort@1",
        "--to",
        str(tmp_path / "out"),
        "--json",
        catalog=pipeline.catalog,
    )
    result = json.loads(done.stdout)
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert result["verified"] is True
    assert manifest["n_rows"] == 6
    assert manifest["sql"] == pipeline.dataset_sql
    assert set(manifest["table_versions"]) == {"features_radiomics", "gene_mutation", "subjects"}
    frame = pd.read_parquet(tmp_path / "out" / "data" / "part-00000.parquet")
    assert len(frame) == 6

    stored = pipeline.catalog / "datasets" / "cohort" / "1" / "data" / "part-00000.parquet"
    original = stored.read_bytes()
    try:
        stored.write_bytes(original[:100] + bytes([original[100] ^ 1]) + original[101:])
        bad = radgen(
            "datasets",
            "pull",
            "cohort@1",
            "--to",
            str(tmp_path / "bad"),
            check=False,
            catalog=pipeline.catalog,
        )
    finally:
        stored.write_bytes(original)
    assert bad.returncode != 0
    assert "part-00000.parquet" in bad.stderr
    assert "IntegrityError" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_lineage_names_series_sop_instances_code_version_and_parameters(pipeline: Pipeline) -> None:
    trace = json.loads(
        radgen("lineage", "features_radiomics", "--json", catalog=pipeline.catalog).stdout
    )
    assert {i["id"] for i in trace["inputs"]["series"]} == {
        pipeline.deid.uid(p["series_uid"]) for p in pipeline.cohort.patients
    }
    sops = {i["id"] for i in trace["inputs"]["sop_instance"]}
    assert len(sops) == 6 * 16
    expected_sops = {
        pipeline.deid.uid(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID)
        for p in (pipeline.root / "cohort" / "dicom").rglob("*.dcm")
    }
    assert sops == expected_sops
    assert trace["run"]["code_version"].startswith("0.")
    assert len(trace["run"]["param_hash"]) == 16
    assert trace["run"]["params"]["settings"]["setting"]["binWidth"] == 25
    human = radgen("lineage", "features_radiomics", catalog=pipeline.catalog).stdout
    assert trace["run"]["param_hash"] in human
    assert "sop_instance" in human


@pytest.mark.parametrize("target", ["nonexistent", "textfiles"])
def test_bad_dicom_input_exits_non_zero_with_one_line(
    pipeline: Pipeline, tmp_path: Path, target: str
) -> None:
    if target == "textfiles":
        folder = tmp_path / "texts"
        folder.mkdir()
        (folder / "a.txt").write_text("hello")
        (folder / "b.txt").write_text("world")
        path = str(folder)
    else:
        path = "/nonexistent/radgen-input"
    done = radgen("ingest", "dicom", path, check=False, catalog=pipeline.catalog)
    assert done.returncode != 0
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert path in lines[0]


def test_catalog_rebuild_and_validate(pipeline: Pipeline) -> None:
    before = pipeline.sql("select count(*) as n from features_radiomics")["n"].tolist()
    (pipeline.catalog / "catalog.duckdb").unlink()
    radgen("catalog", "rebuild", catalog=pipeline.catalog)
    assert pipeline.sql("select count(*) as n from features_radiomics")["n"].tolist() == before
    out = pipeline.root / "quality-report"
    report = json.loads(
        radgen("validate", "--json", "--report", str(out), catalog=pipeline.catalog).stdout
    )
    suites = report["suites"]
    assert {r["status"] for r in suites} <= {"passed", "warnings"}
    stages = {"dicom", "images", "masks", "omics", "features", "feature_values", "datasets"}
    assert stages <= {r["suite"] for r in suites}
    page = (out / "index.html").read_text()
    assert report["report"] == str(out / "index.html")
    assert "features_radiomics" in page
    assert "ExpectCompoundColumnsToBeUnique" in page
    one = json.loads(
        radgen(
            "validate",
            "--table",
            "features_radiomics",
            "--version",
            "0",
            "--json",
            catalog=pipeline.catalog,
        ).stdout
    )
    assert [(r["suite"], r["version"]) for r in one["suites"]] == [
        ("features", 0),
        ("feature_values", 0),
    ]
    trace = json.loads(
        radgen("lineage", "features_radiomics@0", "--json", catalog=pipeline.catalog).stdout
    )
    assert len({r["run_id"] for r in trace["suite"]["results"]}) >= 3  # at commit + two re-checks


def test_features_on_a_real_dask_cluster_equal_the_local_run(
    pipeline: Pipeline, dask_processes: DaskProcesses
) -> None:
    radgen(
        "features",
        "compute",
        "--config",
        str(pipeline.config),
        "--name",
        "cluster",
        "--scheduler",
        dask_processes.address,
        catalog=pipeline.catalog,
    )
    local = pipeline.sql("select * exclude (run_id) from features_radiomics order by roi_id")
    remote = pipeline.sql("select * exclude (run_id) from features_cluster order by roi_id")
    pd.testing.assert_frame_equal(local, remote)


def test_demo_command_runs_end_to_end(tmp_path: Path) -> None:
    done = radgen("demo", "--patients", "3", catalog=tmp_path / "demo")
    assert "demo-cohort@1" in done.stdout
    assert "Try next" in done.stdout
    check = radgen(
        "sql",
        "select count(*) as n from features_radiomics",
        "--format",
        "csv",
        catalog=tmp_path / "demo",
    )
    assert check.stdout.split() == ["n", "3"]


def test_harmonize_removes_the_scanner_effect_and_keeps_the_genotype(pipeline: Pipeline) -> None:
    join = DEMO_GENOTYPE_SQL
    done = radgen(
        "harmonize", "--table", "features_radiomics", "--join", join, "--covariates", "tp53", "--json",
        catalog=pipeline.catalog,
    )  # fmt: skip
    report = json.loads(done.stdout)
    assert report["table"] == "features_radiomics_harmonized"
    assert report["median_batch_eta2"]["after"] < report["median_batch_eta2"]["before"]
    assert report["covariates"]["tp53=True"]["preserved_fraction"] >= 0.9
    assert Path(report["report"]).is_file()
    assert (Path(report["report"]).parent / "distributions.png").read_bytes()[:4] == b"\x89PNG"
    frame = pipeline.sql(
        "select h.subject_id, h.stat_mean as harmonized, f.stat_mean as raw, h.scanner_batch "
        "from features_radiomics_harmonized h join features_radiomics f using (roi_id)"
    )
    assert len(frame) == 6
    spread_raw = frame.groupby("scanner_batch")["raw"].mean().agg(["min", "max"]).diff().iloc[-1]
    spread_harm = (
        frame.groupby("scanner_batch")["harmonized"].mean().agg(["min", "max"]).diff().iloc[-1]
    )
    assert abs(spread_harm) < abs(spread_raw)
    params = pipeline.sql(
        "select count(*) as n from harmonization_params where output_table = 'features_radiomics_harmonized'"
    )
    assert params["n"].iloc[0] > 0
    trace = json.loads(
        radgen(
            "lineage", "features_radiomics_harmonized", "--json", catalog=pipeline.catalog
        ).stdout
    )
    assert trace["inputs"]["table"] == [{"id": "features_radiomics@0", "sha256": None}]
    assert trace["run"]["params"]["method"] == "combat"
    assert trace["annotations"]["harmonization_method"] == "combat"
    assert trace["annotations"]["harmonization_covariates"] == "tp53"

    # the stored model harmonizes the same samples to the same numbers
    from radgen.features.harmonize_table import load_combat
    from radgen.platform.catalog import Catalog

    cat = Catalog.open(str(pipeline.catalog))
    model = load_combat(cat.root, "features_radiomics_harmonized")
    raw = cat.table("features_radiomics").sort_values("roi_id").reset_index(drop=True)
    tp53 = cat.sql(join).set_index("subject_id")["tp53"]
    assert model.params_ is not None
    feats = model.params_.features
    again = model.transform(
        raw[feats],
        raw["scanner_batch"],
        pd.DataFrame({"tp53": raw["subject_id"].map(tp53).astype(str)}),
    )
    stored = cat.table("features_radiomics_harmonized").sort_values("roi_id").reset_index(drop=True)
    np.testing.assert_allclose(again.to_numpy(), stored[feats].to_numpy(), rtol=1e-9)


def test_chunked_path_gives_the_in_memory_features(pipeline: Pipeline, tmp_path: Path) -> None:
    """`features compute` through z-slabs (every region above the threshold) equals in memory."""
    config = tmp_path / "all.yaml"
    config.write_text(
        "setting:\n  binWidth: 25\nimageType:\n  Original: {}\n  LoG: {sigma: [2.0]}\n"
    )
    for name, threshold in (("inmem", "1000000000000"), ("slabs", "1")):
        env_before = os.environ.get("RADGEN_CHUNKED_MIN_VOXELS")
        os.environ["RADGEN_CHUNKED_MIN_VOXELS"] = threshold
        try:
            report = json.loads(
                radgen(
                    "features",
                    "compute",
                    "--config",
                    str(config),
                    "--name",
                    name,
                    "--json",
                    catalog=pipeline.catalog,
                ).stdout
            )
            assert report["chunked_rois"] == (report["rois"] if name == "slabs" else 0)
        finally:
            if env_before is None:
                os.environ.pop("RADGEN_CHUNKED_MIN_VOXELS")
            else:
                os.environ["RADGEN_CHUNKED_MIN_VOXELS"] = env_before
    inmem = pipeline.sql("select * from features_inmem order by roi_id").set_index("roi_id")
    slabs = pipeline.sql("select * from features_slabs order by roi_id").set_index("roi_id")
    columns = [c for c in inmem.columns if c.startswith(("stat_", "cm_", "morph_vol", "log_"))]
    assert len(columns) > 200
    pd.testing.assert_frame_equal(
        slabs[columns].astype(float), inmem[columns].astype(float), rtol=1e-9, atol=1e-9
    )
