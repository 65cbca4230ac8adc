"""Model cards with hostile or unusual content: HTML and Markdown injection in names and descriptions, unicode,
a model with no metrics."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from roost.monitor.analysis import analyze
from roost.responsible.card import Card, build_card, card_html, card_markdown, write_card

TAG = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(2)>"
LINK = "[click](javascript:alert(3))"
ATTACKS = re.compile(r"<(script|img|iframe|svg onload|b>)")


def _hostile_card() -> Card:
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"y": rng.integers(0, 2, 60), "pred_probability": rng.random(60), TAG: [IMG, "b", "ü"] * 20})
    card = Card(
        f"Model card: {TAG} v1",
        {
            "Intended use": f"{TAG}\n# injected heading\n{LINK}\n1. not a list",
            "Model": {"framework": IMG, "inputs": "<b>bold</b> (float32)"},
            "Data": {"source": "<iframe src=//evil>", "profile": [{"column": TAG, "top": "<svg onload=alert(4)>"}]},
            "Metrics": {TAG: 0.5, "naïve_ü": 0.25},
            "Slices": analyze(df, "y", features=[TAG]),
        },
    )
    card.missing.append(f"{IMG} | {LINK}")
    return card


def test_card_html_escapes_names_values_and_descriptions() -> None:
    html = card_html(_hostile_card())
    assert not ATTACKS.search(html), ATTACKS.findall(html)
    assert "&lt;img src=x onerror=alert(2)&gt;" in html and "naïve_ü" in html


def test_card_markdown_escapes_html_and_markdown() -> None:
    md = card_markdown(_hostile_card())
    assert not ATTACKS.search(md), ATTACKS.findall(md)
    assert "](javascript" not in md.replace("\\]", "")  # no link opens
    assert not re.search(r"(?m)^# injected", md) and not re.search(r"(?m)^1\. not", md)
    assert "naïve_ü" in md
    for line in md.splitlines():  # table rows keep their number of cells (a '|' in a value is escaped)
        if line.startswith("| ") and "\\|" in line:
            assert len(re.findall(r"(?<!\\)\|", line)) == 3


def test_card_of_a_model_with_no_metrics_and_unicode_text(ws, packages, tmp_path) -> None:
    import roost

    use = f"Empfehlungen für Nutzer — 推荐 {TAG} {LINK}"
    with roost.start_run(experiment="e", tags={"roost.intended_use": use}) as run:
        run.log_artifacts(packages["lightgbm"], "model")
    roost.register_model(run.id, "bare", "model")
    card = build_card("bare", explain_rows=5)
    assert card.sections["Metrics"] is None and card.sections["Intended use"] == use
    assert any(m.startswith("metrics:") for m in card.missing)
    html = write_card(card, tmp_path / "c.html").read_text(encoding="utf-8")
    md = write_card(card, tmp_path / "c.md").read_text(encoding="utf-8")
    assert "Empfehlungen für Nutzer — 推荐" in html and "Empfehlungen für Nutzer — 推荐" in md
    assert not ATTACKS.search(html) and not ATTACKS.search(md)
    assert "## Metrics\n_not recorded_" in md
