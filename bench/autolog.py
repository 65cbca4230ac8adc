"""Autolog overhead: a 10k-row fit of scikit-learn, LightGBM and XGBoost with no logging, with roost.autolog() and
with mlflow.autolog() (MLflow 3.17.2 in .bench/mlflow_autolog, created if missing, with the same library versions:
_common.mlflow_autolog_python).

Each tool runs in its own process: per library it alternates plain fits and autologged fits (autolog switched on and
off between them: disable=True) and keeps the median of each; overhead = autologged - plain, measured three ways:

- wall, fit returns: what the caller of `fit` waits (roost packages the model and computes the training metrics on a
  background thread after `fit` returns);
- wall, run complete: until everything is logged (roost: its background work done, as before any read of the run or
  the interpreter's exit; MLflow: `flush_async_logging()`);
- CPU: the process's CPU time over the fit and that completion (all threads): the work autolog adds, wherever it ran;
- roost's own work on the caller's thread: the thread CPU of each autologged call minus that of the library's fit
  inside it (the run's start, `before`, `after`, the hand-over to the background; the boosting libraries'
  per-iteration callback, one list append, runs inside the fit and is not in it). A single-threaded fit of 0.5-1.2 s
  varies by tens of ms from one run to the next on a small VM, which the wall figures carry (their resolution is a
  few %); this one does not.

Each is the median of the autologged fits minus the median of the plain ones; "paired" is the median over repeats of
(autologged fit − the plain fit just before it), which cancels slow drift of the machine between repeats.

roost runs three ways: its default (package="deferred": the native model is logged, the ONNX package is built on the
model's first load, timed separately as "first roost.load_model"), package="now" (the package built and checked on
the background thread after each fit) and log_models=False.

Both log to SQLite in a temporary folder; both with their defaults (the model logged: roost saves the native model
and builds its checked ONNX package on first load, MLflow pickles it). Targets (issue 38): roost < 2 % over no
logging; MLflow's overhead / roost's >= 10. Prints `ratio: X` last (MLflow's total wall overhead until the runs are
complete / roost's).

    .venv/bin/python bench/autolog.py [--repeats 5] [--rows 10000] [--skip-mlflow]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from importlib.metadata import version
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, machine, mlflow_autolog_python, run_driver

os.environ.update({"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true", "GIT_PYTHON_REFRESH": "quiet"})

DRIVER = r"""
import json, os, statistics, sys, tempfile, time, warnings
warnings.filterwarnings("ignore")
import logging
logging.disable(logging.WARNING)
tool, rows, repeats, extra = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), json.loads(sys.argv[4])
import numpy as np
import lightgbm as lgb
import xgboost as xgb
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier

X, y = make_classification(n_samples=rows + rows // 5, n_features=20, n_informative=10, random_state=0)
Xt, yt, Xv, yv = X[:rows], y[:rows], X[rows:], y[rows:]
FITS = {
    "sklearn": lambda: RandomForestClassifier(n_estimators=50, max_depth=10, random_state=0, n_jobs=1).fit(Xt, yt),
    "lightgbm": lambda: lgb.LGBMClassifier(n_estimators=200, num_leaves=31, verbose=-1, n_jobs=1).fit(
        Xt, yt, eval_set=[(Xv, yv)]),
    "xgboost": lambda: xgb.XGBClassifier(n_estimators=200, max_depth=6, n_jobs=1).fit(
        Xt, yt, eval_set=[(Xv, yv)], verbose=False),
}
tmp = tempfile.mkdtemp()
os.chdir(tmp)
if tool == "roost":
    import roost
    from roost.registry import deferred
    roost.init(os.path.join(tmp, "ws"))
    roost.use_workspace(os.path.join(tmp, "ws"))
    on = lambda: roost.autolog(silent=True, **extra)
    off = lambda: roost.autolog(disable=True)
    settle = deferred.wait
    count = lambda: len(roost.search_runs())
    # autolog's own work on the caller's thread: the thread CPU of each autologged call minus that of the fit inside
    # it (the run's start, `before`, `after`, the hand-over to the background) — free of the fit's own variance
    from roost.autologging import core as autolog_core
    autologged, own, depth = autolog_core.autologged, [], [0]
    def timed_autologged(flavor, name, fit, before, after, key=None):
        if depth[0]:  # a nested call (LGBMClassifier.fit calling LGBMModel.fit): inside the outer one's fit
            return autologged(flavor, name, fit, before, after, key)
        inner = []
        def timed_fit():
            c = time.thread_time()
            try:
                return fit()
            finally:
                inner.append(time.thread_time() - c)
        depth[0] += 1
        c = time.thread_time()
        try:
            return autologged(flavor, name, timed_fit, before, after, key)
        finally:
            depth[0] -= 1
            own.append(time.thread_time() - c - sum(inner))
    autolog_core.autologged = timed_autologged
else:
    import mlflow
    mlflow.set_tracking_uri("sqlite:///" + os.path.join(tmp, "mlflow.db"))
    mlflow.set_experiment("autolog")
    on = lambda: mlflow.autolog(silent=True, **extra)
    off = lambda: mlflow.autolog(disable=True)
    settle = getattr(mlflow, "flush_async_logging", lambda: None)
    count = lambda: len(mlflow.search_runs(search_all_experiments=True))
on(); off()  # imports and first-call setup out of the timings
out = {}
med = statistics.median
for name, fit in FITS.items():
    fit(); on(); fit(); settle(); off()  # warm-up, plain and autologged: first-use imports out of the timings
    plain, plain_cpu, logged, done, logged_cpu = [], [], [], [], []
    for _ in range(repeats):
        c = time.process_time(); t = time.perf_counter(); fit()
        plain.append(time.perf_counter() - t); plain_cpu.append(time.process_time() - c)
        on()
        c = time.process_time(); t = time.perf_counter(); fit()
        logged.append(time.perf_counter() - t)
        settle()
        done.append(time.perf_counter() - t); logged_cpu.append(time.process_time() - c)
        off()
    out[name] = {"plain_s": med(plain), "autolog_s": med(logged), "complete_s": med(done),
                 "plain_cpu_s": med(plain_cpu), "autolog_cpu_s": med(logged_cpu),
                 # each autologged fit against the plain fit just before it: drift between repeats cancels
                 "paired_fit_s": med([a - b for a, b in zip(logged, plain)]),
                 "paired_complete_s": med([a - b for a, b in zip(done, plain)])}
    if tool == "roost":
        out[name]["caller_own_s"] = med(own[-repeats:])
        own.clear()
    if tool == "roost" and extra.get("log_models", True):  # what the first load of the last run's model costs
        last = roost.search_runs(order_by=["start_time DESC"])[0]["run_id"]
        c = time.process_time(); t = time.perf_counter(); roost.load_model(f"runs:/{last}/model")
        out[name].update(first_load_s=time.perf_counter() - t, first_load_cpu_s=time.process_time() - c)
    print(name, out[name], file=sys.stderr, flush=True)
out["runs"] = count()
print(json.dumps(out))
"""

LIBS = ("sklearn", "lightgbm", "xgboost")


def measure(python: Path | str, tool: str, rows: int, repeats: int, extra: dict, env: dict | None = None) -> dict:
    """The driver's figures for one tool (a process of its own)."""
    return run_driver(python, DRIVER, [tool, str(rows), str(repeats), json.dumps(extra)], REPO, env=env, timeout=3600)


def report(label: str, res: dict) -> float:
    """Print one tool's rows (wall when fit returns, wall until the run is complete, CPU); returns its total wall
    overhead until complete, in seconds."""
    total = 0.0
    for lib in LIBS:
        r = res[lib]
        p, a, d = r["plain_s"], r["autolog_s"], r["complete_s"]
        pc, ac = r["plain_cpu_s"], r["autolog_cpu_s"]
        total += d - p
        cpu = f"{ac - pc:+6.3f} s ({ac / max(pc, 1e-9) - 1:+6.1%})"
        print(
            f"{label:<32} {lib:<9} plain {p:6.3f} s | fit returns {a - p:+6.3f} s ({a / p - 1:+6.1%})"
            f" | run complete {d - p:+6.3f} s ({d / p - 1:+6.1%}) | CPU {cpu}"
        )
        if "caller_own_s" in r:
            own = r["caller_own_s"]
            print(
                f"{'':<32} {'':<9} autolog's own work on the caller's thread (thread CPU, the fit's own taken out):"
                f" {own * 1000:.2f} ms ({own / pc:+.2%} of the plain fit's CPU)"
            )
        if "paired_fit_s" in r:
            pf, pd_ = r["paired_fit_s"], r["paired_complete_s"]
            print(
                f"{'':<32} {'':<9} paired (median of each autologged fit − the plain fit before it): fit returns"
                f" {pf * 1000:+.1f} ms ({pf / p:+.1%}), run complete {pd_ * 1000:+.1f} ms ({pd_ / p:+.1%})"
            )
    return total


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--skip-mlflow", action="store_true")
    args = ap.parse_args()
    print(machine())
    env = {"PYTHONPATH": str(REPO / "src")}
    roost_res = measure(sys.executable, "roost", args.rows, args.repeats, {}, env)
    now = measure(sys.executable, "roost", args.rows, args.repeats, {"package": "now"}, env)
    no_models = measure(sys.executable, "roost", args.rows, args.repeats, {"log_models": False}, env)
    roost_total = report("roost.autolog()", roost_res)
    report('roost.autolog(package="now")', now)
    report("roost.autolog(log_models=False)", no_models)
    for label, res in (("deferred", roost_res), ("now", now)):
        print(
            f"first roost.load_model of the run ({label}): "
            + ", ".join(
                f"{lib} {res[lib]['first_load_s'] * 1000:.0f} ms ({res[lib]['first_load_cpu_s'] * 1000:.0f} ms CPU)"
                for lib in LIBS
            )
        )
    if args.skip_mlflow:
        return
    py = mlflow_autolog_python()  # the libraries at the versions of roost's .venv
    pins = {"scikit-learn": "1.9.1", "lightgbm": "4.7.0", "xgboost": "3.2.0"}
    mismatch = [f"{m}=={v}" for m, v in pins.items() if version(m) != v]
    if mismatch:
        print(f"note: roost's .venv has other versions than {mismatch}", file=sys.stderr)
    mlflow_res = measure(py, "mlflow", args.rows, args.repeats, {})
    mlflow_total = report("mlflow.autolog()", mlflow_res)
    print(f"total wall overhead until the runs are complete: roost {roost_total:.3f} s, MLflow {mlflow_total:.3f} s")
    print(f"ratio: {mlflow_total / max(roost_total, 1e-3):.1f}")


if __name__ == "__main__":
    main()
