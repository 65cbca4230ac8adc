"""Honest out-of-fold predictions for `model: auto`'s blend weights, replayed over many splits (issue 36 items 3, 5).

Each early-stopping fold model (LightGBM, the networks) stops on the fold that then scores it, so its out-of-fold
(OOF) score is optimistic, while the convex linear candidate never sees that fold: the blend weights are chosen on
unequally honest scores. This bench captures, once per table × split seed, auto's own selection (auto.prepare,
candidate_config, build_model, auto_select.select: default candidates and folds, no time budget, no refit) in two
arms and replays weighting rules on them in seconds:
- `cv` (`oof_rounds: others`): the fold models auto ships (each stops on its own fold); per candidate two OOF
  predictions of the same fold models: `own` (each scored at the round its own fold chose: today) and `others`
  (each scored at the mean of the other folds' best rounds, ensemble.cross_fit: nothing scored chose its round);
- `inner` (`inner_stop: true`): fold models that stop on an inner 20 % of their training rows (the convex linear
  candidate fits all of them: it stops on nothing).
Saved per candidate: the OOF predictions and the fold bag's mean prediction on the test rows. The package auto
ships by default is the refit, which over the non-test rows (test rows unseen) is the `cv` arm's fold bag, so
every rule is scored on it (`@pkg`); the `inner` arm's rules also on their own fold bag (the held-out blend).
Tables: the regression suite (bench/regression_replay.py's six) and the binary tables under 1,000 rows
(bench/small_tables.py's 13). References on the same split: regression Ridge and `LGBMRegressor()` (ratio =
auto's test RMSE / the better of them), binary LogisticRegressionCV and `LGBMClassifier()` (auto − the better, in
ROC-AUC). Output per suite: each rule's mean, its paired difference from today's rule (mean ± s.e. over splits),
wins/losses and the worst table's mean difference. Captures are cached in .bench-cache/oof-replay/ (resumable;
parts may run side by side on different seeds or tables).

    python bench/oof_replay.py --suite regression --seeds 0,1,2,3,4
    python bench/oof_replay.py --suite binary --seeds 0,1,2,3,4
    python bench/oof_replay.py --report                     # replay what is cached, both suites
"""

from __future__ import annotations

import argparse
import math
import os
import pickle
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
from _common import BENCH_CACHE
from regression_replay import timed_maker

sys.path.insert(0, str(Path(__file__).parent))

CACHE = BENCH_CACHE / "oof-replay"
ARMS: dict[str, dict[str, Any]] = {"cv": {"oof_rounds": "others"}, "inner": {"inner_stop": True}}
REGRESSION = ("carseats", "diabetes", "cps1985", "housing", "wage", "computers")


def suite_tables(suite: str) -> tuple[str, ...]:
    """The tables of a suite."""
    if suite == "regression":
        return REGRESSION
    from small_tables import TABLES

    return tuple(TABLES)


def frame(name: str, suite: str) -> Any:
    """The table with its `label` column."""
    if suite == "regression":
        from roost.datasets.suite import load_table

        return load_table(name)
    from small_tables import load

    return load(name)


def references(df: Any, suite: str, seed: int) -> dict[str, float]:
    """The references' test metric on roost's split `seed` (regression RMSE, binary ROC-AUC)."""
    if suite == "binary":
        from small_tables import references as binary_refs

        return binary_refs(df, seed)
    from quality import test_rows
    from quality_tasks import metric, ref_lgbm_defaults, ref_linear

    from roost.datasets.suite import LABEL

    rest, test = test_rows(df, seed)
    X, y, Xt, yt = (
        rest.drop(columns=[LABEL]),
        rest[LABEL].to_numpy(),
        test.drop(columns=[LABEL]),
        test[LABEL].to_numpy(),
    )
    return {
        "ref_linear": metric("regression", yt, ref_linear("regression", X, y, Xt)),
        "ref_lgbm_defaults": metric("regression", yt, ref_lgbm_defaults("regression", X, y, Xt)),
    }


def capture(name: str, suite: str, seed: int, arm: str, tmp: Path) -> dict[str, Any]:
    """One arm of auto's selection on split `seed`: labels, each candidate's OOF predictions (the `cv` arm: `own`
    and `others`), its fold bag's mean test prediction and fold models' seconds, auto's own weights."""
    from roost.datasets.suite import LABEL
    from roost.training.auto import candidates, options, prepare, table_candidates
    from roost.training.auto_select import cv_folds, cv_rows, select
    from roost.training.ensemble import encoded
    from roost.training.preprocess import encode_labels

    path = tmp / f"{name}.parquet"
    df = frame(name, suite)
    if not path.exists():
        df.to_parquet(path)
    cfg: dict[str, Any] = {"data": str(path), "label": LABEL, "split": {"method": "random", "seed": seed}}
    if suite == "regression":
        cfg["task"] = "regression"
    params = {"refit": False, **ARMS[arm]}
    conf, task, spec, parts = prepare({**cfg, "model": {"type": "auto", "params": params}, "time_budget": "none"})
    classes = encode_labels(parts[0][LABEL], task)[1]
    cands = table_candidates(candidates(conf), len(parts[0]), len(spec.columns), True, task)
    secs = dict.fromkeys(cands, 0.0)
    make = timed_maker(conf, task, len(spec.columns), secs)

    fitted = [(c, SimpleNamespace(classes_=classes)) for c in cands]
    opts = options(conf)
    sel = select(task, LABEL, spec, parts, fitted, opts, make, conf.trainer.seed)
    X, y = cv_rows(parts, LABEL)
    Xt = parts[2].drop(columns=[LABEL])
    rec: dict[str, Any] = {
        "task": task,
        "y": encoded(y, task, classes),
        "yt": encoded(parts[2][LABEL], task, classes),
        "seed": conf.trainer.seed,
        "cands": cands,
        "oof": {},
        "test": {},
        "seconds": secs,
        "weights": sel.weights,
    }
    splits = cv_folds(LABEL, task, parts, classes, opts, conf.trainer.seed)
    for c in cands:
        oof, models = sel.cv[c]
        rec["test"][c] = np.mean([np.asarray(m.predict(Xt), dtype=np.float64) for m in models], axis=0)
        if arm == "cv":
            own = np.zeros_like(oof)
            for (_, held), m in zip(splits, models):
                own[held] = np.asarray(m.predict(X.iloc[held]), dtype=np.float64)
            rec["oof"][c] = {"own": own, "others": np.asarray(oof, dtype=np.float64)}
        else:
            rec["oof"][c] = {"inner": np.asarray(oof, dtype=np.float64)}
    return rec


def load(name: str, suite: str, seed: int, arm: str, tmp: Path, run: bool = True) -> dict[str, Any] | None:
    """The cached capture (captured first when missing and `run`)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    f = CACHE / f"{suite}-{name}-{seed}-{arm}.pkl"
    if f.exists():
        return dict(pickle.loads(f.read_bytes()))
    if not run:
        return None
    t = time.perf_counter()
    rec = capture(name, suite, seed, arm, tmp)
    rec["capture_s"], rec["load"] = time.perf_counter() - t, os.getloadavg()[0]
    f.write_bytes(pickle.dumps(rec))
    print(f"  {suite} {name} seed {seed} {arm}: {rec['capture_s']:.0f} s, load {rec['load']:.1f}", file=sys.stderr)
    return rec


# ---- rules: today's weights on one kind of OOF predictions, optionally changed ----
def today(task: str, y: np.ndarray, preds: list[np.ndarray], seed: int) -> list[float]:
    """auto's weights (auto_weights.blend_weights: bagged greedy, best-single guard, half-way to equal below 300
    binary rows)."""
    from roost.training.auto_weights import blend_weights

    return blend_weights(task, y, preds, True, seed)


def shrink_to_best(
    task: str, y: np.ndarray, preds: list[np.ndarray], seed: int, w: list[float], boots: int = 50
) -> list[float]:
    """Today's weights `w` shrunk toward the best single candidate by the evidence for the blend: share of the
    blend = clip(z / 2, 0, 1), z = (blend − best single) / its bootstrap s.e. over the OOF rows (2 s.e.: all
    blend)."""
    from roost.training.ensemble import score

    sign = 1.0 if task == "binary" else -1.0
    singles = [sign * score(task, y, p) for p in preds]
    best = int(np.argmax(singles))
    blend = sum(wk * p for wk, p in zip(w, preds))
    rng = np.random.default_rng(seed)
    d = []
    for _ in range(boots):
        r = rng.integers(0, len(y), len(y))
        if task == "binary" and len(np.unique(y[r])) < 2:
            continue
        d.append(sign * (score(task, y[r], np.asarray(blend)[r]) - score(task, y[r], preds[best][r])))
    se = float(np.std(d, ddof=1)) if len(d) > 1 else math.inf
    gain = sign * (score(task, y, np.asarray(blend)) - score(task, y, preds[best]))
    lam = float(np.clip(gain / (2 * se), 0.0, 1.0)) if se > 0 else 1.0
    return [lam * wk + (1 - lam) * float(j == best) for j, wk in enumerate(w)]


def nnls(task: str, y: np.ndarray, preds: list[np.ndarray], seed: int, w: list[float]) -> list[float]:
    """Non-negative least squares of the labels on the OOF predictions (Breiman's stacking), normalised to sum 1
    (today's weights where it finds none)."""
    from scipy.optimize import nnls as solve

    found = solve(np.column_stack(preds), np.asarray(y, dtype=np.float64))[0]
    return [float(x) for x in found / found.sum()] if found.sum() > 0 else w


Post = Callable[[str, np.ndarray, list[np.ndarray], int, list[float]], list[float]]
RULES: dict[str, tuple[str, str, Post | None]] = {  # name: (arm, OOF kind, what changes today's weights)
    "today": ("cv", "own", None),
    "others": ("cv", "others", None),
    "inner": ("inner", "inner", None),
    "shrink_best": ("cv", "own", shrink_to_best),
    "others_shrink_best": ("cv", "others", shrink_to_best),
    "nnls": ("cv", "own", nnls),
    "others_nnls": ("cv", "others", nnls),
}


def todays_weights(key: str, task: str, y: np.ndarray, preds: list[np.ndarray], seed: int) -> list[float]:
    """today()'s weights on these OOF predictions, cached beside the capture (`key`: suite-table-seed-kind):
    the bagged greedy weights take seconds per split."""
    f = CACHE / f"{key}-weights.pkl"
    if f.exists():
        return list(pickle.loads(f.read_bytes()))
    w = today(task, y, preds, seed)
    f.write_bytes(pickle.dumps(w))
    return w


def metric(task: str, y: np.ndarray, p: np.ndarray) -> float:
    """Test RMSE (regression) or ROC-AUC (binary)."""
    from roost.training.ensemble import score

    return float(score(task, y, p))


def replay(
    suite: str, rows: list[tuple[str, int, dict[str, float], dict[str, Any]]]
) -> dict[str, dict[str, list[float]]]:
    """Per table, per rule (and `<rule>@pkg` for the inner arm): the score relative to the best reference —
    regression test RMSE / the better reference's, binary ROC-AUC − the better reference's — and `[cand]` alone."""
    out: dict[str, dict[str, list[float]]] = {}
    for name, seed, refs, arms in rows:
        cv = arms["cv"]
        task, cands = cv["task"], cv["cands"]
        if task == "regression":
            best = min(refs.values())

            def rel(p: np.ndarray, yt: np.ndarray = cv["yt"], b: float = best) -> float:
                return metric("regression", yt, p) / b

        else:
            best = max(refs.values())
            if not best == best:
                continue

            def rel(p: np.ndarray, yt: np.ndarray = cv["yt"], b: float = best) -> float:
                return metric("binary", yt, p) - b

        cols = out.setdefault(name, {})
        for c in cands:
            cols.setdefault(f"[{c}]", []).append(rel(cv["test"][c]))
        for rn, (arm, kind, post) in RULES.items():
            if arm not in arms:
                continue
            src = arms[arm]
            preds = [src["oof"][c][kind] for c in cands]
            w = todays_weights(f"{suite}-{name}-{seed}-{kind}", task, src["y"], preds, src["seed"])
            if post is not None:
                w = post(task, src["y"], preds, src["seed"], w)
            cols.setdefault(rn, []).append(rel(sum(wk * src["test"][c] for wk, c in zip(w, cands))))
            if arm == "inner":  # the package: the same weights on the refit (= the cv arm's fold bag)
                cols.setdefault(rn + "@pkg", []).append(rel(sum(wk * cv["test"][c] for wk, c in zip(w, cands))))
    return out


def mean_se(v: list[float]) -> tuple[float, float]:
    """Mean and standard error."""
    a = np.asarray([x for x in v if x == x], dtype=np.float64)
    if not len(a):
        return math.nan, math.nan
    return float(a.mean()), float(a.std(ddof=1) / math.sqrt(len(a))) if len(a) > 1 else math.nan


def optimism(rows: list[tuple[str, int, dict[str, float], dict[str, Any]]]) -> dict[str, float]:
    """Per candidate, the mean over splits of (OOF score `others` / `own`) for regression RMSE, or (`own` −
    `others`) ROC-AUC for binary: how much scoring each fold model at its own fold's best round flatters it."""
    acc: dict[str, list[float]] = {}
    for _, _, _, arms in rows:
        cv = arms["cv"]
        for c in cv["cands"]:
            own, oth = (metric(cv["task"], cv["y"], cv["oof"][c][k]) for k in ("own", "others"))
            acc.setdefault(c, []).append(oth / own if cv["task"] == "regression" else own - oth)
    return {c: float(np.mean(v)) for c, v in acc.items()}


def report(suite: str, rows: list[tuple[str, int, dict[str, float], dict[str, Any]]]) -> list[str]:
    """The comparison of `suite`'s captured splits."""
    if not rows:
        return [f"{suite}: nothing captured"]
    unit = "test RMSE / better reference's" if suite == "regression" else "test ROC-AUC − better reference's"
    sign = -1.0 if suite == "regression" else 1.0  # a positive `gain` is better
    data = replay(suite, rows)
    out = [f"{suite}: {len(rows)} splits over {len(data)} tables; {unit}; rule − today paired (mean ± s.e.)"]
    out.append("  OOF optimism (" + ("others/own RMSE" if suite == "regression" else "own − others AUC") + "): ")
    out[-1] += ", ".join(f"{c} {v:.4f}" for c, v in optimism(rows).items())
    names = [rn for rn in next(iter(data.values())) if not rn.startswith("[")]
    for t, cols in data.items():
        cells = []
        for rn in names:
            if rn in cols:
                d = [a - b for a, b in zip(cols[rn], cols["today"])]
                cells.append(f"{rn} {mean_se(cols[rn])[0]:.4f} ({mean_se(d)[0]:+.4f})")
        singles = ", ".join(f"{c} {mean_se(v)[0]:.4f}" for c, v in cols.items() if c.startswith("["))
        out.append(f"  {t} ({len(cols['today'])}): " + "; ".join(cells) + f" | {singles}")
    out.append("  pooled:")
    for rn in names:
        v = [x for cols in data.values() for x in cols.get(rn, [])]
        d = [a - b for cols in data.values() if rn in cols for a, b in zip(cols[rn], cols["today"])]
        per_t = {t: mean_se([a - b for a, b in zip(c[rn], c["today"])])[0] for t, c in data.items() if rn in c}
        worst = min(per_t.items(), key=lambda kv: sign * kv[1]) if per_t else ("-", math.nan)
        wins = sum(sign * x > 0 for x in d)
        losses = sum(sign * x < 0 for x in d)
        m, s = mean_se(v)
        dm, ds = mean_se(d)
        out.append(
            f"    {rn:20} {m:.4f} ± {s:.4f}   − today {dm:+.4f} ± {ds:.4f}  better/worse {wins}/{losses}"
            f"  worst table {worst[0]} {worst[1]:+.4f}"
        )
    secs = [sum(a["cv"]["seconds"].values()) for _, _, _, a in rows]
    out.append(f"  fold models' seconds per split (cv arm, LOADED): {np.mean(secs):.1f}")
    return out


def gather(suite: str, tables: list[str], seeds: list[int], tmp: Path, run: bool) -> list[Any]:
    """(table, seed, references, {arm: capture}) of every split captured (capturing the missing ones when `run`)."""
    rows = []
    for seed in seeds:  # seed-major: a run cut short is balanced
        for name in tables:
            arms = {a: load(name, suite, seed, a, tmp, run) for a in ARMS}
            if arms["cv"] is None:
                continue
            refs_file = CACHE / f"{suite}-{name}-{seed}-refs.pkl"
            if refs_file.exists():
                refs = pickle.loads(refs_file.read_bytes())
            else:
                refs = references(frame(name, suite), suite, seed)
                refs_file.write_bytes(pickle.dumps(refs))
            rows.append((name, seed, refs, {a: r for a, r in arms.items() if r is not None}))
    return rows


def main(argv: list[str] | None = None) -> int:
    """Capture what is missing (unless --report), then print the replay."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--suite", choices=["regression", "binary", "both"], default="both")
    ap.add_argument("--tables", default="", help="comma-separated (default: the suite's)")
    ap.add_argument("--seeds", default="0,1,2,3,4")
    ap.add_argument("--report", action="store_true", help="replay the cached captures only")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    tmp = Path(tempfile.mkdtemp(prefix="oof-replay-"))
    seeds = [int(s) for s in args.seeds.split(",")]
    for suite in ("regression", "binary") if args.suite == "both" else (args.suite,):
        tables = args.tables.split(",") if args.tables else list(suite_tables(suite))
        print("\n".join(report(suite, gather(suite, tables, seeds, tmp, not args.report))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
