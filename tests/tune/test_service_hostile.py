"""Hostile requests to the ask/tell service: each is a 4xx naming the field, never a 500, and the store stays
consistent (no study half-made by a refused create, no trial told by a mangled path, listings still answer)."""

from __future__ import annotations

import warnings

import pytest

with warnings.catch_warnings():  # starlette warns about httpx at import
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from roost.tune.engine import MAX_ASK, Engine
from roost.tune.service import MAX_REASON, create_app

SPACE = {"lr": {"loguniform": [1e-4, 1e-1]}, "act": ["relu", "tanh"]}
HUGE = b"1" + b"0" * 30  # an integer JSON allows and no 64-bit column holds


@pytest.fixture
def api(ws):
    with TestClient(create_app(Engine()), base_url="http://127.0.0.1:8765", raise_server_exceptions=False) as c:
        yield c


def _study(api, **kw) -> str:
    r = api.post("/studies", json={"space": SPACE, "sampler": "random", **kw})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def _n_studies(api) -> int:
    r = api.get("/studies")
    assert r.status_code == 200, r.text
    return len(r.json()["studies"])


def _raw(api, path: str, body: bytes):
    return api.post(path, content=body, headers={"content-type": "application/json"})


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (b'{"space": {"a": [1, 2]}, "max_trials": ' + HUGE + b"}", "max_trials"),
        (b'{"space": {"a": [1, 2]}, "seed": ' + HUGE + b"}", "seed"),
        (b'{"space": {"a": [1, 2]}, "seed": -5}', "seed"),
        (b'{"space": {"a": [1, 2]}, "seed": 4294967296}', "seed"),
        (b'{"space": {"a": [1, 2]}, "seed": "x"}', "seed"),
        (b'{"space": {"a": [1, 2]}, "seed": true}', "seed"),
        (b'{"space": {"a": [1, 2]}, "max_trials": true}', "max_trials"),
        (b'{"space": {"a": [1, 2]}, "lease_s": Infinity}', "lease_s"),
        (b'{"space": {"a": [1, 2]}, "name": {"a": 1}}', "name"),
        (b'{"space": {"a": [1, 2]}, "name": "' + b"n" * 1000 + b'"}', "name"),
        (b'{"space": {"a": [1, 2]}, "objective": [1]}', "objective"),
        (b'{"space": {"a": [1, 2]}, "attrs": [1]}', "attrs"),
        (b"[" * 100_000 + b"]" * 100_000, "body"),
    ],
)
def test_a_refused_create_is_422_and_leaves_no_study(api, body, param) -> None:
    """A seed of 10**30 used to be stored before the answer failed (500): every later GET /studies then 500'd;
    a seed of -5 was stored and every ask of that study 500'd."""
    before = _n_studies(api)
    r = _raw(api, "/studies", body)
    assert r.status_code == 422, (r.status_code, r.text[:300])
    assert r.json()["param"] == param and param in r.json()["error"]
    assert _n_studies(api) == before


def test_a_seed_at_the_edges_of_its_range_is_accepted(api) -> None:
    for seed in (0, 2**32 - 1):
        sid = _study(api, seed=seed)
        assert api.post(f"/studies/{sid}/ask", json={}).json()["trial"] is not None


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (b'{"n": ' + HUGE + b"}", "n"),
        (b'{"n": 1000000000}', "n"),
        (b'{"n": 0}', "n"),
        (b'{"n": -1}', "n"),
        (b'{"lease_s": NaN}', "lease_s"),
        (b'{"lease_s": Infinity}', "lease_s"),
        (b'{"client_id": {"a": 1}}', "client_id"),
        (b'{"client_id": "' + b"c" * 1000 + b'"}', "client_id"),
    ],
)
def test_a_refused_ask_is_422_and_leases_nothing(api, body, param) -> None:
    """n=10**9 on a study without a budget sampled trials until the request died (100,000 took ~100 s); a NaN
    lease was stored as a lease that never expires."""
    sid = _study(api)
    r = _raw(api, f"/studies/{sid}/ask", body)
    assert r.status_code == 422, (r.status_code, r.text[:300])
    assert r.json()["param"] == param
    assert api.get(f"/studies/{sid}").json()["trials"] == []


def test_the_batch_limit_itself_is_served(api) -> None:
    sid = _study(api, max_trials=3)
    r = api.post(f"/studies/{sid}/ask", json={"n": MAX_ASK})
    assert r.status_code == 200 and len(r.json()["trials"]) == 3


def test_integers_beyond_64_bits_in_tell_report_and_add_are_422(api) -> None:
    sid = _study(api)
    n = api.post(f"/studies/{sid}/ask", json={}).json()["trial"]["number"]
    for path, body, param in [
        (f"/studies/{sid}/trials/{n}/tell", b'{"value": ' + HUGE + b"}", "value"),
        (f"/studies/{sid}/trials/{n}/report", b'{"step": ' + HUGE + b', "value": 1.0}', "step"),
        (f"/studies/{sid}/trials/{n}/report", b'{"step": 1, "value": ' + HUGE + b"}", "value"),
        (f"/studies/{sid}/tell", b'{"results": [{"number": ' + HUGE + b', "value": 1.0}]}', "results[0].number"),
        (f"/studies/{sid}/trials", b'{"params": {"lr": 0.01, "act": "relu"}, "value": ' + HUGE + b"}", "value"),
    ]:
        r = _raw(api, path, body)
        assert r.status_code == 422, (path, r.status_code, r.text[:300])
        assert r.json()["param"] == param, r.json()
    st = api.get(f"/studies/{sid}").json()
    assert [(t["number"], t["state"]) for t in st["trials"]] == [(n, "RUNNING")]


@pytest.mark.parametrize("segment", ["%201", "1%20", "+1", "01a", "\u0661"])
def test_a_trial_number_that_is_not_plain_digits_is_404(api, segment) -> None:
    """int() reads ' 1', '+1' and Arabic-Indic digits: POST /trials/%201/tell told trial 1."""
    sid = _study(api)
    api.post(f"/studies/{sid}/ask", json={"n": 2})
    r = api.post(f"/studies/{sid}/trials/{segment}/tell", json={"value": 1.0})
    assert r.status_code == 404, r.text
    assert {t["state"] for t in api.get(f"/studies/{sid}").json()["trials"]} == {"RUNNING"}


def test_telling_twice_keeps_the_first_and_a_finished_study_hands_out_nothing(api) -> None:
    sid = _study(api, max_trials=2)
    got = api.post(f"/studies/{sid}/ask", json={"n": 2}).json()["trials"]
    for t, v in zip(got, (0.3, 0.4)):
        assert api.post(f"/studies/{sid}/trials/{t['number']}/tell", json={"value": v}).status_code == 200
    again = api.post(f"/studies/{sid}/trials/{got[0]['number']}/tell", json={"value": 0.9})
    assert again.status_code == 409 and again.json()["stored"]["value"] == 0.3
    many = api.post(f"/studies/{sid}/tell", json={"results": [{"number": got[1]["number"], "value": 0.1}]})
    assert many.status_code == 200 and many.json()["results"][0]["stored"]["value"] == 0.4
    one = api.post(f"/studies/{sid}/ask", json={}).json()
    batch = api.post(f"/studies/{sid}/ask", json={"n": 5}).json()
    assert one["trial"] is None and one["done"] is True and batch["trials"] == [] and batch["done"] is True
    st = api.get(f"/studies/{sid}").json()
    assert [t["value"] for t in st["trials"]] == [0.3, 0.4] and st["best_trial"]["value"] == 0.3


def test_attrs_and_reasons_of_the_wrong_type_are_422_and_tell_nothing(api) -> None:
    """attrs [1] on a tell was a 500; a reason {"a": 1} or attrs "x" on an added trial were stored as sent."""
    sid = _study(api)
    n = api.post(f"/studies/{sid}/ask", json={}).json()["trial"]["number"]
    for path, body, param in [
        (f"/studies/{sid}/trials/{n}/tell", {"value": 1.0, "attrs": [1]}, "attrs"),
        (f"/studies/{sid}/trials/{n}/tell", {"state": "fail", "reason": {"a": 1}}, "reason"),
        (f"/studies/{sid}/trials/{n}/tell", {"state": "fail", "reason": "r" * 20_000}, "reason"),
        (f"/studies/{sid}/tell", {"results": [{"number": n, "value": 1.0, "attrs": [1]}]}, "results[0].attrs"),
        (f"/studies/{sid}/tell", {"results": [{"number": n, "state": "fail", "reason": 5}]}, "results[0].reason"),
        (f"/studies/{sid}/trials", {"params": {"lr": 0.01, "act": "relu"}, "attrs": "x"}, "attrs"),
    ]:
        r = api.post(path, json=body)
        assert r.status_code == 422, (path, body, r.status_code, r.text[:300])
        assert r.json()["param"] == param, r.json()
    st = api.get(f"/studies/{sid}").json()
    assert [(t["number"], t["state"]) for t in st["trials"]] == [(n, "RUNNING")]
    ok = api.post(f"/studies/{sid}/trials/{n}/tell", json={"state": "fail", "reason": "OOM", "attrs": {"gpu": 1}})
    assert ok.status_code == 200 and ok.json()["reason"] == "OOM"


def test_a_client_whose_objective_raises_a_huge_message_fails_that_trial_and_goes_on(servers) -> None:
    """Client.optimize sends the exception text as the failure reason: a 20,000-character message must still
    fail that trial (cut to the service's limit), not stop the loop on the 422."""
    from roost.tune.client import Client

    srv = servers()
    with Client(srv.url) as c:
        sid = c.create_study(SPACE, sampler="random", max_trials=3)
        calls = []

        def objective(params):
            calls.append(params)
            if len(calls) == 1:
                raise ValueError("x" * 20_000)
            return params["lr"]

        assert c.optimize(sid, objective) == 3
        st = c.study(sid)
    states = [t["state"] for t in st["trials"]]
    assert states == ["FAIL", "COMPLETE", "COMPLETE"]
    reason = st["trials"][0]["reason"]
    assert reason.startswith("ValueError: xxx") and len(reason) <= MAX_REASON


def test_the_client_and_the_service_agree_on_the_reason_limit() -> None:
    from roost.tune import client

    assert client.MAX_REASON == MAX_REASON


def test_a_body_over_the_limit_is_413_and_creates_nothing(api) -> None:
    """The service read any body whole into memory (a 1 GB POST took 1 GB); past MAX_BODY it is refused."""
    from roost.tune.service import MAX_BODY

    before = _n_studies(api)
    big = b'{"space": {"a": [1, 2]}, "name": "' + b"n" * MAX_BODY + b'"}'
    r = _raw(api, "/studies", big)
    assert r.status_code == 413 and "limit" in r.json()["error"], (r.status_code, r.text[:200])

    def chunks():  # no content-length: the limit holds on the stream too
        yield b'{"space": {"a": [1, 2]}, "name": "'
        for _ in range(MAX_BODY // 65536 + 1):
            yield b"n" * 65536
        yield b'"}'

    r = api.post("/studies", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413, (r.status_code, r.text[:200])
    assert _n_studies(api) == before
