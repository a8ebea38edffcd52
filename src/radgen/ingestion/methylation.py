"""Methylation beta matrices (probe or gene rows, sample columns) -> long ``methylation`` rows."""

from __future__ import annotations

import numpy as np
import pandas as pd

from radgen.errors import InputError
from radgen.ingestion._tabular import (
    DEFAULT_PATIENT_PATTERN,
    numeric,
    patient_ids,
    read_table,
    reject_duplicates,
)

__all__ = ["BETA_CLIP", "parse_methylation"]

#: Betas are clipped to [BETA_CLIP, 1 - BETA_CLIP] before the M value is taken.
BETA_CLIP = 1e-6
_ANNOTATIONS = {
    "Entrez_Gene_Id",
    "Gene_Symbol",
    "Chromosome",
    "Genomic_Coordinate",
    "Hugo_Symbol",
    "Composite Element REF",
}


def parse_methylation(path: str, *, patient_pattern: str = DEFAULT_PATIENT_PATTERN) -> pd.DataFrame:
    """Read a wide beta-value table into ``methylation`` rows.

    The first column is the feature (probe or gene); known annotation columns are dropped;
    every other column is a sample. ``m_value = log2(beta / (1 - beta))`` with beta clipped to
    [1e-6, 1 - 1e-6]. Missing cells stay NULL.

    Raises
    ------
    InputError
        A beta that is not a number or lies outside [0, 1] (naming line and sample), or a
        repeated feature.
    """
    frame = read_table(path)
    if frame.shape[1] < 2:
        raise InputError(path, "not a methylation table: needs a feature column and sample columns")
    id_col = frame.columns[0]
    features = frame[id_col].str.strip()
    reject_duplicates(frame, [id_col], pd.DataFrame({id_col: features}), "feature")
    samples = [c for c in frame.columns[1:] if c not in _ANNOTATIONS]
    wide = pd.DataFrame({c: numeric(frame, c, low=0.0, high=1.0) for c in samples})
    wide.insert(0, "feature", features)
    long = wide.melt(id_vars="feature", var_name="sample_id", value_name="beta")
    out = pd.DataFrame(
        {
            "sample_id": long["sample_id"].str.strip(),
            "feature": long["feature"],
            "beta": long["beta"].astype("float64"),
        }
    )
    clipped = out["beta"].clip(BETA_CLIP, 1 - BETA_CLIP)
    out["m_value"] = np.log2(clipped / (1 - clipped))
    out["patient_id"] = patient_ids(out["sample_id"], patient_pattern)
    return out
