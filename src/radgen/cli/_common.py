"""What every ``radgen`` sub-command shares: consoles, options, JSON output, runs with a cluster."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

CatalogOpt = Annotated[
    str | None,
    typer.Option(
        "--catalog",
        envvar="RADGEN_CATALOG",
        help="Catalog root: local path or fsspec URL (default: ./radgen-catalog).",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")]
SchedulerOpt = Annotated[
    str | None,
    typer.Option(
        "--scheduler",
        envvar="RADGEN_SCHEDULER",
        help="Dask scheduler address (default: a LocalCluster).",
    ),
]
#: For commands whose work is small enough to run in this process unless a scheduler is named.
OptionalSchedulerOpt = Annotated[
    str | None,
    typer.Option(
        "--scheduler",
        envvar="RADGEN_SCHEDULER",
        help="Dask scheduler address to run the work on (default: in this process).",
    ),
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress or log output.")]
AllowWarningsOpt = Annotated[
    bool,
    typer.Option("--allow-warnings", help="Let warning-level suite failures through the gate."),
]


def setup_logging(quiet: bool) -> None:
    from rich.logging import RichHandler

    handler = RichHandler(console=err, show_time=False, show_path=False, markup=False)
    root_logger = logging.getLogger("radgen")
    root_logger.handlers[:] = [handler]
    root_logger.setLevel(logging.ERROR if quiet else logging.WARNING)
    for noisy in ("distributed", "great_expectations", "bokeh", "tornado", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    # Worker processes configure their own logging from the Dask config, inherited through
    # the environment: keep their routine warnings (slow event loop, closing comms) quiet too.
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "error")


@contextmanager
def progress_bar(enabled: bool) -> Iterator[Callable[[str, int, int], None] | None]:
    if not enabled:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as bar:
        tasks: dict[str, Any] = {}

        def update(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        yield update


def json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return value.tolist()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def records(frame: Any) -> list[dict[str, Any]]:
    """Rows as dicts with full-precision floats and None for missing values."""
    import pandas as pd

    rows: list[dict[str, Any]] = frame.to_dict("records")
    for row in rows:
        for key, value in row.items():
            if not hasattr(value, "__len__") and pd.isna(value):
                row[key] = None
    return rows


@contextmanager
def cluster_run(
    cat: Any,
    command: str,
    params: dict[str, Any],
    allow_warnings: bool,
    scheduler: str | None,
    show: bool,
) -> Iterator[tuple[Any, Any, Callable[[str, int, int], None] | None]]:
    """A run with a Dask client and a progress display, for the compute commands."""
    from radgen.platform.cluster import dask_client

    with (
        cat.run(command, params, allow_warnings=allow_warnings) as run,
        dask_client(scheduler) as client,
        progress_bar(show) as progress,
    ):
        if show and err.is_terminal and client.dashboard_link:
            # interactive only: piped stderr keeps the one-line-error contract
            err.print(f"Dask dashboard: {client.dashboard_link}", highlight=False)
        yield run, client, progress


@contextmanager
def client_if(scheduler: str | None) -> Iterator[Any]:
    """A Dask client on `scheduler` for the duration (the default for dask.compute), or None."""
    if not scheduler:
        yield None
        return
    from radgen.platform.cluster import dask_client

    with dask_client(scheduler) as client:
        yield client


def emit(data: Any, as_json: bool, human: Callable[[], None]) -> None:
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2, default=json_default, allow_nan=False) + "\n")
    else:
        human()


def frame_table(frame: Any, title: str | None = None) -> Table:
    table = Table(title=title, show_lines=False)
    for col in frame.columns:
        table.add_column(str(col), overflow="fold")
    for row in frame.itertuples(index=False):
        table.add_row(*["" if v is None else str(v) for v in row])
    return table


def open_catalog(catalog: str | None) -> Any:
    from radgen.platform.catalog import Catalog

    return Catalog.open(catalog)
