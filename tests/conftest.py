"""Shared fixtures: reference data location, catalogs on tmp paths, small cohorts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared reference data folder (IBSI phantom, real omics files)."""
    candidates = [
        os.environ.get("RADGEN_SHARED_DATA"),
        str(REPO.parent / "shared" / "data"),
        "/work/shared/data",
    ]
    for candidate in candidates:
        if candidate and (Path(candidate) / "ibsi").is_dir():
            return Path(candidate)
    pytest.fail(
        "reference data not found: set RADGEN_SHARED_DATA to the folder holding ibsi/ and omics/"
    )
