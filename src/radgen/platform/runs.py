"""Runs: the unit of work that commits table versions, with lineage and suite results.

A :class:`Run` is opened by every command that writes. Each table it commits passes its
validation suite first (the gate), becomes one new Delta version with the run's metadata,
gets lineage rows naming its inputs, and has its SQL view refreshed. When the run ends, one
row goes to ``runs`` and the suite results to ``quality_results``, whether it succeeded or
not, so a rejected commit is still explained in the catalog.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import secrets
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa

from radgen._version import code_version
from radgen.errors import RadgenError, ValidationFailed
from radgen.platform import index, tables
from radgen.platform.tables import WriteMode
from radgen.schemas.tables import key_columns, schema_for

if TYPE_CHECKING:
    from radgen.platform.storage import Root
    from radgen.validation.gate import SuiteResult

__all__ = ["LineageInput", "Run", "canonical_json", "new_run_id", "param_hash"]

log = logging.getLogger(__name__)


def new_run_id(now: dt.datetime | None = None) -> str:
    """A sortable, unique run id such as ``r-20261127T025201Z-3f9a1c``."""
    now = now or dt.datetime.now(dt.UTC)
    return f"r-{now.strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(3)}"


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no whitespace: equal inputs give equal bytes."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def param_hash(params: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical JSON of `params` (first 16 hex digits)."""
    return hashlib.sha256(canonical_json(params).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class LineageInput:
    """One input of a committed table version.

    Parameters
    ----------
    kind : str
        ``series``, ``sop_instance``, ``mask``, ``file`` or ``table``.
    id : str
        UID, path, or ``table@version``.
    sha256 : str, optional
        Content hash when known.
    """

    kind: str
    id: str
    sha256: str | None = None


@dataclass
class Run:
    """A unit of work that commits table versions.

    Use as a context manager; see the module docstring. Parameters are recorded as given.

    Parameters
    ----------
    root : Root
        Catalog root.
    command : str
        What runs, e.g. ``"ingest dicom"``.
    params : mapping
        Parameters that determine the output; hashed into ``param_hash``.
    allow_warnings : bool, default False
        Let warning-level expectation failures through the gate.
    """

    root: Root
    command: str
    params: Mapping[str, Any]
    allow_warnings: bool = False
    run_id: str = field(default_factory=new_run_id)
    started_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    outputs: dict[str, int] = field(default_factory=dict)
    suite_results: list[SuiteResult] = field(default_factory=list)
    message: str = ""

    @property
    def param_hash(self) -> str:
        """Hash of the run's parameters."""
        return param_hash(self.params)

    @property
    def code_version(self) -> str:
        """Version of the code doing the run."""
        return code_version()

    def __enter__(self) -> Run:
        log.info("run %s: %s", self.run_id, self.command)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            status = "succeeded"
        elif isinstance(exc, ValidationFailed):
            status = "rejected"
        else:
            status = "failed"
        message = self.message if exc is None else str(exc)
        try:
            self._finish(status, message)
        except RadgenError:
            if exc is None:
                raise
            log.exception("could not record run %s after an error", self.run_id)

    def commit_metadata(self, suite: SuiteResult | None) -> dict[str, str]:
        """Delta commit metadata for a table version written by this run."""
        return {
            "run_id": self.run_id,
            "command": self.command,
            "code_version": self.code_version,
            "param_hash": self.param_hash,
            "suite": "none" if suite is None else suite.status,
        }

    def validate(self, stage: str, data: pd.DataFrame, *, target: str) -> SuiteResult:
        """Run the suite of `stage` on `data`, keep the result, raise if it blocks.

        Raises
        ------
        ValidationFailed
            A critical expectation failed (or a warning one, unless allowed).
        """
        from radgen.validation.gate import run_suite

        result = run_suite(stage, data, target=target)
        self.suite_results.append(result)
        result.raise_if_blocking(allow_warnings=self.allow_warnings)
        return result

    def commit(
        self,
        name: str,
        data: pa.Table | pd.DataFrame,
        *,
        suite: str | None,
        mode: WriteMode = "append",
        only_new: bool = True,
        lineage: Iterable[LineageInput] = (),
        metadata: Mapping[str, str] | None = None,
        suite_context: Mapping[str, Any] | None = None,
    ) -> int | None:
        """Validate and commit `data` as a new version of table `name`.

        Parameters
        ----------
        name : str
            Table name.
        data : pyarrow.Table or pandas.DataFrame
            Rows to commit.
        suite : str or None
            Validation suite (stage) the rows must pass; None only for the bookkeeping
            tables of the platform itself.
        mode : {"append", "overwrite"}
            Add rows, or replace the table's content with `data`.
        only_new : bool, default True
            In append mode, drop rows whose key columns are already in the table, so a
            rerun changes nothing.
        lineage : iterable of LineageInput
            Inputs of this version.
        metadata : mapping of str to str, optional
            Extra commit metadata (e.g. the harmonization method), beside the run's own.
        suite_context : mapping, optional
            What the suite should know beyond the rows (``expected_columns`` of a feature
            table).

        Returns
        -------
        int or None
            The committed version, or None when nothing was new.
        """
        table = (
            data if isinstance(data, pa.Table) else pa.Table.from_pandas(data, preserve_index=False)
        )
        table = tables.conform(name, table)
        if mode == "append" and only_new:
            table = _drop_existing(self.root, name, table)
        if table.num_rows == 0 and tables.table_exists(self.root, name) and mode == "append":
            log.info("%s: nothing new to commit", name)
            return None
        results = []
        current = None
        if mode == "overwrite" and tables.table_exists(self.root, name):
            current = tables.read_table(self.root, name)
        if suite is not None:
            from radgen.validation.profiles import suite_frames

            previous = current.to_pandas() if current is not None and suite == "features" else None
            frames = suite_frames(suite, table, name, previous=previous, context=suite_context)
            results = [
                self.validate(stage, frame, target=target) for stage, frame, target in frames
            ]
        if current is not None and _same_content(current, name, table):
            log.info("%s: content unchanged; no new version", name)
            return None
        version = tables.write_table(
            self.root,
            name,
            table,
            mode=mode,
            metadata={**(metadata or {}), **self.commit_metadata(_worst(results))},
        )
        self._after_commit(name, version, results, lineage)
        return version

    def commit_stream(
        self,
        name: str,
        chunks: Callable[[], Iterator[pa.Table]],
        *,
        suite: str,
        lineage: Iterable[LineageInput] = (),
    ) -> int | None:
        """Validate and commit a table too large for memory, as one appended version.

        `chunks` is called twice: the first pass profiles every chunk (nulls, ranges,
        repeated keys within a chunk, per-sample sums) and runs the suites on the merged
        profile; the second streams the chunks into one Delta commit. Chunks must not share
        keys (e.g. disjoint samples).

        Returns
        -------
        int or None
            The committed version, or None when there were no rows.
        """
        from radgen.validation.profiles import aggregate_frames, merge_profiles, table_profile

        profiles: list[pd.DataFrame] = []
        extras: dict[tuple[str, str], list[pd.DataFrame]] = {}
        schema: pa.Schema | None = None
        for chunk in chunks():
            conformed = tables.conform(name, chunk)
            schema = conformed.schema
            profiles.append(table_profile(conformed, name))
            for stage, frame, target in aggregate_frames(conformed, name):
                extras.setdefault((stage, target), []).append(frame)
        if schema is None:
            return None
        results = [self.validate("table_profile", merge_profiles(profiles), target=name)]
        results += [self.validate(stage, pd.concat(frames, ignore_index=True), target=target)
                    for (stage, target), frames in extras.items() if frames]  # fmt: skip

        def batches() -> Iterator[pa.RecordBatch]:
            for chunk in chunks():
                yield from tables.conform(name, chunk).to_batches()

        version = tables.write_batches(
            self.root, name, batches(), schema, metadata=self.commit_metadata(_worst(results))
        )
        self._after_commit(name, version, results, lineage)
        return version

    def _after_commit(
        self,
        name: str,
        version: int,
        results: Sequence[SuiteResult],
        lineage: Iterable[LineageInput],
    ) -> None:
        """Tie the suite results and inputs to the new version; point the index at it."""
        for result in results:
            result.table_version = version
        self.outputs[name] = version
        inputs = list(lineage)
        if inputs:
            self._write_lineage(name, version, inputs)
        index.refresh(self.root, [name])

    def _write_lineage(self, name: str, version: int, inputs: Sequence[LineageInput]) -> None:
        now = dt.datetime.now(dt.UTC)
        rows = pa.table(
            {
                "run_id": [self.run_id] * len(inputs),
                "output_table": [name] * len(inputs),
                "output_version": [version] * len(inputs),
                "input_kind": [i.kind for i in inputs],
                "input_id": [i.id for i in inputs],
                "input_sha256": [i.sha256 for i in inputs],
                "recorded_at": [now] * len(inputs),
            }
        )
        tables.write_table(self.root, "lineage", rows, metadata=self.commit_metadata(None))
        index.refresh(self.root, ["lineage"])

    def _finish(self, status: str, message: str) -> None:
        now = dt.datetime.now(dt.UTC)
        written: list[str] = []
        quality = [row for result in self.suite_results for row in result.rows(self.run_id)]
        if quality:
            tables.write_table(
                self.root,
                "quality_results",
                pa.Table.from_pylist(quality),
                metadata=self.commit_metadata(None),
            )
            written.append("quality_results")
        run_row = {
            "run_id": self.run_id,
            "command": self.command,
            "params_json": canonical_json(self.params),
            "param_hash": self.param_hash,
            "code_version": self.code_version,
            "status": status,
            "message": message[:2000],
            "outputs": canonical_json(self.outputs),
            "started_at": self.started_at,
            "finished_at": now,
        }
        tables.write_table(
            self.root, "runs", pa.Table.from_pylist([run_row]), metadata=self.commit_metadata(None)
        )
        written.append("runs")
        index.refresh(self.root, written)


def _worst(results: Sequence[SuiteResult]) -> SuiteResult | None:
    """The result whose status best summarises a commit (failed > warnings > passed)."""
    rank = {"passed": 0, "warnings": 1, "failed": 2}
    return max(results, key=lambda r: rank[r.status], default=None)


def _same_content(current: pa.Table, name: str, table: pa.Table) -> bool:
    """Whether `table` equals `current` (the current version of `name`), ignoring run ids."""
    ignore = {"run_id"}
    cols = [c for c in table.column_names if c not in ignore]
    if sorted(cols) != sorted(c for c in current.column_names if c not in ignore):
        return False
    if current.num_rows != table.num_rows:
        return False
    left = table.select(cols).to_pandas()
    right = current.select(cols).to_pandas()
    declared = schema_for(name)
    keys = [k for k in (key_columns(declared) if declared is not None else []) if k in cols]
    if keys:
        left = left.sort_values(keys).reset_index(drop=True)
        right = right.sort_values(keys).reset_index(drop=True)
    try:
        pd.testing.assert_frame_equal(left, right, check_dtype=False, check_exact=True)
    except AssertionError:
        return False
    return True


def _drop_existing(root: Root, name: str, table: pa.Table) -> pa.Table:
    """Rows of `table` whose key is not yet in table `name` (a hash anti-join in DuckDB)."""
    declared = schema_for(name)
    keys = key_columns(declared) if declared is not None else []
    if not keys or not tables.table_exists(root, name) or table.num_rows == 0:
        return table
    existing = tables.read_table(root, name, columns=keys)
    if existing.num_rows == 0:
        return table
    import duckdb

    con = duckdb.connect(":memory:")
    try:
        con.register(
            "incoming",
            table.append_column("__row", pa.array(range(table.num_rows), type=pa.int64())),
        )
        con.register("existing", existing)
        # IS NOT DISTINCT FROM: a NULL key part (a patient-level clinical row) matches NULL
        condition = " AND ".join(f'i."{k}" IS NOT DISTINCT FROM e."{k}"' for k in keys)
        rows = con.sql(
            f"SELECT i.__row FROM incoming i ANTI JOIN existing e ON {condition} ORDER BY 1"
        ).fetchnumpy()
    finally:
        con.close()
    return table.take(pa.array(rows["__row"], type=pa.int64()))
