from __future__ import annotations

from pathlib import Path

import pytest

from radgen.platform.catalog import Catalog


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    return Catalog.init(str(tmp_path / "cat"))
