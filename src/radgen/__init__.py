"""radgen: a radiogenomics data catalog and feature store.

DICOM series and omics files go in; chunked Zarr images, versioned Delta tables, IBSI
radiomic features and hash-verified datasets come out. Start with :func:`open_catalog`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from radgen._version import __version__

if TYPE_CHECKING:
    from radgen.platform.catalog import Catalog

__all__ = ["Catalog", "__version__", "open_catalog"]


def open_catalog(root: str | None = None) -> Catalog:
    """Open the catalog at `root` for reading and querying.

    Parameters
    ----------
    root : str, optional
        Local path or fsspec URL (``s3://bucket/prefix``). Defaults to ``$RADGEN_CATALOG``,
        then ``./radgen-catalog``.

    Returns
    -------
    Catalog
        Lazy handle: nothing is read until a method asks for it.

    Raises
    ------
    radgen.errors.CatalogError
        If `root` holds no catalog (run ``radgen init`` first).

    Examples
    --------
    >>> import radgen
    >>> cat = radgen.open_catalog("radgen-catalog")  # doctest: +SKIP
    >>> cat.sql("select count(*) as n from series")  # doctest: +SKIP
    """
    from radgen.platform.catalog import Catalog

    return Catalog.open(root)


def __getattr__(name: str) -> Any:
    if name == "Catalog":
        from radgen.platform.catalog import Catalog

        return Catalog
    raise AttributeError(f"module 'radgen' has no attribute {name!r}")
