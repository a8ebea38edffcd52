"""Table schemas and the feature registry: the single source of truth for names and units."""

from __future__ import annotations

from radgen.schemas.features import FEATURES, Feature, column_name
from radgen.schemas.tables import TABLES, schema_for

__all__ = ["FEATURES", "TABLES", "Feature", "column_name", "schema_for"]
