"""Catalog core: storage roots, versioned tables, the DuckDB index, runs, lineage, cluster.

This is the only layer that touches paths, Zarr, Delta or DuckDB.
"""

from __future__ import annotations

__all__: list[str] = []
