"""Client side of bench/server.py: the same workload, timed the same way, through each tool's own Python client.

Run as a script under the tool's venv: `python _server_clients.py {mlflow|roost} {main|worker} SPEC.json`.
Stdlib at the top: the MLflow side runs in the venv of _common.mlflow_python (stock `mlflow`, MLFLOW_TRACKING_URI +
MLFLOW_TRACKING_USERNAME/PASSWORD against the basic-auth app), the roost side in .venv (ROOST_SERVER +
ROOST_TOKEN). The last stdout line is the JSON result.

main: warm-up; (a) one run of `points` metric points (median of `repeats` runs; MLflow: log_batch, and once
the sync and async log_metric-per-point variants on `call_points` points); (b) `runs` runs with 3 params and
1 metric, `create_repeats` times (median); populate the rest of `data`, untimed; (c) search `data` with
`filter` and list all of it (median of `search_repeats`). worker: one of the concurrent clients of (d): set
up, then start when the file `go` appears (after every worker touched its `ready` file).
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any


def err(*a: object) -> None:
    """Progress on stderr (stdout carries the result)."""
    print(*a, file=sys.stderr, flush=True)


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """(seconds, result) of one call."""
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def med(fn: Callable[[], Any], n: int) -> tuple[float, list[float], Any]:
    """(median seconds, all seconds, last result) of n calls."""
    ts, out = [], None
    for _ in range(n):
        t, out = timed(fn)
        ts.append(t)
    return statistics.median(ts), ts, out


# ---------------------------------------------------------------- MLflow (stock client, basic auth)
class MlflowSide:
    """The workload through MlflowClient / the fluent API, as a user of an MLflow server writes it."""

    def __init__(self) -> None:
        import mlflow
        from mlflow.tracking import MlflowClient

        self.mlflow, self.client = mlflow, MlflowClient()

    def experiment(self, name: str) -> str:
        """The id of experiment `name`, created if missing."""
        return self.mlflow.set_experiment(name).experiment_id

    def log_batch(self, exp: str, points: int) -> str:
        """One run, all points in MlflowClient.log_batch (the client cuts it into the server's 1,000-metric pages)."""
        from mlflow.entities import Metric

        run = self.client.create_run(exp, run_name="log-batch")
        now = int(time.time() * 1000)
        ms = [Metric("loss", 1.0 / (i + 1), now, i) for i in range(points)]
        self.client.log_batch(run.info.run_id, metrics=ms)
        self.client.set_terminated(run.info.run_id)
        return run.info.run_id

    def log_calls(self, exp: str, points: int, synchronous: bool) -> str:
        """One run, one mlflow.log_metric call per point (synchronous=False: MLflow's async logging queue)."""
        with self.mlflow.start_run(experiment_id=exp, run_name="log-calls") as run:
            for i in range(points):
                self.mlflow.log_metric("loss", 1.0 / (i + 1), step=i, synchronous=synchronous)
            if not synchronous:  # end_run only hands the queue over ("not necessarily finished logging")
                self.mlflow.flush_async_logging()
        return run.info.run_id

    def ping(self) -> None:
        """One authenticated request (client set up, connection open)."""
        self.client.search_experiments(max_results=1)

    def stored(self, run_id: str) -> int:
        """Points of 'loss' the server holds for the run."""
        return len(self.client.get_metric_history(run_id, "loss"))

    def create(self, exp: str, r: dict) -> None:
        """A run with 3 params and 1 metric, ended: create_run, one log_batch, set_terminated."""
        from mlflow.entities import Metric, Param

        run = self.client.create_run(exp, run_name=r["name"])
        rid = run.info.run_id
        params = [Param(k, str(v)) for k, v in r["params"].items()]
        self.client.log_batch(rid, params=params, metrics=[Metric("auc", r["auc"], int(time.time() * 1000), 0)])
        self.client.set_terminated(rid)

    def search(self, exp: str, flt: str | None) -> list[str]:
        """Run names matching flt, every page (MlflowClient.search_runs)."""
        names, token = [], None
        while True:
            page = self.client.search_runs([exp], flt or "", max_results=1000, page_token=token)
            names += [x.info.run_name for x in page]
            token = page.token
            if not token:
                return names

    def train(self, exp: str, name: str, steps: int, keys: int, synchronous: bool) -> str:
        """A training loop: one mlflow.log_metrics call per step (synchronous=False: the async queue)."""
        with self.mlflow.start_run(experiment_id=exp, run_name=name) as run:
            for s in range(steps):
                self.mlflow.log_metrics({f"m{k}": s + k / 10 for k in range(keys)}, step=s, synchronous=synchronous)
            if not synchronous:
                self.mlflow.flush_async_logging()
        return run.info.run_id

    def stored_points(self, run_id: str, keys: int) -> int:
        """Points the server holds for the run, over its metric keys."""
        return sum(len(self.client.get_metric_history(run_id, f"m{k}")) for k in range(keys))


# ---------------------------------------------------------------- roost (its client; ROOST_SERVER + ROOST_TOKEN)
class RoostSide:
    """The same workload through roost's Python API (runs buffer points and flush them in batches)."""

    def __init__(self) -> None:
        import roost

        self.roost = roost

    def experiment(self, name: str) -> str:
        """roost names experiments in start_run (created on first use)."""
        return name

    def log_buffered(self, exp: str, points: int) -> str:
        """One run, one run.log_metric call per point; the `with` exit flushes and ends the run."""
        with self.roost.start_run(experiment=exp, name="log") as run:
            for i in range(points):
                run.log_metric("loss", 1.0 / (i + 1), step=i)
        return str(run.id)

    def ping(self) -> None:
        """One authenticated request (client set up, connection open)."""
        self.roost.search_runs(limit=1)

    def stored(self, run_id: str) -> int:
        """Points of 'loss' the server holds for the run."""
        from roost.registry.api import metric_history

        return len(metric_history(run_id, "loss"))

    def create(self, exp: str, r: dict) -> None:
        """A run with 3 params and 1 metric, ended."""
        with self.roost.start_run(experiment=exp, name=r["name"], params=r["params"]) as run:
            run.log_metric("auc", r["auc"])

    def search(self, exp: str, flt: str | None) -> list[str]:
        """Run names matching flt (roost.search_runs, all of them)."""
        return [r["name"] for r in self.roost.search_runs(filter=flt, experiment=exp, limit=None)]

    def train(self, exp: str, name: str, steps: int, keys: int, synchronous: bool) -> str:
        """A training loop: one run.log_metrics call per step."""
        with self.roost.start_run(experiment=exp, name=name) as run:
            for s in range(steps):
                run.log_metrics({f"m{k}": s + k / 10 for k in range(keys)}, step=s)
        return str(run.id)

    def stored_points(self, run_id: str, keys: int) -> int:
        """Points the server holds for the run, over its metric keys."""
        from roost.registry.api import metric_history

        return sum(len(metric_history(run_id, f"m{k}")) for k in range(keys))


def main_phase(side: Any, spec: dict) -> dict:
    """(a), (b), populate, (c) for one side."""
    out: dict[str, Any] = {"side": spec["side"]}
    data, n = spec["data"], spec["points"]
    warm = side.experiment("warmup")  # outside every timed window: first connection, server-side caches
    side.create(warm, {"name": "warmup", "params": {"p": 1}, "auc": 0.5})
    side.search(warm, spec["filter"])

    exp = side.experiment("log")
    variants: dict[str, Callable[[], str]]
    if spec["side"] == "mlflow":
        variants = {
            "log_batch": lambda: side.log_batch(exp, n),
            "log_async": lambda: side.log_calls(exp, spec["call_points"], synchronous=False),
            "log_sync": lambda: side.log_calls(exp, spec["call_points"], synchronous=True),
        }
    else:
        variants = {"log": lambda: side.log_buffered(exp, n)}
    for key, fn in variants.items():
        reps = spec["repeats"] if key in ("log", "log_batch") else 1  # MLflow's per-call variants: once (minutes)
        out[key + "_s"], out[key + "_all"], rid = med(fn, reps)
        out[key + "_stored"] = side.stored(rid)
        err(f"{spec['side']} (a) {key}: {out[key + '_s']:.3f} s median of {reps}, {out[key + '_stored']} stored")

    exp = side.experiment("search")
    runs, reps = spec["runs"], spec["create_repeats"]
    ts = []
    for k in range(reps):
        t, _ = timed(lambda: [side.create(exp, r) for r in data[k * runs : (k + 1) * runs]])
        ts.append(t)
        err(f"{spec['side']} (b) create {runs} runs: {t:.2f} s")
    out["create_s"], out["create_all"] = statistics.median(ts), ts
    rest = data[reps * runs :]
    with ThreadPoolExecutor(4) as pool:  # untimed: only fills the store for (c)
        out["populate_s"], _ = timed(lambda: list(pool.map(lambda r: side.create(exp, r), rest)))
    out["search_s"], _, names = med(lambda: side.search(exp, spec["filter"]), spec["search_repeats"])
    out["search_names"] = sorted(names)
    out["list_s"], _, every = med(lambda: side.search(exp, None), spec["search_repeats"])
    out["total_runs"] = len(every)
    err(f"{spec['side']} (c) search {out['search_s'] * 1e3:.1f} ms ({len(names)} hits), list {len(every)} runs")
    return out


def worker_phase(side: Any, spec: dict) -> dict:
    """One concurrent client of (d): set up, wait for the common start, log a training loop, report its own window."""
    exp = side.experiment("concurrent")
    side.ping()  # client set up and connected before the start line
    from pathlib import Path

    Path(spec["ready"]).touch()
    go = Path(spec["go"])
    while not go.exists():
        time.sleep(0.002)
    t0 = time.time()
    rid = side.train(exp, spec["name"], spec["steps"], spec["keys"], spec["synchronous"])
    t1 = time.time()
    return {"start": t0, "end": t1, "run_id": rid, "stored": side.stored_points(rid, spec["keys"])}


def main() -> None:
    """Entry point: SIDE PHASE SPEC.json."""
    which, phase, path = sys.argv[1], sys.argv[2], sys.argv[3]
    spec = json.load(open(path))
    spec["side"] = which
    side = MlflowSide() if which == "mlflow" else RoostSide()
    out = main_phase(side, spec) if phase == "main" else worker_phase(side, spec)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
