"""The /shadow page: per (model, primary, shadow) pair, its figures equal a NumPy recompute of the written rows."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

import numpy as np
import pytest


def _records(model: str, pv: str, sv: str, requests: int, seed: int, labels: bool, day: datetime) -> list[dict]:
    """Comparison rows shaped as roost.serve.rollout.ShadowMirror writes them (1-3 rows per request)."""
    rng = np.random.default_rng(seed)
    out = []
    for r in range(requests):
        rows = int(rng.integers(1, 4))
        p_ms, s_ms = float(rng.gamma(2.0, 3.0)), float(rng.gamma(2.0, 5.0))
        for i in range(rows):
            p, s = float(rng.random()), float(rng.random())
            pl, sl = (int(p >= 0.5), int(s >= 0.5)) if labels else (None, None)
            out.append(
                {
                    "_ts": day + timedelta(minutes=r),
                    "_request_id": f"{model}-{sv}-{r}",
                    "_row": i,
                    "model": model,
                    "primary_version": pv,
                    "shadow_version": sv,
                    "output": "probability",
                    "primary": [p],
                    "shadow": [s],
                    "primary_label": pl,
                    "shadow_label": sl,
                    "agree": None if pl is None else pl == sl,
                    "abs_diff": abs(p - s),
                    "primary_latency_ms": p_ms,
                    "shadow_latency_ms": s_ms,
                }
            )
    return out


def _expected(rows: list[dict]) -> dict[str, float]:
    """The page's figures recomputed with NumPy from the raw rows."""
    per_request = {r["_request_id"]: r for r in rows}.values()
    diff = np.array([r["abs_diff"] for r in rows])
    pms = np.array([r["primary_latency_ms"] for r in per_request])
    sms = np.array([r["shadow_latency_ms"] for r in per_request])
    agree = [r["agree"] for r in rows if r["agree"] is not None]
    exp = {"requests": float(len(pms))}
    if agree:
        exp["agreement"] = float(np.mean(agree))
    for k, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99)):
        exp[f"diff_{k}"] = float(np.quantile(diff, q))
    exp["diff_max"] = float(diff.max())
    for k, q in (("p50", 0.5), ("p99", 0.99)):
        exp[f"primary_ms_{k}"] = float(np.quantile(pms, q))
        exp[f"shadow_ms_{k}"] = float(np.quantile(sms, q))
    return exp


class _Cells(HTMLParser):
    """Collects the data-value of every cell of the shadow table, keyed by (model, primary, shadow)."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[tuple[str, str, str], dict[str, str]] = {}
        self._key: tuple[str, str, str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "tr" and "data-model" in a:
            self._key = (a["data-model"] or "", a["data-primary"] or "", a["data-shadow"] or "")
            self.rows[self._key] = {}
        elif tag == "td" and self._key and "data-col" in a:
            self.rows[self._key][a["data-col"] or ""] = a.get("data-value") or ""


def _write(ws, *batches: list[dict]) -> None:
    """Write batches of rows (one flush each) through the server's own writer into the workspace's request logs."""
    from roost.lineage import REQUEST_LOG_SUBDIR
    from roost.serve.rollout import ShadowLog

    log = ShadowLog(ws.state_dir / REQUEST_LOG_SUBDIR, flush_rows=10**9)  # one writer, as in one server process
    for rows in batches:
        log.add(rows)
        assert log.flush() is not None


@pytest.fixture
def shadow_client(ws):
    """A UI client over a workspace with no runs."""
    from starlette.testclient import TestClient

    from roost.ui import create_app

    with TestClient(create_app(), follow_redirects=False) as c:
        yield c


def test_shadow_page_figures_match_a_recompute(ws, shadow_client) -> None:
    """Requests, agreement, |diff| quantiles and both latencies per pair, as NumPy computes them from the rows."""
    day = datetime(2024, 1, 8, tzinfo=UTC)
    pairs = {
        ("churn", "2", "3"): _records("churn", "2", "3", 120, 1, True, day),
        ("churn", "2", "4"): _records("churn", "2", "4", 40, 2, True, day),
        ("price", "1", "2"): _records("price", "1", "2", 30, 3, False, day),  # regression: no labels
    }
    _write(ws, *pairs.values())
    r = shadow_client.get("/shadow")
    assert r.status_code == 200, r.text
    assert 'href="/shadow" class="on"' in r.text  # linked, and highlighted, in the nav
    cells = _Cells()
    cells.feed(r.text)
    assert set(cells.rows) == set(pairs)
    for key, rows in pairs.items():
        exp, got = _expected(rows), cells.rows[key]
        assert ("agreement" in exp) == bool(got["agreement"]), key
        for col, want in exp.items():
            assert float(got[col]) == pytest.approx(want, rel=1e-12, abs=1e-12), (key, col)
    assert "price" in r.text and re.search(r">-</td>", r.text)  # no agreement shown for the regression pair


def test_shadow_page_filters_by_model_and_time(ws, shadow_client) -> None:
    """?model= keeps one model; ?since= drops older rows (the recompute uses the same cut)."""
    day = datetime(2024, 1, 8, tzinfo=UTC)
    churn = _records("churn", "2", "3", 100, 4, True, day)
    _write(ws, churn, _records("price", "1", "2", 10, 5, False, day))
    cells = _Cells()
    cells.feed(shadow_client.get("/shadow", params={"model": "churn", "since": "2024-01-08T01:00"}).text)
    assert set(cells.rows) == {("churn", "2", "3")}
    kept = [r for r in churn if r["_ts"] >= day + timedelta(hours=1)]
    exp = _expected(kept)
    assert float(cells.rows["churn", "2", "3"]["requests"]) == exp["requests"] == 40
    assert float(cells.rows["churn", "2", "3"]["diff_p90"]) == pytest.approx(exp["diff_p90"], rel=1e-12)


def test_shadow_page_empty_and_bad_input(ws, shadow_client) -> None:
    """No comparisons yet: a hint, not an error; an unreadable time: a 400 page with a hint."""
    r = shadow_client.get("/shadow")
    assert r.status_code == 200 and "No shadow comparisons yet" in r.text
    _write(ws, _records("churn", "2", "3", 5, 6, True, datetime(2024, 1, 8, tzinfo=UTC)))
    r = shadow_client.get("/shadow", params={"since": "not-a-date"})
    assert r.status_code == 400 and "2024-01-08" in r.text
    r = shadow_client.get("/shadow", params={"since": "2030-01-01"})
    assert r.status_code == 200 and "no shadow comparisons in the selected time range" in r.text
