"""The filter grammar against hand-written Python predicates over the same random runs."""

import random

import pytest

import roost
from roost.registry.filter_lex import FilterError


@pytest.fixture
def runs(ws):
    rng = random.Random(7)
    truth = []
    for i in range(80):
        params = {
            "lr": rng.choice([0.001, 0.01, 0.1]),
            "layers": rng.randint(1, 4),
            "opt": rng.choice(["adam", "sgd", "adamw"]),
            "bn": rng.choice([True, False]),
        }
        metrics = {} if rng.random() < 0.15 else {"auc": round(rng.random(), 3)}
        tags = {} if rng.random() < 0.3 else {"team": rng.choice(["ads", "search", "feed"])}
        status = rng.choice(["FINISHED", "FINISHED", "FAILED", "KILLED"])
        exp = rng.choice(["churn", "ctr"])
        with roost.start_run(experiment=exp, name=f"run-{i:02d}", params=params, tags=tags) as r:
            if metrics:
                r.log_metric("auc", 0.0, step=0)
                r.log_metric("auc", metrics["auc"], step=1)  # latest wins
        r.end(status) if False else roost.registry.store.default_store().update_run(r.id, status=status)
        truth.append({"name": f"run-{i:02d}", "p": params, "m": metrics, "t": tags, "status": status, "exp": exp})
    return truth


def M(r, k):
    return r["m"].get(k)


CASES = [
    (
        "params.lr = 0.01 AND (metrics.auc >= 0.9 OR tags.team = 'ads') AND NOT status = 'FAILED'",
        lambda r: (
            r["p"]["lr"] == 0.01
            and ((M(r, "auc") is not None and M(r, "auc") >= 0.9) or r["t"].get("team") == "ads")
            and not r["status"] == "FAILED"
        ),
    ),
    (
        "params.layers > 2 OR params.opt = 'sgd' AND metrics.auc < 0.5",
        lambda r: r["p"]["layers"] > 2 or (r["p"]["opt"] == "sgd" and M(r, "auc") is not None and M(r, "auc") < 0.5),
    ),
    (
        "(params.layers > 2 OR params.opt = 'sgd') AND metrics.auc < 0.5",
        lambda r: (r["p"]["layers"] > 2 or r["p"]["opt"] == "sgd") and M(r, "auc") is not None and M(r, "auc") < 0.5,
    ),
    ("NOT NOT params.bn = true", lambda r: r["p"]["bn"] is True),
    (
        "params.opt IN ('adam', 'adamw') AND tags.team NOT IN ('feed')",
        lambda r: r["p"]["opt"] in ("adam", "adamw") and r["t"].get("team") is not None and r["t"]["team"] != "feed",
    ),
    ("params.opt LIKE 'adam%'", lambda r: r["p"]["opt"].startswith("adam")),
    (
        "params.opt NOT LIKE 'adam%' and status != 'KILLED'",
        lambda r: not r["p"]["opt"].startswith("adam") and r["status"] != "KILLED",
    ),
    ("metrics.auc <= 0.25 or metrics.auc > 0.75", lambda r: M(r, "auc") is not None and not 0.25 < M(r, "auc") <= 0.75),
    ("params.layers IN (1, 3)", lambda r: r["p"]["layers"] in (1, 3)),
    ("experiment = 'ctr' AND name LIKE 'run-1%'", lambda r: r["exp"] == "ctr" and r["name"].startswith("run-1")),
    ("status = 'FINISHED' AND params.lr != 0.1", lambda r: r["status"] == "FINISHED" and r["p"]["lr"] != 0.1),
]


@pytest.mark.parametrize("expr,pred", CASES, ids=[c[0][:40] for c in CASES])
def test_filter_matches_reference(runs, expr, pred):
    got = {r["name"] for r in roost.search_runs(expr, limit=None)}
    want = {r["name"] for r in runs if pred(r)}
    assert got == want
    assert 0 < len(want) < len(runs) or expr.startswith("params.lr = 0.01 AND")


def test_precedence_is_not_vacuous(runs):
    a = {r["name"] for r in roost.search_runs(CASES[1][0], limit=None)}
    b = {r["name"] for r in roost.search_runs(CASES[2][0], limit=None)}
    assert a != b


def test_order_by_metric_and_limit(runs):
    got = roost.search_runs("metrics.auc >= 0", order_by="metrics.auc DESC", limit=5)
    want = sorted((r for r in runs if r["m"]), key=lambda r: -r["m"]["auc"])[:5]
    assert [g["metrics"]["auc"] for g in got] == [w["m"]["auc"] for w in want]
    asc = roost.search_runs(order_by="params.layers ASC, name DESC", limit=None)
    assert [r["params"]["layers"] for r in asc] == sorted(r["p"]["layers"] for r in runs)
    exp = roost.search_runs(experiment="ctr", limit=None)
    assert {r["name"] for r in exp} == {r["name"] for r in runs if r["exp"] == "ctr"}


@pytest.mark.parametrize(
    "expr,pos,needle",
    [
        ("params.lr = ", 13, "end of input"),
        ("params.lr == 0.1", 12, "'='"),
        ("metrics.auc > 0.5 AND", 22, "end of input"),
        ("(metrics.auc > 0.5", 19, "expected ')'"),
        ("params.lr = 0.1 params.x = 1", 17, "params.x"),
        ("params.opt IN ('a' 'b')", 20, "IN list"),
        ("status = 'A' $ 1", 14, "unexpected character"),
    ],
)
def test_malformed_filters_quote_token_and_position(ws, expr, pos, needle):
    with pytest.raises(FilterError) as e:
        roost.search_runs(expr)
    assert f"position {pos}" in e.value.message and needle in e.value.message


@pytest.mark.parametrize(
    "expr,needle",
    [
        ("metrics.auc = 'high'", "metrics are numbers"),
        ("metrics.auc LIKE 'a%'", "metrics are numbers"),
        ("tags.team = 3", "tags are strings"),
        ("params.opt LIKE 5", "LIKE needs"),
        ("statsu = 'FAILED'", "unknown field"),
        ("start_time > 'yesterday'", "ISO date"),
    ],
)
def test_type_errors(ws, expr, needle):
    with pytest.raises(FilterError) as e:
        roost.search_runs(expr)
    assert needle in e.value.message


def test_start_time_filter(runs):
    all_runs = roost.search_runs(order_by="start_time", limit=None)
    mid = all_runs[40]["start_time"].isoformat()
    later = roost.search_runs(f"start_time >= '{mid}'", limit=None)
    assert {r["run_id"] for r in later} == {r["run_id"] for r in all_runs[40:]}
