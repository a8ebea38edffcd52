"""De-identification: the DICOM PS3.15 basic profile with the options radgen applies.

radgen never copies a DICOM file: it reads a few attributes of each header into tables and
Zarr attributes. De-identification therefore acts on what is kept, following PS3.15 Annex E
(Basic Application Level Confidentiality Profile) with these options:

Retain Device Identity
    Manufacturer, model, software versions, kernel, kVp, field strength are kept: they
    define the scanner batch that harmonization removes.
Retain Patient Characteristics
    Sex, age, size and weight may be kept (radgen stores none of them from DICOM today).
Retain Longitudinal Temporal Information with Modified Dates
    Every date of a subject moves by one keyed offset (1 to 365 days back), so intervals
    between that subject's scans survive and calendar dates do not.
Clean Descriptors
    Series descriptions are kept with any identifying value of the header removed.

Everything else of the basic profile that reaches the catalog is replaced:

- ``PatientID`` becomes ``subject_id``, a keyed pseudonym ``sub-<16 hex>`` (HMAC-SHA-256);
  the same key gives the same pseudonym in every run, so omics samples of the patient link
  to the same subject (:func:`radgen.ingestion.omics` uses :meth:`Deidentifier.subject`).
- Study, series and SOP Instance UIDs become keyed UIDs under the ``2.25`` root (stable, so a
  re-run finds its series again; masks that reference the original UIDs are mapped the same
  way).
- Patient names, birth dates, other IDs, accession numbers, addresses and physician or
  operator names are never stored; any of these values found inside a stored path or
  description is replaced by the subject's pseudonym (``[redacted]`` when not a patient id).

The key lives in ``ROOT/config/deid.json`` (created on first use, never written to a table,
log or output); ``RADGEN_DEID_KEY`` (hex) overrides it, for several catalogs that must share
pseudonyms.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import hmac
import os
import re
import secrets
from collections.abc import Collection, Iterable
from dataclasses import dataclass

import pydicom

from radgen.errors import CatalogError
from radgen.platform.storage import Root

__all__ = ["PROFILE", "Deidentifier", "phi_values"]

#: What the ``deidentification`` column of ``series`` records.
PROFILE = (
    "PS3.15 basic profile; options: retain device identity, retain patient characteristics, "
    "retain longitudinal temporal information with modified dates, clean descriptors"
)

_KEY_FILE = ("config", "deid.json")
_KEY_ENV = "RADGEN_DEID_KEY"

#: Header attributes whose values must not appear anywhere under the root.
PHI_KEYWORDS = (
    "PatientID",
    "PatientName",
    "OtherPatientIDs",
    "OtherPatientNames",
    "PatientBirthDate",
    "PatientBirthName",
    "PatientMotherBirthName",
    "PatientAddress",
    "PatientTelephoneNumbers",
    "AccessionNumber",
    "ReferringPhysicianName",
    "PerformingPhysicianName",
    "NameOfPhysiciansReadingStudy",
    "OperatorsName",
    "RequestingPhysician",
    "InstitutionName",
    "InstitutionAddress",
    "InstitutionalDepartmentName",
    "MilitaryRank",
    "EthnicGroup",
    "MedicalRecordLocator",
)

#: Values shorter than this are not searched for in text (``"1"`` would mangle every path).
_MIN_REDACT_LENGTH = 3


def phi_values(ds: pydicom.Dataset) -> tuple[str, ...]:
    """Identifying values of one header (each name also split into its ``^`` components).

    Parameters
    ----------
    ds : pydicom.Dataset
        A header (pixels not needed).

    Returns
    -------
    tuple of str
        Distinct non-empty values, longest first.
    """
    found: set[str] = set()
    for keyword in PHI_KEYWORDS:
        value = ds.get(keyword)
        if value is None or value == "":
            continue
        items = value if isinstance(value, pydicom.multival.MultiValue) else [value]
        for item in items:
            text = str(item).strip()
            if not text:
                continue
            found.add(text)
            found.update(part.strip() for part in re.split(r"[\^=]", text) if part.strip())
    return tuple(sorted(found, key=lambda v: (-len(v), v)))


@dataclass(frozen=True)
class Deidentifier:
    """Keyed pseudonyms, UIDs, date shifts and redaction for one catalog.

    Parameters
    ----------
    key : bytes
        Secret of the catalog (see the module docstring).
    """

    key: bytes

    def __repr__(self) -> str:  # never print the key
        return "Deidentifier(key=<hidden>)"

    @classmethod
    def for_root(cls, root: Root) -> Deidentifier:
        """The catalog's de-identifier, creating its key on first use.

        Raises
        ------
        CatalogError
            ``RADGEN_DEID_KEY`` is not hexadecimal or shorter than 16 bytes.
        """
        env = os.environ.get(_KEY_ENV)
        if env:
            try:
                key = bytes.fromhex(env.strip())
            except ValueError as err:
                raise CatalogError(_KEY_ENV, "must be a hexadecimal key") from err
            if len(key) < 16:
                raise CatalogError(_KEY_ENV, "must hold at least 16 bytes (32 hex digits)")
            return cls(key)
        if not root.exists(*_KEY_FILE):
            root.makedirs(_KEY_FILE[0])
            # Catalog.init creates it; this covers catalogs made before de-identification.
            # If another run wrote it first, its key wins.
            with contextlib.suppress(CatalogError):
                root.write_json(
                    {
                        "key": secrets.token_hex(32),
                        "created_at": dt.datetime.now(dt.UTC).isoformat(),
                    },
                    *_KEY_FILE,
                    overwrite=False,
                )
        return cls(bytes.fromhex(root.read_json(*_KEY_FILE)["key"]))

    def _mac(self, kind: str, value: str) -> bytes:
        return hmac.new(self.key, f"{kind}\0{value}".encode(), hashlib.sha256).digest()

    def subject(self, patient_id: str | None) -> str:
        """Keyed pseudonym of a patient id: ``sub-`` and 16 hex digits (empty id allowed)."""
        return "sub-" + self._mac("subject", (patient_id or "").strip()).hex()[:16]

    def uid(self, uid: str) -> str:
        """Keyed replacement of a DICOM UID under the ``2.25`` (UUID-derived) root."""
        return "2.25." + str(int.from_bytes(self._mac("uid", uid.strip())[:16], "big"))

    def date_shift(self, patient_id: str | None) -> dt.timedelta:
        """How far every date of this patient moves back: 1 to 365 whole days."""
        days = int.from_bytes(self._mac("date", (patient_id or "").strip())[:4], "big") % 365
        return dt.timedelta(days=days + 1)

    def redact(self, text: str, phi: Iterable[str], patient_id: str | None = None) -> str:
        """`text` with identifying values (at least 3 characters long) replaced.

        The patient id becomes the subject's pseudonym (a folder named after the patient
        stays recognisable per subject); every other value becomes ``[redacted]``.
        """
        if patient_id and len(patient_id.strip()) >= _MIN_REDACT_LENGTH:
            text = text.replace(patient_id.strip(), self.subject(patient_id))
        for value in sorted(set(phi), key=len, reverse=True):
            if len(value) >= _MIN_REDACT_LENGTH and value in text:
                text = text.replace(value, "[redacted]")
        return text

    def redact_ids(self, text: str, subjects: Collection[str]) -> str:
        """`text` with every patient id behind one of `subjects` replaced by its pseudonym.

        For files that carry no identifying header (NIfTI masks, paths of other files): the
        pseudonym is keyed, so a token of the text is a patient id exactly when its pseudonym
        is a subject of the catalog. Tokens are the parts between slashes, backslashes,
        underscores, dots and blanks,
        and every run of their ``-``-separated pieces (``TCGA-02-0001-seg`` holds
        ``TCGA-02-0001``).
        """
        if not subjects:
            return text
        found: dict[str, str] = {}
        for token in re.split(r"[/\\_.\s]+", text):
            pieces = token.split("-")
            for i in range(len(pieces)):
                for j in range(i + 1, min(len(pieces), i + 6) + 1):
                    candidate = "-".join(pieces[i:j])
                    if len(candidate) >= _MIN_REDACT_LENGTH and candidate not in found:
                        pseudonym = self.subject(candidate)
                        if pseudonym in subjects:
                            found[candidate] = pseudonym
        for value in sorted(found, key=len, reverse=True):
            text = text.replace(value, found[value])
        return text
