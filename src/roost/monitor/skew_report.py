"""The skew report as HTML: verdict, per-feature and per-version category tables, charts and example rows."""

from __future__ import annotations

from html import escape
from typing import Any

from roost.monitor import svg
from roost.monitor.html_report import banner, feature_chart, notes, page, table
from roost.monitor.skew import CATEGORIES

__all__ = ["COLORS", "skew_html"]

COLORS = ("#54a24b", "#e45756", "#f58518", "#b279a2", "#4c78a8")  # one per category, in CATEGORIES order


def _category_chart(report: Any) -> str:
    """Share of each mismatch category per feature (grouped bars)."""
    feats = report.features
    if not feats:
        return ""
    series = [[f.counts[c] / (f.compared or 1) for f in feats] for c in range(1, len(CATEGORIES))]
    return svg.bars([f.feature for f in feats], series, "mismatch share by category", colors=COLORS[1:])


def _version_chart(report: Any) -> str:
    """Mismatch rate per model version, one series per feature."""
    versions = sorted({v for f in report.features for v in f.by_version})
    if len(versions) < 2:
        return ""
    series = []
    for f in report.features:
        rates = []
        for v in versions:
            c = f.by_version.get(v, [0] * len(CATEGORIES))
            rates.append((sum(c) - c[0]) / (sum(c) or 1))
        series.append(rates)
    palette = ("#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2", "#ff9da6", "#9d755d")
    return svg.bars([f"v{v}" for v in versions], series, "mismatch rate by version", colors=palette, y_label="rate")


def _examples(report: Any) -> str:
    """Example rows per feature and category."""
    cols = ["feature", "category", "request", "version", "entity", "served", "recomputed", "request time", "online t"]
    rows = []
    for f in report.features:
        for cat in CATEGORIES[1:]:
            for ex in f.examples.get(cat, []):
                ent = ", ".join(f"{k}={v}" for k, v in ex["entity"].items())
                rows.append(
                    [
                        f.feature,
                        cat,
                        ex["request_id"],
                        ex["version"],
                        ent,
                        ex["served"],
                        ex["recomputed"],
                        ex["request_time"],
                        ex["online_event_time"],
                    ]
                )
    return table(cols, rows) if rows else "<p>no mismatching rows</p>"


def skew_html(report: Any, full: bool = True) -> str:
    """The skew report as a page (or a fragment)."""
    level = "bad" if report.failed else ("warn" if any(f.mismatches for f in report.features) else "good")
    cols = ["feature", "ref", "compared", "mismatch rate", *CATEGORIES]
    rows, flags = [], []
    for f in report.features:
        rows.append([f.feature, f.ref, f.compared, f"{f.mismatch_rate:.2%}", *f.counts])
        bad = f.mismatch_rate > report.max_mismatch
        flags.append([False, False, False, bad] + [False] + [bool(c) for c in f.counts[1:]])
    vrows = [
        [f.feature, v, sum(c), f"{(sum(c) - c[0]) / (sum(c) or 1):.2%}", *c]
        for f in report.features
        for v, c in sorted(f.by_version.items())
    ]
    charts = [_category_chart(report), _version_chart(report)]
    if report.drift is not None:
        charts += [feature_chart(fd) for fd in report.drift.features]
    chart_html = "".join(f'<div class="chart">{c}</div>' for c in charts if c)
    body = (
        banner(report.verdict, level)
        + f"<p>logs: <code>{escape(report.source)}</code> · {report.files:,} files · {report.rows_read:,} rows read"
        f" · {report.rows_compared:,} rows with entity ids compared · threshold {report.max_mismatch:.2%} · floats"
        f" within {report.atol:g} + {report.rtol:g}·|recomputed|</p>"
        + notes(report.notes)
        + "<h2>Features</h2>"
        + table(cols, rows, flags)
        + "<h2>By model version</h2>"
        + table(["feature", "version", "compared", "mismatch rate", *CATEGORIES], vrows)
        + f"<h2>Charts</h2><p>{svg.legend(CATEGORIES[1:], COLORS[1:])}</p>"
        + f"<p>distributions: {svg.legend(('recomputed offline', 'served online'))}</p>"
        + f'<div class="charts">{chart_html}</div>'
        + "<h2>Example rows</h2>"
        + _examples(report)
    )
    if not full:
        return body
    return page("Training/serving skew", body, f"created {report.created_at} · see docs/skew.md")
