"""`roost monitor shadow`: the summary of shadow comparisons equals a brute-force recompute; the gate exits 1."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from roost.errors import RoostError
from roost.monitor.shadow import shadow_summary
from roost.serve.rollout import ShadowLog

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def _write(log_dir, n_requests: int = 400, seed: int = 0, flip: float = 0.1) -> list[dict]:
    """Comparison rows as the server writes them: 1..3 rows per request, two version pairs of one model."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_requests):
        sv = "2" if i % 4 else "3"
        p_lat, s_lat = float(rng.gamma(2, 1)), float(rng.gamma(3, 1))
        for r in range(int(rng.integers(1, 4))):
            p = float(rng.random())
            s = min(1.0, max(0.0, p + float(rng.normal(0, 0.05)) + (0.6 if rng.random() < flip else 0.0)))
            rows.append(
                {
                    "_ts": T0 + timedelta(minutes=i),
                    "_request_id": f"q{i}",
                    "_row": r,
                    "model": "churn",
                    "primary_version": "1",
                    "shadow_version": sv,
                    "output": "probability",
                    "primary": [p],
                    "shadow": [s],
                    "abs_diff": abs(p - s),
                    "primary_label": str(int(p >= 0.5)),
                    "shadow_label": str(int(s >= 0.5)),
                    "agree": (p >= 0.5) == (s >= 0.5),
                    "primary_latency_ms": p_lat,
                    "shadow_latency_ms": s_lat,
                }
            )
    log = ShadowLog(log_dir, flush_rows=10**9)
    for k in range(0, len(rows), 300):  # several files
        log.add(rows[k : k + 300])
        log.flush()
    return rows


def test_summary_matches_a_brute_force_recompute(tmp_path):
    rows = _write(tmp_path)
    rep = shadow_summary(tmp_path)
    assert not rep.failed and rep.files >= 2
    assert [(p.primary_version, p.shadow_version) for p in rep.pairs] == [("1", "2"), ("1", "3")]
    for pair in rep.pairs:
        mine = [r for r in rows if r["shadow_version"] == pair.shadow_version]
        ids = {r["_request_id"] for r in mine}
        assert pair.requests == len(ids) and pair.rows == len(mine)
        assert pair.agreement == pytest.approx(sum(r["agree"] for r in mine) / len(mine))
        diffs = sorted(r["abs_diff"] for r in mine)
        assert pair.abs_diff["max"] == pytest.approx(diffs[-1])
        for name, q in (("p50", 50), ("p90", 90), ("p99", 99)):  # linear interpolation, by hand
            pos = q / 100 * (len(diffs) - 1)
            lo = int(pos)
            want = diffs[lo] + (diffs[min(lo + 1, len(diffs) - 1)] - diffs[lo]) * (pos - lo)
            assert pair.abs_diff[name] == pytest.approx(want)
        lat = sorted({r["_request_id"]: r["shadow_latency_ms"] for r in mine}.values())
        assert pair.shadow_latency_ms["p50"] == pytest.approx(float(np.median(lat)))


def test_gate_on_agreement_and_diff_quantile(tmp_path):
    rows = _write(tmp_path, flip=0.2)
    agree = min(
        sum(r["agree"] for r in rows if r["shadow_version"] == v) / sum(r["shadow_version"] == v for r in rows)
        for v in ("2", "3")
    )
    assert not shadow_summary(tmp_path, min_agreement=agree - 1e-9).failed
    rep = shadow_summary(tmp_path, min_agreement=agree + 1e-3)
    assert rep.failed and "agreement" in rep.verdict
    assert shadow_summary(tmp_path, max_diff=0.05, quantile=0.99).failed  # 20 % of rows moved by 0.6
    assert not shadow_summary(tmp_path, max_diff=2.0).failed
    assert shadow_summary(tmp_path, since="2030-01-01", min_agreement=0.5).failed  # no evidence never passes
    assert not shadow_summary(tmp_path, since="2030-01-01").failed  # no gate asked: nothing to fail


def test_since_until_and_model_select_rows(tmp_path):
    _write(tmp_path, n_requests=100)
    rep = shadow_summary(tmp_path / "shadow" / "churn", since=str(T0 + timedelta(minutes=50))[:19])
    assert sum(p.requests for p in rep.pairs) == 50
    with pytest.raises(RoostError, match="no shadow comparisons"):
        shadow_summary(tmp_path, model="ghost")


def test_cli_prints_the_table_or_json_and_exits_1_on_a_failed_gate(cli, tmp_path):
    _write(tmp_path, flip=0.2)
    code, out, _ = cli("monitor", "shadow", str(tmp_path))
    assert code == 0 and "churn" in out and "gate passed" in out
    code, out, _ = cli("monitor", "shadow", str(tmp_path), "--min-agreement", "0.99", "--json")
    doc = json.loads(out)
    assert code == 1 and doc["failed"] and len(doc["pairs"]) == 2


def test_pipeline_shadow_gate_feeds_promote(ws, tmp_path):
    from roost.pipeline.builtins import promote, shadow_gate

    rows = _write(tmp_path, flip=0.2)
    with pytest.raises(RoostError, match="shadowed by versions 2, 3"):
        shadow_gate(str(tmp_path), "churn", min_agreement=0.5)
    since = str(T0 + timedelta(minutes=399))[:19]  # the last request only (q399: version 2)
    last = [r for r in rows if r["_request_id"] == "q399"]
    gate = shadow_gate(str(tmp_path), "churn", min_agreement=0.0, since=since)
    assert gate["promote"] and gate["version"] == int(last[0]["shadow_version"])
    refused = shadow_gate(str(tmp_path), "churn", max_diff=-1.0, since=since)
    assert not refused["promote"]
    out = promote(refused, alias="prod", name="churn")
    assert out["promoted"] is False
