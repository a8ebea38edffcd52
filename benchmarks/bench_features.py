"""First-order features of one large ROI: radgen vs PyRadiomics 3.0.1, same input, one run.

PyRadiomics is what users run today. Both compute the first-order family on a CT-like
volume (default 96 x 512 x 512 int16, a spherical ROI of about 1.2 M voxels, bin width 25);
PyRadiomics runs with additionalInfo off so its diagnostics hashing is not counted. The
script also checks that the two agree on the features both define the same way.

Usage: python benchmarks/bench_features.py [--slices 96] [--repeat 3]
"""

from __future__ import annotations

import argparse
import logging
import time

import numpy as np


def _volume(slices: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    image = rng.normal(40, 30, (slices, 512, 512)).astype(np.int16)
    z, y, x = np.ogrid[:slices, :512, :512]
    # an ellipsoid filling most of the slab: half-axes 0.45 * slices (z) and 200 voxels (y, x)
    inside = ((z - slices / 2) / (0.45 * slices)) ** 2 + (
        (y - 256) ** 2 + (x - 256) ** 2
    ) / 200.0**2 <= 1.0
    return image, inside.astype(np.uint8)


def _best(fn, repeat: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--slices", type=int, default=96)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    import SimpleITK as sitk
    from radiomics import featureextractor

    from radgen.features import extract

    logging.getLogger("radiomics").setLevel(logging.ERROR)
    image, mask = _volume(args.slices)
    spacing = (2.5, 0.8, 0.8)
    settings = {"setting": {"binWidth": 25}, "featureClass": {"firstorder": None}}

    itk_image = sitk.GetImageFromArray(image)
    itk_mask = sitk.GetImageFromArray(mask)
    for img in (itk_image, itk_mask):
        img.SetSpacing(spacing[::-1])
    extractor = featureextractor.RadiomicsFeatureExtractor(binWidth=25, additionalInfo=False)
    extractor.disableAllFeatures()
    extractor.enableFeatureClassByName("firstorder")

    ours = extract(image, mask, spacing, settings)
    theirs = extractor.execute(itk_image, itk_mask)
    pairs = {
        "stat.mean": "Mean",
        "stat.var": "Variance",
        "stat.median": "Median",
        "stat.p10": "10Percentile",
        "stat.p90": "90Percentile",
        "stat.iqr": "InterquartileRange",
        "stat.mad": "MeanAbsoluteDeviation",
        "stat.rmad": "RobustMeanAbsoluteDeviation",
        "stat.skew": "Skewness",
        "stat.rms": "RootMeanSquared",
    }
    worst = max(
        abs(ours[k] - float(theirs[f"original_firstorder_{v}"])) / max(1.0, abs(ours[k]))
        for k, v in pairs.items()
    )

    t_radgen = _best(lambda: extract(image, mask, spacing, settings), args.repeat)
    t_pyrad = _best(lambda: extractor.execute(itk_image, itk_mask), args.repeat)
    n = int(mask.sum())
    print(f"first-order features, {image.shape} int16, ROI of {n:,} voxels (best of {args.repeat})")
    print(f"  PyRadiomics 3.0.1 : {t_pyrad:8.3f} s")
    print(f"  radgen            : {t_radgen:8.3f} s")
    print(f"  speed-up          : {t_pyrad / t_radgen:8.1f} x")
    print(f"  largest relative difference on {len(pairs)} shared features: {worst:.1e}")


if __name__ == "__main__":
    main()
