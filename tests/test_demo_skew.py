"""`make demo`'s skew step: a feature-store model served by entity id, one view left stale online on purpose.

The step function of examples/demo_steps.py runs on a small generated workspace; the skew it reports is checked
against a pandas recomputation of the latest source rows (the rows the requests should have been served).
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
def test_demo_skew_step_catches_the_stale_view_and_traces_a_request(ws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from roost.datasets.engagement import make_engagement

    monkeypatch.syspath_prepend(str(ROOT / "examples"))
    import demo_steps

    buf = io.StringIO()
    monkeypatch.setattr(demo_steps, "console", Console(file=buf, width=160))
    make_engagement(4000, ws.root / "data", seed=2)
    out = demo_steps.skew_lineage(ws.root, requests=120, batches=3)
    text = buf.getvalue()
    rep = out["report"]

    # reference: the served clicks_7d (request log) against the latest row per user in the source as it is now
    logged = pd.concat(pd.read_parquet(p) for p in sorted((ws.root / ".roost" / "request_logs").rglob("*.parquet")))
    users = pd.read_parquet(ws.root / "data" / "users.parquet")
    latest = users.sort_values(["event_time", "created_time"]).groupby("user_id").tail(1).set_index("user_id")
    want_stale = int((logged["clicks_7d"].to_numpy() != latest.loc[logged["user_id"], "clicks_7d"].to_numpy()).sum())
    planted_rows = int(out["sample"]["user_id"].isin(out["planted_users"]).sum())
    assert len(logged) == rep.rows_compared == 120
    assert want_stale == planted_rows > 0

    clicks = rep.feature("clicks_7d")
    assert clicks.ref == "user_live:clicks_7d"
    assert clicks.count("stale_online") == want_stale and clicks.mismatches == want_stale
    assert rep.feature("sessions_7d").count("stale_online") == want_stale
    assert rep.feature("avg_session_min").mismatches == 0  # unchanged in the planted rows
    for name in ("price", "quality_score", "item_ctr_7d"):  # the untouched view
        assert rep.feature(name).compared == 120 and rep.feature(name).mismatches == 0
    assert rep.failed and "SKEW" in text and "stale_online" in text
    assert (ws.root / "reports" / "skew.html").read_text().count("stale_online") > 0

    # lineage of a served request names the serving model's training run
    lin_text = text[text.index("roost lineage") :]
    assert out["run_id"] in lin_text or out["run_id"][:8] in lin_text
    assert out["request_ids"][0] in lin_text and "user_live" in lin_text
    sys.modules.pop("demo_steps", None)
