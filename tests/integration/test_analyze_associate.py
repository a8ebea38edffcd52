"""``radgen analyze associate`` end to end on a catalog with planted imaging-omics factors.

The catalog holds a feature table (one row per ROI), a long expression table (one row per
sample and gene) and the subjects table linking samples to imaging subjects. Two latent
factors drive a few features and a few genes; the rest is noise. Independent checks: the
blocks are rebuilt from the generator's arrays with NumPy (no catalog) and refitted; the
planted genes must top the loadings; the report files are real PNGs linked from the page.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from radgen.analysis.cca import RegularizedCCA
from radgen.cli.analyze_associate import associate_cmd
from radgen.errors import InputError, NotFoundError, RadgenError
from radgen.platform.catalog import Catalog

pytestmark = [pytest.mark.integration]

N_PAIRED = 40  # subjects with both blocks
N_IMAGING_ONLY = 5  # subjects with features but no omics sample
N_FEATURES = 12
N_GENES = 60
PLANTED_GENES = {f"G{j}" for j in range(8)}

Arr = npt.NDArray[np.float64]


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The catalog and the arrays it was built from."""
    rng = np.random.default_rng(0)
    n = N_PAIRED + N_IMAGING_ONLY
    z = rng.normal(size=(n, 2))
    ax = np.zeros((2, N_FEATURES))
    ax[0, :4], ax[1, 4:7] = 1.5, 1.5
    feats = z @ ax + rng.normal(size=(n, N_FEATURES)) + 50.0
    ay = np.zeros((2, N_GENES))
    ay[0, :5], ay[1, 5:8] = 1.5, 1.5
    genes = z @ ay + rng.normal(size=(n, N_GENES)) + 8.0
    subjects = [f"sub-{i:02d}" for i in range(n)]
    fcols = [f"f{j}" for j in range(N_FEATURES)]

    frows = pd.DataFrame(feats, columns=fcols)
    extra_roi = frows.iloc[[1]] + 0.5  # subject 1 has a second ROI: features are averaged
    features = pd.concat([frows, extra_roi], ignore_index=True)
    features.insert(0, "subject_id", [*subjects, subjects[1]])
    features.insert(1, "series_uid", [f"1.2.{i}" for i in range(len(features))])
    features.insert(2, "roi_id", [f"m-{i}:1" for i in range(len(features))])
    features.insert(3, "scanner_batch", "sb-1")
    features["feature_set_version"] = "test"
    features["run_id"] = "seed"

    samples = [(f"S{i:02d}-T", i, genes[i]) for i in range(N_PAIRED)]
    samples.append(("S00-B", 0, genes[0] + 0.2))  # subject 0 has two samples: averaged
    samples.append(("ORPHAN-1", -1, rng.normal(size=N_GENES) + 8.0))  # not in subjects
    rows = []
    for sample, subj, values in samples:
        for j, value in enumerate(values):
            rows.append(
                {
                    "sample_id": sample,
                    "patient_id": f"P{subj}",
                    "gene_id": f"G{j}|{j}",
                    "gene": f"G{j}",
                    "count": 100.0,
                    "length": 1000.0,
                    "tpm": 2**value - 1,
                    "fpkm": 1.0,
                    "log2_tpm": value,
                    "source_file": "synthetic",
                    "file_sha256": "0" * 64,
                    "run_id": "seed",
                }
            )
    expression = pd.DataFrame(rows)
    links = pd.DataFrame(
        {
            "sample_id": [s for s, i, _ in samples if i >= 0],
            "patient_id": [f"P{i}" for _, i, _ in samples if i >= 0],
            "subject_id": [subjects[i] for _, i, _ in samples if i >= 0],
            "collected_at": pd.NaT,
            "rule": "test mapping",
            "run_id": "seed",
        }
    )
    wide = pd.DataFrame(genes[:N_PAIRED, :10], columns=[f"W{j}" for j in range(10)])
    wide.insert(0, "subject_id", subjects[:N_PAIRED])
    flat = pd.DataFrame({"sample_id": links["sample_id"], "level": 1.0, "other": 2.0})

    root = tmp_path_factory.mktemp("assoc") / "catalog"
    cat = Catalog.init(str(root))
    with cat.run("seed", {}) as run:
        run.commit("features_test", features, suite=None, mode="overwrite")
        run.commit("expression", expression, suite=None, mode="overwrite")
        run.commit("subjects", links, suite=None, mode="overwrite")
        run.commit("omics_wide", wide, suite=None, mode="overwrite")
        run.commit("omics_flat", flat, suite=None, mode="overwrite")
    paired_feats = feats[:N_PAIRED].copy()
    paired_feats[1] = (feats[1] + feats[1] + 0.5) / 2
    paired_genes = genes[:N_PAIRED].copy()
    paired_genes[0] = (genes[0] + genes[0] + 0.2) / 2
    return {"root": root, "x": paired_feats, "y": paired_genes}


def invoke(cohort: dict[str, Any], *args: str) -> Any:
    """Run ``associate`` like ``radgen analyze associate``; errors propagate as exceptions."""
    app = typer.Typer()
    app.command("associate")(associate_cmd)
    app.command("other")(lambda: None)  # keep "associate" a sub-command
    result = CliRunner().invoke(
        app, ["associate", *args, "--catalog", str(cohort["root"])], catch_exceptions=True
    )
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == 0, result.output
    return result


def as_json(result: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def test_cca_report_recovers_the_planted_link(cohort: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "cca"
    summary = as_json(
        invoke(
            cohort,
            "--features",
            "test",
            "--omics",
            "expression",
            "--method",
            "cca",
            "--out",
            str(out),
            "--permutations",
            "19",
            "--components",
            "2",
            "--json",
        )
    )
    assert summary["n_subjects"] == N_PAIRED
    assert summary["features"] == {"table": "features_test", "version": 0, "n_variables": 12}
    assert summary["omics"]["value"] == "log2_tpm"
    first, second = summary["result"]["components"]
    for comp in (first, second):
        assert comp["heldout"] > 0.5  # both planted factors survive cross-validation
        assert comp["p_value"] == pytest.approx(1 / 20)
        assert comp["in_sample"] >= comp["heldout"]
    top = {g["name"] for c in summary["result"]["top_genes"].values() for g in c[:3]}
    assert top <= PLANTED_GENES
    notes = " ".join(summary["notes"])
    assert "several ROIs" in notes
    assert "several samples" in notes
    assert "1 sample(s) not in the subjects table" in notes
    # independent rebuild of the blocks: same canonical correlations at the chosen penalties
    lx, ly = summary["result"]["penalties"]
    ref = RegularizedCCA(2, penalty=(lx, ly)).fit(cohort["x"], cohort["y"])
    got = [c["in_sample"] for c in summary["result"]["components"]]
    assert np.allclose(got, ref.canonical_correlations_, atol=1e-8)
    # report files
    page = (out / "report.html").read_text()
    for png in ("correlations.png", "loadings.png"):
        assert f'src="{png}"' in page
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    stored = json.loads((out / "summary.json").read_text())
    assert stored == summary
    assert summary["report"] == str(out / "report.html")


def test_pls_report_defaults_to_the_catalog_reports_folder(cohort: dict[str, Any]) -> None:
    result = invoke(
        cohort, "--features", "features_test", "--omics", "expression", "--method", "pls",
        "--permutations", "9", "--top-genes", "30",
    )  # fmt: skip
    assert "Component1" in result.stdout
    folder = Path(cohort["root"]) / "reports" / "associate" / "features_test__expression__pls"
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["omics"]["n_variables"] == 30
    assert "kept the 30 most variable of 60" in " ".join(summary["notes"])
    assert summary["result"]["components"][0]["heldout"] > 0.5
    assert summary["result"]["heldout_r2"] > 0.0  # the features predict the planted genes
    assert (folder / "report.html").exists()


def test_factor_report_keeps_subjects_missing_the_omics_view(
    cohort: dict[str, Any], tmp_path: Path
) -> None:
    out = tmp_path / "factors"
    summary = as_json(
        invoke(
            cohort,
            "--features",
            "test",
            "--omics",
            "expression",
            "--method",
            "factors",
            "--out",
            str(out),
            "--permutations",
            "5",
            "--json",
        )
    )
    result = summary["result"]
    assert summary["n_subjects"] == N_PAIRED
    assert summary["n_subjects_total"] == N_PAIRED + N_IMAGING_ONLY
    shared = [i for i, kind in enumerate(result["factor_kind"]) if kind == "shared"]
    assert len(shared) == 2  # the two planted factors
    for i in shared:
        assert result["components"][i]["heldout"] > 0.5
        views = result["active_views"][i]
        assert views == ["imaging", "expression"]
    assert set(result["variance_explained"]) == {"imaging", "expression"}
    page = (out / "report.html").read_text()
    assert 'src="variance.png"' in page
    assert (out / "variance.png").read_bytes()[:4] == b"\x89PNG"


def test_wide_omics_table_with_subject_ids_is_used_as_is(
    cohort: dict[str, Any], tmp_path: Path
) -> None:
    summary = as_json(
        invoke(
            cohort,
            "--features",
            "test",
            "--omics",
            "omics_wide",
            "--method",
            "pls",
            "--out",
            str(tmp_path),
            "--permutations",
            "5",
            "--components",
            "1",
            "--json",
        )
    )
    assert summary["omics"] == {
        "table": "omics_wide",
        "version": 0,
        "value": "wide",
        "n_variables": 10,
    }
    assert summary["n_subjects"] == N_PAIRED


@pytest.mark.parametrize(
    ("args", "error", "message"),
    [
        (("--features", "nope", "--omics", "expression"), NotFoundError, "no such feature table"),
        (("--features", "test", "--omics", "nope"), NotFoundError, "no such omics table"),
        (("--features", "test", "--omics", "expression", "--min-samples", "100"), InputError,
         "only 40 subject(s) have both"),
        (("--features", "test", "--omics", "omics_flat"), InputError, "no variable varies"),
        (("--features", "test", "--omics", "expression", "--value", "nope"), InputError,
         "no such column"),
    ],
)  # fmt: skip
def test_bad_requests_fail_with_one_clear_line(
    cohort: dict[str, Any], args: tuple[str, ...], error: type[RadgenError], message: str
) -> None:
    with pytest.raises(error) as caught:
        invoke(cohort, *args, "--out", str(cohort["root"] / "never"))
    line = caught.value.one_line()
    assert message in line
    assert "\n" not in line
    assert not (cohort["root"] / "never").exists()  # nothing half-written


def test_unknown_method_is_a_usage_error(cohort: dict[str, Any]) -> None:
    app = typer.Typer()
    app.command("associate")(associate_cmd)
    app.command("other")(lambda: None)
    result = CliRunner().invoke(
        app, ["associate", "--features", "test", "--omics", "expression", "--method", "lda"]
    )
    assert result.exit_code == 2
    help_text = CliRunner().invoke(app, ["associate", "--help"]).stdout
    for option in ("--features", "--omics", "--method", "--out", "--catalog", "--json"):
        assert option in help_text
