"""One exception hierarchy for radgen.

Every error carries the `path` it is about (a file, table, series UID or setting key) and a
human `reason`, and renders as ``ErrorName: path: reason`` so the CLI can print it as one
line. Library errors are re-raised with ``raise ... from err``.
"""

from __future__ import annotations

__all__ = [
    "CatalogError",
    "ConfigError",
    "CorruptDicomError",
    "EmptyRoiError",
    "InputError",
    "IntegrityError",
    "NotFoundError",
    "RadgenError",
    "ValidationFailed",
]


class RadgenError(Exception):
    """Base class of every error radgen raises on purpose.

    Parameters
    ----------
    path : str
        What the error is about: a file path, a table name, a series UID, a setting key.
    reason : str
        Why, in words a user can act on.
    """

    def __init__(self, path: str | object, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}" if self.path else reason)

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}" if self.path else self.reason

    def one_line(self) -> str:
        """Render as ``ErrorName: path: reason`` on a single line."""
        text = f"{type(self).__name__}: {self}"
        return " ".join(text.split())


class InputError(RadgenError):
    """Bad input data: corrupt file, wrong column, NaN, empty ROI, duplicate slice."""


class CorruptDicomError(InputError):
    """A DICOM file or series that cannot be turned into a volume."""


class EmptyRoiError(InputError):
    """A mask or label that selects no voxel."""


class ConfigError(RadgenError):
    """A setting, YAML key or command option that is unknown or out of range."""


class CatalogError(RadgenError):
    """The catalog root, a table or a dataset is missing or inconsistent."""


class NotFoundError(CatalogError):
    """A table, version, series, mask or dataset that does not exist."""


class IntegrityError(CatalogError):
    """Stored bytes do not match the SHA-256 recorded for them."""


class ValidationFailed(RadgenError):
    """A data-quality suite failed; nothing was committed.

    Parameters
    ----------
    path : str
        The table or stage whose suite failed.
    reason : str
        Summary of the failed expectations.
    details : list of str, optional
        One line per failed expectation with example rows.
    """

    def __init__(self, path: str | object, reason: str, details: list[str] | None = None) -> None:
        super().__init__(path, reason)
        self.details = list(details or [])
