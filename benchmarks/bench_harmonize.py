"""ComBat: radgen vs neuroCombat 0.2.12 on the same data, one run, with agreement check.

Headline figures (issue 8): parametric EB on 5,000 features x 2,000 samples, 4 batches,
2 covariates (target: at least 3x faster); non-parametric EB on 2,000 features x 500
samples (target: at least 50x faster, no NaN). neuroCombat runs on float64 numpy input with
the `np.int` shim NumPy 2 needs; its printing is silenced.

Usage: python benchmarks/bench_harmonize.py [--only parametric|nonparametric] [--scale 1.0]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import time

import numpy as np
import pandas as pd

from radgen.features.harmonize import combat

if not hasattr(np, "int"):
    setattr(np, "int", int)  # noqa: B010 - neuroCombat's reference path on NumPy 2
from neuroCombat import neuroCombat


def cohort(
    n_samples: int, n_features: int, n_batches: int, seed: int = 0
) -> tuple[pd.DataFrame, pd.Series, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    batch = pd.Series(np.arange(n_samples) % n_batches).map(lambda j: f"site{j}")
    geno = pd.Series(np.where(rng.random(n_samples) < 0.4, "mut", "wt"))
    age = pd.Series(rng.uniform(30, 85, n_samples).astype(np.float32).astype(np.float64))
    y = rng.normal(100, 15, (n_samples, n_features)) + (geno == "mut").to_numpy()[:, None] * 5
    for j in range(n_batches):
        rows = (batch == f"site{j}").to_numpy()
        y[rows] = y[rows] * rng.uniform(0.8, 1.3, n_features) + rng.normal(0, 8, n_features)
    return pd.DataFrame(y), batch, pd.DataFrame({"geno": geno, "age": age})


def best_of(repeat: int, fn):  # type: ignore[no-untyped-def]
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def run(n_samples: int, n_features: int, n_batches: int, parametric: bool, repeat: int) -> None:
    data, batch, cov = cohort(n_samples, n_features, n_batches)
    covars = pd.concat([pd.DataFrame({"batch": batch}), cov], axis=1)
    t_ours, ours = best_of(
        repeat, lambda: combat(data, batch, cov, parametric=parametric).to_numpy()
    )

    def theirs_fn():  # type: ignore[no-untyped-def]
        with contextlib.redirect_stdout(io.StringIO()), np.errstate(all="ignore"):
            return neuroCombat(
                data.to_numpy().T.copy(), covars, "batch", categorical_cols=["geno"], continuous_cols=["age"],
                parametric=parametric,
            )["data"].T  # fmt: skip

    t_theirs, theirs = best_of(repeat if parametric else 1, theirs_fn)
    works = np.isfinite(theirs)
    scale = np.broadcast_to(data.std().to_numpy(), theirs.shape)
    diff = (
        float(np.max(np.abs(ours - theirs)[works] / scale[works])) if works.any() else float("nan")
    )
    kind = "parametric" if parametric else "non-parametric"
    print(
        f"ComBat {kind} EB, {n_features:,} features x {n_samples:,} samples, {n_batches} batches, 2 covariates"
    )
    print(f"  (radgen: best of {repeat} runs; neuroCombat: best of {repeat if parametric else 1})")
    print(f"  neuroCombat 0.2.12 : {t_theirs:9.2f} s   NaN values: {int((~works).sum()):,}")
    print(f"  radgen             : {t_ours:9.2f} s   NaN values: {int(np.isnan(ours).sum()):,}")
    print(f"  speed-up           : {t_theirs / t_ours:9.1f} x")
    print(f"  largest difference where neuroCombat is finite: {diff:.1e} of the feature SD")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", choices=["parametric", "nonparametric"])
    parser.add_argument(
        "--scale", type=float, default=1.0, help="shrink the data sets (e.g. 0.2 for a quick run)"
    )
    args = parser.parse_args()
    if args.only in (None, "parametric"):
        run(int(2000 * args.scale), int(5000 * args.scale), 4, parametric=True, repeat=3)
    if args.only in (None, "nonparametric"):
        run(int(500 * args.scale), int(2000 * args.scale), 4, parametric=False, repeat=3)


if __name__ == "__main__":
    main()
