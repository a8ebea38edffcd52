"""Radiomics of one ROI: radgen vs PyRadiomics 3.0.1 on the same image, ROI and settings.

PyRadiomics is what users run today. Both run on a 128 x 512 x 512 int16 CT-like volume
(soft-tissue noise around 40 HU with a textured lesion) with a radius-30 voxel ball ROI and
with a small ROI (radius 6), bin width 25:

* ``original``: the 7 default feature classes on the original image;
* ``filters``: the same plus LoG (sigma 1, 2, 3 mm) and the 8 wavelet sub-bands.

PyRadiomics runs with ``additionalInfo: False`` so its diagnostics hashing is not counted.
radgen runs the ``pyradiomics`` convention (same keys and values: the script checks they
agree within 1e-6 relative, so the ratio compares the same output) and, for reference, the
``ibsi`` convention. Both tools are warmed up once on a small volume (imports and first-call
set-up, which a cohort pays once); then one run each, wall time, printed as a table with the
ratio PyRadiomics / radgen.

Usage: python benchmarks/radiomics_vs_pyradiomics.py [--slices 128] [--only original]
"""

from __future__ import annotations

import argparse
import logging
import math
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np


def _volume(slices: int, radius: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    image = rng.normal(40, 30, (slices, 512, 512))
    z, y, x = np.ogrid[:slices, :512, :512]
    cz, cy, cx = slices // 2, 256, 250
    r2 = (z - cz) ** 2 + (y - cy) ** 2 + (x - cx) ** 2
    inside = r2 <= radius**2
    # a lesion with structure: brighter core, radial gradient and coarse blobs
    lesion = 80 - 40 * np.sqrt(r2) / max(radius, 1) + 25 * np.sin(x / 3.0) * np.cos(y / 4.0)
    image = np.where(inside, image + lesion, image)
    return np.round(image).astype(np.int16), inside.astype(np.uint8)


def _timed(fn: Callable[[], dict[str, float]]) -> tuple[float, dict[str, float]]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def _pyradiomics(image: np.ndarray, mask: np.ndarray, spacing: tuple[float, ...], params: Any):  # type: ignore[no-untyped-def]
    import SimpleITK as sitk
    from radiomics.featureextractor import RadiomicsFeatureExtractor

    img = sitk.GetImageFromArray(image)
    img.SetSpacing(tuple(float(s) for s in spacing[::-1]))
    msk = sitk.GetImageFromArray(mask)
    msk.CopyInformation(img)
    extractor = RadiomicsFeatureExtractor(params)

    def run() -> dict[str, float]:
        out = extractor.execute(img, msk)
        return {k: float(v) for k, v in out.items() if not k.startswith("diagnostics_")}

    return run


def _agree(a: dict[str, float], b: dict[str, float]) -> str:
    if set(a) != set(b):
        return f"keys differ ({len(set(a) ^ set(b))})"
    bad = [
        k
        for k in a
        if not (math.isnan(a[k]) and math.isnan(b[k]))
        and not math.isclose(a[k], b[k], rel_tol=1e-6, abs_tol=1e-9)
    ]
    return "yes" if not bad else f"{len(bad)} differ, e.g. {bad[:3]}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--slices", type=int, default=128)
    parser.add_argument("--only", choices=["original", "filters"], default=None)
    args = parser.parse_args()
    logging.getLogger("radiomics").setLevel(logging.ERROR)

    from radgen.features import extract

    spacing = (2.0, 0.8, 0.8)
    settings = {
        "original": {"imageType": {"Original": {}}},
        "filters": {
            "imageType": {"Original": {}, "LoG": {"sigma": [1.0, 2.0, 3.0]}, "Wavelet": {}}
        },
    }
    # Warm both tools up once on a small volume (imports, first-call set-up), then time one
    # run each: a cohort pays those costs once, not per ROI.
    small, small_mask = _volume(16, 4)
    for cfg in settings.values():
        params = {"setting": {"binWidth": 25, "additionalInfo": False}, **cfg}
        _pyradiomics(small, small_mask, spacing, params)()
        extract(small, small_mask, spacing, {**params, "convention": "pyradiomics"})
        extract(small, small_mask, spacing, {"setting": {"binWidth": 25}, **cfg})
    rows = []
    for radius in (30, 6):
        image, mask = _volume(args.slices, radius)
        for name, cfg in settings.items():
            if args.only and name != args.only:
                continue
            params = {"setting": {"binWidth": 25, "additionalInfo": False}, **cfg}
            t_py, ref = _timed(_pyradiomics(image, mask, spacing, params))
            rg_params = {**params, "convention": "pyradiomics"}
            t_rg, got = _timed(partial(extract, image, mask, spacing, rg_params))
            ibsi_params = {"setting": {"binWidth": 25}, **cfg}
            t_ibsi, ibsi = _timed(partial(extract, image, mask, spacing, ibsi_params))
            rows.append(
                (
                    f"r={radius} ({int(mask.sum())} vox)",
                    name,
                    len(ref),
                    t_py,
                    t_rg,
                    t_py / t_rg,
                    _agree(got, ref),
                    len(ibsi),
                    t_ibsi,
                )
            )
            print(f"done {rows[-1][0]} {name}", flush=True)
    header = (
        "ROI",
        "image types",
        "features",
        "PyRadiomics s",
        "radgen s",
        "ratio",
        "same values",
        "IBSI features",
        "radgen IBSI s",
    )
    print("\n| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for r in rows:
        print(
            f"| {r[0]} | {r[1]} | {r[2]} | {r[3]:.2f} | {r[4]:.2f} | {r[5]:.1f}x | {r[6]} "
            f"| {r[7]} | {r[8]:.2f} |"
        )


if __name__ == "__main__":
    main()
