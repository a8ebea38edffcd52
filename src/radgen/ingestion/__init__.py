"""Ingestion: DICOM series, masks and omics files into the catalog."""

from __future__ import annotations

__all__: list[str] = []
