"""Peak memory of the radgen pipeline on a ~1 GiB CT series, against PyRadiomics; one run.

Goal (issue): ingesting and computing features on a 1 GB series stays under 1.5 GB peak
RSS (1.5e9 B). Input, written once: a ``--slices`` x ``--size``^2 int16 CT series (default
512 x 1024 x 1024 = 1.07 GB of pixel data) from the chest phantom of
``bench_zarr_codec.ct_phantom`` with a textured tumour painted in the right lung, as real
DICOM files (:func:`radgen.demo.write_ct_series`), and one NIfTI mask on its grid
(:func:`radgen.demo.write_nifti_mask`) with two labels: 1 = the tumour, a sphere of radius
``--radius`` voxels (default 120: ~7.2 M voxels, bounding box 241^3), 2 = a small sphere of
radius 10 voxels elsewhere.

Each radgen step runs as its own command, with ``--catalog ROOT`` and ``RADGEN_HOME`` in a
temp folder, polled every 50 ms over its whole process tree with
``bench_dicom_throughput.run_with_memory`` (psutil; see that script): ``radgen init``,
``radgen ingest dicom`` (CLI process + 2 Dask worker processes), ``radgen ingest masks`` (in
process) and ``radgen features compute --config params.yaml`` (CLI + 2 Dask workers) with
:data:`radgen.demo.DEMO_SETTINGS` (firstorder, binWidth 25, resegmentRange [-1000, 3000],
label 1). Reported per step: the largest single process (RSS), the sum of RSS over the
tree (shared library pages counted once per process: overstates) and the sum of PSS (shared
pages split: the tree's real footprint). The goal column judges the tree PSS.

Baseline: what users otherwise run, PyRadiomics 3.0.1 ``RadiomicsFeatureExtractor`` built
from the same params.yaml (additionalInfo off, as ``radiomics_vs_pyradiomics.py``: no diagnostics
hashing) on the same files, loaded with SimpleITK (``ImageSeriesReader`` on the DICOM
folder, ``ReadImage`` on the NIfTI), label 1, in a fresh interpreter polled the same way.
NIfTI stores the affine in float32, so the mask's spacing (0.35 mm) and origin come back
~1e-8 off the image's and SimpleITK's default tolerance rejects the pair ("Image/Mask
geometry mismatch"): the extractor gets ``geometryTolerance: 1e-5``, the fix PyRadiomics'
message suggests (radgen accepts grids equal within 1e-3 voxel).
Ratios are radgen / PyRadiomics (time and tree PSS). The script checks that both give the
same first-order values for label 1.

Attribution of ``features compute``: ``radgen.features.compute.roi_features`` is replayed
per ROI in a fresh interpreter under tracemalloc (NumPy allocations included), giving the
peak heap of one task next to its ROI's bounding box: what a Dask worker holds beyond its
start-up footprint (each ROI runs once untimed first: lazy imports).

The machine has 2 cores; the load average is printed (other work slows the figures, not
the memory). A guard kills the step's processes (only those this script started) if the
machine's available memory falls below 1 GiB. Temp data (several GB) is removed at the end.
Needs ~15 GB of free RAM for the PyRadiomics row (``--skip-pyradiomics`` leaves it out).
A full run used 4.5 min of CPU (2.0 user + 2.5 system, all processes): about 5 minutes
of wall time idle, an estimate; 10 min measured at a load average of 6-9, PyRadiomics 5.6 of
them.

Usage: python benchmarks/bench_memory.py [--slices 512] [--size 1024] [--radius 120]
       [--keep DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench_dicom_throughput import BIN, GOAL_RSS_GB, MB, TreeMemory, _env, run_with_memory

GOAL_BYTES = GOAL_RSS_GB * 1e9
SPACING = (0.625, 0.35, 0.35)  # z, y, x mm
SMALL_RADIUS = 10
GUARD_BYTES = 1 << 30  # kill our own step if the machine's available memory drops below this
FEATURE_PAIRS = {  # radgen column -> PyRadiomics feature, defined the same way
    "stat_mean": "Mean",
    "stat_var": "Variance",
    "stat_median": "Median",
    "stat_min": "Minimum",
    "stat_max": "Maximum",
    "stat_p10": "10Percentile",
    "stat_p90": "90Percentile",
    "stat_iqr": "InterquartileRange",
    "stat_mad": "MeanAbsoluteDeviation",
    "stat_rmad": "RobustMeanAbsoluteDeviation",
    "stat_skew": "Skewness",
    "stat_rms": "RootMeanSquared",
    "stat_energy": "Energy",
}


# --------------------------------------------------------------------------------------
# input
# --------------------------------------------------------------------------------------


def write_inputs(work: Path, slices: int, size: int, radius: int) -> dict[str, Any]:
    """CT series, two-label NIfTI mask and params.yaml under `work`; their description."""
    import numpy as np
    import yaml
    from scipy import ndimage

    from bench_zarr_codec import ct_phantom
    from radgen.demo import DEMO_SETTINGS, write_ct_series, write_nifti_mask

    shape = (slices, size, size)
    volume = ct_phantom(shape, noise_slices=8, seed=2)
    # tumour in the right lung (ct_phantom: lungs at u = +-0.34, v = -0.08 of the half-size)
    half = size / 2
    centre = (slices // 2, int(half - 0.08 * half), int(half - 0.34 * half))
    small_centre = (slices // 2, int(half + 0.2 * half), int(half + 0.3 * half))
    mask = np.zeros(shape, dtype=np.uint8)
    rng = np.random.default_rng(7)
    n_voxels = {}
    for label, (cz, cy, cx), r in ((1, centre, radius), (2, small_centre, SMALL_RADIUS)):
        box = tuple(
            slice(max(0, c - r), min(n, c + r + 1))
            for c, n in zip((cz, cy, cx), shape, strict=True)
        )
        z, y, x = np.ogrid[box]
        inside = (z - cz) ** 2 + (y - cy) ** 2 + (x - cx) ** 2 <= r * r
        mask[box][inside] = label
        n_voxels[label] = int(inside.sum())
        if label == 1:  # textured soft tissue, 60 +- ~35 HU
            texture = ndimage.gaussian_filter(
                rng.standard_normal(inside.shape, dtype=np.float32), 1.2
            )
            texture *= 35.0 / float(texture.std())
            sub = volume[box]
            sub[inside] = np.clip(np.rint(60.0 + texture[inside]), -1024, 3071).astype(np.int16)
    pixel_bytes = volume.nbytes
    series = work / "series"
    _, _, affine = write_ct_series(series, volume, spacing=SPACING, seed=2)
    del volume
    mask_path = work / "masks" / "tumour.nii.gz"
    write_nifti_mask(mask_path, mask, affine)
    del mask
    params = work / "params.yaml"
    params.write_text(yaml.safe_dump(DEMO_SETTINGS, sort_keys=False))
    return {
        "shape": shape,
        "pixel_bytes": pixel_bytes,
        "series": series,
        "dicom_bytes": sum(p.stat().st_size for p in series.iterdir()),
        "mask": mask_path,
        "mask_bytes": mask_path.stat().st_size,
        "params": params,
        "n_voxels": n_voxels,
    }


# --------------------------------------------------------------------------------------
# measured steps
# --------------------------------------------------------------------------------------


class MemoryGuard:
    """While open, kills this script's child processes if available memory gets too low."""

    def __init__(self, floor: int = GUARD_BYTES) -> None:
        self.floor = floor
        self.tripped = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        import psutil

        me = psutil.Process()
        while not self._stop.wait(0.1):
            if psutil.virtual_memory().available >= self.floor:
                continue
            self.tripped = True
            for child in reversed(me.children(recursive=True)):  # deepest first, by pid
                with contextlib.suppress(psutil.Error):
                    child.kill()

    def __enter__(self) -> MemoryGuard:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=2)


@dataclass
class Step:
    """One measured command."""

    name: str
    mem: TreeMemory | None = None
    failed: str = ""
    uses_cluster: bool = False


def measure(step: Step, cmd: list[str], env: dict[str, str]) -> Step:
    with MemoryGuard() as guard:
        step.mem = run_with_memory(cmd, env)
    if guard.tripped:
        step.failed = "killed by the memory guard (available memory < 1 GiB)"
    elif step.mem.returncode != 0:
        tail = [ln for ln in step.mem.stderr.splitlines() if ln.strip() and ln[:1] != "\t"]
        step.failed = f"exit {step.mem.returncode}: " + " | ".join(tail[-3:])[-400:]
    return step


def role(step: Step) -> str:
    assert step.mem is not None
    found = step.mem.peak_single_role
    if not step.uses_cluster and found.startswith("coordinator"):
        return "CLI process (no cluster)"
    return found.replace(" (CLI + scheduler + nannies)", "")


# --------------------------------------------------------------------------------------
# children (fresh interpreters)
# --------------------------------------------------------------------------------------


def pyradiomics_child(series: str, mask_path: str, params: str, out: str) -> None:
    """PyRadiomics on the DICOM folder and the NIfTI mask; times and features to `out`."""
    import logging

    t0 = time.perf_counter()
    import SimpleITK as sitk
    from radiomics import featureextractor

    logging.getLogger("radiomics").setLevel(logging.ERROR)
    t1 = time.perf_counter()
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(series))
    image = reader.Execute()
    t2 = time.perf_counter()
    mask = sitk.ReadImage(mask_path)
    t3 = time.perf_counter()
    extractor = featureextractor.RadiomicsFeatureExtractor(params)
    extractor.settings["additionalInfo"] = False
    extractor.settings["geometryTolerance"] = 1e-5  # see the module docstring
    result = extractor.execute(image, mask, label=1)
    t4 = time.perf_counter()
    features = {
        k.removeprefix("original_firstorder_"): float(v)
        for k, v in result.items()
        if k.startswith("original_firstorder_")
    }
    Path(out).write_text(
        json.dumps(
            {
                "import": t1 - t0,
                "read_dicom": t2 - t1,
                "read_mask": t3 - t2,
                "extract": t4 - t3,
                "pixel_type": image.GetPixelIDTypeAsString(),
                "mask_type": mask.GetPixelIDTypeAsString(),
                "features": features,
            }
        )
    )


def roi_child(root: str, params: str, out: str) -> None:
    """Peak heap (tracemalloc) of ``roi_features`` for each ROI of the catalog, to `out`."""
    import tracemalloc

    from radgen.features.compute import roi_features
    from radgen.features.settings import load_settings
    from radgen.platform.catalog import Catalog

    cat = Catalog.open(root)
    frame = cat.sql(
        "select r.roi_id, r.label, r.bbox, r.mask_path, r.n_voxels, s.zarr_path, s.spacing "
        "from rois r join series s using (series_uid) order by r.n_voxels"
    )
    settings = load_settings(Path(params)).as_params()
    rows = []
    for rec in frame.to_dict("records"):
        rec["bbox"] = [int(b) for b in rec["bbox"]]
        rec["spacing"] = [float(s) for s in rec["spacing"]]
        z0, z1, y0, y1, x0, x1 = rec["bbox"]
        roi_features(cat.root.url, rec, settings)  # warm-up: lazy imports, caches
        tracemalloc.start()
        start = time.perf_counter()
        result = roi_features(cat.root.url, rec, settings)
        wall = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        rows.append(
            {
                "roi_id": rec["roi_id"],
                "label": int(rec["label"]),
                "n_voxels": int(rec["n_voxels"]),
                "bbox_voxels": (z1 - z0) * (y1 - y0) * (x1 - x0),
                "peak": peak,
                "wall": wall,
                "error": result.get("error"),
            }
        )
    Path(out).write_text(json.dumps(rows))


# --------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------


def _ok(nbytes: float) -> str:
    return "ok" if nbytes < GOAL_BYTES else "MISS"


def print_table(steps: list[Step], pyr: Step, pyr_data: dict[str, Any] | None) -> None:
    head = (
        f"  {'step':34s} {'wall s':>7s} {'largest MB':>10s} {'(which process)':28s} "
        f"{'tree RSS MB':>11s} {'tree PSS MB':>11s} {'goal':>5s}"
    )
    print(head)
    print("  " + "-" * (len(head) - 2))

    def row(label: str, wall: float, single: float, who: str, rss: float, pss: float) -> None:
        print(
            f"  {label:34s} {wall:7.1f} {single / MB:10.0f} {who[:28]:28s} "
            f"{rss / MB:11.0f} {pss / MB:11.0f} {_ok(pss):>5s}"
        )

    done = [s for s in steps if s.mem is not None]
    for s in done:
        assert s.mem is not None
        label = s.name + (" FAILED" if s.failed else "")
        row(
            label,
            s.mem.wall,
            s.mem.peak_single_rss,
            role(s),
            s.mem.peak_sum_rss,
            s.mem.peak_sum_pss,
        )
    if done:
        mems = [s.mem for s in done if s.mem is not None]
        worst = max(done, key=lambda s: s.mem.peak_sum_pss if s.mem else 0)
        row(
            "radgen, all steps (sum; max peak)",
            sum(m.wall for m in mems),
            max(m.peak_single_rss for m in mems),
            f"in: {worst.name}",
            max(m.peak_sum_rss for m in mems),
            max(m.peak_sum_pss for m in mems),
        )
    if pyr.mem is not None:
        label = "PyRadiomics 3.0.1 (baseline)" + (" FAILED" if pyr.failed else "")
        row(
            label,
            pyr.mem.wall,
            pyr.mem.peak_single_rss,
            "python (SimpleITK+radiomics)",
            pyr.mem.peak_sum_rss,
            pyr.mem.peak_sum_pss,
        )
    print(f"  goal: tree PSS < {GOAL_RSS_GB:.1f} GB (1 GB = 1e9 B; 1 MB = 1e6 B)")

    by_name = {s.name: s for s in done}
    feats = by_name.get("radgen features compute")
    if pyr.mem is None or pyr.failed or not done:
        return
    base_t, base_m = pyr.mem.wall, pyr.mem.peak_sum_pss
    print("\n  ratios, radgen / PyRadiomics (time: wall s; memory: tree PSS)")
    if feats is not None and feats.mem is not None and not feats.failed:
        print(
            f"    {'features compute alone':40s} time {feats.mem.wall / base_t:5.2f}x   "
            f"memory {feats.mem.peak_sum_pss / base_m:5.2f}x"
        )
    mems = [s.mem for s in done if s.mem is not None]
    print(
        f"    {'DICOM + mask -> features (all steps)':40s} time "
        f"{sum(m.wall for m in mems) / base_t:5.2f}x   "
        f"memory {max(m.peak_sum_pss for m in mems) / base_m:5.2f}x"
    )
    if pyr_data:
        print(
            f"    (PyRadiomics inside its {base_t:.1f} s: imports {pyr_data['import']:.1f} s, "
            f"SimpleITK DICOM read {pyr_data['read_dicom']:.1f} s -> {pyr_data['pixel_type']}, "
            f"NIfTI read {pyr_data['read_mask']:.1f} s, execute {pyr_data['extract']:.1f} s)"
        )


def print_roles(steps: list[Step]) -> None:
    print("\n  peak RSS of each process, per step (MB):")
    for s in steps:
        if s.mem is None:
            continue
        top = "coordinator (CLI + scheduler + nannies)"
        name = top if s.uses_cluster else "CLI process" if s.name.startswith("radgen") else "python"
        parts = [
            f"{name if r == top else r} {v / MB:.0f}"
            for r, v in sorted(s.mem.peak_by_role.items(), key=lambda kv: -kv[1])
            if r.strip()  # a process seen while exiting has no command line
        ]
        extra = ""
        if s.mem.time_v_maxrss is not None:
            extra = f"; /usr/bin/time max RSS {s.mem.time_v_maxrss / MB:.0f}"
        print(f"    {s.name:32s} {', '.join(parts)}{extra} ({s.mem.max_procs} processes)")
        if s.failed:
            print(f"      FAILED: {s.failed}")


def check_agreement(root: Path, pyr_data: dict[str, Any]) -> None:
    from radgen.platform.catalog import Catalog

    frame = Catalog.open(str(root)).sql("select * from features_radiomics")
    big = frame[frame["roi_id"].str.endswith(":1")]
    if big.empty:
        print("  agreement: no label-1 row in features_radiomics")
        return
    worst, worst_name = 0.0, ""
    for ours, theirs in FEATURE_PAIRS.items():
        a, b = float(big.iloc[0][ours]), pyr_data["features"].get(theirs, float("nan"))
        rel = abs(a - b) / max(1.0, abs(b))
        if not rel <= worst:
            worst, worst_name = rel, f"{ours} {a:.6g} vs {theirs} {b:.6g}"
    print(
        f"\n  agreement, label 1, {len(FEATURE_PAIRS)} first-order features defined alike: "
        f"largest relative difference {worst:.1e}" + (f" ({worst_name})" if worst_name else "")
    )


# --------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--slices", type=int, default=512)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--radius", type=int, default=120, help="tumour radius, voxels")
    parser.add_argument("--keep", type=Path, help="work here and keep the data (default: temp)")
    parser.add_argument(
        "--skip-pyradiomics", action="store_true", help="no baseline (it takes minutes and ~14 GB)"
    )
    parser.add_argument("--pyradiomics-child", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--roi-child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.pyradiomics_child:
        pyradiomics_child(*args.pyradiomics_child)
        return
    if args.roi_child:
        roi_child(*args.roi_child)
        return

    t_all = time.perf_counter()
    load_start = os.getloadavg()
    if load_start[0] > 0.5:
        print(
            f"WARNING: load average {load_start[0]:.1f} at start: other work shares the "
            f"{os.cpu_count()} cores; times will be slow and noisy (memory is not affected much)",
            file=sys.stderr,
        )
    radgen = str(BIN / "radgen")
    tmp = None if args.keep else tempfile.mkdtemp(prefix="radgen-bench-mem-")
    work = args.keep or Path(tmp or "")
    work.mkdir(parents=True, exist_ok=True)
    steps: list[Step] = []
    pyr = Step("PyRadiomics")
    try:
        start = time.perf_counter()
        inp = write_inputs(work, args.slices, args.size, args.radius)
        t_inputs = time.perf_counter() - start
        root = work / "catalog"
        env = _env(work / "home")
        q = ["--catalog", str(root)]
        plan = [
            (Step("radgen init"), [radgen, "init", *q]),
            (
                Step("radgen ingest dicom", uses_cluster=True),
                [radgen, "ingest", "dicom", str(inp["series"]), *q, "--quiet"],
            ),
            (Step("radgen ingest masks"), [radgen, "ingest", "masks", str(inp["mask"]), *q]),
            (
                Step("radgen features compute", uses_cluster=True),
                [radgen, "features", "compute", "--config", str(inp["params"]), *q, "--quiet"],
            ),
        ]
        for step, cmd in plan:
            steps.append(step)
            if any(s.failed for s in steps[:-1]):
                step.failed = "skipped: an earlier step failed"
                continue
            print(f"... {step.name}", file=sys.stderr, flush=True)
            measure(step, cmd, env)

        pyr_out = work / "pyradiomics.json"
        if args.skip_pyradiomics:
            pyr.failed = "skipped (--skip-pyradiomics)"
        else:
            print("... PyRadiomics", file=sys.stderr, flush=True)
            measure(
                pyr,
                [
                    sys.executable,
                    __file__,
                    "--pyradiomics-child",
                    str(inp["series"]),
                    str(inp["mask"]),
                    str(inp["params"]),
                    str(pyr_out),
                ],
                env,
            )
        pyr_data = json.loads(pyr_out.read_text()) if pyr_out.is_file() else None

        rois: list[dict[str, Any]] = []
        if not any(s.failed for s in steps):
            print("... roi_features under tracemalloc", file=sys.stderr, flush=True)
            roi_out = work / "rois.json"
            proc = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--roi-child",
                    str(root),
                    str(inp["params"]),
                    str(roi_out),
                ],
                env=env,
                capture_output=True,
                text=True,
            )
            if proc.returncode == 0:
                rois = json.loads(roi_out.read_text())
            else:
                print(f"roi_features replay failed: {proc.stderr[-1000:]}", file=sys.stderr)

        # ------------------------------------------------------------------ report
        shape = "x".join(map(str, inp["shape"]))
        print(
            f"Peak memory, radgen pipeline vs PyRadiomics: {shape} int16 CT "
            f"({inp['pixel_bytes'] / MB:.0f} MB = {inp['pixel_bytes'] / (1 << 30):.2f} GiB pixel "
            f"data, {inp['dicom_bytes'] / MB:.0f} MB DICOM in {inp['shape'][0]} files), "
            f"NIfTI mask {inp['mask_bytes'] / MB:.1f} MB gz: label 1 sphere r={args.radius} "
            f"({inp['n_voxels'][1] / 1e6:.2f} M voxels), label 2 sphere r={SMALL_RADIUS} "
            f"({inp['n_voxels'][2]} voxels); inputs written in {t_inputs:.0f} s; one run\n"
        )
        print_table(steps, pyr, pyr_data)
        print_roles([*steps, pyr])
        for s in steps:
            if s.failed and s.mem is None:
                print(f"    {s.name:32s} {s.failed}")
        if rois:
            print("\n  roi_features replayed per ROI in one process (tracemalloc peak heap):")
            for r in rois:
                print(
                    f"    label {r['label']}: {r['n_voxels']:>9,d} ROI voxels, bbox "
                    f"{r['bbox_voxels']:>11,d} voxels: peak {r['peak'] / MB:7.1f} MB "
                    f"({r['peak'] / max(1, r['bbox_voxels']):.1f} B/bbox voxel, "
                    f"{r['peak'] / max(1, r['n_voxels']):.1f} B/ROI voxel), {r['wall']:.2f} s"
                    + (f", error {r['error']}" if r["error"] else "")
                )
            print(f"    (the series is {inp['pixel_bytes'] / MB:.0f} MB of pixels)")
        if pyr_data and not pyr.failed and not any(s.failed for s in steps):
            check_agreement(root, pyr_data)
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    load_end = os.getloadavg()
    print(
        f"\n(benchmark took {time.perf_counter() - t_all:.0f} s; load average (1, 5, 15 min) at "
        f"start {load_start[0]:.1f} {load_start[1]:.1f} {load_start[2]:.1f}, at end "
        f"{load_end[0]:.1f} {load_end[1]:.1f} {load_end[2]:.1f} on {os.cpu_count()} cores)"
    )
    if not steps or any(s.failed for s in steps) or (pyr.failed and not args.skip_pyradiomics):
        sys.exit(1)


if __name__ == "__main__":
    main()
