"""roost.monitor.skew: served feature values (request logs) against the point-in-time recomputation.

Logs are written here as the server writes them (the request-log contract in docs/skew.md): a real feature view is
materialised, the online store is read (values and event times) and rows are logged with the values the model saw.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import roost
from skew_scenario import MIN, REFS, T0, TS, TTL, concat, planted, serve_rows, setup_view, write_log

# ---------------------------------------------------------------- value comparison against a brute-force reference


def _ref_equal(a: Any, b: Any, rtol: float, atol: float, f32: bool) -> bool:
    def null(x: Any) -> bool:
        return x is None or x == "" or (isinstance(x, float) and math.isnan(x))

    if null(a) or null(b):
        return null(a) and null(b)
    if isinstance(a, float) or isinstance(b, float):
        bb = float(np.float32(b)) if f32 else float(b)
        return abs(float(a) - bb) <= atol + rtol * abs(bb)
    return bool(a == b)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.one_of(st.none(), st.just(math.nan), st.floats(-1e6, 1e6, width=32)),
            st.one_of(st.none(), st.floats(-1e6, 1e6, allow_nan=False)),
        ),
        max_size=20,
    )
)
def test_compare_values_floats_match_a_brute_force_reference(pairs: list[tuple[Any, Any]]) -> None:
    from roost.monitor.skew import compare_values

    on = pa.array([p[0] for p in pairs], pa.float32())
    off = pa.array([p[1] for p in pairs], pa.float64())
    got = compare_values(on, off, 1e-6, 1e-9)
    want = [_ref_equal(a, b, 1e-6, 1e-9, True) for a, b in zip(on.to_pylist(), off.to_pylist())]
    assert got.tolist() == want


def test_compare_values_exact_for_ints_and_categories_null_equals_null() -> None:
    from roost.monitor.skew import compare_values

    ints = compare_values(pa.array([1, None, 3, 2**53 + 1], pa.int64()), pa.array([1, None, 4, 2**53], pa.int64()))
    assert ints.tolist() == [True, True, False, False]
    cats = compare_values(pa.array(["a", "", None, "b"]), pa.array(["a", None, None, "B"]))
    assert cats.tolist() == [True, True, True, False]
    # an int64 feature the model saw as float32: exact in the served dtype, not within a tolerance
    f32 = compare_values(pa.array([3.0, 16777216.0, 7.0], pa.float32()), pa.array([3, 16777217, 8], pa.int64()), 0, 0)
    assert f32.tolist() == [True, True, False]


# ---------------------------------------------------------------- nothing wrong: zero mismatches (property test)

minutes = st.integers(0, 90)
event = st.fixed_dictionaries(
    {
        "user_id": st.integers(0, 4),
        "et": minutes,
        "late": st.one_of(st.none(), st.integers(0, 2)),
        "v_int": st.one_of(st.none(), st.integers(-3, 3)),
        "v_f": st.one_of(st.none(), st.floats(-1e3, 1e3, allow_nan=False)),
        "v_s": st.one_of(st.none(), st.sampled_from(["x", "y", "z"])),
    }
)


@pytest.mark.slow
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=st.lists(event, min_size=1, max_size=25), request_minutes=st.lists(minutes, min_size=1, max_size=5))
def test_served_rows_join_back_with_zero_mismatches(
    events: list[dict[str, Any]], request_minutes: list[int], tmp_path_factory: pytest.TempPathFactory
) -> None:
    from roost import workspace
    from roost.features import materialize
    from roost.monitor.skew import skew

    root = tmp_path_factory.mktemp("ws")
    ws = roost.init(root / "ws")
    workspace.use(ws)
    try:
        rows = [
            {
                **e,
                "et": T0 + e["et"] * MIN,
                "ct": None if e["late"] is None else T0 + (e["et"] + e["late"]) * MIN,
            }
            for e in events
        ]
        setup_view(ws.root, rows)
        # request times: random, plus exactly at the TTL edge of an event and one microsecond past it
        edge = rows[0]["et"] + TTL
        times = sorted({T0 + m * MIN for m in request_minutes} | {edge, edge + timedelta(microseconds=1)})
        parts = []
        for i, t in enumerate(times):  # the online store as the server sees it at each request time
            materialize(start=T0 - timedelta(days=1), end=t)
            parts.append(serve_rows([0, 1, 2, 3, 4, 5], t, first_request=10 * i))
        write_log(root / "logs", concat(parts))
        rep = skew(root / "logs", batch_rows=7)
    finally:
        workspace.use(None)
    assert rep.rows_compared == 6 * len(times)
    assert {f.feature for f in rep.features} == set(REFS)
    for f in rep.features:
        assert f.compared == 6 * len(times)
        assert f.mismatches == 0, (f.feature, f.counts, f.examples)
    assert not rep.failed


# ---------------------------------------------------------------- planted skew: each kind caught with its category


def test_each_planted_skew_kind_is_caught_with_its_category(ws: Any, tmp_path: Path) -> None:
    from roost.monitor.skew import skew

    planted(ws.root, tmp_path / "logs")
    rep = skew(tmp_path / "logs", max_mismatch=0.01)

    def cats(feature: str) -> dict[int, str]:
        f = rep.feature(feature)
        got = {ex["entity"]["user_id"]: c for c, exs in f.examples.items() for ex in exs}
        return {u: got.get(u, "ok") for u in range(5)}

    for feat in ("clicks", "cat"):
        assert cats(feat) == {0: "ok", 1: "stale_online", 2: "extra_online", 3: "missing_online", 4: "ok"}
    assert cats("score") == {0: "ok", 1: "stale_online", 2: "extra_online", 3: "missing_online", 4: "value_mismatch"}
    score = rep.feature("score")
    assert score.counts == [1, 1, 1, 1, 1]
    assert score.by_version == {"1": [0, 1, 1, 1, 1], "2": [1, 0, 0, 0, 0]}
    assert rep.feature("clicks").mismatch_rate == pytest.approx(3 / 5)
    assert rep.failed
    ex = score.examples["value_mismatch"][0]
    assert ex["request_id"] == "r3" and ex["served"] == pytest.approx(5.75) and ex["recomputed"] == 5.5
    assert ex["online_event_time"].startswith("2024-03-10T12:39")


def test_batches_and_rows_without_entity_ids(ws: Any, tmp_path: Path) -> None:
    """Small batches give the same counts; requests that sent values themselves are not compared."""
    from roost.monitor.skew import skew

    planted(ws.root, tmp_path / "logs")
    raw = serve_rows([0], T0 + 60 * MIN, first_request=200)
    raw["user_id"] = [None]
    raw["_fs_event_time.uv"] = [None]
    write_log(tmp_path / "logs", raw, name="000001-1-00001.parquet")
    whole = skew(tmp_path / "logs", profiles=False)
    small = skew(tmp_path / "logs", batch_rows=2, profiles=False)
    assert whole.rows_read == small.rows_read == 6
    assert whole.rows_compared == small.rows_compared == 5
    assert [f.to_dict() for f in whole.features] == [f.to_dict() for f in small.features]
    assert any("without entity ids" in n for n in whole.notes)
    later = skew(tmp_path / "logs", since=T0 + 61 * MIN, profiles=False)  # every request was at T0 + 60 min
    assert later.rows_compared == 0 and not later.features and not later.failed
    window = skew(tmp_path / "logs", since="2024-03-10T13:00", until=T0 + 61 * MIN, profiles=False)
    assert window.rows_compared == 5


def test_no_logs_is_a_user_error(ws: Any, tmp_path: Path) -> None:
    from roost.errors import RoostError
    from roost.monitor.skew import skew

    with pytest.raises(RoostError, match="no request log files"):
        skew(tmp_path / "nothing")
    with pytest.raises(RoostError, match="max_mismatch"):
        skew(tmp_path, max_mismatch=2.0)


def test_cli_exit_code_and_html_report(ws: Any, tmp_path: Path, cli: Any) -> None:
    planted(ws.root, tmp_path / "logs")
    out = tmp_path / "skew.html"
    code, stdout, _ = cli("monitor", "skew", str(tmp_path / "logs"), "--html", str(out), "--max-mismatch", "0.01")
    assert code == 1, stdout
    assert "SKEW: 3 of 3 features" in stdout
    page = out.read_text()
    for word in ("stale_online", "missing_online", "extra_online", "value_mismatch", "<svg", "r3"):
        assert word in page
    code, stdout, _ = cli("monitor", "skew", str(tmp_path / "logs"), "--max-mismatch", "1", "--json")
    assert code == 0, stdout
    assert json.loads(stdout)["failed"] is False


def test_cli_log_records_a_run_with_the_report(ws: Any, tmp_path: Path, cli: Any) -> None:
    from roost.registry.api import search_runs

    planted(ws.root, tmp_path / "logs")
    code, stdout, _ = cli("monitor", "skew", str(tmp_path / "logs"), "--model", "m", "--log", "--json")
    assert code == 1, stdout
    runs = search_runs("tags.roost.monitor.check = 'skew'")
    assert len(runs) == 1
    r = runs[0]
    assert r["tags"]["roost.monitor.verdict"] == "skew" and r["tags"]["roost.monitor.model"] == "m"
    assert r["metrics"]["skew.rate.score"] == pytest.approx(4 / 5)
    assert r["experiment"] == "monitor/m"
    assert any("recorded as monitor run" in n for n in json.loads(stdout)["notes"])


# ---------------------------------------------------------------- end to end: a real `roost serve --log-requests 1`

E2E_DEFS = """from datetime import timedelta
from roost.features import Entity, Source, FeatureView

user = Entity("user", {"user_id": "int64"})
src = Source("stats_src", path="data/stats.parquet", event_time="event_time", created_time="created_time")
stats = FeatureView("stats", user, src, fields={"f1": "float64", "f2": "float64"}, ttl=timedelta(days=30))
"""


def _stats_source(root: Path, rows: list[tuple[int, datetime, datetime, float, float | None]]) -> None:
    pq.write_table(
        pa.table(
            {
                "user_id": pa.array([r[0] for r in rows], pa.int64()),
                "event_time": pa.array([r[1] for r in rows], TS),
                "created_time": pa.array([r[2] for r in rows], TS),
                "f1": pa.array([r[3] for r in rows], pa.float64()),
                "f2": pa.array([r[4] for r in rows], pa.float64()),
            }
        ),
        root / "data" / "stats.parquet",
    )


@pytest.mark.slow
def test_end_to_end_through_roost_serve(ws: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Requests served by a real server join back with 0 mismatches; a late source row then shows as stale."""
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "serve"))
    from servekit import Server
    from test_serve_features import feature_model

    from roost.features import apply, materialize
    from roost.features.online_stores import reset_online_stores
    from roost.monitor.skew import skew

    now = datetime.now(UTC).replace(microsecond=0)
    h = timedelta(hours=1)
    rows: list[tuple[int, datetime, datetime, float, float | None]] = [
        (1, now - 9 * h, now - 8 * h, 0.5, 1.0),
        (2, now - 8 * h, now - 7 * h, 1.5, 2.0),
        (2, now - 8 * h, now - 2 * h, 1.75, 4.0),  # same event time, later created time: wins
        (3, now - 7 * h, now - 6 * h, 2.5, None),
        (1, now - 5 * h, now - 4 * h, 0.25, 3.0),
    ]
    (ws.root / "features").mkdir()
    (ws.root / "data").mkdir()
    (ws.root / "features" / "defs.py").write_text(E2E_DEFS)
    _stats_source(ws.root, rows)
    apply()
    materialize(end=now)
    pkg = feature_model(tmp_path / "fmodel")
    logs = tmp_path / "logs"
    env = {"ROOST_WORKSPACE": str(ws.root)}
    srv = Server([str(pkg)], "--log-requests", "1", "--log-dir", str(logs), cwd=ws.root, log=tmp_path / "out", env=env)
    try:
        srv.wait_ready()
        with srv.client() as c:
            body = {"inputs": [{"name": "user_id", "datatype": "INT64", "shape": [4], "data": [2, 1, 999, 3]}]}
            assert c.post("/v2/models/fmodel/infer", json=body).status_code == 200
            assert c.post("/v1/models/fmodel:predict", json={"instances": [{"user_id": 1}]}).status_code == 200
            raw = c.post("/v1/models/fmodel:predict", json={"inputs": {"f1": [1.0], "f2": [1.0]}})
            assert raw.status_code == 200
    finally:
        assert srv.stop() == 0  # SIGTERM flushes the request log
        reset_online_stores()
    clean = skew(logs)
    assert clean.rows_read == 6 and clean.rows_compared == 5
    assert {f.feature: f.counts for f in clean.features} == {"f1": [5, 0, 0, 0, 0], "f2": [5, 0, 0, 0, 0]}
    # a row for user 1 that arrives late in the offline source (event time before the requests): stale online
    _stats_source(ws.root, [*rows, (1, now - 1 * h, now, 7.0, 8.0)])
    late = skew(logs)
    for f in late.features:
        assert f.counts == [3, 0, 2, 0, 0], (f.feature, f.counts)
        assert {ex["entity"]["user_id"] for ex in f.examples["stale_online"]} == {1}
