"""Hypothesis strategies and assertions for radgen's tests and for users' own.

Examples
--------
>>> from hypothesis import given
>>> from radgen.testing import image_and_mask
>>> @given(image_and_mask())
... def test_mean_is_finite(case):  # doctest: +SKIP
...     image, mask, spacing = case
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

__all__ = [
    "DaskProcesses",
    "assert_features_close",
    "image_and_mask",
    "process_env",
    "spacings",
]


def spacings() -> st.SearchStrategy[tuple[float, float, float]]:
    """Voxel sizes (z, y, x) in mm between 0.3 and 5."""
    size = st.floats(0.3, 5.0, allow_nan=False, allow_infinity=False)
    return st.tuples(size, size, size)


@st.composite
def image_and_mask(
    draw: st.DrawFn,
    *,
    max_side: int = 12,
    low: float = -1024.0,
    high: float = 3071.0,
    integer: bool = True,
) -> tuple[npt.NDArray[Any], npt.NDArray[np.uint8], tuple[float, float, float]]:
    """A CT-like (z, y, x) image, a mask with at least one ROI voxel, and a spacing."""
    shape = draw(st.tuples(*(st.integers(1, max_side) for _ in range(3))))
    image: npt.NDArray[Any]
    if integer:
        image = draw(hnp.arrays(np.int16, shape, elements=st.integers(int(low), int(high))))
    else:
        floats = st.floats(low, high, allow_nan=False, allow_infinity=False, width=32)
        image = draw(hnp.arrays(np.float32, shape, elements=floats))
    mask = draw(hnp.arrays(np.uint8, shape, elements=st.integers(0, 1)))
    seed = draw(st.tuples(*(st.integers(0, s - 1) for s in shape)))
    mask[seed] = 1
    return image, mask, draw(spacings())


def assert_features_close(
    actual: Mapping[str, float],
    expected: Mapping[str, float],
    *,
    rtol: float = 1e-6,
    atol: float = 1e-9,
) -> None:
    """Assert two feature dicts have the same keys and values within tolerance (NaN == NaN).

    Raises
    ------
    AssertionError
        Naming every differing feature.
    """
    missing = sorted(set(expected) - set(actual))
    extra = sorted(set(actual) - set(expected))
    problems = [f"missing {k}" for k in missing] + [f"unexpected {k}" for k in extra]
    for key in sorted(set(actual) & set(expected)):
        a, e = float(actual[key]), float(expected[key])
        if math.isnan(a) and math.isnan(e):
            continue
        if not math.isclose(a, e, rel_tol=rtol, abs_tol=atol):
            problems.append(f"{key}: {a!r} != {e!r}")
    if problems:
        raise AssertionError("features differ: " + "; ".join(problems))


# --- real Dask processes (integration tests of cluster behaviour) ---

_BIN = Path(sys.executable).parent


def process_env(**extra: str) -> dict[str, str]:
    """The current environment minus ``RADGEN_SCHEDULER`` (tests choose), plus `extra`."""
    env = {**os.environ, "GX_ANALYTICS_ENABLED": "False", **extra}
    env.pop("RADGEN_SCHEDULER", None)
    return env


class DaskProcesses:
    """``dask scheduler`` and ``dask worker`` processes on 127.0.0.1, each killable on its own."""

    def __init__(self, folder: Path, env: Mapping[str, str] | None = None) -> None:
        self.env = dict(env or process_env())
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        info = folder / "scheduler.json"
        self.procs["scheduler"] = self._spawn(
            ["scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
             "--scheduler-file", str(info)]
        )  # fmt: skip
        deadline = time.time() + 60
        while not (info.exists() and info.stat().st_size):
            assert self.procs["scheduler"].poll() is None, "the scheduler exited"
            assert time.time() < deadline, "the scheduler did not start"
            time.sleep(0.2)
        self.address: str = json.loads(info.read_text())["address"]

    def _spawn(self, args: list[str]) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [str(_BIN / "dask"), *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=self.env,
            start_new_session=True,
        )

    def add_workers(self, *names: str) -> None:
        """One single-threaded worker process per name, without a nanny (SIGKILL removes it)."""
        for name in names:
            self.procs[name] = self._spawn(
                ["worker", self.address, "--name", name, "--nthreads", "1", "--no-nanny",
                 "--no-dashboard", "--host", "127.0.0.1"]
            )  # fmt: skip
        from distributed import Client

        with Client(self.address, timeout="30s") as client:
            client.wait_for_workers(len(self.procs) - 1, timeout=60)

    def close(self) -> None:
        """Stop the workers, then the scheduler (SIGTERM; SIGKILL after 10 s each)."""
        order = [n for n in self.procs if n != "scheduler"] + ["scheduler"]
        for name in order:
            proc = self.procs[name]
            if proc.poll() is None:
                proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
