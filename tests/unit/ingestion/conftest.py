"""Fixtures of the ingestion tests: an in-process Dask client and a fresh catalog."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from distributed import Client

from radgen.platform.catalog import Catalog


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    """Threads in this process: the Dask tasks of ingestion without worker start-up."""
    with Client(processes=False, n_workers=1, threads_per_worker=2, dashboard_address=":0") as c:
        yield c


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    """An empty catalog of its own for each test."""
    return Catalog.init(str(tmp_path / "cat"))
