"""A static HTML page of suite results: what ``radgen validate --report DIR`` writes.

One self-contained ``index.html`` (inline CSS, no scripts) with the results just computed,
every expectation with its observed value and example rows, and the history of recent
validations kept in ``quality_results``.
"""

from __future__ import annotations

import datetime as dt
import html
import json
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from radgen.validation.gate import SuiteResult

__all__ = ["write_report"]

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}
td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top;font-size:90%}
th{background:#f4f4f4} .passed{color:#17702a} .warnings{color:#a86500} .failed{color:#b00020}
.ok{color:#17702a} .bad{color:#b00020} code{font-size:85%}
"""


def _esc(value: object) -> str:
    return html.escape("" if value is None else str(value))


def _suite_section(result: SuiteResult, anchor: str) -> str:
    rows = []
    for o in result.outcomes:
        mark = '<span class="ok">pass</span>' if o.success else '<span class="bad">FAIL</span>'
        examples = o.example_rows or o.examples
        rows.append(
            "<tr>"
            f"<td>{mark}</td><td>{_esc(o.check.severity)}</td><td>{_esc(o.check.expectation)}</td>"
            f"<td>{_esc(o.check.column)}</td><td><code>{_esc(json.dumps(o.check.kwargs, default=str))}</code></td>"
            f"<td>{_esc(o.unexpected_count)}</td><td><code>{_esc(json.dumps(o.observed, default=str))}</code></td>"
            f"<td><code>{_esc(json.dumps(examples[:5], default=str)) if examples else ''}</code></td>"
            "</tr>"
        )
    version = "" if result.table_version is None else f"@{result.table_version}"
    return (
        f'<h3 id="{anchor}">{_esc(result.suite)} on {_esc(result.target)}{_esc(version)} '
        f'<span class="{result.status}">{result.status}</span></h3>'
        f"<p>{result.n_rows} rows, suite version {result.suite_version}, "
        f"evaluated {result.evaluated_at:%Y-%m-%d %H:%M:%S} UTC</p>"
        "<table><tr><th></th><th>severity</th><th>expectation</th><th>column</th><th>arguments</th>"
        "<th>unexpected</th><th>observed</th><th>examples</th></tr>" + "".join(rows) + "</table>"
    )


def write_report(
    results: Sequence[SuiteResult],
    out_dir: str | Path,
    *,
    title: str,
    history: pd.DataFrame | None = None,
) -> Path:
    """Write ``index.html`` for `results` (and recent `history`) into `out_dir`; return its path.

    Parameters
    ----------
    results : sequence of SuiteResult
        The suites just evaluated.
    out_dir : path-like
        Created if missing.
    title : str
        Page heading (e.g. the catalog root).
    history : pandas.DataFrame, optional
        Rows of ``quality_results`` to summarise by run, suite and target.
    """
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    summary = []
    for i, r in enumerate(results):
        failed = sum(not o.success for o in r.outcomes)
        version = "" if r.table_version is None else r.table_version
        summary.append(
            f'<tr><td><a href="#s{i}">{_esc(r.suite)}</a></td><td>{_esc(r.target)}</td><td>{_esc(version)}</td>'
            f'<td class="{r.status}">{r.status}</td><td>{len(r.outcomes)}</td><td>{failed}</td><td>{r.n_rows}</td></tr>'
        )
    sections = "".join(_suite_section(r, f"s{i}") for i, r in enumerate(results))
    past = ""
    if history is not None and not history.empty:
        grouped = (
            history.assign(failed=~history["success"].astype(bool))
            .groupby(["run_id", "suite", "target"], dropna=False)
            .agg(
                evaluated_at=("evaluated_at", "max"),
                checks=("expectation", "size"),
                failed=("failed", "sum"),
            )
            .reset_index()
            .sort_values("evaluated_at", ascending=False)
            .head(200)
        )
        past = "".join(
            f"<tr><td>{_esc(r.evaluated_at)}</td><td>{_esc(r.run_id)}</td><td>{_esc(r.suite)}</td>"
            f"<td>{_esc(r.target)}</td><td>{r.checks}</td>"
            f'<td class="{"failed" if r.failed else "passed"}">{r.failed}</td></tr>'
            for r in grouped.itertuples()
        )
        past = (
            "<h2>History (quality_results, newest first)</h2><table><tr><th>evaluated</th><th>run</th>"
            "<th>suite</th><th>target</th><th>checks</th><th>failed</th></tr>" + past + "</table>"
        )
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>radgen validation: {_esc(title)}</title><style>{_STYLE}</style></head>
<body><h1>radgen validation</h1><p>{_esc(title)}, {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC</p>
<h2>This validation</h2>
<table><tr><th>suite</th><th>target</th><th>version</th><th>status</th><th>checks</th><th>failed</th><th>rows</th></tr>
{"".join(summary)}</table>
{sections}
{past}
</body></html>
"""
    path = folder / "index.html"
    path.write_text(page)
    return path
