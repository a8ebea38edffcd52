"""Zarr compressor for CT volumes: Blosc zstd (clevel 1, 3, 5) vs lz4, measured, one run.

The volume is a chest-like CT phantom in Hounsfield units (int16, what radgen stores for CT):
a circular field of view padded with -1024 outside, air, a table, a body with a fat layer,
muscle and mediastinum, two lungs with vessels, a spine and ribs, and correlated noise
(SD about 12 HU) everywhere inside the field of view, as on a real scanner. The noise sets the
compression ratio, so a noiseless phantom would flatter every codec.

Each codec writes the volume the way radgen does (:func:`radgen.platform.volumes.write_volume_slices`:
a Zarr v3 array with ``chunk_shape`` chunks, written one chunk of slices at a time, to a
local directory) and reads it back whole; best of ``--repeat`` for each, from the page cache
(so the read figure is decoding speed, not disk). MB/s are of raw voxel bytes (1 MB = 1e6
bytes); ratio = raw bytes / bytes on disk.

Usage: python benchmarks/bench_zarr_codec.py [--slices 128] [--size 512] [--repeat 3]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import zarr
from scipy import ndimage
from zarr.codecs import BloscCodec

from radgen.platform.volumes import VOLUME_CODEC, chunk_shape

#: (label, cname, clevel, shuffle); radgen's own (volumes.VOLUME_CODEC) is marked in the output.
CODECS: tuple[tuple[str, str, int, str], ...] = (
    ("zstd-3 bitshuffle", "zstd", 3, "bitshuffle"),
    ("zstd-1 bitshuffle", "zstd", 1, "bitshuffle"),
    ("zstd-1 shuffle", "zstd", 1, "shuffle"),
    ("zstd-3 shuffle", "zstd", 3, "shuffle"),
    ("zstd-5 shuffle", "zstd", 5, "shuffle"),
    ("lz4-5 shuffle", "lz4", 5, "shuffle"),
    ("lz4-5 bitshuffle", "lz4", 5, "bitshuffle"),
)


def ct_phantom(
    shape: tuple[int, int, int] = (128, 512, 512),
    *,
    noise_sd: float = 12.0,
    seed: int = 0,
    noise_slices: int | None = None,
) -> npt.NDArray[np.int16]:
    """A chest-like CT volume in HU, int16, values in [-1024, 3071].

    Parameters
    ----------
    shape : (z, y, x)
        Volume shape; anatomy scales with the in-plane size.
    noise_sd : float
        Standard deviation of the (spatially correlated) noise, HU.
    seed : int
        Seed of the noise and the vessels.
    noise_slices : int, optional
        Draw only this many noise slices and cycle them (rolled) along z: much faster for
        large volumes where only the size matters (the RSS benchmark).
    """
    nz, ny, nx = shape
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:ny, 0:nx].astype(np.float32)
    cy, cx = ny / 2, nx / 2
    u, v = (xx - cx) / (nx / 2), (yy - cy) / (ny / 2)  # -1 .. 1
    out = np.empty(shape, dtype=np.int16)
    fov = u**2 + v**2 <= 0.98**2
    table = (v > 0.72) & (v < 0.78) & (np.abs(u) < 0.8)
    # vessels: smooth random field thresholded, shared by all slices but shifted along z
    vessel_field = ndimage.gaussian_filter(rng.standard_normal((ny, nx)).astype(np.float32), 3)
    vessel_field /= vessel_field.std()
    pool = noise_slices or nz
    noise = rng.standard_normal((pool, ny, nx), dtype=np.float32)
    noise = ndimage.gaussian_filter(noise, sigma=(0, 0.8, 0.8))
    noise *= noise_sd / float(noise.std())
    for k in range(nz):
        t = k / max(1, nz - 1)  # 0 .. 1 head to feet
        a, b = 0.80 + 0.05 * np.sin(np.pi * t), 0.58 + 0.04 * np.sin(np.pi * t)
        body = (u / a) ** 2 + ((v + 0.05) / b) ** 2 <= 1.0
        inner = (u / (a - 0.06)) ** 2 + ((v + 0.05) / (b - 0.06)) ** 2 <= 1.0
        hu = np.full((ny, nx), -1000.0, dtype=np.float32)
        hu[table] = 150.0
        hu[body] = -100.0  # subcutaneous fat
        hu[inner] = 45.0  # muscle / soft tissue
        lung_r = 0.28 + 0.06 * np.sin(np.pi * min(1.0, 1.4 * t))
        for side in (-1.0, 1.0):
            lung = ((u - side * 0.34) / lung_r) ** 2 + ((v + 0.08) / (lung_r * 1.5)) ** 2 <= 1.0
            lung &= inner
            hu[lung] = -860.0
            shift = np.roll(vessel_field, int(k * 2), axis=0)
            hu[lung & (shift > 1.6)] = -650.0
        heart = ((u - 0.08) / 0.22) ** 2 + ((v + 0.02) / 0.2) ** 2 <= 1.0
        hu[heart & inner] = 38.0
        spine_c = (u / 0.09) ** 2 + ((v - 0.36) / 0.09) ** 2
        hu[spine_c <= 1.0] = 700.0  # cortical
        hu[spine_c <= 0.6] = 250.0  # cancellous
        ring = np.hypot(u / (a - 0.05), (v + 0.05) / (b - 0.05))
        angle = np.arctan2(v, u)
        ribs = (np.abs(ring - 0.93) < 0.025) & (np.cos(angle * 9 + k * 0.15) > 0.3)
        hu[ribs & body] = 600.0
        hu += np.roll(noise[k % pool], (k // pool) * 7, axis=1)
        hu[~fov] = -1024.0
        out[k] = np.clip(np.rint(hu), -1024, 3071).astype(np.int16)
    return out


@dataclass
class CodecResult:
    """One codec's figures (MB/s of int16 voxels, raw bytes / stored bytes)."""

    label: str
    write_mb_s: float
    read_mb_s: float
    ratio: float
    stored_mb: float


def _dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def bench_codecs(
    volume: npt.NDArray[np.int16], workdir: Path, repeat: int = 3, *, int32_too: bool = False
) -> list[CodecResult]:
    """Write and read `volume` with each codec of :data:`CODECS`, radgen's chunking.

    MB/s and ratio are relative to the int16 volume, also for the int32 row.
    """
    raw_mb = volume.nbytes / 1e6
    results = []
    runs = [(volume, *codec) for codec in CODECS]
    if int32_too:  # the same voxels widened: what a CT series with values beyond int16 costs
        runs.insert(
            1,
            (
                volume.astype(np.int32),
                "zstd-1 bitshuffle, as int32",
                "zstd",
                1,
                "bitshuffle",
            ),
        )
    for vol, label, cname, clevel, shuffle in runs:
        chunks = chunk_shape(vol.shape, vol.dtype.itemsize)
        step = chunks[0]
        best_w = best_r = float("inf")
        path = workdir / f"{cname}{clevel}{shuffle}{vol.dtype}.zarr"
        for _ in range(repeat):
            shutil.rmtree(path, ignore_errors=True)
            start = time.perf_counter()
            group = zarr.open_group(zarr.storage.LocalStore(path), mode="w", zarr_format=3)
            arr = group.create_array(
                "image",
                shape=vol.shape,
                dtype=vol.dtype,
                chunks=chunks,
                compressors=[BloscCodec(cname=cname, clevel=clevel, shuffle=shuffle)],
                dimension_names=("z", "y", "x"),
                fill_value=0,
            )
            for z in range(0, vol.shape[0], step):  # as write_volume_slices does
                arr[z : z + step] = vol[z : z + step]
            best_w = min(best_w, time.perf_counter() - start)
        stored = _dir_bytes(path)
        for _ in range(repeat + 2):
            start = time.perf_counter()
            back = zarr.open_group(zarr.storage.LocalStore(path), mode="r")["image"][...]
            best_r = min(best_r, time.perf_counter() - start)
        if not np.array_equal(back, vol):
            raise AssertionError(f"{label}: read back differs")
        shutil.rmtree(path, ignore_errors=True)
        results.append(
            CodecResult(
                label, raw_mb / best_w, raw_mb / best_r, volume.nbytes / stored, stored / 1e6
            )
        )
    return results


def print_codecs(
    results: list[CodecResult], shape: tuple[int, ...], chunks: tuple[int, ...]
) -> None:
    print(f"Zarr codecs on a {'x'.join(map(str, shape))} int16 CT phantom, chunks {chunks} "
          "(MB/s of int16 voxels; writes best of 3, reads best of 5 from page cache)")  # fmt: skip
    print(
        f"  {'codec':42s} {'write MB/s':>10s} {'read MB/s':>10s} {'ratio':>7s} {'stored MB':>10s}"
    )
    for r in results:
        print(
            f"  {r.label:42s} {r.write_mb_s:10.0f} {r.read_mb_s:10.0f} {r.ratio:7.2f} {r.stored_mb:10.1f}"
        )
    ours = VOLUME_CODEC.to_dict()["configuration"]
    print(f"  radgen writes volumes with Blosc {ours['cname']}-{ours['clevel']} {ours['shuffle']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--slices", type=int, default=128)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    volume = ct_phantom((args.slices, args.size, args.size))
    with tempfile.TemporaryDirectory() as tmp:
        results = bench_codecs(volume, Path(tmp), args.repeat)
    print_codecs(results, volume.shape, chunk_shape(volume.shape, 2))


if __name__ == "__main__":
    main()
