"""One very large ROI: ``extract`` in memory vs ``extract_chunked`` from Zarr; time and peak RSS.

Input, written once to a temporary catalog root: a ``--slices`` x ``--size``^2 int16 volume
(default 384 x 512 x 512, 192 MiB) holding a textured ellipsoidal "tumour" of semi-axes
0.45 x the volume's extents (about 38 M voxels at the default size) in a smooth background,
and its mask, both as radgen Zarr volumes (:func:`radgen.platform.volumes.write_volume`,
chunks of 8 slices).

Each method runs in a fresh interpreter that reads its peak RSS at the end (``VmHWM`` of
``/proc/self/status``, Linux: unlike ``ru_maxrss`` it does not inherit the peak of the
forked parent that wrote the data), imports included (the row ``imports only`` is the
interpreter's own footprint), and the wall time from just before reading the data:

* ``extract``: what ``radgen.features.compute.roi_features`` does today: ``read_region`` of
  :func:`radgen.features.extract.roi_region` for image and mask, then ``extract``.
* ``extract_chunked``: :func:`radgen.features.chunked.open_roi_arrays` sliced to the same
  region, then ``extract_chunked(..., slab=--slab, scheduler="threads")``.

The feature classes (``--classes``, default first order, IVH, GLCM, NGTDM and NGLDM, bin
width 25) are those ``extract`` finishes in a few minutes on a ROI this size (morphology's
Moran's I alone would need tens of GB of FFT buffers in memory). The script checks that both
methods return the same keys with values equal to 1e-9 relative (absolute 1e-9 near zero) and
prints a table with the ratios chunked / in-memory.

Usage: python benchmarks/bench_chunked_features.py [--slices 384] [--size 512] [--slab 32]
       [--classes firstorder,ivh,glcm,ngtdm,gldm]
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import dask.array as da
import numpy as np

SPACING = (1.0, 0.8, 0.8)  # z, y, x mm

_CHILD = textwrap.dedent(
    """
    import json, sys, time
    args = json.loads(sys.argv[1])
    from radgen.features.extract import extract, roi_region
    from radgen.features.chunked import extract_chunked, open_roi_arrays
    from radgen.platform.storage import Root
    from radgen.platform.volumes import read_region, volume_shape

    root = Root.from_string(args["root"])
    settings, spacing, bbox = args["settings"], args["spacing"], args["bbox"]
    out = {}
    if args["method"] != "imports":
        start = time.perf_counter()
        shape = volume_shape(root, "images/bench.zarr", name="image")
        region = roi_region(settings, bbox, shape, spacing)
        if args["method"] == "extract":
            image = read_region(root, "images/bench.zarr", name="image", bbox=region)
            mask = read_region(root, "masks/bench.zarr", name="mask", bbox=region)
            out = extract(image, mask, spacing, settings)
        else:
            image, mask = open_roi_arrays(root, "images/bench.zarr", "masks/bench.zarr")
            box = tuple(slice(region[2 * a], region[2 * a + 1]) for a in range(3))
            out = extract_chunked(image[box], mask[box], spacing, settings,
                                  slab=args["slab"], scheduler="threads")
        wall = time.perf_counter() - start
    else:
        wall = 0.0
    with open("/proc/self/status") as status:
        peak = next(int(l.split()[1]) * 1024 for l in status if l.startswith("VmHWM:"))
    json.dump({"wall": wall, "peak": peak, "features": out}, sys.stdout)
    """
)


def write_inputs(root_dir: Path, slices: int, size: int) -> tuple[list[int], int]:
    """Write the image and mask volumes; return the ROI bounding box and its voxel count."""
    from radgen.platform.storage import Root
    from radgen.platform.volumes import write_volume

    root = Root.from_string(str(root_dir))
    shape = (slices, size, size)
    centre = np.array(shape) / 2.0
    semi = 0.45 * np.array(shape)

    def tumour(block_info: dict | None = None) -> np.ndarray:  # type: ignore[type-arg]
        assert block_info is not None
        (z0, z1), (y0, y1), (x0, x1) = block_info[None]["array-location"]
        z, y, x = np.ogrid[z0:z1, y0:y1, x0:x1]
        r2 = ((z - centre[0]) / semi[0]) ** 2 + ((y - centre[1]) / semi[1]) ** 2
        r2 = r2 + ((x - centre[2]) / semi[2]) ** 2
        return r2

    chunks = ((8,) * (slices // 8) + ((slices % 8,) if slices % 8 else ()), (size,), (size,))
    r2 = da.map_blocks(tumour, chunks=chunks, dtype=np.float64)
    noise = da.random.default_rng(0).normal(0.0, 45.0, size=shape, chunks=chunks)
    inside = r2 <= 1.0
    image = da.where(inside, 40.0 + 30.0 * np.cos(6.0 * r2) + noise, -700.0 + noise / 3)
    image = image.astype(np.int16)
    mask = inside.astype(np.uint8)
    attrs = {"spacing": list(SPACING), "origin": [0.0, 0.0, 0.0], "direction": np.eye(3).tolist()}
    write_volume(
        root, "images/bench.zarr", image, name="image", attrs=attrs, chunks=(8, size, size)
    )
    write_volume(root, "masks/bench.zarr", mask, name="mask", attrs=attrs, chunks=(8, size, size))
    lo = np.ceil(centre - semi).astype(int)
    hi = np.floor(centre + semi).astype(int) + 1
    bbox = [
        int(v) for pair in zip(np.maximum(lo, 0), np.minimum(hi, shape), strict=True) for v in pair
    ]
    return bbox, int(da.count_nonzero(inside).compute())


def run(method: str, root: Path, settings: dict, bbox: list[int], slab: int) -> dict:  # type: ignore[type-arg]
    payload = json.dumps(
        {"method": method, "root": str(root), "settings": settings, "spacing": list(SPACING),
         "bbox": bbox, "slab": slab}
    )  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, payload], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise SystemExit(f"{method} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


def compare(a: dict[str, float], b: dict[str, float]) -> int:
    assert sorted(a) == sorted(b), "the two methods return different keys"
    bad = 0
    for key, expected in a.items():
        value = b[key]
        if math.isnan(expected) and math.isnan(value):
            continue
        if not math.isclose(value, expected, rel_tol=1e-9, abs_tol=1e-9):
            print(f"  differs: {key}: {value!r} != {expected!r}")
            bad += 1
    return bad


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--slices", type=int, default=384)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--slab", type=int, default=32)
    parser.add_argument("--classes", default="firstorder,ivh,glcm,ngtdm,gldm")
    args = parser.parse_args()
    settings = {
        "setting": {"binWidth": 25},
        "featureClass": {c: None for c in args.classes.split(",")},
    }
    with tempfile.TemporaryDirectory(prefix="radgen-bench-chunked-") as tmp:
        root = Path(tmp)
        start = time.perf_counter()
        bbox, voxels = write_inputs(root, args.slices, args.size)
        box = [bbox[2 * a + 1] - bbox[2 * a] for a in range(3)]
        print(
            f"volume {args.slices} x {args.size} x {args.size} int16, ROI {voxels / 1e6:.1f} M "
            f"voxels, box {box[0]} x {box[1]} x {box[2]} ({np.prod(box) * 8 / 2**20:.0f} MiB as "
            f"float64); written in {time.perf_counter() - start:.0f} s"
        )
        print(f"classes {args.classes}; slab {args.slab} slices; 2 threads for the chunked run")
        base = run("imports", root, settings, bbox, args.slab)
        memory = run("extract", root, settings, bbox, args.slab)
        chunked = run("chunked", root, settings, bbox, args.slab)
    bad = compare(memory["features"], chunked["features"])
    mib = 2**20
    rows = [
        ("imports only", 0.0, base["peak"]),
        ("extract (in memory)", memory["wall"], memory["peak"]),
        ("extract_chunked (Zarr)", chunked["wall"], chunked["peak"]),
    ]
    print(f"\n{'method':<26}{'wall s':>10}{'peak RSS MiB':>15}{'above imports':>15}")
    for name, wall, peak in rows:
        print(f"{name:<26}{wall:>10.1f}{peak / mib:>15.0f}{(peak - base['peak']) / mib:>15.0f}")
    ratio_t = chunked["wall"] / memory["wall"]
    ratio_m = (chunked["peak"] - base["peak"]) / (memory["peak"] - base["peak"])
    print(f"{'ratio chunked / memory':<26}{ratio_t:>10.2f}{'':>15}{ratio_m:>15.2f}")
    n = len(memory["features"])
    print(f"\n{n} features, {n - bad} equal to 1e-9" + ("" if not bad else f", {bad} DIFFER"))
    if bad:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
