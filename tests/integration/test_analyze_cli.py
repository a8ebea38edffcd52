"""``radgen analyze ccf|links|maps`` end to end through the CLI, on a small catalog built here.

The catalog is written directly (Zarr volumes and table rows through runs, no DICOM), so the
whole file runs in seconds. Every number is checked against a closed form: the CCF from its
formula, the map from ``ln S = ln S0 - b ADC`` and the mask, the links from planted
correlations.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from distributed import LocalCluster

from radgen.cli import main
from radgen.platform.catalog import Catalog
from radgen.platform.volumes import write_volume

pytestmark = pytest.mark.integration

N_SUBJECTS = 24
B_VALUES = (0.0, 500.0, 1000.0)
HIF = ("CA9", "VEGFA", "SLC2A1", "PGK1", "LDHA", "BNIP3", "ADM", "NDRG1")
FIRSTORDER = """\
setting:
  binWidth: 25
imageType:
  Original: {}
featureClass:
  firstorder:
"""


def series_row(
    uid: str, subject: str, description: str, shape: tuple[int, int, int]
) -> dict[str, Any]:
    return {
        "series_uid": uid, "study_uid": f"st-{subject}", "subject_id": subject, "modality": "MR",
        "series_description": description, "n_instances": shape[0], "shape": list(shape),
        "spacing": [2.0, 1.0, 1.0], "rows": shape[1], "columns": shape[2], "spacing_z": 2.0,
        "spacing_y": 1.0, "spacing_x": 1.0, "origin": [0.0, 0.0, 0.0],
        "direction": np.eye(3).ravel().tolist(), "units": "", "zarr_path": f"images/{uid}.zarr",
        "content_hash": f"hash-{uid}", "manufacturer": "ACME", "magnetic_field_strength": 3.0,
        "scanner_batch": "b-mr", "run_id": "r-test", "ingested_at": pd.Timestamp.now(tz="UTC"),
    }  # fmt: skip


def expression_rows(sample: str, patient: str, log2_tpm: dict[str, float]) -> list[dict[str, Any]]:
    """Long expression rows whose TPM sum to a million (a filler gene takes the rest)."""
    tpm = {g: float(2.0**v - 1.0) for g, v in log2_tpm.items()}
    tpm["FILLER"] = 1e6 - sum(tpm.values())
    return [
        {
            "sample_id": sample,
            "patient_id": patient,
            "gene_id": f"{g}|{i}",
            "gene": g,
            "count": t,
            "length": 1000.0,
            "tpm": t,
            "fpkm": t,
            "log2_tpm": float(np.log2(1 + t)),
            "source_file": "expr.tsv",
            "file_sha256": "cd" * 32,
            "run_id": "r-test",
        }
        for i, (g, t) in enumerate(tpm.items())
    ]


def build(root: Path) -> dict[str, Any]:
    """Subjects sub-00..23 (samples S-xx of patients P-xx), planted imaging and omics."""
    cat = Catalog.init(str(root))
    rng = np.random.default_rng(0)
    subjects = [f"sub-{i:02d}" for i in range(N_SUBJECTS)]
    samples = [f"S-{i:02d}" for i in range(N_SUBJECTS)]
    patients = [f"P-{i:02d}" for i in range(N_SUBJECTS)]
    mki67 = rng.normal(6, 1, N_SUBJECTS)
    hypoxia = rng.normal(0, 1, N_SUBJECTS)
    purity = rng.uniform(0.3, 0.9, N_SUBJECTS)

    # imaging features on described series: ADC (planted against MKI67), R2* (against
    # hypoxia), rCBV (no VEGFA relation planted), CT (must be ignored); no Ktrans
    series, feats = [], []
    kinds = {"ADC map": "adc", "R2* map": "r2s", "DSC rCBV": "cbv", "CT chest": "ct"}
    for i, subject in enumerate(subjects):
        for description, tag in kinds.items():
            uid = f"1.9.{i}.{tag}"
            series.append(series_row(uid, subject, description, (4, 8, 8)))
            value = {
                "adc": 1500 - 300 * (mki67[i] - 6) + rng.normal(0, 60),
                "r2s": 30 + 8 * hypoxia[i] + rng.normal(0, 3),
                "cbv": rng.normal(3, 1),
                "ct": rng.normal(40, 10),
            }[tag]
            feats.append({
                "subject_id": subject, "series_uid": uid, "roi_id": f"m-{i}-{tag}:1",
                "scanner_batch": "b-mr", "stat_mean": value, "stat_p10": value - 100,
                "feature_set_version": "test", "run_id": "r-test",
            })  # fmt: skip
    # DWI of sub-00 as three series (one per b-value) with a ROI, for `analyze maps`
    s0 = rng.uniform(800, 1200, (4, 8, 8))
    adc = rng.uniform(0.6e-3, 2.4e-3, (4, 8, 8))
    dwi_uids = [f"1.8.0.b{int(b)}" for b in B_VALUES]
    for uid, b in zip(dwi_uids, B_VALUES, strict=True):
        series.append(series_row(uid, subjects[0], f"DWI b={int(b)}", (4, 8, 8)))
        attrs = {"series_uid": uid, "spacing": [2.0, 1.0, 1.0], "origin": [0.0, 0.0, 0.0],
                 "direction": np.eye(3).tolist(), "modality": "MR", "units": ""}  # fmt: skip
        image = (s0 * np.exp(-b * adc)).astype(np.float32)
        write_volume(cat.root, f"images/{uid}.zarr", image, name="image", attrs=attrs)
    labels = np.zeros((4, 8, 8), dtype=np.uint8)
    labels[1:3, 2:6, 2:6] = 1
    write_volume(
        cat.root, "masks/m-dwi.zarr", labels, name="mask",
        attrs={"series_uid": dwi_uids[0], "spacing": [2.0, 1.0, 1.0], "origin": [0.0, 0.0, 0.0],
               "direction": np.eye(3).tolist()},
    )  # fmt: skip
    roi = {
        "roi_id": "m-dwi:1", "mask_id": "m-dwi", "series_uid": dwi_uids[0],
        "subject_id": subjects[0], "label": 1, "name": "tumour", "n_voxels": int(labels.sum()),
        "volume_ml": float(labels.sum()) * 2e-3, "n_components": 1, "bbox": [1, 3, 2, 6, 2, 6],
        "mask_path": "masks/m-dwi.zarr", "source_path": "/in/t.nii.gz",
        "file_sha256": "ab" * 32, "run_id": "r-test",
    }  # fmt: skip

    expression = []
    for i in range(N_SUBJECTS):
        values = {"MKI67": mki67[i], "VEGFA": rng.normal(5, 1)}
        values.update({g: 5 + hypoxia[i] + rng.normal(0, 0.5) for g in HIF if g != "VEGFA"})
        expression += expression_rows(samples[i], patients[i], values)

    # mutations: one per sample; copy number from segments (even samples), a discrete gene
    # call (samples 1, 5, 9, ...), nothing (3, 7, 11, ...: diploid)
    mutations, segments, calls = [], [], []
    for i, sample in enumerate(samples):
        alt, ref = int(rng.integers(20, 80)), int(rng.integers(40, 120))
        mutations.append({
            "sample_id": sample, "patient_id": patients[i], "gene": "TP53",
            "variant_classification": "Missense_Mutation", "variant_type": "SNP",
            "chrom": "chr17", "start": 7_675_000 + i, "end": 7_675_000 + i, "ref": "C",
            "alt": "T", "t_ref_count": ref, "t_alt_count": alt, "vaf": alt / (alt + ref),
            "source_file": "m.maf", "file_sha256": "ef" * 32, "run_id": "r-test",
        })  # fmt: skip
        if i % 2 == 0:
            seg_mean = -6.0 if i == 4 else float(rng.normal(0, 0.3))  # sample 4: impossible
            for start, end, mean in ((1, 7_000_000, 0.8), (7_000_001, 20_000_000, seg_mean)):
                segments.append({
                    "sample_id": sample, "patient_id": patients[i], "chrom": "17",
                    "start": start, "end": end, "num_markers": 100, "seg_mean": mean,
                    "source_file": "s.seg", "file_sha256": "01" * 32, "run_id": "r-test",
                })  # fmt: skip
        elif i % 4 == 1:
            calls.append({
                "sample_id": sample, "patient_id": patients[i], "gene": "TP53",
                "measure": "discrete", "discrete": int(rng.integers(-1, 3)),
                "source_file": "g.txt", "file_sha256": "02" * 32, "run_id": "r-test",
            })  # fmt: skip
        elif i in (3, 7):  # a gene-level log2 ratio (and a discrete call it takes precedence over)
            for measure, log2, discrete in (
                ("log2", 0.4 - 0.2 * i / 3, None),
                ("discrete", None, 2),
            ):
                calls.append({
                    "sample_id": sample, "patient_id": patients[i], "gene": "TP53",
                    "measure": measure, "log2": log2, "discrete": discrete,
                    "source_file": "g.txt", "file_sha256": "02" * 32, "run_id": "r-test",
                })  # fmt: skip
    links = pd.DataFrame({"sample_id": samples, "patient_id": patients, "subject_id": subjects,
                          "rule": "mapping", "run_id": "r-test"})  # fmt: skip
    # purity: a one-ROI-per-subject feature table, a sample table (sample 6 left out)
    purity_feats = pd.DataFrame({
        "subject_id": subjects, "series_uid": [f"1.9.{i}.ct" for i in range(N_SUBJECTS)],
        "roi_id": [f"m-{i}-p:1" for i in range(N_SUBJECTS)], "scanner_batch": "b-mr",
        "purity_est": purity, "feature_set_version": "test", "run_id": "r-test",
    })  # fmt: skip
    by_sample = pd.DataFrame({"sample_id": samples, "purity": purity}).drop(index=6)

    with cat.run("test build", {}) as run:
        run.commit("series", pd.DataFrame(series), suite="dicom")
        run.commit("rois", pd.DataFrame([roi]), suite="masks")
        run.commit("features_demo", pd.DataFrame(feats), suite="features")
        run.commit("features_purity", purity_feats, suite="features")
        run.commit("expression", pd.DataFrame(expression), suite="omics")
        run.commit("mutations", pd.DataFrame(mutations), suite="omics")
        run.commit("cna_segments", pd.DataFrame(segments), suite="omics")
        run.commit("cna_gene", pd.DataFrame(calls), suite="omics")
        run.commit("subjects", links, suite="omics")
        run.commit("sample_purity", by_sample, suite=None)
    return {
        "cat": cat, "root": str(root), "purity": purity, "mutations": pd.DataFrame(mutations),
        "segments": pd.DataFrame(segments), "calls": pd.DataFrame(calls), "s0": s0, "adc": adc,
        "labels": labels, "dwi": dwi_uids,
    }  # fmt: skip


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return build(tmp_path_factory.mktemp("analyze") / "cat")


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    capsys.readouterr()
    code = main([*args, "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out)


def one_line_error(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    capsys.readouterr()
    assert main(list(args)) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


@pytest.mark.parametrize("command", ["ccf", "links", "maps"])
def test_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze", command, "--help"]) == 0
    assert "Usage" in capsys.readouterr().out


def expected_ccf(world: dict[str, Any]) -> pd.DataFrame:
    """The CCF of each mutation from the closed forms, computed here independently."""
    rows = []
    segs, calls = world["segments"], world["calls"]
    for i, m in world["mutations"].iterrows():
        p = float(world["purity"][i])
        v = m["t_alt_count"] / (m["t_alt_count"] + m["t_ref_count"])
        seg = segs[(segs["sample_id"] == m["sample_id"]) & (segs["start"] <= m["start"])
                   & (segs["end"] >= m["start"])]  # fmt: skip
        call = calls[(calls["sample_id"] == m["sample_id"]) & (calls["measure"] == "discrete")]
        gene_log2 = calls[(calls["sample_id"] == m["sample_id"]) & (calls["measure"] == "log2")]
        if len(seg):
            ratio = 2.0 ** float(seg["seg_mean"].iloc[0])  # (1-p) 2 + p CN_t = 2 ratio
            cn_t, source = 2.0 * (ratio - (1 - p)) / p, "cna_segments"
        elif len(gene_log2):
            ratio = 2.0 ** float(gene_log2["log2"].iloc[0])
            cn_t, source = 2.0 * (ratio - (1 - p)) / p, "cna_gene:log2"
        elif len(call):
            cn_t = {-2: 0.0, -1: 1.0, 0: 2.0, 1: 3.0, 2: 4.0}[int(call["discrete"].iloc[0])]
            source = "cna_gene:discrete"
        else:
            cn_t, source = 2.0, "diploid"
        ccf = v * ((1 - p) * 2 + p * cn_t) / p if cn_t >= 0 else np.nan
        rows.append({"sample_id": m["sample_id"], "ccf": ccf, "cn_tumor": cn_t,
                     "cn_source": source, "purity": p})  # fmt: skip
    return pd.DataFrame(rows).set_index("sample_id")


@pytest.mark.parametrize(
    "spec", ["features_purity.purity_est", "purity_est", "sample_purity"], ids=str
)
def test_ccf_joins_mutations_copy_number_and_purity(
    world: dict[str, Any], spec: str, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = run_json(capsys, "analyze", "ccf", "--purity-from", spec, "--catalog", world["root"])
    assert doc["table"] == "ccf"
    assert doc["mutations"] == N_SUBJECTS
    assert doc["cn_sources"] == {
        "cna_segments": 12,
        "cna_gene:discrete": 6,
        "cna_gene:log2": 2,
        "diploid": 4,
    }
    got = world["cat"].table("ccf").set_index("sample_id")
    want = expected_ccf(world)
    if spec == "sample_purity":  # sample 6 has no purity there
        assert pd.isna(got.loc["S-06", "ccf"])
        assert got.loc["S-06", "ccf_invalid"].startswith("no purity for the sample")
        want = want.drop(index="S-06")
        got = got.drop(index="S-06")
    table = "sample_purity" if spec == "sample_purity" else "features_purity"
    assert doc["purity_source"].startswith(f"{table}@")
    np.testing.assert_allclose(got.loc[want.index, "purity"], want["purity"], rtol=1e-12)
    np.testing.assert_allclose(got.loc[want.index, "cn_tumor"], want["cn_tumor"], rtol=1e-9)
    np.testing.assert_allclose(got.loc[want.index, "ccf"], want["ccf"], rtol=1e-9, equal_nan=True)
    assert (got.loc[want.index, "cn_source"] == want["cn_source"]).all()
    # sample 4: log2 = -3 cannot come from a purity-p mixture: no CCF, and why
    assert got.loc["S-04", "ccf_invalid"] == "cn_tumor negative or missing"
    assert got.loc["S-04", "cn_tumor"] < 0
    # the over-1 flag is the one-sided binomial test against the VAF at CCF = 1
    from scipy import stats

    row = got.loc["S-00"]
    f1 = row["purity"] / ((1 - row["purity"]) * 2 + row["purity"] * row["cn_tumor"])
    p_over = stats.binom.sf(row["t_alt_count"] - 1, row["t_depth"], min(f1, 1.0))
    assert row["over1_p_value"] == pytest.approx(p_over, rel=1e-9)
    assert bool(row["over1_flag"]) == (p_over < 0.05)
    lineage = world["cat"].lineage("ccf")
    assert any(i["id"].startswith("mutations@") for i in lineage["inputs"]["table"])


def test_ccf_without_the_diploid_assumption(
    world: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    doc = run_json(
        capsys, "analyze", "ccf", "--purity-from", "purity_est", "--no-assume-diploid",
        "--catalog", world["root"],
    )  # fmt: skip
    assert "diploid" not in doc["cn_sources"]
    assert doc["invalid"]["no copy number at the locus"] == 4
    got = world["cat"].table("ccf").set_index("sample_id")
    assert pd.isna(got.loc["S-11", "ccf"])
    assert pd.isna(got.loc["S-11", "cn_source"])
    assert got.loc["S-11", "ccf_invalid"] == "no copy number at the locus"


def test_ccf_errors_are_one_line(world: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    root = world["root"]
    line = one_line_error(capsys, "analyze", "ccf", "--purity-from", "nothing", "--catalog", root)
    assert line.startswith("NotFoundError: nothing:")
    line = one_line_error(
        capsys, "analyze", "ccf", "--purity-from", "features_demo.stat_mean", "--catalog", root
    )
    assert "not purities in (0, 1]" in line
    line = one_line_error(capsys, "analyze", "ccf", "--purity-from", "stat_mean", "--catalog", root)
    assert "not purities in (0, 1]" in line  # the one features table with that column
    line = one_line_error(capsys, "analyze", "ccf", "--purity-from", "roi_id", "--catalog", root)
    assert line.startswith("ConfigError: --purity-from:")
    assert "features_demo" in line
    assert "features_purity" in line
    assert "TABLE.COLUMN" in line


def test_links_report_from_the_catalog(
    world: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "links.csv"
    doc = run_json(
        capsys, "analyze", "links", "--features", "demo", "--out", str(out),
        "--catalog", world["root"],
    )  # fmt: skip
    assert doc["subjects"] == N_SUBJECTS
    links = {row["imaging"]: row for row in doc["links"]}
    # planted: ADC falls with MKI67, R2* rises with the hypoxia score; found by description
    for name in ("adc_mean", "adc_p10"):
        assert links[name]["agrees"] is True
        assert links[name]["supported"] is True
        assert links[name]["n"] == N_SUBJECTS
    assert links["r2star"]["agrees"] is True
    assert links["r2star"]["supported"] is True
    assert links["r2star"]["detail"].startswith("8/8 genes")
    assert links["rcbv"]["status"] == "ok"  # computed, whatever its sign
    assert links["ktrans"]["status"] == "missing imaging measure ktrans"
    assert doc["missing"] == ["missing imaging measure ktrans"]
    assert doc["measures"]["adc_mean"].startswith("features_demo.stat_mean on adc series")
    # the CT rows were not taken as ADC: rho recomputed from the ADC rows alone
    cat = world["cat"]
    feats = cat.sql(
        "select f.subject_id, f.stat_mean from features_demo f join series s using (series_uid)"
        " where s.series_description = 'ADC map'"
    ).set_index("subject_id")
    mki67 = cat.sql(
        "select s.subject_id, e.log2_tpm from expression e join subjects s using (sample_id)"
        " where e.gene = 'MKI67'"
    ).set_index("subject_id")
    from scipy import stats

    both = feats.join(mki67)
    rho = stats.spearmanr(both["stat_mean"], both["log2_tpm"]).statistic
    assert links["adc_mean"]["rho"] == pytest.approx(rho, rel=1e-12)
    assert pd.read_csv(out)["imaging"].tolist() == list(links)
    # an override: Ktrans taken from the rCBV rows' mean by pattern
    doc = run_json(
        capsys, "analyze", "links", "--features", "features_demo", "--map",
        "ktrans=stat_mean:rcbv", "--catalog", world["root"],
    )  # fmt: skip
    links2 = {row["imaging"]: row for row in doc["links"]}
    assert links2["ktrans"]["rho"] == pytest.approx(links["rcbv"]["rho"], rel=1e-12)


def test_links_errors_are_one_line(
    world: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    root = world["root"]
    line = one_line_error(capsys, "analyze", "links", "--features", "nope", "--catalog", root)
    assert line.startswith("NotFoundError: features_nope:")
    line = one_line_error(
        capsys, "analyze", "links", "--features", "demo", "--map", "t1=x", "--catalog", root
    )
    assert line.startswith("ConfigError: --map:")


@pytest.fixture(scope="module")
def inproc_scheduler() -> Iterator[str]:
    """A Dask scheduler with one thread in this process (no worker start-up)."""
    with LocalCluster(
        processes=False, n_workers=1, threads_per_worker=1, dashboard_address=":0"
    ) as cluster:
        yield cluster.scheduler_address


def test_maps_then_features_on_the_map(
    world: dict[str, Any],
    inproc_scheduler: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = world["root"]
    series = ",".join(reversed(world["dwi"]))  # any order: sorted by b-value
    b_values = ",".join(str(b) for b in reversed(B_VALUES))
    doc = run_json(
        capsys, "analyze", "maps", "--kind", "adc", "--series", series, "--b-values", b_values,
        "--scheduler", inproc_scheduler, "--catalog", root,
    )  # fmt: skip
    assert doc["derived_from"] == world["dwi"]
    assert doc["values"] == list(B_VALUES)
    assert doc["n_invalid"] == 0
    assert doc["unchanged"] is False
    uid = doc["series_uid"]
    cat = world["cat"]
    stored = cat.image(uid).values
    np.testing.assert_allclose(stored, world["adc"] * 1e6, rtol=1e-4)  # float32 inputs
    [roi] = doc["rois"]
    # a rerun changes nothing
    again = run_json(
        capsys, "analyze", "maps", "--kind", "adc", "--series", series, "--b-values", b_values,
        "--catalog", root,
    )  # fmt: skip
    assert again["unchanged"] is True
    assert again["series_uid"] == uid
    # `radgen features compute` includes the map through its copied ROI
    config = tmp_path / "firstorder.yaml"
    config.write_text(FIRSTORDER)
    run_json(
        capsys, "features", "compute", "--config", str(config), "--name", "maps",
        "--scheduler", inproc_scheduler, "--catalog", root,
    )  # fmt: skip
    feats = cat.table("features_maps").set_index("roi_id")
    inside = stored[world["labels"] > 0]
    assert feats.loc[roi, "series_uid"] == uid
    assert feats.loc[roi, "stat_mean"] == pytest.approx(float(inside.mean()), rel=1e-6)
    lineage = cat.lineage("series")
    assert {i["id"] for i in lineage["inputs"]["series"]} >= set(world["dwi"])


def test_maps_errors_are_one_line(
    world: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    root = world["root"]
    series = ",".join(world["dwi"])
    line = one_line_error(
        capsys, "analyze", "maps", "--kind", "adc", "--series", series, "--b-values", "0,500",
        "--catalog", root,
    )  # fmt: skip
    assert line.startswith("ConfigError: --b-values: 2 value(s) for 3 series")
    line = one_line_error(
        capsys, "analyze", "maps", "--kind", "r2star", "--series", series, "--catalog", root
    )
    assert "no echo time" in line
    line = one_line_error(
        capsys, "analyze", "maps", "--kind", "adc", "--series", f"{series},9.9.9",
        "--b-values", "0,500,1000,1500", "--catalog", root,
    )  # fmt: skip
    assert line.startswith("NotFoundError: 9.9.9:")
    capsys.readouterr()
    assert main(["analyze", "maps", "--kind", "adc", "--series", series, "--b-values", "a,b",
                 "--catalog", root]) == 2  # fmt: skip
