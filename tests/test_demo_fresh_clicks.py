"""`make demo`'s real-time step: clicks pushed while a feature-store model is served change its prediction.

The model is served by a real `roost serve` subprocess reading the online store; the expected change is checked
against the model loaded in process and fed the pushed feature values (and the served value before the push against
the materialised ones), not against the helper's own output.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from rich.console import Console

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_demo_fresh_clicks_change_the_served_prediction(ws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import roost
    import roost.features as rf
    from roost.datasets.engagement import make_engagement

    monkeypatch.syspath_prepend(str(ROOT / "examples"))
    import demo_steps

    buf = io.StringIO()
    monkeypatch.setattr(demo_steps, "console", Console(file=buf, width=200))
    make_engagement(4000, ws.root / "data", seed=3)
    res = demo_steps.train_live(ws.root)
    imps = pd.read_parquet(ws.root / "data" / "impressions.parquet")
    user, item = int(imps["user_id"].iloc[0]), int(imps["item_id"].iloc[0])
    refs = ["user_live:clicks_7d", "user_live:sessions_7d", "user_live:avg_session_min"]
    refs += ["item_live:price", "item_live:quality_score", "item_live:item_ctr_7d"]
    stored = rf.online(refs, {"user_id": [user], "item_id": [item]})

    before, after = demo_steps.fresh_clicks(ws.root, f"engagement-live/{res.version}", user, item, burst=60)

    model = roost.load_model(f"engagement-live/{res.version}")
    feats = ["clicks_7d", "sessions_7d", "avg_session_min", "price", "quality_score", "item_ctr_7d"]

    def p_click(frame: pd.DataFrame) -> float:
        out = model.predict(frame[feats])
        return float(out[0][-1] if getattr(out, "ndim", 1) == 2 else out[0])

    assert before == pytest.approx(p_click(stored), abs=1e-6)
    fresh = stored.copy()
    fresh["clicks_7d"] += 60
    fresh["sessions_7d"] += 6  # 1 + 59 // 10 more sessions in the last pushed row
    assert after == pytest.approx(p_click(fresh), abs=1e-6)
    assert after != pytest.approx(before, abs=1e-6)
    # online now holds the last pushed row, and the offline log has the whole burst
    now = rf.online(refs[:1], {"user_id": [user]})
    assert int(now["clicks_7d"].iloc[0]) == int(stored["clicks_7d"].iloc[0]) + 60
    lines = [ln for ln in buf.getvalue().splitlines() if "P(click)" in ln]
    assert len(lines) == 2 and f"{before:.4f}" in lines[0] and f"{after:.4f}" in lines[1]
    sys.modules.pop("demo_steps", None)
