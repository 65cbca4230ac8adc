"""The ask/tell HTTP API in-process (Starlette TestClient): status codes and bodies for good and bad input."""

from __future__ import annotations

import json
import warnings

import pytest

with warnings.catch_warnings():  # starlette warns about httpx at import
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from roost.tune.engine import Engine
from roost.tune.service import create_app

SPACE = {"lr": {"loguniform": [1e-4, 1e-1]}, "layers": {"int": [1, 4]}, "act": ["relu", "tanh"]}


@pytest.fixture
def api(ws):
    with TestClient(create_app(Engine()), base_url="http://127.0.0.1:8765") as c:
        yield c


def _study(api, **kw) -> str:
    r = api.post("/studies", json={"space": SPACE, "sampler": "random", **kw})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def test_ask_tell_report_and_history(api) -> None:
    sid = _study(api, objective="val_loss", max_trials=3)
    values = []
    for i in range(3):
        t = api.post(f"/studies/{sid}/ask", json={"client_id": "w1"}).json()["trial"]
        assert set(t["params"]) == set(SPACE) and 1 <= t["params"]["layers"] <= 4
        r = api.post(f"/studies/{sid}/trials/{t['number']}/report", json={"step": 1, "value": 1.0 + i})
        assert r.status_code == 200 and r.json()["prune"] is False
        values.append(0.5 - i * 0.1)
        assert api.post(f"/studies/{sid}/trials/{t['number']}/tell", json={"value": values[-1]}).status_code == 200
    done = api.post(f"/studies/{sid}/ask", json={"client_id": "w1"}).json()
    assert done["trial"] is None and done["done"] is True
    st = api.get(f"/studies/{sid}").json()
    assert st["objective"] == "val_loss" and st["best_trial"]["value"] == pytest.approx(0.3)
    assert [t["value"] for t in st["trials"]] == pytest.approx(values)
    assert st["trials"][0]["intermediate"] == {"1": 1.0}
    assert sid in [s["id"] for s in api.get("/studies").json()["studies"]]


def test_unknown_trial_404_second_tell_409_with_stored_value(api) -> None:
    sid = _study(api)
    assert api.post(f"/studies/{sid}/trials/99/tell", json={"value": 1.0}).status_code == 404
    assert api.post(f"/studies/{sid}/trials/x/tell", json={"value": 1.0}).status_code == 404
    assert api.post("/studies/nope/ask", json={}).status_code == 404
    assert api.get("/studies/nope").status_code == 404
    n = api.post(f"/studies/{sid}/ask", json={"client_id": "a"}).json()["trial"]["number"]
    assert api.post(f"/studies/{sid}/trials/{n}/tell", json={"value": 0.7}).status_code == 200
    r = api.post(f"/studies/{sid}/trials/{n}/tell", json={"value": 0.1})
    assert r.status_code == 409
    assert r.json()["stored"] == {"number": n, "state": "COMPLETE", "value": 0.7, "reason": None}
    assert "0.7" in r.json()["error"]


def test_value_outside_the_space_is_422_naming_the_parameter(api) -> None:
    sid = _study(api)
    for params, name in [
        ({"lr": 0.5, "layers": 2, "act": "relu"}, "lr"),
        ({"lr": 0.01, "layers": 9, "act": "relu"}, "layers"),
        ({"lr": 0.01, "layers": 2, "act": "gelu"}, "act"),
        ({"lr": 0.01, "layers": 2, "act": "relu", "extra": 1}, "extra"),
    ]:
        r = api.post(f"/studies/{sid}/trials", json={"params": params})
        assert r.status_code == 422 and r.json()["param"] == name, r.text
        assert name in r.json()["error"]
    bad_space = api.post("/studies", json={"space": {"lr": {"loguniform": [0, 1]}}})
    assert bad_space.status_code == 422 and bad_space.json()["param"] == "lr"
    assert api.post("/studies", json={"space": SPACE, "direction": "down"}).json()["param"] == "direction"
    assert api.post("/studies", json={"space": SPACE, "samplr": "tpe"}).json()["param"] == "samplr"
    n = api.post(f"/studies/{sid}/ask", json={}).json()["trial"]["number"]
    assert api.post(f"/studies/{sid}/trials/{n}/tell", json={"value": "high"}).json()["param"] == "value"
    assert api.post(f"/studies/{sid}/trials/{n}/report", json={"step": -1, "value": 1}).json()["param"] == "step"


def test_nan_objective_is_failed_never_best(api) -> None:
    sid = _study(api, direction="maximize")
    a = api.post(f"/studies/{sid}/ask", json={"client_id": "a"}).json()["trial"]["number"]
    b = api.post(f"/studies/{sid}/ask", json={"client_id": "b"}).json()["trial"]["number"]
    nan = json.dumps({"value": float("nan")})  # NaN: JSON as Python writes it (a body without a type is a 415)
    r = api.post(f"/studies/{sid}/trials/{a}/tell", content=nan, headers={"content-type": "application/json"})
    assert r.status_code == 200 and r.json()["state"] == "FAIL" and r.json()["value"] is None
    api.post(f"/studies/{sid}/trials/{b}/tell", json={"value": -5.0})
    st = api.get(f"/studies/{sid}").json()
    assert st["best_trial"]["number"] == b and st["counts"]["FAIL"] == 1
    again = api.post(f"/studies/{sid}/trials/{a}/tell", json={"value": 1.0})
    assert again.status_code == 409 and again.json()["stored"]["state"] == "FAIL"


def test_failure_and_pruned_tells(api) -> None:
    sid = _study(api, prune="median")
    n = api.post(f"/studies/{sid}/ask", json={}).json()["trial"]["number"]
    r = api.post(f"/studies/{sid}/trials/{n}/tell", json={"state": "fail", "reason": "OOM"})
    assert r.json()["state"] == "FAIL" and r.json()["reason"] == "OOM"
    n = api.post(f"/studies/{sid}/ask", json={}).json()["trial"]["number"]
    api.post(f"/studies/{sid}/trials/{n}/report", json={"step": 3, "value": 0.9})
    r = api.post(f"/studies/{sid}/trials/{n}/tell", json={"state": "pruned"})
    assert r.json()["state"] == "PRUNED" and r.json()["value"] == 0.9
    assert api.post(f"/studies/{sid}/trials/{n}/tell", json={"state": "maybe"}).status_code == 422


def test_bearer_token(ws) -> None:
    with TestClient(create_app(Engine(), token="s3cret"), base_url="http://127.0.0.1:8765") as c:
        assert c.get("/studies").status_code == 401
        assert c.get("/studies", headers={"authorization": "Bearer s3cret"}).status_code == 200
