"""The online feature server: get-online-features equals `roost.features.online` and a brute force (values,
statuses, event times); pushes over HTTP reach training sets; hostile requests get 4xx JSON and change nothing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from fs_helpers import write_defs
from push_helpers import DEFS, FIELDS, T0, all_rows, brute_latest, brute_pit, fresh_redis, rows
from starlette.testclient import TestClient

USERS = [*range(13), 99, 5]  # 99 has no row anywhere; 5 asked twice


def _iso(t):
    return t.isoformat().replace("+00:00", "Z")


@pytest.fixture(params=["sqlite", "redis"])
def served(request, fws):
    """(client, held pushed rows, store url) of a server over a workspace whose view 'clicks' got pushes."""
    from roost.features import apply, push
    from roost.features.feature_server import create_app

    url = fresh_redis(request.getfixturevalue("redis_url")) if request.param == "redis" else None
    rng = np.random.default_rng(11)
    rows(rng, 60).to_parquet(fws.root / "data" / "events.parquet")
    write_defs(fws.root, DEFS)
    apply()
    pushes = [rows(rng, 25) for _ in range(3)]
    for p in pushes:
        push("clicks", p, online_store=url)
    app = create_app(online_store=url, allowed_hosts=None, max_body=64 << 10)
    with TestClient(app, base_url="http://localhost") as client:
        yield client, all_rows(rows(rng, 0), pushes), url


def _get(client, body):
    return client.post("/get-online-features", json=body)


def test_get_online_features_equals_online_reads_and_brute_force(served):
    from roost.features import online

    client, held, url = served
    res = _get(client, {"features": [f"clicks:{f}" for f in FIELDS], "entities": {"user_id": USERS}})
    assert res.status_code == 200, res.text
    body = res.json()
    assert body["metadata"]["feature_names"] == ["user_id", *FIELDS]
    keys, *feats = body["results"]
    assert keys["values"] == USERS and set(keys["statuses"]) == {"PRESENT"}
    lib = online([f"clicks:{f}" for f in FIELDS], {"user_id": USERS}, online_store=url, output="arrow")
    for f, got in zip(FIELDS, feats):
        assert got["values"] == lib.column(f).to_pylist(), f
        best = [brute_latest(held, u) for u in USERS]
        assert got["values"] == [None if r is None else r[f] for r in best]
        assert got["statuses"] == ["NOT_FOUND" if r is None else "PRESENT" for r in best]
        assert got["event_timestamps"] == ["1970-01-01T00:00:00Z" if r is None else _iso(r["event_time"]) for r in best]


def test_full_feature_names_and_wildcard(served):
    client, held, _ = served
    res = _get(client, {"features": ["clicks:*"], "entities": {"user_id": [1]}, "full_feature_names": True})
    assert res.status_code == 200, res.text
    assert res.json()["metadata"]["feature_names"] == ["user_id"] + [f"clicks__{f}" for f in FIELDS]


def test_push_over_http_reaches_online_and_training_set(served):
    from roost.features import training_set

    client, held, url = served
    rng = np.random.default_rng(12)
    p = rows(rng, 20)
    df = {
        "user_id": p.user_id.tolist(),
        "event_time": [_iso(t) for t in p.event_time],
        "created_time": [None if pd.isna(t) else _iso(t) for t in p.created_time],
        "clicks": p.clicks.tolist(),
        "score": p.score.tolist(),
        "label": p.label.tolist(),
    }
    res = client.post("/push", json={"push_source_name": "clicks", "df": df, "to": "online_and_offline"})
    assert res.status_code == 200, res.text
    assert res.json() == {"view": "clicks", "rows": 20}
    # the server's handle of the store may be another than the fixture's: read back over HTTP
    held2 = all_rows(p.head(0), [*_pushes_of(held), p])
    res = _get(client, {"features": [f"clicks:{f}" for f in FIELDS], "entities": {"user_id": USERS}})
    for f, got in zip(FIELDS, res.json()["results"][1:]):
        assert got["values"] == [None if (r := brute_latest(held2, u)) is None else r[f] for u in USERS]
    ent = pd.DataFrame(
        {
            "user_id": np.repeat(np.arange(13), 3),
            "event_time": pd.to_datetime([T0 + pd.Timedelta(hours=h) for h in (2, 15, 40)] * 13, utc=True),
        }
    )
    # the offline side sees source + every push (the source rows are in data/events.parquet)
    src = pd.read_parquet(_root() / "data" / "events.parquet")
    everything = all_rows(src, [*_pushes_of(held), p])
    got = training_set(ent, [f"clicks:{f}" for f in FIELDS], output="arrow")
    for f in FIELDS:
        exp = [
            None if (r := brute_pit(everything, int(u), t, None)) is None else r[f]
            for u, t in zip(ent.user_id, ent.event_time)
        ]
        assert got.column(f).to_pylist() == exp, f


def _root():
    from roost import workspace

    return workspace.current().root


def _pushes_of(held):
    """The pushed rows of `held` (already deduplicated, in order) as one frame."""
    cols = ["user_id", "event_time", "created_time", *FIELDS]
    return [pd.DataFrame([{c: r[c] for c in cols} for r in held], columns=cols)]


def _state(client):
    res = _get(client, {"features": [f"clicks:{f}" for f in FIELDS], "entities": {"user_id": USERS}})
    from roost.features.push_log import log_dir

    files = sorted(p.name for p in log_dir(_root(), "clicks").rglob("*.parquet"))
    return res.json(), files


GOOD_DF = {"user_id": [1], "event_time": ["2024-05-01T03:00:00Z"], "clicks": [1], "score": [0.5], "label": ["x"]}
HOSTILE = [
    ("/get-online-features", b"not json", 400, "not JSON"),
    ("/get-online-features", b"[1, 2]", 400, "JSON object"),
    ("/get-online-features", {"entities": {"user_id": [1]}}, 422, "'features'"),
    ("/get-online-features", {"features": "clicks:clicks", "entities": {"user_id": [1]}}, 422, "'features'"),
    ("/get-online-features", {"features": ["clicks:clicks"]}, 422, "'entities'"),
    ("/get-online-features", {"features": ["clicks:clicks"], "entities": {"user_id": 1}}, 422, "entities.user_id"),
    ("/get-online-features", {"features": ["clicks:clicks"], "entities": {"user_id": [True]}}, 422, "entities.user_id"),
    ("/get-online-features", {"features": ["clicks:clicks"], "entities": {"user_id": [{"a": 1}]}}, 422, "user_id"),
    ("/get-online-features", {"features": ["clicks:clicks"], "entities": {"user_id": [1.5]}}, 422, "non-integral"),
    ("/get-online-features", {"features": ["clicks:clicks"], "entities": {"user_id": [1], "x": [1, 2]}}, 422, "length"),
    ("/get-online-features", {"features": ["clicks:clicks"], "entities": {"uid": [1]}}, 422, "user_id"),
    ("/get-online-features", {"features": ["click:clicks"], "entities": {"user_id": [1]}}, 404, "click"),
    ("/get-online-features", {"features": ["clicks:clickz"], "entities": {"user_id": [1]}}, 404, "clickz"),
    ("/get-online-features", {"feature_service": "svc", "entities": {"user_id": [1]}}, 422, "feature_service"),
    ("/get-online-features", {"features": ["clicks:clicks"], "entities": {"user_id": [1]}, "x": 1}, 422, "'x'"),
    (
        "/get-online-features",
        {"features": ["clicks:clicks"], "entities": {"user_id": list(range(10_001))}},
        413,
        "limit",
    ),
    (
        "/get-online-features",
        {"features": ["clicks:clicks"], "entities": {"user_id": [1]}, "full_feature_names": 1},
        422,
        "full_feature_names",
    ),
    ("/push", {"df": GOOD_DF}, 422, "push_source_name"),
    ("/push", {"push_source_name": "click", "df": GOOD_DF}, 404, "click"),
    ("/push", {"push_source_name": "clicks", "df": [GOOD_DF]}, 422, "'df'"),
    ("/push", {"push_source_name": "clicks", "df": GOOD_DF, "to": "offline_only"}, 422, "'to'"),
    ("/push", {"push_source_name": "clicks", "df": {**GOOD_DF, "clicks": ["many"]}}, 422, "'clicks'"),
    ("/push", {"push_source_name": "clicks", "df": {**GOOD_DF, "clicks": [1.5]}}, 422, "'clicks'"),
    ("/push", {"push_source_name": "clicks", "df": {**GOOD_DF, "event_time": ["2024-05-01T03:00:00"]}}, 422, "naive"),
    ("/push", {"push_source_name": "clicks", "df": {k: v for k, v in GOOD_DF.items() if k != "score"}}, 422, "'score'"),
    ("/push", {"push_source_name": "clicks", "df": {**GOOD_DF, "user_id": [1, 2]}}, 422, "length"),
    ("/push", {"push_source_name": "clicks", "df": {**GOOD_DF, "label": ["x" * (70 << 10)]}}, 413, "limit"),
]


@pytest.mark.parametrize("case", range(len(HOSTILE)))
def test_hostile_requests_get_4xx_and_change_nothing(served, case):
    client, _, _ = served
    path, body, status, word = HOSTILE[case]
    before = _state(client)
    if isinstance(body, bytes):
        res = client.post(path, content=body, headers={"content-type": "application/json"})
    else:
        res = client.post(path, json=body)
    assert res.status_code == status, res.text
    err = res.json()
    assert word in err["error"] + " " + err.get("hint", ""), err
    assert _state(client) == before


def test_policy_content_type_host_method_and_metrics(fws):
    from roost.features.feature_server import create_app

    write_defs(fws.root, DEFS)
    app = create_app(max_body=1024)  # the default Host allow-list: loopback names
    with TestClient(app, base_url="http://localhost") as client:
        assert client.get("/health").json() == {"status": "ok"}
        res = client.post("/get-online-features", content=b"{}", headers={"content-type": "text/plain"})
        assert res.status_code == 415
        assert client.get("/get-online-features").status_code == 405
        res = client.post("/get-online-features", content=b"{}", headers={"host": "evil.example"})
        assert res.status_code == 400
        res = client.post("/push", content=b"x" * 2048, headers={"content-type": "application/json"})
        assert res.status_code == 413 and "1024" in res.json()["error"]
        text = client.get("/metrics").text
        assert 'roost_feature_server_requests_total{endpoint="push",status="413"} 1.0' in text
        assert "roost_feature_server_request_seconds_bucket" in text
        assert "roost_connections_open" in text


def test_pushed_rows_count_on_metrics(served):
    client, _, _ = served
    res = client.post("/push", json={"push_source_name": "clicks", "df": GOOD_DF})
    assert res.status_code == 200, res.text
    assert 'roost_feature_server_rows_pushed_total{view="clicks"} 1.0' in client.get("/metrics").text
