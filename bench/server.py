"""Team server benchmark (issue 31): `roost server` vs `mlflow server --app-name basic-auth` (MLflow 3.17.2), over HTTP.

Both servers on 127.0.0.1, same machine, `--workers 2` each, measured one after the other; first both on SQLite
(a file per server), then both on PostgreSQL (one throwaway cluster started here with initdb/pg_ctl, a database
per server; skipped with the reason printed when it cannot start). Each side uses its natural client as a user
would: MLflow the stock `mlflow` client from .bench/mlflow (MLFLOW_TRACKING_USERNAME/PASSWORD against the auth
app, whose admin is bootstrapped from its config file as MLflow's docs say); roost its Python API with
ROOST_SERVER + ROOST_TOKEN (an admin from `roost users add --admin`, a token from `roost tokens create`).
The MLflow server runs from .bench/mlflow_server (mlflow[auth]==3.17.2, and the psycopg driver its PostgreSQL store
needs). MLflow's auth app gets its opt-in credential cache (auth_cache_ttl_seconds=60, "~3x throughput" by its
own ini) unless --mlflow-auth-cache 0: the faster MLflow configuration is the one compared against.

  (a) log 10,000 metric points in one run, until they are stored and the run ended (median of --repeats runs).
      MLflow: MlflowClient.log_batch (its fastest way); and once, on --call-points points scaled to 10,000,
      one mlflow.log_metric call per point, synchronous and with synchronous=False (its async queue, then
      mlflow.flush_async_logging); roost: run.log_metric per point (the run's buffered flusher).
      Targets compare with MLflow's fastest.
  (b) create 500 runs with 3 params and 1 metric each, ended (median of 3 batches; MLflow: create_run,
      log_batch, set_terminated; roost: start_run(params=...) + log_metric).
  (c) search 2,000 runs: `params.lr = '0.01' and metrics.auc >= 0.9` (hits must agree) and list all 2,000.
  (d) 8 concurrent client processes, each one run of a 250-step loop logging 4 metrics per step (MLflow:
      mlflow.log_metrics per step, synchronous (median of --conc-repeats) and async (once); roost:
      run.log_metrics per step, median of --conc-repeats); wall time from the first start to the last end,
      every point checked stored (an MLflow async variant that loses points is reported, not compared).

On PostgreSQL roost's run tracking commits with synchronous_commit=off (its default, SQLite WAL+NORMAL's guarantee:
docs/registry.md); MLflow's commits wait for the WAL flush. `ROOST_PG_DURABLE_TRACKING=1 bench/server.py` runs roost
with every commit flushed, as MLflow's are (the line after `uptime:` says which).

Targets (quiet machine): (a) and (d) >= 10x MLflow, (b) >= 5x, (c) no slower. Last line: `ratio: X` =
MLflow's fastest / roost for (a), the lowest over the backends measured.

    .venv/bin/python bench/server.py [--backends sqlite,postgresql] [--sides roost,mlflow] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _server_sides as server_sides
from _common import fmt_s, machine, mlflow_python, mlflow_server_python

from registry import FILTER, make_data

CLIENTS = Path(__file__).resolve().parent / "_server_clients.py"


def run_client(py: Path, side: str, spec: dict, cwd: Path, env: dict, timeout: float = 3600) -> dict:
    """Run the main phase of _server_clients.py for `side`; its last stdout line (JSON) as a dict."""
    path = cwd / f"spec-{side}.json"
    path.write_text(json.dumps(spec))
    t0 = time.perf_counter()
    proc = subprocess.run(
        [str(py), str(CLIENTS), side, "main", str(path)], cwd=cwd, env=env, stdout=subprocess.PIPE, text=True,
        timeout=timeout,
    )  # fmt: skip
    if proc.returncode != 0:
        raise SystemExit(f"{side} client failed (exit {proc.returncode})")
    print(f"  [{side} client done in {time.perf_counter() - t0:.1f} s]", flush=True)
    return json.loads([ln for ln in proc.stdout.splitlines() if ln.strip()][-1])


def run_concurrent(
    py: Path, side: str, n: int, spec: dict, cwd: Path, env: dict, tag: str, hang_s: float | None = None
) -> dict:
    """(d): n client processes set up, then start together; wall from the first start to the last end.

    hang_s: a variant allowed to hang (MLflow's async queue, which never returned in two quiet runs of 2026-12-06):
    its clients are killed after hang_s and the figure is reported as hung instead of ending the bench."""
    d = Path(tempfile.mkdtemp(prefix=f"conc-{side}-", dir=cwd))
    procs = []
    for i in range(n):
        s = {**spec, "name": f"{tag}-{i}", "ready": str(d / f"ready-{i}"), "go": str(d / "go")}
        (d / f"spec-{i}.json").write_text(json.dumps(s))
        procs.append(
            subprocess.Popen(
                [str(py), str(CLIENTS), side, "worker", str(d / f"spec-{i}.json")],
                cwd=cwd,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )  # fmt: skip
        )
    t0 = time.time()
    deadline = t0 + 300
    while not all((d / f"ready-{i}").exists() for i in range(n)):
        if time.time() > deadline or any(p.poll() not in (None, 0) for p in procs):
            for p in procs:
                p.kill()
            raise SystemExit(f"{side} concurrent clients did not all get ready: {procs[0].communicate()[1][-2000:]}")
        time.sleep(0.05)
    (d / "go").touch()
    print(f"  [{n} {side} clients ready in {time.time() - t0:.1f} s]", flush=True)
    outs = []
    for p in procs:
        try:
            so, se = p.communicate(timeout=hang_s or 1800)
        except subprocess.TimeoutExpired:
            if hang_s is None:
                raise
            for q in procs:
                q.kill()
            print(f"  {side} clients HUNG: no answer {hang_s:.0f} s after the start; killed", flush=True)
            return {"wall": float("inf"), "stored": 0, "hung": True}
        if p.returncode != 0:
            sys.stderr.write(se[-3000:])
            raise SystemExit(f"{side} concurrent client failed (exit {p.returncode})")
        outs.append(json.loads(so.strip().splitlines()[-1]))
        if outs[-1]["stored"] != spec["steps"] * spec["keys"]:
            errors = [ln for ln in se.splitlines() if "ERROR" in ln or "Error" in ln] or ["(no error logged)"]
            print(f"  a {side} client stored {outs[-1]['stored']} of {spec['steps'] * spec['keys']} points; "
                  f"{len(errors)} errors logged, the last: {errors[-1][-300:]}", flush=True)  # fmt: skip
    shutil.rmtree(d, ignore_errors=True)
    wall = max(o["end"] for o in outs) - min(o["start"] for o in outs)
    return {"wall": wall, "stored": sum(o["stored"] for o in outs)}


def measure_side(side: str, py: Path, url_env: dict, a: argparse.Namespace, data: list, work: Path) -> dict:
    """Every figure for one side against its running server."""
    work.mkdir(parents=True, exist_ok=True)
    env = server_sides.client_env(url_env)
    spec = {
        "data": data,
        "points": a.points,
        "call_points": a.call_points,
        "runs": a.runs,
        "create_repeats": a.create_repeats,
        "repeats": a.repeats,
        "search_repeats": a.search_repeats,
        "filter": FILTER,
    }
    out = {} if a.skip_main else run_client(py, side, spec, work, env)
    variants = [("conc", True)] + ([("conc_async", False)] if side == "mlflow" else [])
    for key, sync in variants:
        walls, stored = [], []
        for k in range(a.conc_repeats if sync else 1):
            cs = {"steps": a.steps, "keys": a.keys, "synchronous": sync}
            r = run_concurrent(py, side, a.clients, cs, work, env, f"{key}-{k}", None if sync else a.hang_s)
            if r.get("hung"):
                out[key + "_hung"] = True
            want = a.clients * a.steps * a.keys
            print(f"  {side} (d) {key}: {a.clients} clients, {r['stored']:,} of {want:,} points stored in "
                  f"{r['wall']:.2f} s", flush=True)  # fmt: skip
            if r["stored"] != want and (side == "roost" or sync):
                raise SystemExit(f"{side} (d) {key}: {r['stored']} of {want} points stored")
            walls.append(r["wall"])
            stored.append(r["stored"])
        # MLflow's async queue drops a batch the server refuses (it only logs the error): kept, and reported
        out[key + "_s"], out[key + "_all"], out[key + "_stored"] = statistics.median(walls), walls, stored
    return out


def report(backend: str, r: dict | None, m: dict | None, a: argparse.Namespace) -> float | None:
    """Print one backend's table and targets; returns MLflow's fastest / roost for (a)."""
    if not (r or m):
        return None
    print(f"\n== {backend}: roost server vs MLflow server (basic-auth), --workers {a.workers} each")
    if m:
        print(
            f"stored points (a): MLflow log_batch {m['log_batch_stored']}, async {m['log_async_stored']}, "
            f"sync {m['log_sync_stored']} of {a.call_points}; searched runs: MLflow {m['total_runs']}"
            + (f", roost {r['log_stored']} points, {r['total_runs']} runs" if r else "")
        )
        if m["log_batch_stored"] != a.points or {m["log_async_stored"], m["log_sync_stored"]} != {a.call_points}:
            raise SystemExit("MLflow lost metric points")
    if r and r["log_stored"] != a.points:
        raise SystemExit(f"roost stored {r['log_stored']} of {a.points} points")
    if r and m:
        same = r["search_names"] == m["search_names"]
        print(f"search hits: roost {len(r['search_names'])}, MLflow {len(m['search_names'])}, same runs: {same}")
        if not same:
            raise SystemExit("roost and MLflow disagree on the search result")
    scale = a.points / a.call_points  # the per-call variants ran on call_points points
    pts = a.clients * a.steps * a.keys
    lines = [
        (f"(a) log {a.points:,} points, one run", "log_s", "log_batch_s", "MlflowClient.log_batch"),
        ("", "log_s", "log_async_s", f"log_metric(synchronous=False), est. from {a.call_points:,}"),
        ("", "log_s", "log_sync_s", f"log_metric per point, est. from {a.call_points:,}"),
        (f"(b) create {a.runs} runs (3 params, 1 metric)", "create_s", "create_s", ""),
        (f"(c) search {a.search_runs:,} runs by the filter", "search_s", "search_s", FILTER),
        (f"(c) list all {a.search_runs:,} runs", "list_s", "list_s", ""),  # note set below when counts differ
        (f"(d) {a.clients} clients x {a.steps * a.keys:,} points ({pts:,})", "conc_s", "conc_s", "sync per step"),
        ("", "conc_s", "conc_async_s", "async per step"),
    ]
    for side, res in (("roost", r), ("MLflow", m)):
        if res and res["total_runs"] != a.search_runs:
            lines[5] = (*lines[5][:3], f"INCOMPLETE: {side} listed {res['total_runs']:,} of {a.search_runs:,} runs")
    if m and m.get("conc_async_hung"):
        lines[-1] = (*lines[-1][:3], f"async per step: HUNG (clients killed after {a.hang_s:.0f} s; not compared)")
    elif m and min(m["conc_async_stored"]) < pts:
        lines[-1] = (*lines[-1][:3], f"async per step: LOST points, stored {m['conc_async_stored']} of {pts:,}")
    for label, rk, mk, note in lines:
        rv = r[rk] if r else float("nan")
        mv = m[mk] * (scale if mk in ("log_async_s", "log_sync_s") else 1) if m else float("nan")
        ratio = f"x{mv / rv:,.1f}" if r and m and not note.startswith("INCOMPLETE") and "HUNG" not in note else ""
        print(f"{label:<58} roost {fmt_s(rv):>10}   MLflow {fmt_s(mv):>10}   {ratio:>8}  {note}")
    if not (r and m):
        return None
    best_a = min(m["log_batch_s"], m["log_async_s"] * scale, m["log_sync_s"] * scale)
    lossless = min(m["conc_async_stored"]) == pts
    best_d = min(m["conc_s"], m["conc_async_s"]) if lossless else m["conc_s"]  # a variant that loses points is out
    checks = [
        ("(a) >= 10x", best_a / r["log_s"] >= 10),
        ("(b) >= 5x", m["create_s"] / r["create_s"] >= 5),
        ("(c) no slower", r["search_s"] <= m["search_s"]),
        ("(d) >= 10x", best_d / r["conc_s"] >= 10),
    ]
    print(
        f"targets ({backend}, vs MLflow's fastest variant): "
        + "; ".join(f"{k} {'met' if ok else 'MISSED'}" for k, ok in checks)
    )
    return best_a / r["log_s"]


def main() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the servers and PostgreSQL on the way out
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backends", default="sqlite,postgresql")
    ap.add_argument("--sides", default="roost,mlflow")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--points", type=int, default=10_000)
    ap.add_argument(
        "--call-points", type=int, default=1_000, help="MLflow's log_metric-per-point variants of (a): points, scaled"
    )
    ap.add_argument("--runs", type=int, default=500)
    ap.add_argument("--create-repeats", type=int, default=3)
    ap.add_argument("--search-runs", type=int, default=2_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--search-repeats", type=int, default=7)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--steps", type=int, default=250)
    ap.add_argument("--keys", type=int, default=4)
    ap.add_argument("--conc-repeats", type=int, default=3)
    ap.add_argument("--mlflow-auth-cache", type=int, default=60, help="auth_cache_ttl_seconds of MLflow's auth app")
    ap.add_argument(
        "--hang-s", type=float, default=600, help="seconds before MLflow's async (d) variant counts as HUNG (killed)"
    )
    ap.add_argument("--keep", action="store_true", help="keep the temp dir")
    ap.add_argument("--skip-main", action="store_true", help="only (d) (to try the concurrent part; no table)")
    a = ap.parse_args()
    if a.search_runs < a.runs * a.create_repeats:
        ap.error("--search-runs must be >= --runs x --create-repeats (the created runs are part of the searched set)")
    sides = [s.strip() for s in a.sides.split(",") if s.strip()]
    print(f"machine: {machine()}")
    print(f"uptime: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")
    durable = os.environ.get("ROOST_PG_DURABLE_TRACKING", "").lower() in ("1", "true", "yes", "on")
    print(
        "roost on PostgreSQL: run tracking commits "
        + (
            "wait for the WAL flush (ROOST_PG_DURABLE_TRACKING=1)"
            if durable
            else "with synchronous_commit=off (its default; ROOST_PG_DURABLE_TRACKING=1 to flush each)"
        )
    )
    client_py = mlflow_python() if "mlflow" in sides else None
    server_py = mlflow_server_python() if "mlflow" in sides else None
    roost_missing = server_sides.roost_missing() if "roost" in sides else "not asked for"
    if roost_missing:
        print(f"roost side SKIPPED: {roost_missing}")
    data = make_data(a.search_runs)
    tmp = Path(tempfile.mkdtemp(prefix="roost-bench-server-"))
    os.chmod(tmp, 0o755)
    ratios = []
    try:
        for backend in [b.strip() for b in a.backends.split(",") if b.strip()]:
            with server_sides.backend(backend, tmp / backend) as stores:
                if stores is None:
                    continue
                r = m = None
                if not roost_missing:
                    with server_sides.roost_server(stores["roost"], tmp / backend / "roost", a.workers) as renv:
                        r = measure_side("roost", Path(sys.executable), renv, a, data, tmp / backend / "rc")
                if client_py and server_py:
                    with server_sides.mlflow_server(
                        server_py, stores["mlflow"], stores["mlflow_auth"], tmp / backend / "mlflow", a.workers,
                        a.mlflow_auth_cache,
                    ) as menv:  # fmt: skip
                        m = measure_side("mlflow", client_py, menv, a, data, tmp / backend / "mc")
                ratio = report(backend, r, m, a)
                if ratio is not None:
                    ratios.append(ratio)
    finally:
        if not a.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"uptime at end: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")
    print(f"ratio: {min(ratios):.1f}" if ratios else "ratio: n/a (needs both sides measured)")


if __name__ == "__main__":
    main()
