"""`roost models versions`: the headline metric first, short times, columns that fit (#37 item 5)."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

METRICS = {
    "test_accuracy": 0.947,
    "test_ece": 0.0290854,
    "test_log_loss": 0.219359,
    "test_pr_auc": 0.123174,
    "test_rce": -5.83993,
    "test_roc_auc": 0.6402,
    "val_roc_auc": 0.6611,
}


def _package(root: Path, auc: float) -> Path:
    p = root / f"pkg{auc}"
    p.mkdir()
    (p / "signature.json").write_text(json.dumps({"task": "binary", "inputs": [], "outputs": []}))
    (p / "roost-model.yaml").write_text(yaml.safe_dump({"task": "binary", "metrics": {**METRICS, "test_roc_auc": auc}}))
    return p


def test_versions_lead_with_the_headline_metric_and_keep_rows_on_one_line(ws, cli) -> None:
    from roost.registry import api

    for auc in (0.61, 0.64):
        api.register_model(None, "clicks", str(_package(ws.root, auc)))
    api.set_alias("clicks", 2, "prod")
    code, out, _ = cli("models", "versions", "clicks")
    assert code == 0, out
    head = next(line for line in out.splitlines() if line.startswith("┃") and "version" in line)
    cells = [c.strip() for c in head.strip("┃│ ").split("┃")]
    assert cells[:3] == ["version", "aliases", "test_roc_auc"], cells  # before: the first 5 metrics by name
    rows = [line for line in out.splitlines() if line.startswith("│")]
    assert len(rows) == 2, out  # one line per version: no timestamp folded over three lines (piped: full width)
    assert "0.64" in rows[1] and "prod" in rows[1] and all(k in head for k in METRICS)


def test_versions_fit_the_terminal_by_dropping_trailing_columns(ws) -> None:
    from roost.cli.versions_table import versions_rows
    from roost.registry import api

    api.register_model(None, "clicks", str(_package(ws.root, 0.61)))
    heads, rows, dropped = versions_rows(api.list_versions("clicks"), width=60)
    assert heads[:3] == ["version", "aliases", "test_roc_auc"] and dropped > 0
    assert sum(max(len(h), *(len(r[i]) for r in rows)) + 3 for i, h in enumerate(heads)) <= 60
    full, _, none = versions_rows(api.list_versions("clicks"), width=None)
    assert none == 0 and set(METRICS) <= set(full)
