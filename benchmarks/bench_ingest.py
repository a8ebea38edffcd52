"""DICOM series -> volume: radgen ingest vs the pydicom glue users write, same files, one run.

The baseline is what a researcher writes today: read every file with pydicom, sort by
ImagePositionPatient along the slice normal, apply slope/intercept, stack, save as .npy.
If `dcm2niix` is on PATH it is timed too (NIfTI output, no compression). radgen is timed as
`radgen ingest dicom` in-process on a LocalCluster (header reading and assembly on workers,
Zarr writing, validation suites, commit), so its figure includes everything a user waits for
except interpreter start-up.

Usage: python benchmarks/bench_ingest.py [--series 4] [--slices 120]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pydicom

from radgen.demo import write_ct_series


def _glue(folder: Path, out: Path) -> None:
    for series_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
        slices = [pydicom.dcmread(p) for p in series_dir.glob("*.dcm")]
        normal = np.cross(
            np.asarray(slices[0].ImageOrientationPatient[:3], float),
            np.asarray(slices[0].ImageOrientationPatient[3:], float),
        )
        slices.sort(
            key=lambda ds: float(np.dot(np.asarray(ds.ImagePositionPatient, float), normal))
        )
        volume = np.stack(
            [ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept) for ds in slices]
        ).astype(np.int16)
        np.save(out / f"{series_dir.name}.npy", volume)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--series", type=int, default=4)
    parser.add_argument("--slices", type=int, default=120)
    args = parser.parse_args()

    from radgen.ingestion.ingest_dicom import ingest_dicom
    from radgen.platform.catalog import Catalog
    from radgen.platform.cluster import dask_client

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        rng = np.random.default_rng(0)
        for i in range(args.series):
            volume = rng.integers(-1000, 1500, (args.slices, 512, 512)).astype(float)
            write_ct_series(work / "in" / f"s{i}", volume, spacing=(1.25, 0.7, 0.7), seed=i)
        size_mb = sum(p.stat().st_size for p in (work / "in").rglob("*.dcm")) / 1e6

        (work / "glue").mkdir()
        start = time.perf_counter()
        _glue(work / "in", work / "glue")
        t_glue = time.perf_counter() - start

        t_dcm2niix = None
        if shutil.which("dcm2niix"):
            (work / "nii").mkdir()
            start = time.perf_counter()
            subprocess.run(
                ["dcm2niix", "-z", "n", "-o", str(work / "nii"), str(work / "in")],
                check=True,
                capture_output=True,
            )
            t_dcm2niix = time.perf_counter() - start

        catalog = Catalog.init(str(work / "cat"))
        with dask_client() as client:
            client.run(lambda: None)  # workers are up before timing starts
            start = time.perf_counter()
            with catalog.run("ingest dicom", {}) as run:
                report = ingest_dicom(run, [work / "in"], client)
            t_radgen = time.perf_counter() - start
        assert len(report.series) == args.series

    print(
        f"ingest {args.series} CT series x {args.slices} slices of 512x512 ({size_mb:.0f} MB of DICOM)"
    )
    print(f"  pydicom glue (sort + stack + .npy) : {t_glue:7.2f} s  ({size_mb / t_glue:6.0f} MB/s)")
    if t_dcm2niix is not None:
        print(
            f"  dcm2niix                           : {t_dcm2niix:7.2f} s  ({size_mb / t_dcm2niix:6.0f} MB/s)"
        )
    print(
        f"  radgen ingest dicom (catalog)      : {t_radgen:7.2f} s  ({size_mb / t_radgen:6.0f} MB/s)"
    )
    print(f"  ratio glue / radgen                : {t_glue / t_radgen:7.2f} x")
    if t_dcm2niix is not None:
        print(f"  ratio dcm2niix / radgen            : {t_dcm2niix / t_radgen:7.2f} x")


if __name__ == "__main__":
    main()
