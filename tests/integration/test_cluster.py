"""Real Dask processes: `dask scheduler` and two `dask worker` processes on 127.0.0.1.

The pipeline (ingest DICOM, masks, features, harmonize) runs through the CLI with
``--scheduler`` and must give the same tables, bit for bit, as the default LocalCluster run.
A worker killed with SIGKILL while it holds a task must not change the result: Dask
reschedules the task on the surviving worker. ``radgen cluster up/down`` starts and stops
background processes that a command can use.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from distributed import Client

import radgen
from radgen.demo import DEMO_GENOTYPE_SQL, DEMO_SETTINGS, generate_cohort
from radgen.testing import DaskProcesses, process_env

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BIN = Path(sys.executable).parent
SETTINGS = yaml.safe_dump(DEMO_SETTINGS)  # PyRadiomics-style YAML, as a user writes it
COVARIATES = DEMO_GENOTYPE_SQL


@pytest.fixture(autouse=True)
def _shared_deid_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """The catalogs compared here pseudonymize alike (one key for both)."""
    monkeypatch.setenv("RADGEN_DEID_KEY", "5a" * 32)


def radgen_cli(*args: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [str(BIN / "radgen"), *args],
        capture_output=True,
        text=True,
        env=env or process_env(),
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, f"radgen {' '.join(args)}: {done.stdout}\n{done.stderr}"
    return done.stdout


def _pipeline(cohort: Path, catalog: Path, config: Path, scheduler: list[str]) -> None:
    """Ingest, masks, mutations, features, harmonize: `scheduler` is [] or ["--scheduler", A]."""
    at = ["--catalog", str(catalog)]
    radgen_cli("init", *at)
    radgen_cli("ingest", "dicom", str(cohort / "dicom"), *scheduler, *at)
    radgen_cli("ingest", "masks", str(cohort / "masks"), *at)
    radgen_cli("ingest", "omics", str(cohort / "omics" / "cohort.maf"), "--kind", "mutations", *at)
    radgen_cli("features", "compute", "--config", str(config), *scheduler, *at)
    radgen_cli(
        "harmonize", "--table", "features_radiomics", "--join", COVARIATES,
        "--covariates", "tp53", *scheduler, *at,
    )  # fmt: skip


def _content(catalog: Path, table: str, order: str) -> pd.DataFrame:
    """A table without the columns that name the run or the time it ran."""
    frame = radgen.open_catalog(str(catalog)).sql(f"select * from {table} order by {order}")
    drop = [c for c in frame.columns if c == "run_id" or c.endswith("_at")]
    return frame.drop(columns=drop).reset_index(drop=True)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("cluster")
    generate_cohort(root / "cohort", n_patients=6, seed=11, shape=(16, 64, 64))
    config = root / "params.yaml"
    config.write_text(SETTINGS)
    return root / "cohort", config


def test_pipeline_on_scheduler_and_two_workers_equals_the_local_run(
    cohort: tuple[Path, Path], dask_processes: DaskProcesses, tmp_path: Path
) -> None:
    folder, config = cohort
    _pipeline(folder, tmp_path / "local", config, [])
    _pipeline(folder, tmp_path / "remote", config, ["--scheduler", dask_processes.address])
    for table, order in [
        ("series", "series_uid"),
        ("rois", "roi_id"),
        ("features_radiomics", "roi_id"),
        ("features_radiomics_harmonized", "roi_id"),
    ]:
        local = _content(tmp_path / "local", table, order)
        remote = _content(tmp_path / "remote", table, order)
        assert len(local) > 0, table
        pd.testing.assert_frame_equal(local, remote, check_exact=True, obj=table)
    checked = json.loads(
        radgen_cli(
            "validate", "--stage", "images", "--json", "--scheduler", dask_processes.address,
            "--catalog", str(tmp_path / "remote"),
        )
    )  # fmt: skip
    assert [r["status"] for r in checked["suites"]] == ["passed"]
    assert checked["suites"][0]["rows"] == 6  # one statistics row per series, from the workers
    # the same voxels: the image arrays written by the workers are identical
    local_cat, remote_cat = (radgen.open_catalog(str(tmp_path / n)) for n in ("local", "remote"))
    for uid in local_cat.sql("select series_uid from series")["series_uid"]:
        np.testing.assert_array_equal(
            local_cat.image(uid).values, remote_cat.image(uid).values, err_msg=uid
        )


def test_a_worker_killed_mid_run_does_not_change_the_result(
    dask_processes: DaskProcesses, tmp_path: Path
) -> None:
    cohort_dir = tmp_path / "cohort"
    generate_cohort(cohort_dir, n_patients=8, seed=5, shape=(48, 192, 192))
    config = tmp_path / "params.yaml"
    config.write_text(SETTINGS)
    for name in ("local", "remote"):
        at = ["--catalog", str(tmp_path / name)]
        radgen_cli("init", *at)
        radgen_cli("ingest", "dicom", str(cohort_dir / "dicom"), *at)
        radgen_cli("ingest", "masks", str(cohort_dir / "masks"), *at)
    radgen_cli("features", "compute", "--config", str(config), "--catalog", str(tmp_path / "local"))

    command = subprocess.Popen(
        [str(BIN / "radgen"), "features", "compute", "--config", str(config),
         "--scheduler", dask_processes.address, "--catalog", str(tmp_path / "remote")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=process_env(),
    )  # fmt: skip
    killed_while_busy = False
    with Client(dask_processes.address, timeout="30s") as client:
        deadline = time.time() + 300
        while command.poll() is None and time.time() < deadline:
            names = {a: w["name"] for a, w in client.scheduler_info()["workers"].items()}
            busy = [names.get(a) for a, keys in client.processing().items() if keys]
            if "w1" in busy:
                os.kill(dask_processes.procs["w1"].pid, signal.SIGKILL)
                killed_while_busy = True
                break
            time.sleep(0.02)
    _, stderr = command.communicate(timeout=600)
    assert killed_while_busy, "the features run ended before w1 took a task"
    assert command.returncode == 0, stderr
    assert dask_processes.procs["w1"].wait(timeout=30) == -signal.SIGKILL
    local = _content(tmp_path / "local", "features_radiomics", "roi_id")
    remote = _content(tmp_path / "remote", "features_radiomics", "roi_id")
    assert len(local) == 8
    pd.testing.assert_frame_equal(local, remote, check_exact=True)


def test_cluster_up_then_a_command_uses_it_then_down(tmp_path: Path) -> None:
    env = process_env(RADGEN_HOME=str(tmp_path / "home"))
    info = json.loads(radgen_cli("cluster", "up", "--workers", "2", "--json", env=env))
    try:
        assert info["address"].startswith("tcp://127.0.0.1:")
        assert info["dashboard"].startswith("http://")
        with Client(info["address"], timeout="30s") as client:
            assert len(client.scheduler_info()["workers"]) == 2
        # a second `up` reports the running cluster instead of starting another
        again = json.loads(radgen_cli("cluster", "up", "--json", env=env))
        assert again["pids"] == info["pids"]
        catalog = tmp_path / "cat"
        folder = tmp_path / "cohort"
        generate_cohort(folder, n_patients=2, seed=2, shape=(8, 32, 32))
        radgen_cli("init", "--catalog", str(catalog))
        radgen_cli(
            "ingest", "dicom", str(folder / "dicom"), "--catalog", str(catalog),
            env={**env, "RADGEN_SCHEDULER": info["address"]},
        )  # fmt: skip
        assert len(radgen.open_catalog(str(catalog)).sql("select * from series")) == 2
    finally:
        stopped = json.loads(radgen_cli("cluster", "down", "--json", env=env))
    assert stopped["stopped"]["address"] == info["address"]
    deadline = time.time() + 30
    while time.time() < deadline and any(_alive(p) for p in info["pids"]):
        time.sleep(0.2)
    assert not any(_alive(p) for p in info["pids"])
    assert json.loads(radgen_cli("cluster", "status", "--json", env=env)) == {"running": None}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (exited, not yet reaped by its parent) is not alive
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"
