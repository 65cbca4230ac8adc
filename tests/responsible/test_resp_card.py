"""Model cards from the repository: a run that stored monitoring files, and a plain `roost.train` run."""

from __future__ import annotations

import pandas as pd
import pytest
from mon_helpers import FEATURES, LABEL

from roost.responsible.card import build_card, card_markdown, write_card


@pytest.fixture
def registered(ws, packages, eng: pd.DataFrame):
    """engagement@prod: a run with the LightGBM package, profile/reference/evaluation files and a drift check."""
    import roost
    from roost.datasets import fingerprint
    from roost.modelpkg import load
    from roost.monitor.api import drift, log_report, write_run_reference

    pred = load(packages["lightgbm"])
    train, test = eng.iloc[:4500], eng.iloc[4500:]
    with roost.start_run(
        experiment="eng", tags={"roost.intended_use": "rank feed items for engagement", "roost.sensitive": "gender"}
    ) as run:
        run.log_params({"data.source": "engagement:6000", "data.fingerprint": fingerprint(eng)})
        run.log_metrics({"test_roc_auc": 0.7})
        run.log_artifacts(packages["lightgbm"], "model")
        write_run_reference(run.artifact_dir, train, test, label=LABEL, predict=pred.predict)
    mv = roost.register_model(run.id, "engagement", "model")
    roost.set_alias("engagement", mv.version, "prod")
    log_report(drift("engagement@prod", test[FEATURES]), model="engagement")
    return run


def test_card_has_every_section(registered, tmp_path) -> None:
    card = build_card("engagement@prod", explain_rows=30)
    s = card.sections
    assert s["Intended use"] == "rank feed items for engagement"
    assert s["Data"]["fingerprint"] and s["Data"]["profile"][0]["column"] == "event_time"
    assert s["Metrics"]["test_roc_auc"] == 0.7
    assert "gender" in s["Slices"].slices and s["Fairness"].sensitive == ["gender"]
    assert s["Explanations"].method.startswith("TreeSHAP")
    assert s["Drift"]["verdict"] in ("ok", "drift")
    assert s["Lineage"]["run"] == registered.id and not card.missing
    html = write_card(card, tmp_path / "card.html").read_text()
    for text in ("Intended use", "demographic parity difference", "TreeSHAP", "Lineage", "<svg"):
        assert text in html
    assert "<script" not in html
    md = write_card(card, tmp_path / "card.md").read_text()
    assert md.startswith("# Model card: engagement v1 (@prod)")
    assert "**gender**: demographic parity difference" in md and "## Explanations" in md


def test_card_of_a_plain_training_run_says_what_is_missing(ws, eng: pd.DataFrame, tmp_path) -> None:
    import roost

    eng.to_parquet(tmp_path / "eng.parquet")
    roost.train(
        {
            "data": str(tmp_path / "eng.parquet"),
            "label": LABEL,
            "register": "plain",
            "features": {"include": FEATURES},
            "model": {"type": "lightgbm", "params": {"n_estimators": 20}},
        },
        progress=False,
    )
    card = build_card("plain", explain_rows=20)
    missing = " ".join(card.missing)
    assert "intended use" in missing and "drift status: never checked" in missing
    card = build_card("plain", data=eng.iloc[:500], sensitive=["gender", "age_group"], explain_rows=20)
    assert [t.columns for t in card.sections["Fairness"].tables][-1] == ["gender", "age_group"]
    assert card.sections["Data"]["fingerprint"]
    assert "**gender × age_group**" in card_markdown(card)
