"""IBSI-1 digital phantom fixtures shared by the conformance tests.

Source of every expected number: ../shared/data/ibsi/ibsi1_reference_values_digital_phantom.csv
(IBSI reference manual, arXiv:1612.07003). Values are printed to 3 significant digits; where
the table gives no tolerance, the tolerance is half a unit of the last printed digit.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import numpy.typing as npt
import pytest

#: The source's typo for NGTDM complexity (see ../shared/data/ibsi/README.md).
_TAG_FIXES = {"ntg.complexity": "ngt.complexity"}


@dataclass(frozen=True)
class Reference:
    """One row of the IBSI digital phantom reference table."""

    key: str  # "<tag>" or "<tag> [<aggregation>]", the key radgen's IBSI convention returns
    tag: str
    aggregation: str
    value: float
    tolerance: float


def half_unit_of_last_digit(value: float) -> float:
    """Half a unit of the third significant digit of `value`."""
    if value == 0:
        return 5e-4
    exponent = math.floor(math.log10(abs(value))) - 2
    return 0.5 * 10.0**exponent


def ibsi_key(tag: str, aggregation: str) -> str:
    """The feature key of the IBSI convention: ``cm.contrast [3D, averaged]`` or ``stat.mean``."""
    return f"{tag} [{aggregation}]" if aggregation else tag


@pytest.fixture(scope="session")
def ibsi_reference(shared_data: Path) -> list[Reference]:
    """All 482 reference rows of the digital phantom."""
    path = shared_data / "ibsi" / "ibsi1_reference_values_digital_phantom.csv"
    rows = []
    with path.open() as fh:
        for r in csv.DictReader(fh):
            tag = _TAG_FIXES.get(r["tag"], r["tag"])
            value = float(r["value"])
            tol = float(r["tolerance"]) if r["tolerance"] else half_unit_of_last_digit(value)
            rows.append(
                Reference(ibsi_key(tag, r["aggregation"]), tag, r["aggregation"], value, tol)
            )
    return rows


@pytest.fixture(scope="session")
def ibsi_phantom(
    shared_data: Path,
) -> tuple[npt.NDArray[np.int16], npt.NDArray[np.int16], tuple[float, float, float]]:
    """The digital phantom as radgen takes it: image and mask (z, y, x), spacing (z, y, x)."""
    img = nib.load(shared_data / "ibsi" / "ibsi1_digital_phantom_image.nii.gz")
    msk = nib.load(shared_data / "ibsi" / "ibsi1_digital_phantom_mask.nii.gz")
    image = np.transpose(np.asarray(img.dataobj), (2, 1, 0))
    mask = np.transpose(np.asarray(msk.dataobj), (2, 1, 0))
    sx, sy, sz = (float(v) for v in img.header.get_zooms()[:3])
    return image, mask, (sz, sy, sx)
