"""Omics matrices (features x samples) as Zarr v3 groups, for Dask jobs over many samples."""

from __future__ import annotations

from collections.abc import Sequence

import dask.array as da
import numpy as np
import numpy.typing as npt
import xarray as xr
import zarr
from zarr.codecs import BloscCodec

from radgen.errors import NotFoundError
from radgen.platform.storage import Root
from radgen.platform.volumes import zarr_store

__all__ = ["open_matrix", "write_matrix"]


def write_matrix(
    root: Root,
    rel: str,
    values: npt.NDArray[np.float64],
    *,
    features: Sequence[str],
    samples: Sequence[str],
    value: str,
) -> str:
    """Write a features x samples matrix at `rel` (replacing a partial one), chunked for Dask."""
    if values.shape != (len(features), len(samples)):
        raise ValueError(
            f"matrix shape {values.shape} does not match {len(features)} features x {len(samples)} samples"
        )
    root.remove(rel)
    group = zarr.open_group(zarr_store(root, rel), mode="w", zarr_format=3)
    chunks = (min(len(features), 8192), min(len(samples), 256))
    array = group.create_array(
        "values",
        shape=values.shape,
        dtype=np.float64,
        chunks=chunks,
        compressors=[BloscCodec(cname="zstd", clevel=3, shuffle="bitshuffle")],
        dimension_names=("feature", "sample"),
        fill_value=np.nan,
    )
    array[...] = values
    group.attrs.update({"features": list(features), "samples": list(samples), "value": value})
    return rel


def open_matrix(root: Root, rel: str) -> xr.DataArray:
    """Open a stored matrix lazily: dims ``("feature", "sample")`` with their labels."""
    if not root.exists(rel, "zarr.json"):
        raise NotFoundError(root.uri(rel), "no such matrix in this catalog")
    group = zarr.open_group(zarr_store(root, rel), mode="r", zarr_format=3)
    attrs = dict(group.attrs)
    data = da.from_zarr(group["values"])
    return xr.DataArray(
        data,
        dims=("feature", "sample"),
        coords={"feature": list(attrs["features"]), "sample": list(attrs["samples"])},
        name=str(attrs.get("value", "values")),
        attrs={"value": attrs.get("value")},
    )
