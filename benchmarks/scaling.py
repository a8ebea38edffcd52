"""Feature computation on 1 and 2 Dask workers: speed-up and per-task overheads, one run.

A synthetic cohort (default 24 patients, 96 x 384 x 384 CT, one tumour ROI each) is ingested
once; then ``compute_features`` runs on a LocalCluster of 1 and of 2 single-threaded worker
processes (warmed up first, so process start-up is not counted). From the Dask task stream
it prints, per run: wall time of the command, time of the task phase (first task start to last
task end), tasks, mean compute time per task, the overhead per task (worker-seconds of the
task phase not spent computing / tasks) and the bytes each task reads and returns.

How it extrapolates: one task per ROI, each independent (reads its ROI's bounding box from
the series' Zarr array, returns ~100 numbers), so the work is embarrassingly parallel. Wall
time ~= tasks x (compute + overhead) / workers + the coordinator's fixed cost (reading
``rois``, the quality suite, the commit). With compute per task well above the overhead
per task, speed-up grows with workers until storage bandwidth (bytes read per task x tasks
per second) or the coordinator's fixed cost dominates.

Usage: python benchmarks/scaling.py [--patients 24] [--slices 96] [--size 384]
"""

from __future__ import annotations

import argparse
import logging
import pickle
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np


def _stats(task_stream: list[dict[str, Any]]) -> tuple[int, float]:
    """(tasks, total compute seconds) of the per-ROI feature tasks."""
    tasks = [
        t
        for t in task_stream
        if str(t.get("key", "")).startswith(("roi_features", "('roi_features"))
    ]
    compute = sum(
        s["stop"] - s["start"]
        for t in tasks
        for s in t.get("startstops", ())
        if s["action"] == "compute"
    )
    return len(tasks), compute


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patients", type=int, default=24)
    parser.add_argument("--slices", type=int, default=96)
    parser.add_argument("--size", type=int, default=384)
    parser.add_argument("--radius", type=float, default=50.0, help="largest tumour radius, mm")
    args = parser.parse_args()

    from distributed import Client, LocalCluster, get_task_stream

    from radgen.demo import DEMO_SETTINGS, generate_cohort
    from radgen.features.compute import compute_features, roi_features
    from radgen.features.settings import load_settings
    from radgen.ingestion.ingest_dicom import ingest_dicom
    from radgen.ingestion.masks import ingest_masks
    from radgen.platform import tables
    from radgen.platform.catalog import Catalog

    settings = load_settings(DEMO_SETTINGS)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        generate_cohort(
            work / "cohort",
            n_patients=args.patients,
            seed=0,
            shape=(args.slices, args.size, args.size),
            radius_mm=(args.radius * 0.8, args.radius),
        )
        catalog = Catalog.init(str(work / "catalog"))
        with (
            LocalCluster(n_workers=2, threads_per_worker=1, silence_logs=logging.ERROR) as cluster,
            Client(cluster) as client,
            catalog.run("ingest dicom", {}) as run,
        ):
            ingest_dicom(run, [work / "cohort" / "dicom"], client)
        with catalog.run("ingest masks", {}) as run:
            ingest_masks(run, [work / "cohort" / "masks"])
        rois = tables.read_table(catalog.root, "rois").to_pandas()
        series = tables.read_table(catalog.root, "series").to_pandas().set_index("series_uid")
        box_bytes = []
        for roi in rois.itertuples():
            box = np.asarray(roi.bbox)  # [z0, z1, y0, y1, x0, x1], half-open
            itemsize = catalog.image(roi.series_uid).dtype.itemsize
            box_bytes.append(int(np.prod(box[1::2] - box[0::2])) * itemsize)
        print(
            f"{len(rois)} ROIs on {args.slices} x {args.size} x {args.size} CT; "
            f"each task reads {np.mean(box_bytes) / 1e6:.2f} MB of image (ROI box) and its mask"
        )

        print(
            f"{'workers':>7} {'wall s':>7} {'tasks s':>8} {'tasks':>6} {'task s':>7} "
            f"{'overhead/task ms':>17}"
        )
        walls = {}
        for workers in (1, 2):
            with (
                LocalCluster(
                    n_workers=workers, threads_per_worker=1, silence_logs=logging.ERROR
                ) as cluster,
                Client(cluster) as client,
            ):
                client.run(lambda: None)  # workers up and connected
                # warm-up: import radgen on the workers and read one ROI
                first = rois.iloc[0]
                record = {
                    "roi_id": first.roi_id, "zarr_path": series.loc[first.series_uid, "zarr_path"],
                    "mask_path": first.mask_path, "label": first.label, "bbox": first.bbox,
                    "spacing": series.loc[first.series_uid, "spacing"],
                }  # fmt: skip
                client.gather(
                    client.map(roi_features, [catalog.root.url] * workers, [record] * workers,
                               [settings.as_params()] * workers, pure=False)
                )  # fmt: skip
                with get_task_stream(client) as stream, catalog.run("features", {}) as run:
                    start = time.perf_counter()
                    compute_features(run, client, settings, name=f"scale{workers}")
                    wall = time.perf_counter() - start
                n_tasks, compute = _stats(stream.data)
                starts = [s["start"] for t in stream.data for s in t.get("startstops", ())]
                stops = [s["stop"] for t in stream.data for s in t.get("startstops", ())]
                phase = max(stops) - min(starts)  # first task start to last task end
                overhead = (phase * workers - compute) / max(n_tasks, 1)
                walls[workers] = (wall, phase)
                print(
                    f"{workers:7d} {wall:7.2f} {phase:8.2f} {n_tasks:6d} "
                    f"{compute / max(n_tasks, 1):7.3f} {overhead * 1e3:17.1f}"
                )
        row = tables.read_table(catalog.root, "features_scale1").slice(0, 1).to_pylist()[0]
        print(f"each task returns {len(pickle.dumps(row))} bytes (one ROI's features, pickled)")
        print(
            f"speed-up 1 -> 2 workers: task phase {walls[1][1] / walls[2][1]:.2f}x "
            f"(goal >= 1.8x on 2 cores), end to end {walls[1][0] / walls[2][0]:.2f}x "
            "(includes the coordinator's serial part: reading rois, the suite, the commit)"
        )


if __name__ == "__main__":
    main()
