"""Crash safety: SIGKILL commands at random points; nothing committed is lost or half-visible.

For each command of the pipeline (ingest dicom, ingest masks, features compute, harmonize,
datasets publish) the harness copies a catalog holding everything the command needs, starts
the command, kills its process group with SIGKILL after a random delay within the command's
uninterrupted wall time, and checks that

- the catalog opens and every version of every table reads in full (no partial version);
- the SQL index answers for every table;
- rerunning the same command completes, and every table then holds what the uninterrupted
  pipeline held after that command (volatile columns aside: run ids and timestamps);
- garbage collection (``radgen catalog gc --older-than 0``) then removes the killed run's orphans (no ``.tmp-``
  file remains) and changes no version of any table.

Trials run until a time budget is spent (at least one per command; ``RADGEN_CRASH_BUDGET_S``
raises the budget for a longer soak); the count and the kill points are printed. Commands
that can use a cluster use real ``dask scheduler`` / ``dask worker`` processes, which a
killed client leaves running, as in production.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
import yaml

from radgen.demo import DEMO_GENOTYPE_SQL, DEMO_SETTINGS, generate_cohort
from radgen.platform import tables
from radgen.platform.catalog import Catalog
from radgen.platform.gc import collect_garbage
from radgen.testing import DaskProcesses, process_env

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BIN = Path(sys.executable).parent
#: Seconds of kill trials (beyond the minimum of two per command).
BUDGET_S = float(os.environ.get("RADGEN_CRASH_BUDGET_S", "45"))
#: Tables whose content depends on the run history itself (run ids, failures, timings).
HISTORY_TABLES = {"runs", "quality_results", "quarantine", "lineage"}
#: Columns that differ between two identical runs: run ids, and the hash of a dataset
#: manifest, which records when and by which run it was published.
VOLATILE_COLUMNS = {"run_id", "source_run_id", "manifest_sha256"}
DATASET_SQL = "select f.roi_id, f.stat_mean, f.scanner_batch from features_radiomics f order by 1"


def _env() -> dict[str, str]:
    return process_env(RADGEN_DEID_KEY="7e" * 32)  # every catalog pseudonymizes alike


def _run(args: list[str], catalog: Path) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(BIN / "radgen"), *args, "--catalog", str(catalog)],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, f"radgen {' '.join(args)}: {done.stderr}"
    return done


def _killed(args: list[str], catalog: Path, delay: float) -> int | None:
    """Start the command, SIGKILL its process group after `delay` s; its exit code if it
    finished first (then it was not killed)."""
    proc = subprocess.Popen(
        [str(BIN / "radgen"), *args, "--catalog", str(catalog)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=_env(),
        start_new_session=True,
    )
    try:
        return proc.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
        return None


def _content(catalog: Path) -> dict[str, pd.DataFrame]:
    """Current content of every table, volatile columns dropped, rows in a canonical order."""
    root = Catalog.open(str(catalog)).root
    out = {}
    for name in tables.list_tables(root):
        if name in HISTORY_TABLES:
            continue
        data = tables.read_table(root, name)
        keep = [
            f.name
            for f in data.schema
            if f.name not in VOLATILE_COLUMNS and not pa.types.is_timestamp(f.type)
        ]
        frame = data.select(keep).to_pandas()
        frame = frame.astype({c: str for c in frame.columns if frame[c].dtype == object})
        out[name] = frame.sort_values(list(frame.columns)).reset_index(drop=True)
    return out


def _check_intact(catalog: Path) -> int:
    """Every version of every table reads in full; the index answers. Returns versions read."""
    cat = Catalog.open(str(catalog))
    n = 0
    for name in tables.list_tables(cat.root):
        for version in range(tables.table_version(cat.root, name) + 1):
            tables.read_table(cat.root, name, version=version)  # every file of the version
            n += 1
        cat.sql(f"select count(*) from {name}")
    return n


def _versions(catalog: Path) -> dict[str, list[int]]:
    root = Catalog.open(str(catalog)).root
    return {
        name: [
            tables.read_table(root, name, version=v).num_rows
            for v in range(tables.table_version(root, name) + 1)
        ]
        for name in tables.list_tables(root)
    }


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaskProcesses]:
    procs = DaskProcesses(tmp_path_factory.mktemp("dask"), env=_env())
    try:
        procs.add_workers("w1", "w2")
        yield procs
    finally:
        procs.close()


@dataclass
class Pipeline:
    """The uninterrupted pipeline: each step, the catalog before it, its wall time and the
    content of every table after it."""

    steps: list[tuple[str, list[str]]]
    reference: Path
    before: dict[str, Path] = field(default_factory=dict)
    expected: dict[str, dict[str, pd.DataFrame]] = field(default_factory=dict)
    wall: dict[str, float] = field(default_factory=dict)


@pytest.fixture(scope="module")
def pipeline(cluster: DaskProcesses, tmp_path_factory: pytest.TempPathFactory) -> Pipeline:
    work = tmp_path_factory.mktemp("pipeline")
    cohort = work / "cohort"
    generate_cohort(cohort, n_patients=6, seed=11, shape=(16, 48, 48))  # 2 per scanner
    config = work / "params.yaml"
    config.write_text(yaml.safe_dump(DEMO_SETTINGS))
    at_cluster = ["--scheduler", cluster.address]
    steps: list[tuple[str, list[str]]] = [
        ("ingest dicom", ["ingest", "dicom", str(cohort / "dicom"), "--json", *at_cluster]),
        ("ingest masks", ["ingest", "masks", str(cohort / "masks"), "--json"]),
        ("ingest omics", ["ingest", "omics", str(cohort / "omics" / "cohort.maf"),
                          "--kind", "mutations", "--json"]),
        ("features compute", ["features", "compute", "--config", str(config), "--json",
                              *at_cluster]),
        ("harmonize", ["harmonize", "--table", "features_radiomics", "--join", DEMO_GENOTYPE_SQL,
                       "--covariates", "tp53", "--json", *at_cluster]),
        ("datasets publish", ["datasets", "publish", "crash-cohort", "--sql", DATASET_SQL,
                              "--json"]),
    ]  # fmt: skip
    out = Pipeline(steps, work / "reference")
    _run(["init"], out.reference)
    for name, args in steps:
        out.before[name] = work / f"before-{name.replace(' ', '-')}"
        shutil.copytree(out.reference, out.before[name])
        start = time.perf_counter()
        _run(args, out.reference)
        out.wall[name] = time.perf_counter() - start
        out.expected[name] = _content(out.reference)
    return out


def test_every_command_twice_adds_no_version_and_says_so(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    again = tmp_path / "again"
    shutil.copytree(pipeline.reference, again)
    root = Catalog.open(str(again)).root
    before = {n: tables.table_version(root, n) for n in tables.list_tables(root)}
    said = {}
    for name, args in pipeline.steps:
        said[name] = json.loads(_run(args, again).stdout)
    after = {n: tables.table_version(root, n) for n in tables.list_tables(root)}
    changed = {n for n in after if after[n] != before.get(n)}
    assert changed <= {"runs", "quality_results"}, changed  # the reruns' own records only
    assert said["ingest dicom"]["series"] == []
    assert len(said["ingest dicom"]["unchanged"]) == 6
    assert said["ingest masks"]["rois"] == []
    assert len(said["ingest masks"]["unchanged"]) == 6
    assert all(v == 0 for v in said["ingest omics"]["rows"].values()), said["ingest omics"]
    assert said["features compute"]["unchanged"] is True
    assert said["harmonize"]["unchanged"] is True
    assert said["datasets publish"]["unchanged"] is True


def test_sigkill_at_random_points_loses_nothing(
    pipeline: Pipeline, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    steps, before, expected, wall = (
        pipeline.steps, pipeline.before, pipeline.expected, pipeline.wall
    )  # fmt: skip
    expected_dataset = Catalog.open(str(pipeline.reference)).dataset("crash-cohort")

    rng = random.Random(20261127)
    killable = [s for s in steps if s[0] != "ingest omics"]
    trials: list[tuple[str, float, bool]] = []
    deadline = time.monotonic() + BUDGET_S
    round_ = 0
    while round_ < 1 or time.monotonic() < deadline:
        for name, args in killable:
            trial = tmp_path / f"trial-{len(trials)}"
            shutil.copytree(before[name], trial)
            delay = rng.uniform(0.05, wall[name])
            finished = _killed(args, trial, delay)
            assert finished in (None, 0), f"{name} failed on its own (exit {finished})"
            trials.append((name, round(delay, 2), finished is None))
            versions_read = _check_intact(trial)
            assert versions_read > 0
            _run(args, trial)  # the rerun completes the work
            got = _content(trial)
            assert set(got) == set(expected[name]), name
            for table, frame in expected[name].items():
                pd.testing.assert_frame_equal(got[table], frame, obj=f"{name}: {table}")
            if name == "datasets publish":
                pd.testing.assert_frame_equal(
                    Catalog.open(str(trial)).dataset("crash-cohort"), expected_dataset
                )
            versions = _versions(trial)
            report = collect_garbage(Catalog.open(str(trial)).root, older_than_minutes=0)
            assert _versions(trial) == versions, f"gc changed a version after killing {name}"
            assert not list(trial.rglob(".tmp-*")), report.removed
            _check_intact(trial)
            shutil.rmtree(trial)
        round_ += 1
    killed = sum(1 for t in trials if t[2])
    with capsys.disabled():
        print(f"\ncrash safety: {len(trials)} trials, {killed} killed mid-run; kill points (s):")
        for name, _ in killable:
            points = [f"{d}{'' if k else '(done)'}" for n, d, k in trials if n == name]
            print(f"  {name:18s} {wall[name]:5.1f} s uninterrupted; killed at {', '.join(points)}")
    assert killed >= len(killable) // 2  # most delays fall inside a run
