"""`roost train`'s LightGBM export (LightGBMModel.export_onnx), by step: conversion (the booster's trees to an ONNX
TreeEnsemble), graph merge (raw-column preprocessing joined in front), check (ONNX checker, the parity session
against the booster) and save — through onnxmltools and through roost's own numpy build (model_import.fasttrees).

Models: LightGBMModel on a synthetic table (numeric columns with NaN, two categorical text columns the booster
splits natively), binary / multiclass (10 classes: 10 trees a round) / regression, a small and a large number of
rounds (no early stopping, so the rounds are exact). Each export is repeated and the median kept; both paths run in
the same process, one after the other, so they see the same load. CPU seconds are the process's (all threads).

Real tables (`--tables computers,digits`, from roost's suite): auto's `lightgbm` candidate as auto fits it on 80 %
of the rows (small-table settings, up to 10,000 rounds, early stopping on the other 20 %): computers stops at
thousands of rounds, digits has 10 trees a round.

    .venv/bin/python bench/lgbm_export.py [--rows 5000] [--rounds 100,3000] [--multiclass-rounds 100,500] [--repeats 3]
        [--tables computers,digits] [--tasks binary,multiclass,regression | --tasks none]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, machine

sys.path.insert(0, str(REPO / "src"))

STEPS = ("conversion", "merge", "check", "save")


def table(task: str, rows: int, seed: int = 0) -> tuple[Any, Any]:
    """(X, y): 8 numeric columns (10 % NaN in two), two categorical text columns that drive the label."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    X = pd.DataFrame({f"x{i}": rng.normal(size=rows).astype(np.float32) for i in range(8)})
    for c in ("x1", "x5"):
        X.loc[rng.random(rows) < 0.1, c] = np.nan
    X["color"] = rng.choice(["red", "green", "blue", "grey", "black"], size=rows)
    X["size"] = rng.choice(["s", "m", "l"], size=rows)
    score = X["x0"].fillna(0) + 0.5 * X["x1"].fillna(-1) + (X["color"] == "red") - 0.7 * (X["size"] == "l")
    score = score + 0.3 * rng.normal(size=rows)
    if task == "regression":
        return X, pd.Series(score * 10.0, name="y")
    if task == "binary":
        return X, pd.Series((score > 0.3).astype(int), name="y")
    return X, pd.Series(np.digitize(score, np.quantile(score, np.linspace(0.1, 0.9, 9))), name="y")


class Timer:
    """Wall seconds spent in wrapped functions, by step."""

    def __init__(self) -> None:
        self.spent = dict.fromkeys(STEPS, 0.0)

    def wrap(self, owner: Any, name: str, step: str) -> Callable[[], None]:
        """Patch owner.name to add its wall time to `step`; returns the undo."""
        fn = getattr(owner, name)

        def timed(*a: Any, **k: Any) -> Any:
            t = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                self.spent[step] += time.perf_counter() - t

        setattr(owner, name, timed)
        return lambda: setattr(owner, name, fn)


@contextlib.contextmanager
def instrumented(path: str) -> Iterator[Timer]:
    """Time the export's steps; path "onnxmltools" makes roost's own tree build decline (its fallback)."""
    import onnx
    import onnxmltools

    import roost.training.export as export
    import roost.training.onnx_graph as onnx_graph

    timer = Timer()
    undo = [
        timer.wrap(onnxmltools, "convert_lightgbm", "conversion"),
        timer.wrap(onnx_graph, "attach_matrix", "merge"),
        timer.wrap(onnx_graph, "finalize", "check"),
        timer.wrap(export, "parity", "check"),
        timer.wrap(onnx, "save_model", "save"),
    ]
    try:
        import roost.model_import.fasttrees as fasttrees
    except ImportError:  # before roost train used it
        fasttrees = None
    if fasttrees is not None:
        if path == "onnxmltools":
            real = fasttrees.lightgbm_graph
            fasttrees.lightgbm_graph = lambda *a, **k: None
            undo.append(lambda: setattr(fasttrees, "lightgbm_graph", real))
        else:
            undo.append(timer.wrap(fasttrees, "lightgbm_graph", "conversion"))
    try:
        yield timer
    finally:
        for u in reversed(undo):
            u()


def export_once(model: Any, sample: Any, path: str) -> tuple[dict[str, float], float, float, int]:
    """(seconds by step, total wall, total CPU, model.onnx bytes) of one export_onnx."""
    with tempfile.TemporaryDirectory() as tmp, instrumented(path) as timer:
        w, c = time.perf_counter(), time.process_time()
        diff = model.export_onnx(Path(tmp), sample)
        wall, cpu = time.perf_counter() - w, time.process_time() - c
        size = (Path(tmp) / "model.onnx").stat().st_size
    assert diff < 1e-4, f"parity {diff}"
    steps = dict(timer.spent)
    steps["other"] = max(0.0, wall - sum(timer.spent.values()))
    return steps, wall, cpu, size


def real_table(name: str) -> tuple[str, Any, Any]:
    """(name, auto's `lightgbm` candidate fitted on 80 % of the suite table, its feature rows)."""
    from roost.datasets.suite import LABEL, SUITES, load_table
    from roost.training.lgbm import LightGBMModel, candidate_params

    task = next(task for task, tables in SUITES.items() if name in tables)
    df = load_table(name).sample(frac=1.0, random_state=0).reset_index(drop=True)
    X, y = df.drop(columns=[LABEL]), df[LABEL]
    cut = int(0.8 * len(df))
    params = {**candidate_params(cut, X.shape[1]), "n_jobs": 2, "log_every": 10**6}
    model = LightGBMModel(task=task, **params).fit(X.iloc[:cut], y.iloc[:cut], X.iloc[cut:], y.iloc[cut:])
    return name, model, X


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=5000)
    ap.add_argument("--rounds", default="100,3000", help="binary and regression rounds")
    ap.add_argument("--multiclass-rounds", default="100,500", help="multiclass rounds (10 trees each)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--tasks", default="binary,multiclass,regression")
    ap.add_argument("--paths", default="onnxmltools,fast")
    ap.add_argument("--tables", default="", help="real tables of roost's suite, e.g. computers,digits")
    args = ap.parse_args()
    import warnings

    warnings.filterwarnings("ignore")
    from roost.training.lgbm import LightGBMModel

    print(f"# {machine()}; load {os.getloadavg()[0]:.1f}", flush=True)
    print(
        "task        rounds trees  path         conversion  merge   check   save    other   total  CPU     MB",
        flush=True,
    )
    fitted = []
    for task in [t for t in args.tasks.split(",") if t != "none"]:
        X, y = table(task, args.rows)
        rounds = args.multiclass_rounds if task == "multiclass" else args.rounds
        for r in (int(v) for v in rounds.split(",")):
            params = {"n_estimators": r, "early_stopping_rounds": 0, "n_jobs": 2, "log_every": 10**6}
            fitted.append((task, LightGBMModel(task=task, **params).fit(X, y), X))
    for name in [t for t in args.tables.split(",") if t]:
        fitted.append(real_table(name))
    for task, model, X in fitted:
        trees = model.model_.booster_.num_trees()
        for path in args.paths.split(","):
            runs = [export_once(model, X.head(200), path) for _ in range(args.repeats)]
            med = {k: statistics.median(run[0][k] for run in runs) for k in (*STEPS, "other")}
            wall = statistics.median(run[1] for run in runs)
            cpu = statistics.median(run[2] for run in runs)
            mb = runs[0][3] / 1e6
            cells = "  ".join(f"{med[k]:6.3f}" for k in (*STEPS, "other"))
            r = model.best_iteration_
            print(f"{task:11s} {r:6d} {trees:6d} {path:12s} {cells}  {wall:6.3f} {cpu:6.3f} {mb:6.1f}", flush=True)
    print(f"# load {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
