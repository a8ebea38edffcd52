"""Dask client factory: a scheduler address, ``$RADGEN_SCHEDULER``, or a LocalCluster.

Compute commands take ``--scheduler ADDRESS``. Without one they start a LocalCluster sized
for this machine (one single-threaded worker process per core, at most four) and close it
when the work is done.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dask
from distributed import Client, LocalCluster

from radgen.errors import ConfigError

__all__ = [
    "ENV_SCHEDULER",
    "LocalProcesses",
    "cluster_down",
    "cluster_status",
    "cluster_up",
    "dask_client",
]

log = logging.getLogger(__name__)

ENV_SCHEDULER = "RADGEN_SCHEDULER"

#: glibc malloc settings of radgen's worker processes. Dask's nanny sets a 64 KiB trim
#: threshold so idle workers hand memory back at once; radgen's tasks allocate slice stacks
#: and chunks of several MiB in a loop, which that setting turns into an mmap/munmap per
#: array (the same Zarr write ran 2x slower in a worker than in the main process). Memory is
#: still returned, above 128 MiB of free heap.
WORKER_MALLOC_ENV = {
    "MALLOC_TRIM_THRESHOLD_": str(128 << 20),
    "MALLOC_MMAP_THRESHOLD_": str(32 << 20),
}


@contextlib.contextmanager
def dask_client(scheduler: str | None = None, *, n_workers: int | None = None) -> Iterator[Client]:
    """Yield a Dask client for the duration of a command.

    Parameters
    ----------
    scheduler : str, optional
        Address of a running scheduler (``tcp://host:8786``). Defaults to
        ``$RADGEN_SCHEDULER``; when neither is set a LocalCluster is started.
    n_workers : int, optional
        Workers of the LocalCluster; default one per core, at most 4.

    Yields
    ------
    distributed.Client

    Raises
    ------
    ConfigError
        The scheduler cannot be reached.
    """
    address = scheduler or os.environ.get(ENV_SCHEDULER)
    if address:
        try:
            client = Client(address, timeout="15s")
        except (OSError, TimeoutError) as err:
            raise ConfigError(address, f"cannot reach the Dask scheduler: {err}") from err
        log.info("using Dask scheduler %s", address)
        try:
            yield client
        finally:
            client.close()
        return
    workers = n_workers or max(1, min(4, os.cpu_count() or 1))
    with (
        dask.config.set(
            {f"distributed.nanny.pre-spawn-environ.{k}": v for k, v in WORKER_MALLOC_ENV.items()}
        ),
        LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",  # any free port: never clash with another cluster
            silence_logs=logging.ERROR,
        ) as cluster,
        Client(cluster) as client,
    ):
        log.info("started a LocalCluster with %d workers", workers)
        yield client


# --- a local scheduler and workers as background processes (``radgen cluster up/down``) ---

ENV_HOME = "RADGEN_HOME"


def state_dir() -> Path:
    """Where ``radgen cluster up`` keeps its scheduler file, process ids and logs."""
    return Path(os.environ.get(ENV_HOME) or Path.home() / ".radgen") / "cluster"


@dataclass
class LocalProcesses:
    """A scheduler and workers started by :func:`cluster_up`."""

    address: str
    dashboard: str | None
    workers: int
    pids: list[int]
    state: Path

    def to_json(self) -> dict[str, Any]:
        """Plain-JSON view (``radgen cluster up --json``)."""
        return {
            "address": self.address,
            "dashboard": self.dashboard,
            "workers": self.workers,
            "pids": self.pids,
            "state": str(self.state),
        }


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def cluster_status(state: Path | None = None) -> LocalProcesses | None:
    """The cluster recorded in `state` if its scheduler process is still running."""
    folder = state or state_dir()
    record = folder / "cluster.json"
    if not record.is_file():
        return None
    data = json.loads(record.read_text())
    if not _alive(int(data["pids"][0])):
        return None
    return LocalProcesses(
        address=data["address"],
        dashboard=data.get("dashboard"),
        workers=int(data["workers"]),
        pids=[int(p) for p in data["pids"]],
        state=folder,
    )


def _spawn(cmd: list[str], log_file: Path) -> subprocess.Popen[bytes]:
    with log_file.open("ab") as log_handle:
        return subprocess.Popen(
            cmd,
            env={
                **os.environ,
                **{
                    f"DASK_DISTRIBUTED__NANNY__PRE_SPAWN_ENVIRON__{k}": v
                    for k, v in WORKER_MALLOC_ENV.items()
                },
            },
            stdout=log_handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # survives the command that started it; own process group
        )


def cluster_up(
    workers: int = 2,
    *,
    threads: int = 1,
    memory_limit: str = "auto",
    host: str = "127.0.0.1",
    state: Path | None = None,
    timeout: float = 60.0,
) -> LocalProcesses:
    """Start ``dask scheduler`` and `workers` ``dask worker`` processes in the background.

    For trying a real cluster on one machine: the processes outlive the command, log to
    ``<state>/*.log`` and are stopped by :func:`cluster_down`. If a cluster started this way
    is still running it is returned as it is.

    Raises
    ------
    ConfigError
        Bad sizes, or the scheduler or workers did not come up within `timeout` seconds
        (their log file is named).
    """
    if workers < 1 or threads < 1:
        raise ConfigError(
            "cluster up", f"workers and threads must be >= 1 (got {workers}, {threads})"
        )
    running = cluster_status(state)
    if running is not None:
        return running
    folder = state or state_dir()
    folder.mkdir(parents=True, exist_ok=True)
    scheduler_file = folder / "scheduler.json"
    scheduler_file.unlink(missing_ok=True)
    dask_bin = str(Path(sys.executable).parent / "dask")
    scheduler = _spawn(
        [dask_bin, "scheduler", "--host", host, "--port", "0", "--dashboard-address", ":0",
         "--scheduler-file", str(scheduler_file)],
        folder / "scheduler.log",
    )  # fmt: skip
    pids = [scheduler.pid]
    try:
        deadline = time.monotonic() + timeout
        while not scheduler_file.is_file() or scheduler_file.stat().st_size == 0:
            if scheduler.poll() is not None or time.monotonic() > deadline:
                raise ConfigError(
                    str(folder / "scheduler.log"), "the Dask scheduler did not start (see its log)"
                )
            time.sleep(0.2)
        address = json.loads(scheduler_file.read_text())["address"]
        worker = _spawn(
            [dask_bin, "worker", address, "--nworkers", str(workers), "--nthreads", str(threads),
             "--memory-limit", memory_limit, "--host", host, "--no-dashboard"],
            folder / "workers.log",
        )  # fmt: skip
        pids.append(worker.pid)
        with Client(address, timeout="15s") as client:
            try:
                client.wait_for_workers(workers, timeout=max(1.0, deadline - time.monotonic()))
            except TimeoutError as err:
                raise ConfigError(
                    str(folder / "workers.log"), f"{workers} Dask worker(s) did not connect in time"
                ) from err
            dashboard = client.dashboard_link
    except BaseException:
        _stop(pids)
        raise
    info = LocalProcesses(address, dashboard, workers, pids, folder)
    (folder / "cluster.json").write_text(json.dumps(info.to_json(), indent=2))
    return info


def _stop(pids: list[int], timeout: float = 20.0) -> None:
    """SIGTERM each process group (workers first), then SIGKILL what is left."""
    for pid in reversed(pids):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        for pid in pids:  # reap our own children so they do not linger as zombies
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
        time.sleep(0.2)
    for pid in pids:
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)


def cluster_down(state: Path | None = None) -> LocalProcesses | None:
    """Stop the cluster started by :func:`cluster_up`; None when none was running."""
    running = cluster_status(state)
    folder = state or state_dir()
    if running is not None:
        _stop(running.pids)
    (folder / "cluster.json").unlink(missing_ok=True)
    (folder / "scheduler.json").unlink(missing_ok=True)
    return running
