"""Runs table columns: headline metrics first, varying params next, constant/empty hidden; nesting; CLI --columns."""

from __future__ import annotations

import json

import pytest

import roost
from roost.errors import RoostError
from roost.registry.columns import Column, choose_columns, nest_runs, parse_columns


def _run(rid, params, metrics, task="binary", parent=None, name=None):
    return {
        "run_id": rid,
        "name": name or rid,
        "status": "FINISHED",
        "start_time": None,
        "parent_run_id": parent,
        "params": params,
        "metrics": metrics,
        "tags": {"roost.task": task} if task else {},
    }


BINARY = [
    _run(
        "a",
        {"lr": 0.1, "layers": 2, "dropout": None, "fingerprint": "f" * 64},
        {"loss": 0.5, "test_pr_auc": 0.4, "val_roc_auc": 0.71, "test_roc_auc": 0.7, "best_epoch": 3.0},
    ),
    _run(
        "b",
        {"lr": 0.01, "layers": 2, "dropout": None, "fingerprint": "f" * 64},
        {"loss": 0.4, "test_pr_auc": 0.5, "val_roc_auc": 0.81, "test_roc_auc": 0.8, "best_epoch": 3.0},
    ),
]


def test_headline_metrics_first_then_varying_params_constant_and_null_hidden():
    cols = choose_columns(BINARY)
    # written by hand from the rule: task binary -> roc_auc (test, val), pr_auc; then params that vary; then metrics
    assert [c.field for c in cols] == [
        "metrics.test_roc_auc",
        "metrics.val_roc_auc",
        "metrics.test_pr_auc",
        "params.lr",
        "metrics.loss",
    ]


def test_regression_headline_and_a_single_run_keeps_its_params():
    runs = [_run("r", {"alpha": 1.0, "none": None}, {"test_r2": 0.3, "test_rmse": 2.0, "val_rmse": 2.1}, "regression")]
    assert [c.field for c in choose_columns(runs)] == [
        "metrics.test_rmse",
        "metrics.val_rmse",
        "metrics.test_r2",
        "params.alpha",
    ]


def test_a_run_without_the_param_does_not_make_it_vary():
    runs = [_run("parent", {}, {}), _run("a", {"lr": 0.1, "wd": 0.5}, {}), _run("b", {"lr": 0.2, "wd": 0.5}, {})]
    assert [c.field for c in choose_columns(runs)] == ["params.lr"]


def test_parse_columns_bare_and_prefixed_names_and_unknown_name_hint():
    assert parse_columns("test_roc_auc, params.lr,tags.roost.task", BINARY) == [
        Column("metric", "test_roc_auc"),
        Column("param", "lr"),
        Column("tag", "roost.task"),
    ]
    with pytest.raises(RoostError) as e:
        parse_columns("test_roc_acu", BINARY)
    assert "test_roc_auc" in (e.value.hint or "")


def test_nest_runs_puts_children_under_their_parent():
    runs = [
        _run("c1", {}, {}, parent="p"),
        _run("x", {}, {}),
        _run("p", {}, {}),
        _run("c2", {}, {}, parent="p"),
        _run("g", {}, {}, parent="c2"),
        _run("orphan", {}, {}, parent="gone"),
    ]
    got = [(r["run_id"], depth, n) for r, depth, n in nest_runs(runs)]
    assert got == [("x", 0, 0), ("p", 0, 2), ("c1", 1, 0), ("c2", 1, 1), ("g", 2, 0), ("orphan", 0, 0)]
    cyc = [_run("a", {}, {}, parent="b"), _run("b", {}, {}, parent="a")]
    assert sorted(r["run_id"] for r, _, _ in nest_runs(cyc)) == ["a", "b"]


def _seed_cli():
    ids = []
    for lr, auc in ((0.1, 0.7), (0.01, 0.9)):
        with roost.start_run(experiment="cols", params={"lr": lr, "seed": 7, "zzz_fingerprint": "f" * 64}) as r:
            r.set_tag("roost.task", "binary")
            r.log_metrics({"test_roc_auc": auc, "n_rows": 18830.0})
            ids.append(r.id)
    params = {"lr": 0.5, "seed": 7, "zzz_fingerprint": "f" * 64}
    with roost.start_run(experiment="cols", name="trial-0", parent_run_id=ids[0], params=params) as r:
        r.log_metrics({"test_roc_auc": 0.5, "n_rows": 18830.0})
    return ids


def _header(out: str) -> list[str]:
    line = next(ln for ln in out.splitlines() if "run" in ln and "status" in ln)
    return [c.strip() for c in line.strip("┃│ ").replace("┃", "│").split("│")]


def test_cli_runs_list_default_and_columns(ws, cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")
    _seed_cli()
    code, out, _ = cli("runs", "list", "--experiment", "cols")
    assert code == 0
    assert _header(out) == ["run", "name", "status", "started", "test_roc_auc", "lr"]
    assert "└ trial-0" in out and "18,830" not in out  # n_rows is constant over the listed runs: hidden
    code, out, _ = cli("runs", "list", "--experiment", "cols", "--columns", "params.seed,n_rows")
    assert code == 0 and _header(out) == ["run", "name", "status", "started", "seed", "n_rows"]
    assert "18,830" in out and "1.883e+04" not in out
    code, _, err = cli("runs", "list", "--experiment", "cols", "--columns", "metrics_auc")
    assert code == 2 and "column 'metrics_auc'" in err
    code, out, _ = cli("runs", "list", "--experiment", "cols", "--json")
    assert code == 0 and len(json.loads(out)) == 3


def test_cli_table_fits_the_width():
    from roost.cli.runs_table import runs_rows

    heads, rows, dropped = runs_rows(BINARY, width=60)
    assert heads[:4] == ["run", "name", "status", "started"] and dropped >= 1
    assert all(len(r) == len(heads) for r in rows)
    assert heads[4:] == ["test_roc_auc", "val_roc_auc", "test_pr_auc", "lr", "loss"][: len(heads) - 4]
