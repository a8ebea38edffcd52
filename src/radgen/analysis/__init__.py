"""Radiogenomic analysis over catalog tables: NumPy/pandas in, plain results out."""

from __future__ import annotations

from radgen.analysis.association import benjamini_hochberg, mutation_feature_association

__all__ = ["benjamini_hochberg", "mutation_feature_association"]
