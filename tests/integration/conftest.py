"""Real Dask processes for the integration tests (see :class:`radgen.testing.DaskProcesses`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from radgen.testing import DaskProcesses


@pytest.fixture
def dask_processes(tmp_path: Path) -> Iterator[DaskProcesses]:
    """A scheduler with two workers, ``w1`` and ``w2``."""
    procs = DaskProcesses(tmp_path)
    try:
        procs.add_workers("w1", "w2")
        yield procs
    finally:
        procs.close()
