"""Before/after report of a harmonization: an HTML page with a PNG of feature distributions.

Written to ``ROOT/reports/harmonize/<table>/<version>/`` (``report.html``, ``distributions.png``,
``checks.csv``).
"""

from __future__ import annotations

import base64
import html
import io
import logging

import pandas as pd

from radgen.platform.storage import Root

__all__ = ["distribution_png", "write_report"]

log = logging.getLogger(__name__)

_SHOWN = 4


def distribution_png(
    before: pd.DataFrame, after: pd.DataFrame, batch: pd.Series, features: list[str]
) -> bytes:
    """Box plots by batch, before (top row) and after (bottom row), for `features`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    levels = sorted(pd.unique(batch), key=str)
    fig, axes = plt.subplots(2, len(features), figsize=(3.2 * len(features), 5.6), squeeze=False)
    for col, feature in enumerate(features):
        for row, (label, frame) in enumerate((("before", before), ("after", after))):
            ax = axes[row][col]
            groups = [frame.loc[batch == level, feature].dropna().to_numpy() for level in levels]
            ax.boxplot(groups, tick_labels=[str(level)[-6:] for level in levels])
            ax.set_title(f"{feature}\n{label}", fontsize=8)
            ax.tick_params(labelsize=7)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return buffer.getvalue()


def write_report(
    root: Root,
    table: str,
    version: int,
    *,
    before: pd.DataFrame,
    after: pd.DataFrame,
    batch: pd.Series,
    checks: pd.DataFrame,
    covariates: dict[str, dict[str, float]],
    title: str,
) -> str:
    """Write the report files and return the HTML page's location."""
    base = ("reports", "harmonize", table, str(version))
    shown = (
        checks.sort_values("eta2_batch_before", ascending=False)["feature"].head(_SHOWN).tolist()
    )
    png = distribution_png(before, after, batch, shown)
    root.write_bytes(png, *base, "distributions.png")
    root.write_bytes(checks.to_csv(index=False).encode(), *base, "checks.csv")
    cov_rows = (
        "".join(
            f"<tr><td>{html.escape(term)}</td><td>{v['median_coef_before']:.4g}</td>"
            f"<td>{v['median_coef_after']:.4g}</td><td>{v['preserved_fraction']:.0%}</td></tr>"
            for term, v in covariates.items()
        )
        or "<tr><td colspan=4>no covariates</td></tr>"
    )
    top = checks.sort_values("eta2_batch_before", ascending=False).head(20)
    feature_rows = "".join(
        f"<tr><td>{html.escape(str(r.feature))}</td><td>{r.eta2_batch_before:.3f}</td>"
        f"<td>{r.eta2_batch_after:.3f}</td><td>{r.kruskal_h_before:.1f}</td><td>{r.kruskal_h_after:.1f}</td>"
        f"<td>{'yes' if r.covariate_preserved else 'NO'}</td></tr>"
        for r in top.itertuples()
    )
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:2px 8px;text-align:right}}
td:first-child,th:first-child{{text-align:left}}</style></head><body>
<h1>Harmonization report</h1><p>{html.escape(title)}</p>
<h2>Batch effect (variance explained by batch, eta squared)</h2>
<p>median over {len(checks)} features: {checks["eta2_batch_before"].median():.3f} before,
{checks["eta2_batch_after"].median():.3f} after.</p>
<table><tr><th>feature</th><th>eta&sup2; before</th><th>eta&sup2; after</th><th>Kruskal-Wallis H before</th>
<th>H after</th><th>covariates preserved</th></tr>{feature_rows}</table>
<h2>Covariate effects (coefficient adjusted for batch)</h2>
<table><tr><th>term</th><th>median before</th><th>median after</th><th>features preserved</th></tr>{cov_rows}</table>
<h2>Distributions by batch</h2>
<img alt="box plots by batch before and after" src="data:image/png;base64,{base64.b64encode(png).decode()}">
</body></html>
"""
    root.write_bytes(page.encode(), *base, "report.html")
    return root.uri(*base, "report.html")
