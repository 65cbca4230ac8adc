"""Monitor runs with history (roost.monitor.record) and what the UI makes of them: the model page's monitoring
section, its charts (one point per monitor run, the threshold drawn) and the feature view pages."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from skew_scenario import FIELDS, PLANTED_ROWS, SCORE_MISMATCH_RATE, T0, T1, TTL_SECONDS, planted

from .mon_fixtures import drift_frames, page_charts, register_model


@pytest.fixture
def app_client(ws):
    from starlette.testclient import TestClient

    from roost.ui import create_app

    with TestClient(create_app(), follow_redirects=False) as c:
        yield c


def _drift_files(tmp_path: Path, shift: float, seed: int) -> tuple[str, str]:
    ref, cur = drift_frames(shift, seed=seed)
    r, c = tmp_path / f"ref{seed}.parquet", tmp_path / f"cur{seed}.parquet"
    ref.to_parquet(r)
    cur.to_parquet(c)
    return str(r), str(c)


def test_cli_drift_records_a_monitor_run_with_the_reports_numbers(ws: Any, tmp_path: Path, cli: Any) -> None:
    """`roost monitor drift` records by default: per-feature metrics equal the report's, thresholds as params."""
    import roost

    ref, cur = _drift_files(tmp_path, 0.8, 0)
    code, out, err = cli("monitor", "drift", "-r", ref, "-c", cur, "--model", "m", "--json")
    assert code == 0, err
    rep = json.loads(out)
    runs = roost.search_runs(experiment="monitor/m")
    assert len(runs) == 1
    r = runs[0]
    assert r["tags"]["roost.kind"] == "monitor" and r["tags"]["roost.monitor.check"] == "drift"
    assert r["tags"]["roost.monitor.model"] == "m"
    assert {f["feature"] for f in rep["features"]} == {"a", "b", "c"}
    for f in rep["features"]:
        assert r["metrics"][f"drift.score.{f['feature']}"] == pytest.approx(f["score"])
        assert r["metrics"][f"drift.psi.{f['feature']}"] == pytest.approx(f["stats"]["psi"])
        assert r["params"][f"drift.threshold.{f['feature']}"] == pytest.approx(f["threshold"])
        assert r["params"][f"drift.method.{f['feature']}"] == f["method"]
    assert r["metrics"]["drift_share"] == pytest.approx(rep["share"])
    code, out, err = cli("monitor", "drift", "-r", ref, "-c", cur, "--model", "m", "--no-record", "--json")
    assert code == 0, err
    assert len(roost.search_runs(experiment="monitor/m")) == 1  # --no-record: nothing added


def test_skew_run_metrics_equal_the_planted_rates_and_name_the_view(ws: Any, tmp_path: Path, cli: Any) -> None:
    import roost

    planted(ws.root, tmp_path / "logs")
    code, out, _ = cli("monitor", "skew", str(tmp_path / "logs"), "--model", "m", "--json")
    assert code == 1, out  # the planted skew fails the check
    rep = json.loads(out)
    (r,) = roost.search_runs(experiment="monitor/m")
    assert r["metrics"]["skew.rate.score"] == pytest.approx(SCORE_MISMATCH_RATE)
    for f in rep["features"]:
        assert r["metrics"][f"skew.rate.{f['feature']}"] == pytest.approx(f["mismatch_rate"])
        assert r["params"][f"skew.ref.{f['feature']}"] == f["ref"]
    assert r["tags"]["roost.monitor.views"] == "uv" and r["tags"]["roost.monitor.view.uv"] == "1"
    assert r["params"]["skew.max_mismatch"] == pytest.approx(0.01)
    assert any("recorded as monitor run" in n for n in rep["notes"])


def test_three_monitor_runs_give_three_points_per_feature_with_the_threshold(
    ws: Any, tmp_path: Path, cli: Any, app_client: Any
) -> None:
    register_model(tmp_path)
    reports = []
    for seed, shift in enumerate((0.0, 0.5, 1.0)):
        ref, cur = _drift_files(tmp_path, shift, seed)
        code, out, err = cli("monitor", "drift", "-r", ref, "-c", cur, "--model", "m", "--json")
        assert code == 0, err
        reports.append({f["feature"]: f for f in json.loads(out)["features"]})
    page = app_client.get("/models/m")
    assert page.status_code == 200
    charts = {c["feature"]: c for c in page_charts(page.text, "drift-charts")}
    assert set(charts) == {"a", "b", "c"}
    for f, chart in charts.items():
        (series,) = chart["series"]
        assert len(series["steps"]) == len(series["values"]) == 3
        assert series["values"] == pytest.approx([rep[f]["score"] for rep in reports])  # oldest first
        assert series["steps"] == sorted(series["steps"])
        assert [t["value"] for t in chart["thresholds"]] == [pytest.approx(reports[-1][f]["threshold"])]
        lo, hi = chart["y_range"]
        assert lo <= chart["thresholds"][0]["value"] <= hi  # the threshold line is inside the chart
    own = app_client.get("/models/m/monitoring")
    assert own.status_code == 200 and len(page_charts(own.text, "drift-charts")) == 3
    assert app_client.get("/models/nope/monitoring").status_code == 404


def test_planted_skew_shows_on_the_feature_view_and_the_model_page(
    ws: Any, tmp_path: Path, cli: Any, app_client: Any
) -> None:
    register_model(tmp_path)
    planted(ws.root, tmp_path / "logs")
    for _ in range(2):
        code, out, _ = cli("monitor", "skew", str(tmp_path / "logs"), "--model", "m")
        assert code == 1, out
    fv = app_client.get("/features/uv")
    assert fv.status_code == 200
    row = f'data-model="m" data-ref="uv:v_f" data-rate="{SCORE_MISMATCH_RATE}"'
    assert row in fv.text and 'class="bad"' in fv.text
    assert "80.00%" in fv.text
    charts = {c["feature"]: c for c in page_charts(fv.text, "fv-skew-charts")}
    assert set(charts) == {"uv:v_int", "uv:v_f", "uv:v_s"}
    assert charts["uv:v_f"]["series"][0]["values"] == pytest.approx([SCORE_MISMATCH_RATE] * 2)
    assert charts["uv:v_f"]["thresholds"][0]["value"] == pytest.approx(0.01)
    model = app_client.get("/models/m")
    assert f'data-ref="uv:v_f" data-rate="{SCORE_MISMATCH_RATE}"' in model.text
    assert len(page_charts(model.text, "skew-charts")) == 3


def test_feature_views_page_shows_the_stores_facts(ws: Any, tmp_path: Path, app_client: Any) -> None:
    """Fields, dtypes, TTL and online rows equal the definition's and the store's (counted here by brute force)."""
    import pandas as pd

    planted(ws.root, tmp_path / "logs")
    online = ws.online_store[len("sqlite:///") :]
    with sqlite3.connect(online) as con:
        (stored,) = con.execute('SELECT count(*) FROM "fv_uv"').fetchone()
    # independently: the latest row per user with event time in [T1 - ttl, T1]
    df = pd.DataFrame(PLANTED_ROWS)
    window = df[(df["et"] <= T1) & (df["et"] >= T1 - pd.Timedelta(seconds=TTL_SECONDS))]
    assert stored == window["user_id"].nunique() == 4
    listing = app_client.get("/features")
    assert listing.status_code == 200
    assert '<tr data-view="uv">' in listing.text and '<td class="num online-rows">4</td>' in listing.text
    page = app_client.get("/features/uv")
    assert page.status_code == 200
    text = page.text
    for field, dtype in FIELDS.items():
        assert f'<tr data-field="{field}"><td><code>{field}</code></td><td class="dtype">{dtype}</td>' in text
    assert f'id="fv-ttl" data-seconds="{float(TTL_SECONDS)}"' in text
    assert 'id="fv-online-rows" data-rows="4"' in text
    newest = window["et"].max()
    assert newest == T0 + pd.Timedelta(minutes=39)
    assert newest.strftime("%Y-%m-%d %H:%M:%S") in text.split('id="fv-freshness"', 1)[1].split("</td>", 1)[0]
    sample = text.split('id="fv-sample"', 1)[1].split("</table>", 1)[0]
    assert sample.count("<tr>") == 1 + 4  # header + every online row (fewer than the sample size)
    assert app_client.get("/features/nope").status_code == 404


def test_model_page_without_monitor_runs_says_how_to_start(ws: Any, tmp_path: Path, app_client: Any) -> None:
    register_model(tmp_path)
    page = app_client.get("/models/m")
    assert page.status_code == 200
    assert 'id="monitoring"' in page.text and "No monitor runs yet" in page.text


def _shadow_rows(log_dir: Path, n: int = 120, seed: int = 0) -> list[dict[str, Any]]:
    """Shadow comparison rows as `roost serve --shadow` writes them (model churn, v1 primary, v2 shadow)."""
    from datetime import UTC, datetime, timedelta

    import numpy as np

    from roost.serve.rollout import ShadowLog

    rng = np.random.default_rng(seed)
    t0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    rows = []
    for i in range(n):
        p = float(rng.random())
        s = min(1.0, max(0.0, p + float(rng.normal(0, 0.2))))
        rows.append(
            {
                "_ts": t0 + timedelta(minutes=i),
                "_request_id": f"q{i}",
                "_row": 0,
                "model": "churn",
                "primary_version": "1",
                "shadow_version": "2",
                "output": "probability",
                "primary": [p],
                "shadow": [s],
                "abs_diff": abs(p - s),
                "primary_label": str(int(p >= 0.5)),
                "shadow_label": str(int(s >= 0.5)),
                "agree": (p >= 0.5) == (s >= 0.5),
                "primary_latency_ms": 1.0,
                "shadow_latency_ms": 2.0,
            }
        )
    log = ShadowLog(log_dir, flush_rows=10**9)
    log.add(rows)
    log.flush()
    return rows


def test_shadow_agreement_is_recorded_and_charted_with_the_gate(
    ws: Any, tmp_path: Path, cli: Any, app_client: Any
) -> None:
    import roost

    register_model(tmp_path, "churn")
    wants = []
    for seed in (0, 1):
        rows = _shadow_rows(tmp_path / f"shadow{seed}", seed=seed)
        wants.append(sum(r["agree"] for r in rows) / len(rows))  # brute force
        code, out, _ = cli("monitor", "shadow", str(tmp_path / f"shadow{seed}"), "--min-agreement", "0.5", "--json")
        assert code == 0, out
    runs = roost.search_runs(experiment="monitor/churn", order_by="start_time ASC")
    assert [r["metrics"]["shadow.agreement"] for r in runs] == pytest.approx(wants)
    assert [r["metrics"]["shadow.agreement.v1_v2"] for r in runs] == pytest.approx(wants)
    assert runs[-1]["params"]["shadow.min_agreement"] == pytest.approx(0.5)
    assert runs[-1]["tags"]["roost.monitor.check"] == "shadow" and runs[-1]["tags"]["roost.monitor.version"] == "1"
    (chart,) = page_charts(app_client.get("/models/churn").text, "shadow-charts")
    assert chart["series"][0]["values"] == pytest.approx(wants)
    assert chart["thresholds"][0]["value"] == pytest.approx(0.5)
