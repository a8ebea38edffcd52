"""DICOM -> compressed volume throughput, peak memory and where the time goes; one run.

Input: one uncompressed CT series of ``--slices`` x ``--size`` x ``--size`` (default
128 x 512 x 512) written with :func:`radgen.demo.write_ct_series` from a chest-like phantom in
HU with realistic noise (``bench_zarr_codec.ct_phantom``; stored as unsigned 16-bit with the
default RescaleIntercept -1024). MB/s are of pixel data: voxels x 2 bytes / seconds
(1 MB = 1e6 bytes). Every figure comes from one run.

Contenders, on the same files:

* **pydicom read-and-stack** (in process, pydicom imported): ``dcmread`` every file, sort by
  ImagePositionPatient projected on the slice normal, ``np.stack`` of
  ``pixel_array * slope + intercept`` cast to int16. Nothing is written.
* **dcm2niix** (a subprocess, its start-up included) with ``-z n`` (plain .nii) and ``-z y``
  (.nii.gz; pigz if on PATH, else dcm2niix's internal zlib, which is what this machine has
  unless pigz is installed). It is looked for on PATH, in the venv's bin and in this
  script's cache; if missing it is ``pip install --target``-ed into the cache (never into
  the venv) unless ``--no-install``.
* **radgen, in process**: ``ingest_dicom`` inside ``Catalog.run`` on a LocalCluster that is
  already up (as ``bench_ingest.py``): header reading, sorting, pixel decoding, Blosc-zstd
  Zarr writing, suites, Delta commits, index refresh. Twice: the first ingest pays the lazy
  imports (Great Expectations here, radgen/zarr/pydicom in each worker), the second (another
  series with the same pixels) is the steady state.
* **radgen CLI, cold**: ``radgen ingest dicom FOLDER --catalog ROOT --quiet`` as a subprocess
  (interpreter start-up, imports, LocalCluster start and stop included), with its peak
  memory.

The ratio table gives radgen MB/s / baseline MB/s for each radgen row against each
baseline; goals: >= 0.9x pydicom, >= 1.0x dcm2niix. The machine has 2 cores: run it idle
(the script warns when the load average says otherwise).

Peak memory: ``radgen ingest dicom`` on a ~1 GiB series (``--big-slices`` x ``--big-size``^2,
default 512 x 1024 x 1024 int16), as a subprocess polled every 50 ms with psutil over its
whole process tree: the CLI process (coordinator, which also hosts the Dask scheduler and the
nannies) and the Dask worker processes it spawns. Reported: the largest single process, the
sum of RSS over the tree (counts shared library pages once per process, so it overstates) and
the sum of PSS (shared pages split between processes: the tree's real footprint), plus
``/usr/bin/time -v``'s maximum RSS when that exists (the largest single process it waited
for). Goal: under 1.5 GB.

Zarr codecs: ``bench_zarr_codec.bench_codecs`` on the phantom (see that script).

Profile: ``radgen ingest dicom`` replayed step by step in a fresh interpreter (the same
calls as ``radgen.cli.ingest_dicom_cmd``), with timers patched onto the functions it calls,
in the coordinator and inside the Dask workers (nothing under src/ is changed): exclusive
wall time per step. ``--cprofile`` adds cProfile's top functions for both sides.

Usage: python benchmarks/bench_dicom_throughput.py [--slices 128] [--size 512]
       [--big-slices 512] [--big-size 1024] [--skip-rss] [--no-install] [--cprofile]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: dcm2niix from PyPI (the wheel carries the binary); pin for pyproject's ``bench`` extra.
DCM2NIIX_PIP = "dcm2niix==1.0.20260724"
CACHE = Path(tempfile.gettempdir()) / "radgen-bench-cache"
BIN = Path(sys.executable).parent
MB = 1e6
GOAL_DCM2NIIX = 1.0
GOAL_PYDICOM = 0.9
GOAL_RSS_GB = 1.5


# --------------------------------------------------------------------------------------
# dcm2niix
# --------------------------------------------------------------------------------------


def _works(binary: str | None) -> bool:
    if not binary or not Path(binary).is_file() or not os.access(binary, os.X_OK):
        return False
    try:  # `dcm2niix --version` exits 3 by design; it must print its banner
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "dcm2niiX" in out.stdout


def find_dcm2niix(install: bool) -> str | None:
    """A working dcm2niix: the pip package's binary, PATH, the venv's bin, or our cache.

    The PyPI wheel ``dcm2niix`` ships the real binary inside the package
    (``dcm2niix/dcm2niix``) plus a Python console script ``bin/dcm2niix``; the binary is
    preferred (no interpreter start-up in the timing). When none is found and `install` is
    true, the wheel is installed with ``pip install --target`` into a cache folder under the
    temp dir, leaving the venv alone.
    """
    candidates: list[str | None] = []
    try:
        import dcm2niix as pkg  # type: ignore[import-not-found]

        candidates.append(str(getattr(pkg, "bin", Path(pkg.__file__).parent / "dcm2niix")))
    except ImportError:
        pass
    target = CACHE / "dcm2niix"
    cached = str(target / "dcm2niix" / "dcm2niix")
    candidates += [shutil.which("dcm2niix"), str(BIN / "dcm2niix"), cached]
    for cand in candidates:
        if _works(cand):
            return cand
    hint = (
        f"dcm2niix not found. Install it with `{BIN / 'pip'} install {DCM2NIIX_PIP}` "
        "(PyPI wheel carrying the binary), or `apt-get install dcm2niix`."
    )
    if not install:
        print(hint + " Skipping dcm2niix (--no-install).", file=sys.stderr)
        return None
    print(f"dcm2niix not found; pip-installing {DCM2NIIX_PIP} into {target} ...", file=sys.stderr)
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--upgrade",
         "--target", str(target), DCM2NIIX_PIP],
        capture_output=True, text=True,
    )  # fmt: skip
    if proc.returncode == 0 and Path(cached).is_file():
        Path(cached).chmod(0o755)
    if proc.returncode != 0 or not _works(cached):
        print(
            f"{hint}\n  pip said: {proc.stderr.strip()[-500:]}\n  Skipping dcm2niix.",
            file=sys.stderr,
        )
        return None
    return cached


def dcm2niix_version(binary: str) -> str:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True)
    return (out.stdout.strip().splitlines() or ["?"])[-1]


def time_dcm2niix(binary: str, folder: Path, out: Path, compress: str) -> tuple[float, int]:
    out.mkdir(parents=True)
    start = time.perf_counter()
    subprocess.run(
        [binary, "-z", compress, "-b", "n", "-o", str(out), str(folder)],
        check=True, capture_output=True,
    )  # fmt: skip
    elapsed = time.perf_counter() - start
    return elapsed, sum(p.stat().st_size for p in out.iterdir())


# --------------------------------------------------------------------------------------
# pydicom baseline
# --------------------------------------------------------------------------------------


def pydicom_read_stack(folder: Path) -> Any:
    import numpy as np
    import pydicom

    slices = [pydicom.dcmread(p) for p in folder.iterdir() if p.suffix == ".dcm"]
    iop = np.asarray(slices[0].ImageOrientationPatient, float)
    normal = np.cross(iop[:3], iop[3:])
    slices.sort(key=lambda ds: float(np.dot(np.asarray(ds.ImagePositionPatient, float), normal)))
    return np.stack(
        [ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept) for ds in slices]
    ).astype(np.int16)


# --------------------------------------------------------------------------------------
# peak memory of a process tree
# --------------------------------------------------------------------------------------


@dataclass
class TreeMemory:
    """What :func:`run_with_memory` saw: wall time and peak memory of a process tree."""

    wall: float = 0.0
    returncode: int = 0
    peak_sum_rss: int = 0
    peak_sum_pss: int = 0
    peak_single_rss: int = 0
    peak_single_role: str = ""
    peak_by_role: dict[str, int] = field(default_factory=dict)
    max_procs: int = 0
    time_v_maxrss: int | None = None
    stderr: str = ""


def _role(proc: Any, top_pid: int) -> str:
    try:
        cmd = " ".join(proc.cmdline())
    except Exception:
        return "?"
    if proc.pid == top_pid:
        return "coordinator (CLI + scheduler + nannies)"
    if "resource_tracker" in cmd:
        return "multiprocessing resource tracker"
    if "spawn_main" in cmd or "forkserver" in cmd or "dask" in cmd:
        return "dask worker"
    return cmd[:60]


def run_with_memory(cmd: list[str], env: dict[str, str], interval: float = 0.05) -> TreeMemory:
    """Run `cmd`, polling RSS/PSS of its whole process tree until it exits."""
    import psutil

    timev = Path("/usr/bin/time")
    wrapped = timev.is_file()
    full = ([str(timev), "-v"] if wrapped else []) + cmd
    res = TreeMemory()
    start = time.perf_counter()
    popen = subprocess.Popen(
        full, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    stderr_chunks: list[str] = []
    reader = threading.Thread(target=lambda: stderr_chunks.append(popen.stderr.read()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    root = psutil.Process(popen.pid)
    top_pid: int | None = None if wrapped else popen.pid
    use_pss = True
    while popen.poll() is None:
        try:
            if wrapped:  # skip /usr/bin/time itself; its child is the radgen process
                if top_pid is None:
                    kids = root.children()
                    if not kids:
                        time.sleep(0.005)
                        continue
                    top_pid = kids[0].pid
                procs = root.children(recursive=True)
            else:
                procs = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            break
        sum_rss = sum_pss = 0
        for p in procs:
            try:
                rss = p.memory_info().rss
                pss = p.memory_full_info().pss if use_pss else 0
            except (psutil.NoSuchProcess, psutil.ZombieProcess):
                continue
            except (psutil.AccessDenied, AttributeError):
                use_pss, pss = False, 0
            sum_rss += rss
            sum_pss += pss
            role = _role(p, top_pid or -1)
            if role == "?":
                continue
            res.peak_by_role[role] = max(res.peak_by_role.get(role, 0), rss)
            if rss > res.peak_single_rss:
                res.peak_single_rss, res.peak_single_role = rss, role
        res.peak_sum_rss = max(res.peak_sum_rss, sum_rss)
        res.peak_sum_pss = max(res.peak_sum_pss, sum_pss)
        res.max_procs = max(res.max_procs, len(procs))
        time.sleep(interval)
    popen.wait()
    res.wall = time.perf_counter() - start
    reader.join(timeout=5)
    res.returncode = popen.returncode
    res.stderr = "".join(stderr_chunks)
    for line in res.stderr.splitlines():
        if "Maximum resident set size" in line:
            res.time_v_maxrss = int(line.rsplit(":", 1)[1]) * 1024
    return res


# --------------------------------------------------------------------------------------
# profile: timers patched onto radgen's functions (coordinator and Dask workers)
# --------------------------------------------------------------------------------------


class Probe:
    """Exclusive wall time per label; nested probes subtract from their parent."""

    def __init__(self) -> None:
        self.excl: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.stack: list[list[float]] = []  # [start, child time]

    def wrap(self, label: str | Callable[..., str], fn: Callable[..., Any]) -> Callable[..., Any]:
        """`fn` timed under `label` (or under ``label(*args, **kwargs)``)."""
        probe = self

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            name = label(*args, **kwargs) if callable(label) else label
            probe.stack.append([time.perf_counter(), 0.0])
            try:
                return fn(*args, **kwargs)
            finally:
                start, child = probe.stack.pop()
                elapsed = time.perf_counter() - start
                probe.excl[name] += elapsed - child
                probe.calls[name] += 1
                if probe.stack:
                    probe.stack[-1][1] += elapsed

        wrapper.__wrapped__ = fn  # type: ignore[attr-defined]
        return wrapper

    def wrap_iter(self, label: str, it: Any) -> Any:
        """An iterator whose ``next`` calls are timed as `label`."""
        while True:
            self.stack.append([time.perf_counter(), 0.0])
            try:
                item = next(it)
            except StopIteration:
                self._close(label)
                return
            except BaseException:
                self._close(label)
                raise
            self._close(label)
            yield item

    def _close(self, label: str) -> None:
        start, child = self.stack.pop()
        elapsed = time.perf_counter() - start
        self.excl[label] += elapsed - child
        self.calls[label] += 1
        if self.stack:
            self.stack[-1][1] += elapsed


def _worker_task(kind: str, fn: Callable[..., Any], prof_dir: str | None) -> Callable[..., Any]:
    """A Dask task that installs the worker-side timers once, then runs `fn` timed."""

    def task(*args: Any, **kwargs: Any) -> Any:
        import cProfile
        import uuid

        import pydicom

        import radgen.ingestion.dicom as d
        import radgen.platform.volumes as v

        probe = getattr(d, "_bench_probe", None)
        if probe is None:
            probe = Probe()
            d._bench_probe = probe  # type: ignore[attr-defined]
            d.file_sha256 = probe.wrap("sha256 of each file", d.file_sha256)
            pydicom.dcmread = probe.wrap(
                lambda *a, **k: (
                    "dcmread, header only"
                    if k.get("stop_before_pixels")
                    else "dcmread, whole file (pixels read again)"
                ),
                pydicom.dcmread,
            )
            d._pixels = probe.wrap("pixel_array decode (+checks)", d._pixels)
            d._rescaled = probe.wrap("rescale (modality LUT, in place)", d._rescaled)
            original_wvs = d.write_volume_slices

            def wvs(root: Any, rel: str, slices: Any, **kw: Any) -> Any:
                return original_wvs(
                    root, rel, probe.wrap_iter("per-slice stats + cast (min/max)", slices), **kw
                )

            d.write_volume_slices = probe.wrap("Zarr create + np.stack + compress + write", wvs)
            v._commit = probe.wrap("Zarr attrs + rename into place", v._commit)
        prof = cProfile.Profile() if prof_dir else None
        if prof is not None:
            prof.enable()
        try:
            return probe.wrap(f"{kind} (rest: parse fields, sort, checks, rows)", fn)(
                *args, **kwargs
            )
        finally:
            if prof is not None:
                prof.disable()
                prof.dump_stats(f"{prof_dir}/worker-{uuid.uuid4().hex}.prof")

    return task


def _worker_report() -> dict[str, Any]:
    import radgen.ingestion.dicom as d

    probe = getattr(d, "_bench_probe", None)
    return {} if probe is None else {"excl": dict(probe.excl), "calls": dict(probe.calls)}


def profile_child(folder: str, root: str, out_json: str, prof_dir: str | None) -> None:
    """Replay ``radgen ingest dicom`` with timers; write the breakdown to `out_json`."""
    t_start = time.perf_counter()
    marks: dict[str, float] = {}

    def mark(name: str, since: float) -> float:
        now = time.perf_counter()
        marks[name] = now - since
        return now

    t = time.perf_counter()
    import radgen.cli  # noqa: F401  (what the `radgen` entry point imports)
    import radgen.ingestion.ingest_dicom as ing
    import radgen.platform.index as index
    import radgen.platform.tables as tables
    from radgen.ingestion.dicom import find_files
    from radgen.platform.catalog import Catalog
    from radgen.platform.cluster import dask_client
    from radgen.platform.runs import Run

    t = mark("import radgen (cli, ingestion, catalog: pandas, pyarrow, deltalake, duckdb, dask)", t)
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import great_expectations  # noqa: F401

    t = mark("import great_expectations (lazy, at the first suite)", t)

    probe = Probe()
    ing.find_files = probe.wrap("find files", ing.find_files)
    original_gather = ing._gather
    ing._gather = probe.wrap(
        lambda client, futures, stage, progress: f"wait for workers: {stage}", original_gather
    )
    ing._existing_series = probe.wrap("read series table (rerun check)", ing._existing_series)
    Run.validate = probe.wrap("GX suites (Run.validate)", Run.validate)
    Run.commit = probe.wrap("Run.commit rest (conform, anti-join, suite frames)", Run.commit)
    Run._finish = probe.wrap("run finish rest (rows for runs/quality_results)", Run._finish)
    tables.write_table = probe.wrap("Delta commits (tables.write_table)", tables.write_table)
    index.refresh = probe.wrap("index refresh (DuckDB views)", index.refresh)
    ing.read_headers = _worker_task("header task", ing.read_headers, prof_dir)
    ing.assemble_series = _worker_task("series task", ing.assemble_series, prof_dir)

    coord = None
    if prof_dir:
        import cProfile

        coord = cProfile.Profile()
        coord.enable()
    t = time.perf_counter()
    find_files([folder])
    cat = Catalog.open(root)
    run = cat.run("ingest dicom", {"paths": [folder]})
    t = mark("Catalog.open + cat.run (index stale check)", t)
    with run:
        t = time.perf_counter()
        cm = dask_client()
        client = cm.__enter__()
        t = mark("LocalCluster start (2 worker processes)", t)
        try:
            t_ing = time.perf_counter()
            ing.ingest_dicom(run, [folder], client)
            marks["ingest_dicom call"] = time.perf_counter() - t_ing
            workers = client.run(_worker_report)
        finally:
            t = time.perf_counter()
            cm.__exit__(None, None, None)
            t = mark("LocalCluster close", t)
        t_exit = time.perf_counter()
    marks["run exit (Run._finish)"] = time.perf_counter() - t_exit
    if coord is not None:
        coord.disable()
        coord.dump_stats(f"{prof_dir}/coordinator.prof")
    marks["total in process"] = time.perf_counter() - t_start
    Path(out_json).write_text(
        json.dumps(
            {
                "marks": marks,
                "coordinator": {"excl": dict(probe.excl), "calls": dict(probe.calls)},
                "workers": workers,
            }
        )
    )


def print_profile(data: dict[str, Any], wall: float, mb: float) -> None:
    marks, coord = data["marks"], data["coordinator"]
    print(f"\nWhere the time goes: one cold `radgen ingest dicom` of {mb:.0f} MB pixel data, "
          f"{wall:.2f} s wall as a process")  # fmt: skip
    rows: list[tuple[str, float, str]] = []
    accounted = 0.0
    for name in (
        "import radgen (cli, ingestion, catalog: pandas, pyarrow, deltalake, duckdb, dask)",
        "import great_expectations (lazy, at the first suite)",
        "Catalog.open + cat.run (index stale check)",
        "LocalCluster start (2 worker processes)",
    ):
        rows.append((name, marks[name], ""))
        accounted += marks[name]
    ingest = marks["ingest_dicom call"] + marks["run exit (Run._finish)"]
    rows.append(("ingest_dicom + run exit, of which (coordinator, exclusive):", ingest, ""))
    accounted += marks["ingest_dicom call"] + marks["run exit (Run._finish)"]
    in_probe = sum(coord["excl"].values())
    for name, sec in sorted(coord["excl"].items(), key=lambda kv: -kv[1]):
        rows.append(("    " + name, sec, f"x{coord['calls'][name]}"))
    rows.append(("    other coordinator code", ingest - in_probe, ""))
    rows.append(("LocalCluster close", marks["LocalCluster close"], ""))
    accounted += marks["LocalCluster close"]
    rows.append(("interpreter start-up, exit, rest", wall - accounted, ""))
    for name, sec, calls in rows:
        print(f"  {name:74s} {sec:7.2f} s {calls}")
    merged: dict[str, list[float]] = defaultdict(lambda: [0.0, 0])
    for rep in data["workers"].values():
        for name, sec in rep.get("excl", {}).items():
            merged[name][0] += sec
            merged[name][1] += rep["calls"][name]
    total = sum(v[0] for v in merged.values())
    print(f"  inside the Dask workers (busy {total:.2f} s, exclusive):")
    for name, (sec, calls) in sorted(merged.items(), key=lambda kv: -kv[1][0]):
        print(
            f"    {name:72s} {sec:7.2f} s x{int(calls)}  ({mb / sec if sec else 0:6.0f} MB/s alone)"
        )


def print_cprofile(prof_dir: Path, top: int = 18) -> None:
    import io
    import pstats

    for label, files in (
        ("Dask workers", sorted(prof_dir.glob("worker-*.prof"))),
        ("coordinator", [prof_dir / "coordinator.prof"]),
    ):
        files = [f for f in files if f.is_file()]
        if not files:
            continue
        buf = io.StringIO()
        stats = pstats.Stats(str(files[0]), stream=buf)
        for f in files[1:]:
            stats.add(str(f))
        stats.sort_stats("tottime").print_stats(top)
        body = buf.getvalue()
        body = body[body.find("   ncalls") :]
        print(f"\ncProfile, {label}, top {top} by own time:\n{body}")


# --------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------


def _env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["RADGEN_HOME"] = str(home)
    env.pop("RADGEN_SCHEDULER", None)
    env.setdefault("GX_ANALYTICS_ENABLED", "False")
    return env


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--slices", type=int, default=128)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--big-slices", type=int, default=512)
    parser.add_argument("--big-size", type=int, default=1024)
    parser.add_argument("--skip-rss", action="store_true", help="skip the ~1 GiB peak-memory run")
    parser.add_argument("--no-install", action="store_true", help="do not pip-install dcm2niix")
    parser.add_argument("--cprofile", action="store_true", help="also print cProfile top functions")
    parser.add_argument(
        "--profile-child", nargs=3, metavar=("FOLDER", "ROOT", "OUT"), help=argparse.SUPPRESS
    )
    parser.add_argument("--prof-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.profile_child:
        profile_child(*args.profile_child, args.prof_dir)
        return

    import numpy as np
    import zarr

    from bench_zarr_codec import bench_codecs, ct_phantom, print_codecs
    from radgen.demo import write_ct_series
    from radgen.ingestion.ingest_dicom import ingest_dicom
    from radgen.platform.catalog import Catalog
    from radgen.platform.cluster import dask_client
    from radgen.platform.volumes import VOLUME_CODEC, chunk_shape, read_region

    t_all = time.perf_counter()
    load = os.getloadavg()[0]
    if load > 0.5:
        print(f"WARNING: load average {load:.1f} before start: other work shares the "
              f"{os.cpu_count()} cores, so figures will be low and noisy", file=sys.stderr)  # fmt: skip
    radgen_cli = BIN / "radgen"
    d2n = find_dcm2niix(install=not args.no_install)

    with tempfile.TemporaryDirectory(prefix="radgen-bench-") as tmp:
        work = Path(tmp)
        shape = (args.slices, args.size, args.size)
        volume = ct_phantom(shape)
        series = work / "series"
        write_ct_series(series, volume, spacing=(1.25, 0.7, 0.7), seed=1)  # HU + 1024 fits uint16
        n_files = len(list(series.iterdir()))
        pixel_mb = volume.nbytes / MB
        dicom_mb = sum(p.stat().st_size for p in series.iterdir()) / MB

        # pydicom
        start = time.perf_counter()
        stacked = pydicom_read_stack(series)
        t_pydicom = time.perf_counter() - start
        assert np.array_equal(stacked, volume), "pydicom baseline: wrong volume"
        del stacked

        # dcm2niix
        d2n_rows: list[tuple[str, float, float]] = []
        if d2n:
            gz = "pigz" if shutil.which("pigz") else "internal zlib"
            for flag, label in (
                ("n", "dcm2niix -z n (.nii)"),
                ("y", f"dcm2niix -z y (.nii.gz, {gz})"),
            ):
                sec, size = time_dcm2niix(d2n, series, work / f"nii-{flag}", flag)
                d2n_rows.append((label, sec, pixel_mb / (size / MB) if size else 0.0))

        # radgen in process, cluster already up: a first ingest (pays the lazy imports: Great
        # Expectations in this process, radgen/zarr/pydicom in the workers), then a second
        # series (same pixels, new UIDs) on the same cluster: the steady state
        series2 = work / "series2"
        write_ct_series(series2, volume, spacing=(1.25, 0.7, 0.7), seed=3)
        root = work / "cat"
        catalog = Catalog.init(str(root))
        t_radgen: list[float] = []
        uids: list[str] = []
        with dask_client() as client:
            client.run(lambda: None)
            for folder in (series, series2):
                start = time.perf_counter()
                with catalog.run("ingest dicom", {"paths": [str(folder)]}) as run:
                    report = ingest_dicom(run, [folder], client)
                t_radgen.append(time.perf_counter() - start)
                uids.append(report.series[0]["series_uid"])
        rel = f"images/{uids[0]}.zarr"
        assert np.array_equal(read_region(catalog.root, rel, name="image"), volume), (
            "radgen: wrong volume"
        )
        stored = zarr.open_group(str(root / rel), mode="r")["image"]
        stored_dtype, stored_chunks = str(stored.dtype), tuple(stored.chunks)
        zarr_mb = sum(p.stat().st_size for p in (root / rel).rglob("*") if p.is_file()) / MB

        # radgen CLI, cold, with memory
        root_cli = work / "cat-cli"
        Catalog.init(str(root_cli))
        env = _env(work / "home")
        cli = run_with_memory(
            [
                str(radgen_cli),
                "ingest",
                "dicom",
                str(series),
                "--catalog",
                str(root_cli),
                "--quiet",
            ],
            env,
        )
        if cli.returncode != 0:
            raise SystemExit(f"radgen CLI failed:\n{cli.stderr[-3000:]}")

        # profile (fresh interpreter): timers only; with --cprofile a second replay under
        # cProfile (on another catalog) gives the top functions without skewing the timers
        prof_dir = work / "prof"
        prof_dir.mkdir()
        profile: dict[str, Any] = {}
        t_prof = 0.0
        for attempt, with_cprofile in enumerate([False, True] if args.cprofile else [False]):
            root_prof = work / f"cat-prof{attempt}"
            Catalog.init(str(root_prof))
            out_json = work / f"profile{attempt}.json"
            cmd = [
                sys.executable,
                __file__,
                "--profile-child",
                str(series),
                str(root_prof),
                str(out_json),
            ]
            if with_cprofile:
                cmd += ["--prof-dir", str(prof_dir)]
            start = time.perf_counter()
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
            if proc.returncode != 0:
                raise SystemExit(f"profile run failed:\n{proc.stderr[-3000:]}")
            if not with_cprofile:
                t_prof = time.perf_counter() - start
                profile = json.loads(out_json.read_text())

        # codecs
        codecs = bench_codecs(volume, work / "codecs")
        shutil.rmtree(work / "codecs", ignore_errors=True)
        chunks = chunk_shape(volume.shape, 2)
        del volume

        # 1 GiB series, peak memory
        big = None
        big_shape = (args.big_slices, args.big_size, args.big_size)
        if not args.skip_rss:
            big_volume = ct_phantom(big_shape, noise_slices=8, seed=2)
            write_ct_series(work / "big", big_volume, spacing=(0.625, 0.35, 0.35), seed=2)
            big_mb = big_volume.nbytes / MB
            del big_volume
            root_big = work / "cat-big"
            Catalog.init(str(root_big))
            big = run_with_memory(
                [
                    str(radgen_cli),
                    "ingest",
                    "dicom",
                    str(work / "big"),
                    "--catalog",
                    str(root_big),
                    "--quiet",
                ],
                env,
            )
            if big.returncode != 0:
                raise SystemExit(f"radgen CLI (big) failed:\n{big.stderr[-3000:]}")

        # ------------------------------------------------------------------ report
        print(f"DICOM -> volume: {n_files} files, {'x'.join(map(str, shape))} int16 CT "
              f"({pixel_mb:.1f} MB pixel data, {dicom_mb:.1f} MB DICOM); 1 MB = 1e6 B; one run")  # fmt: skip
        if d2n:
            print(f"dcm2niix: {d2n} ({dcm2niix_version(d2n)}; pip: {DCM2NIIX_PIP})")
        pyd = pixel_mb / t_pydicom
        radgen_rows = [
            ("radgen in process, 1st ingest, cluster up", t_radgen[0]),
            ("radgen in process, 2nd ingest (warm)", t_radgen[1]),
            ("radgen CLI, cold (start-up + cluster incl.)", cli.wall),
        ]
        print(f"\n  {'contender':50s} {'seconds':>8s} {'MB/s':>7s} {'out ratio':>9s}")
        print(
            f"  {'pydicom read + sort + stack + rescale (no write)':50s} {t_pydicom:8.2f} {pyd:7.0f} {'-':>9s}"
        )
        for label, sec, ratio in d2n_rows:
            print(f"  {label:50s} {sec:8.2f} {pixel_mb / sec:7.0f} {ratio:9.2f}")
        for label, sec in radgen_rows:
            print(f"  {label:50s} {sec:8.2f} {pixel_mb / sec:7.0f} {pixel_mb / zarr_mb:9.2f}")
        codec = VOLUME_CODEC.to_dict()["configuration"]
        print(f"  (radgen stored the volume as {stored_dtype}, chunks {stored_chunks}, Blosc "
              f"{codec['cname']}-{codec['clevel']} {codec['shuffle']}; "
              "out ratio = int16 pixel bytes / output bytes)")  # fmt: skip

        baselines = [("pydicom", pyd, GOAL_PYDICOM)] + [
            (label.split(" (")[0], pixel_mb / sec, GOAL_DCM2NIIX) for label, sec, _ in d2n_rows
        ]
        print("\n  ratios, radgen MB/s / baseline MB/s " + ", ".join(
            f"(goal vs {name}: >= {goal:.1f}x)" for name, _, goal in baselines[:2]))  # fmt: skip
        print(f"  {'':44s}" + "".join(f"{name:>18s}" for name, _, _ in baselines))
        for label, sec in radgen_rows:
            cells = []
            for _, base, goal in baselines:
                r = pixel_mb / sec / base
                cells.append(f"{r:9.2f}x {'ok' if r >= goal else 'MISS':>6s}")
            print(f"  {label:44s}" + "".join(f"{c:>18s}" for c in cells))

        gib = 1 << 30
        print(f"\n  peak memory, CLI on the {pixel_mb:.0f} MB series: largest process "
              f"{cli.peak_single_rss / MB:.0f} MB ({cli.peak_single_role}), tree RSS "
              f"{cli.peak_sum_rss / MB:.0f} MB, tree PSS {cli.peak_sum_pss / MB:.0f} MB")  # fmt: skip
        if big is not None:
            print(f"  peak memory, CLI on a {'x'.join(map(str, big_shape))} int16 series "
                  f"({big_mb:.0f} MB = {big_mb * MB / gib:.2f} GiB pixel data; {big.wall:.1f} s, "
                  f"{big_mb / big.wall:.0f} MB/s cold), {big.max_procs} processes:")  # fmt: skip
            ok = lambda b: "ok" if b < GOAL_RSS_GB * 1e9 else "OVER"  # noqa: E731
            single = big.peak_single_rss
            print(f"    largest single process (RSS)      {single / MB:7.0f} MB  {ok(single):4s} "
                  f"({big.peak_single_role})")  # fmt: skip
            for role, rss in sorted(big.peak_by_role.items(), key=lambda kv: -kv[1]):
                print(f"      peak of {role:40s} {rss / MB:7.0f} MB")
            print(
                f"    whole tree, sum of RSS            {big.peak_sum_rss / MB:7.0f} MB  {ok(big.peak_sum_rss)}"
            )
            print(
                f"    whole tree, sum of PSS            {big.peak_sum_pss / MB:7.0f} MB  {ok(big.peak_sum_pss)}"
            )
            if big.time_v_maxrss is not None:
                print(f"    /usr/bin/time -v max RSS          {big.time_v_maxrss / MB:7.0f} MB  "
                      "(largest single waited-for process)")  # fmt: skip
            print(f"    goal: < {GOAL_RSS_GB:.1f} GB (1 GB = 1e9 B)")

        print()
        print_codecs(codecs, shape, chunks)
        print_profile(profile, t_prof, pixel_mb)
        if args.cprofile:
            print_cprofile(prof_dir)
    print(f"\n(benchmark took {time.perf_counter() - t_all:.0f} s; load average at start {load:.1f}, "
          f"at end {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")  # fmt: skip


if __name__ == "__main__":
    main()
