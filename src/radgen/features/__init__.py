"""Radiomic features: pure kernels, one-ROI extraction and cluster computation.

``radgen.features.extract(image, mask, spacing, settings)`` computes the features of one ROI
held in memory.
"""

from __future__ import annotations

from radgen.features.extract import extract
from radgen.features.settings import Settings, load_settings

__all__ = ["Settings", "extract", "load_settings"]
