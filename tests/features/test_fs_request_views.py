"""Request-time views: computed from request data (+ stored features) by one function; offline == online == brute
force."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pytest
from fs_helpers import T0, TS, TYPED_DEFS, write_defs, write_typed_data

REQUEST_DEFS = (
    TYPED_DEFS
    + """
from roost.features import RequestView
import pandas as pd


def order_feats(df):
    return pd.DataFrame({
        "amount_per_n": df["amount"] / df["n"],
        "total_qty": df["qty"] + df["n"],
        "premium": df["coupon"] & (df["score"].fillna(0) > 0),
        "tag": df["channel"] + "/" + df["label"].fillna("none"),
        "age_s": (df["req_time"] - df["seen_at"]).dt.total_seconds(),
        "due": df["req_time"] + pd.Timedelta(days=1),
        "n32_x": df["n32"] * 2,
    })


order = RequestView(
    "order",
    request={"amount": "float64", "qty": "int64", "coupon": "bool", "channel": "string", "req_time": "timestamp"},
    sources=["activity:n", "activity:score", "activity:label", "activity:seen_at", "activity:n32"],
    fields={"amount_per_n": "float64", "total_qty": "int64", "premium": "bool", "tag": "string",
            "age_s": "float64", "due": "timestamp", "n32_x": "float32"},
    transform=order_feats,
)
squared = RequestView("squared", request={"amount": "float64"}, fields={"amount_sq": "float64"},
                      transform="rv_helpers:square")
"""
)
HELPERS = "def square(df):\n    return {'amount_sq': df['amount'] ** 2}\n"
USERS = list(range(44))  # 40..43 have no stored rows
T1 = T0 + timedelta(hours=20, minutes=5)


def requests_for(n: int, seed: int = 1) -> dict[str, list]:
    """Request data of every dtype, with a few nulls."""
    rng = np.random.default_rng(seed)
    amount = [None if i % 11 == 3 else float(x) for i, x in enumerate(rng.normal(50, 20, n).round(2))]
    return {
        "amount": amount,
        "qty": [int(x) for x in rng.integers(1, 5, n)],
        "coupon": [bool(x) for x in rng.random(n) < 0.5],
        "channel": [str(x) for x in rng.choice(["web", "app", "é"], n)],
        "req_time": [T1 - timedelta(minutes=int(m)) for m in rng.integers(0, 90, n)],
    }


def brute(req: dict[str, list], stored: dict[str, list], i: int) -> dict:
    """The request view's fields for row i, row by row in plain Python (None = missing)."""
    n, score, label, seen, n32 = (stored[k][i] for k in ("n", "score", "label", "seen_at", "n32"))
    amount, qty = req["amount"][i], req["qty"][i]
    t = req["req_time"][i]
    return {
        "amount_per_n": None if amount is None or n is None else (math.inf if n == 0 else amount / n),
        "total_qty": None if n is None else qty + n,
        "premium": bool(req["coupon"][i] and (score or 0) > 0),
        "tag": req["channel"][i] + "/" + (label if label is not None else "none"),
        "age_s": None if seen is None else (t - seen).total_seconds(),
        "due": t + timedelta(days=1),
        "n32_x": None if n32 is None else float(n32 * 2),
    }


@pytest.fixture
def rws(fws, monkeypatch):
    """The typed data, the request views applied, data materialised at T1."""
    from roost.features import apply, materialize

    (fws.root / "pylib").mkdir()
    (fws.root / "pylib" / "rv_helpers.py").write_text(HELPERS)
    monkeypatch.syspath_prepend(str(fws.root / "pylib"))
    write_typed_data(fws.root)
    write_defs(fws.root, REQUEST_DEFS)
    diff = apply()
    assert diff.added["request_view"] == ["order", "squared"]
    materialize(end=T1)
    monkeypatch.setenv("ROOST_ONLINE_AS_OF", T1.isoformat())  # online reads as of T1, like the training sets
    return fws


def _same(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isinf(a) and a == b) or abs(a - b) <= 1e-9 * max(1.0, abs(b))
    return a == b


def test_request_views_offline_equal_online_equal_brute_force(rws):
    from roost.features import OnlineFetcher, online, training_set

    refs = ["order:*", "squared:amount_sq", "activity:score"]
    req = requests_for(len(USERS))
    ent = pa.table(
        {
            "user_id": pa.array(USERS, pa.int64()),
            "event_time": pa.array([T1] * len(USERS), TS),
            **req,
        }
    )
    off = training_set(ent, refs, output="arrow")
    stored = training_set(ent.select(["user_id", "event_time"]), ["activity:*"], output="arrow").to_pydict()
    on = online(refs, {"user_id": USERS}, request_data=req, output="arrow")
    fields = ["amount_per_n", "total_qty", "premium", "tag", "age_s", "due", "n32_x", "amount_sq", "score"]
    want_types = ["double", "int64", "bool", "string", "double", "timestamp[us, tz=UTC]", "float", "double", "double"]
    assert off.column_names[-len(fields) :] == fields
    assert [str(off.schema.field(f).type) for f in fields] == want_types
    assert [str(on.schema.field(f).type) for f in fields] == want_types
    assert sum(v is None for v in stored["n"]) >= 4  # missing stored inputs are exercised
    for i in range(len(USERS)):
        want = brute(req, stored, i)
        want["amount_sq"] = None if req["amount"][i] is None else req["amount"][i] ** 2
        for f, w in want.items():
            assert _same(off.column(f)[i].as_py(), w), (i, f, off.column(f)[i], w)
            assert _same(on.column(f)[i].as_py(), w), (i, f, on.column(f)[i], w)
    for f in fields:
        assert on.column(f).to_pylist() == off.column(f).to_pylist(), f
    # the serving fetcher: the same values as numpy, like Arrow's to_numpy of the offline column
    got = OnlineFetcher(refs, ["user_id"]).fetch({"user_id": np.array(USERS)}, request_data=req)
    assert sorted(got) == sorted(fields)  # the hidden source inputs are not returned
    for f in fields:
        want = off.column(f).to_numpy(zero_copy_only=False)
        assert got[f].dtype == want.dtype, f
        if want.dtype.kind in "fM":
            np.testing.assert_array_equal(got[f], want)
        else:
            assert list(got[f]) == list(want), f


def test_request_only_view_needs_no_entities_and_pandas_frames_work(rws):
    from roost.features import online, training_set

    ent = __import__("pandas").DataFrame(
        {"event_time": [T1, T1], "amount": [3.0, None], "user_id": [1, 2]}, index=[10, 20]
    )
    off = training_set(ent, ["squared:amount_sq"])
    assert list(off.index) == [10, 20] and off["amount_sq"].iloc[0] == 9.0 and np.isnan(off["amount_sq"].iloc[1])
    on = online(["squared:amount_sq"], {}, request_data={"amount": [3.0, None]}, output="arrow")
    assert on.column("amount_sq").to_pylist() == [9.0, None]


def test_missing_request_fields_are_clear_errors(rws):
    from roost.errors import RoostError
    from roost.features import online, training_set

    ent = pa.table({"user_id": pa.array([1], pa.int64()), "event_time": pa.array([T1], TS), "amount": [1.0]})
    with pytest.raises(RoostError, match=r"lacks request field column\(s\) \['qty', 'coupon', 'channel', 'req_time'\]"):
        training_set(ent, ["order:tag"])
    with pytest.raises(RoostError, match=r"request data lacks field\(s\) \['req_time'\].*order"):
        online(
            ["order:tag"], {"user_id": [1]}, request_data={k: v for k, v in requests_for(1).items() if k != "req_time"}
        )
    with pytest.raises(RoostError, match=r"request field 'qty' \(int64\) got the non-integral value 1.5"):
        online(["order:tag"], {"user_id": [1]}, request_data={**requests_for(1), "qty": [1.5]})
    with pytest.raises(RoostError, match=r"'channel' is declared string but holds int64"):
        online(["order:tag"], {"user_id": [1]}, request_data={**requests_for(1), "channel": [7]})
    with pytest.raises(RoostError, match=r"'req_time' holds a time without a UTC offset"):
        online(["order:tag"], {"user_id": [1]}, request_data={**requests_for(1), "req_time": ["2024-05-01T10:00:00"]})
    with pytest.raises(RoostError, match=r"'amount' has 2 values for 1 rows"):
        online(["order:tag"], {"user_id": [1]}, request_data={**requests_for(1), "amount": [1.0, 2.0]})
    # an ISO-8601 time with an offset is the same instant as a datetime
    a = online(
        ["order:due"], {"user_id": [1]}, request_data={**requests_for(1), "req_time": ["2024-05-01T12:00:00+02:00"]}
    )
    assert a["due"].iloc[0] == datetime(2024, 5, 2, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ('"activity:n",', r"request view 'order': source 'activity:nn'.*has no field 'nn'.*did you mean 'n'"),
        ('"total_qty": "int64"', r"output field 'total_qty' is declared bool but the transformation returned int64"),
        ('"tag": "string"', r"output field 'tag' is declared int64 but the transformation returned (large_)?string"),
        ('"amount_per_n": "float64"', r"output field 'amount_per_n' is declared int64 but .* returned double"),
    ],
)
def test_apply_refuses_unknown_sources_and_dtype_mismatches(fws, change, match):
    from roost.errors import ConfigError
    from roost.features import apply

    repl = {
        '"activity:n",': '"activity:nn",',
        '"total_qty": "int64"': '"total_qty": "bool"',
        '"tag": "string"': '"tag": "int64"',
        '"amount_per_n": "float64"': '"amount_per_n": "int64"',
    }[change]
    write_typed_data(fws.root)
    write_defs(fws.root, REQUEST_DEFS.split("squared = ")[0].replace(change, repl))
    with pytest.raises(ConfigError, match=match):
        apply()


def test_definition_errors_name_the_field():
    from roost.errors import ConfigError
    from roost.features import RequestView

    def f(df):
        return df

    with pytest.raises(ConfigError, match=r"request field 'x': unknown dtype 'flaot'"):
        RequestView("v", request={"x": "flaot"}, fields={"y": "float64"}, transform=f)
    with pytest.raises(ConfigError, match=r"output field\(s\) \['x'\] are also input columns"):
        RequestView("v", request={"x": "float64"}, fields={"x": "float64"}, transform=f)
    with pytest.raises(ConfigError, match=r"no function 'nope'"):
        RequestView("v", request={"x": "float64"}, fields={"y": "float64"}, transform="math:nope")
    with pytest.raises(ConfigError, match=r"'x' is both a request field and source 'a:x'"):
        RequestView("v", request={"x": "float64"}, sources=["a:x"], fields={"y": "float64"}, transform=f)


def test_cli_apply_list_and_changes(fws, cli, monkeypatch):
    from roost.errors import RoostError
    from roost.features import apply, training_set

    write_typed_data(fws.root)
    p = write_defs(fws.root, REQUEST_DEFS.split("squared = ")[0])
    code, out, _ = cli("features", "apply")
    assert code == 0 and "+ request_view order" in out, out
    code, out, _ = cli("features", "list")
    assert code == 0 and "request views" in out and "order_feats" in out and "activity:n" in out, out
    code, out, _ = cli("features", "list", "--json")
    assert json.loads(out)["request_view"]["order"]["request"]["qty"] == "int64"
    assert cli("features", "materialize", "--end", T1.isoformat())[0] == 0
    code, _, err = cli("features", "get", "--view", "order", "--entity", "user_id=1")
    assert code == 2 and "request data lacks field(s)" in err, err
    # the function changed after apply: refused until applied again, like Python transforms of feature views
    p.write_text(p.read_text().replace('df["n32"] * 2', 'df["n32"] * 3'))
    ent = pa.table({"user_id": pa.array([1], pa.int64()), "event_time": pa.array([T1], TS), **requests_for(1)})
    with pytest.raises(RoostError, match="changed since it was applied"):
        training_set(ent, ["order:n32_x"])
    d = apply()
    assert list(d.changed["request_view"]) == ["order"] and "transform" in d.changed["request_view"]["order"]
    p.write_text(p.read_text().split("order = RequestView")[0])
    d = apply()
    assert d.removed["request_view"] == ["order"]
    with pytest.raises(RoostError, match="'order'.*is not registered"):
        training_set(ent, ["order:n32_x"])


def test_feature_server_computes_request_features_from_entities(rws):
    """`roost features serve`: request fields travel in 'entities' (as in Feast); values equal the library read."""
    from starlette.testclient import TestClient

    from roost.features import online
    from roost.features.feature_server import create_app

    users = [1, 2, 40]  # 40 has no stored row
    req = requests_for(len(users), seed=3)
    body_req = {**req, "req_time": [t.isoformat() for t in req["req_time"]]}
    refs = ["order:tag", "order:total_qty", "order:due", "activity:score"]
    with TestClient(create_app(allowed_hosts=None), base_url="http://localhost") as client:
        res = client.post("/get-online-features", json={"features": refs, "entities": {"user_id": users, **body_req}})
        assert res.status_code == 200, res.text
        body = res.json()
        missing = client.post(
            "/get-online-features",
            json={
                "features": refs,
                "entities": {"user_id": users, **{k: v for k, v in body_req.items() if k != "qty"}},
            },
        )
    assert body["metadata"]["feature_names"] == ["user_id", "score", "tag", "total_qty", "due"]
    got = dict(zip(body["metadata"]["feature_names"], body["results"]))
    lib = online(refs, {"user_id": users}, request_data=req, output="arrow")
    assert got["tag"]["values"] == lib.column("tag").to_pylist()
    assert got["total_qty"]["values"] == lib.column("total_qty").to_pylist()
    assert got["total_qty"]["statuses"] == [
        "NULL_VALUE" if v is None else "PRESENT" for v in got["total_qty"]["values"]
    ]
    assert got["due"]["values"] == [(t + timedelta(days=1)).isoformat().replace("+00:00", "Z") for t in req["req_time"]]
    assert missing.status_code == 422 and "'qty'" in missing.json()["error"], missing.text


def test_compute_refuses_malformed_outputs():
    """The transformation's answer: missing fields, other row counts, non-frames and fractions for ints are errors
    naming the view and field; a dict's columns are taken by position and scalars broadcast."""
    import pandas as pd

    from roost.errors import RoostError
    from roost.features.request_compute import compute

    spec = {"name": "v", "fields": {"y": "int64"}, "transform": {"function": "f"}}
    inputs = {"a": pa.array([1.0, 2.0, None])}
    got = compute(spec, lambda df: {"y": pd.Series([3, 4, 5], index=[9, 8, 7])}, inputs, 3)
    assert got["y"].to_pylist() == [3, 4, 5]
    assert compute(spec, lambda df: {"y": 7}, inputs, 3)["y"].to_pylist() == [7, 7, 7]
    assert compute(spec, lambda df: {"y": df["a"] * 2}, inputs, 3)["y"].to_pylist() == [2, 4, None]
    for fn, match in [
        (lambda df: {"z": df["a"]}, r"request view 'v': the transformation did not return field\(s\) \['y'\]"),
        (lambda df: {"y": [1, 2]}, r"returned 2 rows for 3"),
        (lambda df: pd.DataFrame({"y": [1]}), r"returned 1 rows for 3"),
        (lambda df: [1, 2, 3], r"returned list, not a DataFrame"),
        (lambda df: {"y": df["a"] / 4}, r"output field 'y' is declared int64 but the transformation returned double"),
        (lambda df: {"y": ["a", "b", "c"]}, r"output field 'y' is declared int64 but .* returned string"),
        (lambda df: 1 / 0, r"request view 'v': transformation 'f' failed on 3 rows: ZeroDivisionError"),
    ]:
        with pytest.raises(RoostError, match=match):
            compute(spec, fn, inputs, 3)
