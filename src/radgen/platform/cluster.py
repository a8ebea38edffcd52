"""Dask client factory: a scheduler address, ``$RADGEN_SCHEDULER``, or a LocalCluster.

Compute commands take ``--scheduler ADDRESS``. Without one they start a LocalCluster sized
for this machine (one single-threaded worker process per core, at most four) and close it
when the work is done.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator

from distributed import Client, LocalCluster

from radgen.errors import ConfigError

__all__ = ["ENV_SCHEDULER", "dask_client"]

log = logging.getLogger(__name__)

ENV_SCHEDULER = "RADGEN_SCHEDULER"


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
