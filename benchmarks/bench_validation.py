"""Quality suite on a large feature table: radgen's gate vs a column-by-column GX suite.

Issue 10's bound: the features suite on a 100,000-row table must take under 10 s. radgen
validates the identifying columns row by row and the feature columns through a per-feature
profile; the comparison is the naive suite users would write in Great Expectations (one
not-null expectation per feature column over every row), on the same frame.

Usage: python benchmarks/bench_validation.py [--rows 100000] [--features 300]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import pandas as pd

os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")


def table(rows: int, features: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        rng.normal(0, 1, (rows, features)), columns=[f"stat_f{i}" for i in range(features)]
    )
    frame.insert(0, "roi_id", [f"m-{i:08d}:1" for i in range(rows)])
    frame.insert(1, "series_uid", [f"1.2.{i}" for i in range(rows)])
    frame.insert(2, "subject_id", [f"P{i % 5000}" for i in range(rows)])
    frame.insert(3, "scanner_batch", rng.choice(["sb-a", "sb-b", "sb-c"], rows))
    frame["kvp"] = 120.0
    frame["feature_set_version"] = "v"
    frame["run_id"] = "r"
    return frame


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--features", type=int, default=300)
    args = parser.parse_args()

    from radgen.validation.gate import run_suite
    from radgen.validation.profiles import suite_frames

    data = table(args.rows, args.features)
    previous = data.sample(frac=0.5, random_state=1)
    run_suite(
        "features",
        data.head(10)[["roi_id", "series_uid", "scanner_batch", "run_id"]],
        target="warm",
    )  # import GX

    start = time.perf_counter()
    results = [
        run_suite(s, f, target=t)
        for s, f, t in suite_frames("features", data, "features_big", previous=previous)
    ]
    t_radgen = time.perf_counter() - start
    assert all(r.status == "passed" for r in results), [r.failures for r in results]

    import great_expectations as gx

    start = time.perf_counter()
    ctx = gx.get_context(mode="ephemeral")
    batch_def = (
        ctx.data_sources.add_pandas("p")
        .add_dataframe_asset("t")
        .add_batch_definition_whole_dataframe("b")
    )
    suite = gx.ExpectationSuite(name="naive")
    for col in data.columns:
        suite.add_expectation(gx.expectations.ExpectColumnValuesToNotBeNull(column=col))
    batch_def.get_batch(batch_parameters={"dataframe": data}).validate(suite)
    t_naive = time.perf_counter() - start

    print(
        f"features suite on {args.rows:,} rows x {args.features} features (+ drift against the previous version)"
    )
    print(f"  GX, one not-null expectation per column : {t_naive:7.2f} s")
    print(f"  radgen features suite (rows + profile)  : {t_radgen:7.2f} s   (bound: 10 s)")
    print(f"  ratio                                   : {t_naive / t_radgen:7.1f} x")


if __name__ == "__main__":
    main()
