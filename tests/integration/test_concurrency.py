"""Two processes writing one catalog at once: distinct versions or a clear retryable error,
never a lost or mixed write, and readers never see half a version."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from radgen.platform.catalog import Catalog
from radgen.testing import process_env

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BIN = Path(sys.executable).parent
ROWS_PER_COMMIT = 50
COMMITS = 6
S3_COMMITS = 3  # each commit round-trips the bucket several times

WRITER = """
import sys, pandas as pd
import radgen
from radgen.errors import CatalogError
catalog = radgen.open_catalog(sys.argv[1])
tag, commits, rows = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
retried = 0
for c in range(commits):
    frame = pd.DataFrame({"roi_id": [f"{tag}-{c}-{i}" for i in range(rows)], "v": [float(c)] * rows})
    while True:
        try:
            with catalog.run("writer", {"tag": tag, "c": c}) as run:
                run.commit("scores", frame, suite=None)
            break
        except CatalogError as err:
            assert "run the command again" in str(err), err
            retried += 1
print(retried)
"""


def _spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=process_env()
    )


def test_concurrent_appends_all_land_and_readers_see_whole_versions(tmp_path: Path) -> None:
    catalog = Catalog.init(str(tmp_path / "cat"))
    with catalog.run("seed", {}) as run:
        run.commit("scores", pd.DataFrame({"roi_id": ["seed"], "v": [0.0]}), suite=None)
    writers = [
        _spawn(sys.executable, "-c", WRITER, str(tmp_path / "cat"), tag, str(COMMITS), str(ROWS_PER_COMMIT))
        for tag in ("a", "b")
    ]  # fmt: skip
    seen: set[int] = set()
    while any(w.poll() is None for w in writers):
        n = len(catalog.table("scores"))  # the current version, read while commits land
        assert (n - 1) % ROWS_PER_COMMIT == 0, f"a reader saw {n} rows: half a commit"
        seen.add(n)
        time.sleep(0.05)
    for writer in writers:
        _, err = writer.communicate()
        assert writer.returncode == 0, err
    frame = catalog.table("scores")
    assert len(frame) == 1 + 2 * COMMITS * ROWS_PER_COMMIT  # nothing lost
    assert frame["roi_id"].is_unique  # nothing doubled
    history = catalog.history("scores")
    assert len(history) == 1 + 2 * COMMITS  # one distinct version per commit
    assert len(seen) >= 2, "the reader never overlapped the writers"
    # the index shows the newest version after both writers
    assert catalog.sql("select count(*) as n from scores")["n"][0] == len(frame)


def test_concurrent_publish_gives_distinct_versions_or_a_retryable_error(tmp_path: Path) -> None:
    root = str(tmp_path / "cat")
    catalog = Catalog.init(root)
    with catalog.run("seed", {}) as run:
        run.commit("scores", pd.DataFrame({"roi_id": ["r1", "r2"], "v": [1.0, 2.0]}), suite=None)
    outcomes = []
    for round_ in range(3):
        with catalog.run("seed", {}) as run:  # a new table version, so each round publishes
            run.commit("scores", pd.DataFrame({"roi_id": [f"x{round_}"], "v": [9.0]}), suite=None)
        procs = [
            _spawn(str(BIN / "radgen"), "datasets", "publish", "cohort", "--sql",
                   f"select *, {i} as publisher from scores", "--json", "--catalog", root)
            for i in range(2)
        ]  # fmt: skip
        for proc in procs:
            out, err = proc.communicate(timeout=300)
            if proc.returncode == 0:
                outcomes.append(("ok", json.loads(out)["version"]))
            else:
                lines = err.strip().splitlines()
                assert len(lines) == 1, err  # one line, no traceback
                assert "publish again" in lines[0] or "run the command again" in lines[0], err
                outcomes.append(("retry", None))
    published = sorted(v for kind, v in outcomes if kind == "ok")
    assert published == list(range(1, len(published) + 1))  # distinct, no gap, none overwritten
    listed = catalog.list_datasets()
    assert sorted(listed["version"]) == published
    for version in published:  # every published version is whole and verifies
        assert len(catalog.dataset("cohort", version)) >= 3


def test_concurrent_appends_on_s3_all_land(
    s3_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """On an object store there is no atomic rename: Delta commits use If-None-Match instead."""
    root = "s3://radgen/concurrency"
    for key in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_REGION",
        "AWS_ENDPOINT_URL",
        "RADGEN_CACHE",
    ):
        monkeypatch.setenv(key, s3_env[key])
    catalog = Catalog.init(root)
    with catalog.run("seed", {}) as run:
        run.commit("scores", pd.DataFrame({"roi_id": ["seed"], "v": [0.0]}), suite=None)
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, root, tag, str(S3_COMMITS), str(ROWS_PER_COMMIT)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=s3_env,
        )
        for tag in ("a", "b")
    ]  # fmt: skip
    for writer in writers:
        _, err = writer.communicate(timeout=600)
        assert writer.returncode == 0, err
    frame = catalog.table("scores")
    assert len(frame) == 1 + 2 * S3_COMMITS * ROWS_PER_COMMIT
    assert frame["roi_id"].is_unique
    assert len(catalog.history("scores")) == 1 + 2 * S3_COMMITS
