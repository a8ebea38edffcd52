"""SQL, publish and pull of a wide feature table: radgen vs raw DuckDB and a file copy, one run.

A feature table of N ROIs x F features (default 100,000 x 1,500 float64 columns, seeded, plus
the identifying string columns ``subject_id``, ``series_uid``, ``roi_id``, ``scanner_batch``,
``feature_set_version`` and ``run_id``) is committed as ``features_bench`` in a fresh catalog
(``Run.commit`` with ``suite=None``, overwrite). Then:

* **SQL**, best of ``--repeat`` per query, three representative queries (a group-by
  aggregate, a filtered count, a top-10 sort):

  - radgen, in process: ``Catalog.sql(query)`` (opens ``catalog.duckdb`` read-only, runs the
    query on the table's view, returns pandas);
  - radgen CLI: ``radgen sql --format csv`` as a subprocess, *including interpreter start-up
    and imports* (an extra column; ``select 1`` shows the start-up alone);
  - baseline, what users would otherwise write: ``duckdb.connect()`` in process (counted in
    the time), the same query with ``features_bench`` replaced by
    ``read_parquet([...files of the current Delta version...])``, and ``.df()``.

  Ratio = radgen in process / raw DuckDB (goal: at most 1.2x).

* **Datasets**: ``publish_dataset`` of ``select * from features_bench`` as ``bench@1`` in a
  run (pinned query, the ``datasets`` quality suite in Great Expectations including its first
  import in the process, zstd Parquet, SHA-256 manifest, the ``datasets`` commit), once; and
  ``pull_dataset(..., fmt="parquet")`` into a fresh folder (verifies every file's SHA-256),
  best of ``--repeat``. MB = total bytes of the dataset's Parquet files (1 MB = 1e6 bytes).
  Baselines: for pull, ``shutil.copyfile`` of the same Parquet files plus ``sha256sum`` on the
  copies (ratio = radgen pull / (copy + sha256sum)); for publish, DuckDB
  ``COPY (select * from read_parquet([...])) TO ... (COMPRESSION zstd)`` plus ``sha256sum``
  (ratio = radgen publish / baseline). A breakdown of publish, each step timed again on its
  own afterwards (so warm), shows where its time goes.

Usage: python benchmarks/bench_store.py [--rois 100000] [--features 1500] [--repeat 3]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")

TABLE = "features_bench"


def feature_name(i: int) -> str:
    """Column name of feature `i` (``f_0001``)."""
    return f"f_{i:04d}"


def build_table(rois: int, features: int) -> pa.Table:
    """A seeded feature table built column by column (no wide pandas frame in between)."""
    rng = np.random.default_rng(0)
    ids = np.arange(rois)
    columns: dict[str, Any] = {
        "subject_id": pa.array([f"P{i % 5000:05d}" for i in ids]),
        "series_uid": pa.array([f"1.2.826.0.1.3680043.8.498.{i // 2}" for i in ids]),
        "roi_id": pa.array([f"m-{i:08d}:1" for i in ids]),
        "scanner_batch": pa.array(rng.choice(["sb-a", "sb-b", "sb-c", "sb-d"], rois)),
        "feature_set_version": pa.array(["bench-v1"] * rois),
        "run_id": pa.array(["r-bench"] * rois),
    }
    for j in range(features):
        columns[feature_name(j)] = pa.array(rng.standard_normal(rois))
    return pa.table(columns)


def queries(features: int) -> list[tuple[str, str]]:
    """(label, SQL) of the timed queries, over the feature columns that exist."""
    first, mid, last = (
        feature_name(1 % features),
        feature_name(features // 2),
        feature_name(features - 1),
    )
    tenth = feature_name(min(10, features - 1))
    return [
        (
            "group-by avg",
            f"select scanner_batch, avg({first}), avg({mid}) from {TABLE} group by 1",
        ),
        ("filtered count", f"select count(*) from {TABLE} where {tenth} > 0.5"),
        (
            "top-10 sort",
            f"select roi_id, {first}, {last} from {TABLE} order by {first} desc limit 10",
        ),
    ]


def best(
    fn: Callable[[], Any], repeat: int, setup: Callable[[], None] | None = None
) -> tuple[float, Any]:
    """Best wall time of `repeat` calls of `fn` (`setup` runs untimed before each), last result."""
    times = []
    result: Any = None
    for _ in range(repeat):
        if setup is not None:
            setup()
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def same(left: pd.DataFrame, right: pd.DataFrame) -> bool:
    """Whether two query results agree, ignoring row order and float rounding."""
    if left.shape != right.shape:
        return False
    a = left.sort_values(list(left.columns)).reset_index(drop=True)
    b = right.sort_values(list(right.columns)).reset_index(drop=True)
    b.columns = a.columns
    try:
        pd.testing.assert_frame_equal(a, b, check_dtype=False, rtol=1e-9)
    except AssertionError:
        return False
    return True


def radgen_cli() -> list[str]:
    """Command that runs the ``radgen`` CLI of this interpreter's environment."""
    script = Path(sys.executable).parent / "radgen"
    if script.exists():
        return [str(script)]
    found = shutil.which("radgen")
    if found is None:
        raise SystemExit("the radgen CLI is not installed next to this interpreter")
    return [found]


def run_cli(catalog: Path, query: str) -> str:
    """Run ``radgen sql --format csv`` in a subprocess; its stdout."""
    result = subprocess.run(
        [*radgen_cli(), "sql", "--catalog", str(catalog), "--format", "csv", query],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"radgen sql failed: {result.stderr}")
    return result.stdout


def raw_duckdb(query: str, files: list[str]) -> pd.DataFrame:
    """The baseline: a fresh in-process DuckDB reading the Parquet files directly."""
    import duckdb

    listing = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
    con = duckdb.connect()
    try:
        return con.sql(query.replace(TABLE, f"read_parquet([{listing}])")).df()
    finally:
        con.close()


def sha256sum(files: list[Path]) -> None:
    """Hash `files` with the coreutils ``sha256sum`` (as a user's script would)."""
    subprocess.run(["sha256sum", *map(str, files)], capture_output=True, check=True)


def copy_and_hash(files: list[Path], dest: Path) -> None:
    """The pull baseline: ``shutil.copyfile`` every file into `dest`, then ``sha256sum``."""
    dest.mkdir(parents=True, exist_ok=True)
    copies = []
    for f in files:
        target = dest / f.name
        shutil.copyfile(f, target)
        copies.append(target)
    sha256sum(copies)


def gx_import_seconds() -> float:
    """Cold ``import great_expectations`` in a fresh interpreter, seconds."""
    code = (
        "import time; t = time.perf_counter(); import great_expectations; "
        "print(time.perf_counter() - t)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    return float(out.strip().splitlines()[-1])


def bench_sql(cat: Any, catalog: Path, files: list[str], features: int, repeat: int) -> None:
    """Time the queries through radgen (in process and CLI) and raw DuckDB; print a table."""
    cli_start, _ = best(lambda: run_cli(catalog, "select 1"), repeat)
    print(
        f"\n{'query':16} {'radgen s':>9} {'raw duckdb s':>13} {'ratio':>7} {'same':>5} "
        f"{'CLI s (incl. start-up)':>23}"
    )
    for label, query in queries(features):
        raw_duckdb(query, files)  # warm the page cache
        t_raw, raw = best(lambda q=query: raw_duckdb(q, files), repeat)
        t_ours, ours = best(lambda q=query: cat.sql(q), repeat)
        t_cli, _ = best(lambda q=query: run_cli(catalog, q), repeat)
        print(
            f"{label:16} {t_ours:9.3f} {t_raw:13.3f} {t_ours / t_raw:6.2f}x "
            f"{'yes' if same(ours, raw) else 'NO':>5} {t_cli:23.2f}"
        )
    print(f"{'CLI select 1':16} {'':9} {'':13} {'':7} {'':5} {cli_start:23.2f}")
    print("ratio = radgen Catalog.sql / raw DuckDB read_parquet (goal: <= 1.2x)")


def bench_datasets(cat: Any, files: list[str], work: Path, repeat: int) -> None:
    """Publish and pull ``select * from features_bench``; print MB/s and the baselines."""
    import duckdb

    from radgen.platform.datasets import parse_ref, publish_dataset, pull_dataset, query_pinned
    from radgen.validation.gate import run_suite

    sql = f"select * from {TABLE}"
    start = time.perf_counter()
    with cat.run("datasets publish", {"name": "bench", "sql": sql, "description": ""}) as run:
        manifest = publish_dataset(run, "bench", sql)
    t_publish = time.perf_counter() - start
    base = cat.root.local_path("datasets", "bench", str(manifest["version"]))
    data_files = [Path(base) / e["path"] for e in manifest["files"]]
    mb = sum(int(e["size"]) for e in manifest["files"]) / 1e6

    dest = work / "pulled"

    def clear() -> None:
        shutil.rmtree(dest, ignore_errors=True)

    t_pull, _ = best(
        lambda: pull_dataset(cat.root, parse_ref("bench@1"), dest, fmt="parquet"), repeat, clear
    )
    t_copy, _ = best(lambda: copy_and_hash(data_files, dest), repeat, clear)
    clear()

    listing = ", ".join(f"'{f}'" for f in files)
    out = work / "duckdb-copy.parquet"

    def duckdb_publish() -> None:
        con = duckdb.connect()
        try:
            con.execute(
                f"COPY (select * from read_parquet([{listing}])) TO '{out}' "
                "(FORMAT parquet, COMPRESSION zstd)"
            )
        finally:
            con.close()
        sha256sum([out])

    t_base_publish, _ = best(duckdb_publish, 1)

    # where publish's time goes: each step again, on its own (warm: GX already imported)
    t_query, result = best(lambda: query_pinned(cat.root, sql, manifest["table_versions"]), 1)
    t_suite, _ = best(lambda: run_suite("datasets", result.to_pandas(), target="dataset bench"), 1)

    def encode() -> None:
        import pyarrow.parquet as pq

        sink = io.BytesIO()
        pq.write_table(result, sink, compression="zstd")
        hashlib.sha256(sink.getvalue()).hexdigest()

    t_encode, _ = best(encode, 1)
    t_gx = gx_import_seconds()

    print(
        f"\ndataset bench@1: {manifest['n_rows']:,} rows, {len(data_files)} file(s), {mb:,.0f} MB"
    )
    print(f"{'step':40} {'s':>8} {'MB/s':>8} {'ratio':>7}")
    print(
        f"{'radgen publish (incl. GX suite)':40} {t_publish:8.2f} {mb / t_publish:8.0f} "
        f"{t_publish / t_base_publish:6.2f}x"
    )
    print(
        f"{'  baseline: DuckDB COPY zstd + sha256sum':40} {t_base_publish:8.2f} "
        f"{mb / t_base_publish:8.0f}"
    )
    print("  breakdown (each timed alone, warm):")
    print(f"{'    query_pinned (read pinned version)':40} {t_query:8.2f}")
    print(f"{'    datasets suite (to_pandas + GX)':40} {t_suite:8.2f}")
    print(f"{'    zstd Parquet encode + SHA-256':40} {t_encode:8.2f}")
    print(f"{'    cold import great_expectations':40} {t_gx:8.2f}")
    print(
        f"{'radgen pull (parquet, verified)':40} {t_pull:8.2f} {mb / t_pull:8.0f} "
        f"{t_pull / t_copy:6.2f}x"
    )
    print(f"{'  baseline: copyfile + sha256sum':40} {t_copy:8.2f} {mb / t_copy:8.0f}")
    print("ratio = radgen seconds / baseline seconds (above 1 means radgen is slower)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rois", type=int, default=100_000)
    parser.add_argument("--features", type=int, default=1_500)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    from radgen.platform.catalog import Catalog
    from radgen.platform.tables import table_files

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        catalog = work / "catalog"

        start = time.perf_counter()
        data = build_table(args.rois, args.features)
        t_build = time.perf_counter() - start

        start = time.perf_counter()
        cat = Catalog.init(str(catalog))
        t_init = time.perf_counter() - start

        start = time.perf_counter()
        with cat.run("bench", {}) as run:
            version = run.commit(TABLE, data, suite=None, mode="overwrite")
        t_commit = time.perf_counter() - start
        in_memory = data.nbytes / 1e6
        del data

        files = [
            u[len("file://") :] if u.startswith("file://") else u
            for u in table_files(cat.root, TABLE, version)
        ]
        on_disk = sum(Path(f).stat().st_size for f in files) / 1e6
        print(
            f"{TABLE}: {args.rois:,} ROIs x {args.features:,} float64 features "
            f"({in_memory:,.0f} MB in Arrow, {on_disk:,.0f} MB in {len(files)} Parquet file(s))"
        )
        print(
            f"  build {t_build:.1f} s, Catalog.init {t_init:.1f} s, "
            f"commit (suite=None) {t_commit:.1f} s"
        )

        bench_sql(cat, catalog, files, args.features, args.repeat)
        bench_datasets(cat, files, work, args.repeat)


if __name__ == "__main__":
    main()
