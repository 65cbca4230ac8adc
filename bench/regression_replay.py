"""Replay `model: auto`'s blending rules on the regression suite, offline, over many splits (issue 36).

Capture (once per table × split seed × arm, cached as pickles): auto's own selection code (auto.prepare,
candidate_config, build_model, auto_select.select: the default candidates, folds and seed, no time budget, no
refit, no child runs or export) run on roost's split `split: {method: random, seed: S}`; select()'s public
`Selection.cv` gives each cross-validated candidate's out-of-fold predictions over the training + validation rows
and its fold models, whose mean on the test rows is saved too, with each candidate's fit seconds. Arms:
- `cv`: auto's defaults — each fold model early-stops on the fold that then scores it;
- `inner`: `inner_stop: true` — each fold model early-stops on an inner 20 % of its own training rows.
The refit (on by default) fits the same folds again over all rows with the default stopping; over the
training + validation rows only (test rows unseen) it is the `cv` arm's fold bag itself, so a rule weighing the
`inner` arm's out-of-fold predictions is scored twice: on the `inner` fold bag (what `roost train` then reports as
test_rmse) and on the `cv` fold bag (the package it ships, refitted).
Replay (seconds): every rule below turns the out-of-fold predictions into weights; the weighted fold bags are
scored by RMSE on the test rows and divided by the best of bench/quality.py's three references on the same split
(Ridge, `LGBMRegressor()`, Optuna-tuned LightGBM; cached in .bench-cache/quality-references.json). Per table and
pooled: each rule's mean ratio and its paired difference from today's rule (mean ± s.e. over the splits).

    python bench/regression_replay.py --seeds 0,1,2,3,4                    # capture what is missing, then replay
    python bench/regression_replay.py --check cps1985:0                    # today's rule vs `roost train`'s test_rmse
    python bench/regression_replay.py --extra lightgbm_deep --swap lightgbm_fine  # a candidate beside / instead of one
"""

from __future__ import annotations

import argparse
import math
import pickle
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from _common import BENCH_CACHE

sys.path.insert(0, str(Path(__file__).parent))
import quality as Q

TABLES = ("carseats", "diabetes", "cps1985", "housing", "wage", "computers")
ARMS = {"cv": {"inner_stop": False}, "inner": {"inner_stop": True}}
CACHE = BENCH_CACHE / "regression-replay"


def timed_maker(conf: Any, task: str, n_cols: int, secs: dict[str, float]) -> Callable[[str, int], Any]:
    """auto's `make(candidate, fit rows)` as roost train builds its fold models, adding each fit's seconds to
    `secs[candidate]` (bench/oof_replay.py uses it too)."""
    from roost.training.auto import candidate_config
    from roost.training.from_config import build_model

    def make(cand: str, n_fit: int) -> Any:
        m = build_model(candidate_config(conf, cand, n_fit, n_cols), task, n_fit)
        fit = m.fit

        def timed(*a: Any, **k: Any) -> Any:
            t = time.perf_counter()
            out = fit(*a, **k)
            secs[cand] += time.perf_counter() - t
            return out

        m.fit = timed
        return m

    return make


def capture(name: str, seed: int, arm: str, cands: list[str], tmp: Path) -> dict[str, Any]:
    """`cands` cross-validated by auto's own select() on the table's split `seed` in `arm`: labels, each
    candidate's out-of-fold predictions, fold-bag test predictions and fit seconds, auto's own weights."""
    from roost.datasets.suite import LABEL, load_table
    from roost.training.auto import options, prepare
    from roost.training.auto_select import select
    from roost.training.preprocess import encode_labels

    path = tmp / f"{name}.parquet"
    if not path.exists():
        load_table(name).to_parquet(path)
    params = {"candidates": cands, "refit": False, **ARMS[arm]}
    cfg = {"data": str(path), "label": LABEL, "task": "regression", "split": {"method": "random", "seed": seed}}
    conf, task, spec, parts = prepare({**cfg, "model": {"type": "auto", "params": params}, "time_budget": "none"})
    secs = dict.fromkeys(cands, 0.0)
    make = timed_maker(conf, task, len(spec.columns), secs)
    fitted = [(c, type("Child", (), {"classes_": []})()) for c in cands]
    sel = select(task, LABEL, spec, parts, fitted, options(conf), make, conf.trainer.seed)
    Xt = parts[2].drop(columns=[LABEL])
    y = encode_labels(pd.concat([parts[0], parts[1]])[LABEL], task)[0]
    return {
        "y": y,
        "yt": encode_labels(parts[2][LABEL], task)[0],
        "oof": {c: np.asarray(sel.cv[c][0], dtype=np.float64) for c in cands},
        "test": {
            c: np.mean([np.asarray(m.predict(Xt), dtype=np.float64) for m in sel.cv[c][1]], axis=0) for c in cands
        },
        "seconds": secs,
        "weights": sel.weights,
        "seed": conf.trainer.seed,
    }


def load(name: str, seed: int, arm: str, cands: list[str], tmp: Path) -> dict[str, Any]:
    """The cached capture with every one of `cands` (the missing candidates captured and merged in: each
    candidate's folds and models do not depend on the others)."""
    return cached_capture(
        CACHE / f"{name}-{seed}-{arm}.pkl",
        cands,
        lambda missing: capture(name, seed, arm, missing, tmp),
        f"{name} seed {seed} {arm}",
        ("oof", "test", "seconds"),
    )


def cached_capture(
    f: Path, cands: list[str], capture_missing: Callable[[list[str]], dict[str, Any]], what: str, keys: tuple[str, ...]
) -> dict[str, Any]:
    """The capture pickled at `f` with every one of `cands`: the missing ones captured by `capture_missing(missing)`,
    their `keys` (per-candidate dicts) merged in, and the file rewritten."""
    f.parent.mkdir(parents=True, exist_ok=True)
    rec = pickle.loads(f.read_bytes()) if f.exists() else None
    missing = [c for c in cands if rec is None or c not in rec["oof"]]
    if missing:
        t = time.perf_counter()
        new = capture_missing(missing)
        print(f"  {what} {','.join(missing)}: {time.perf_counter() - t:.0f} s", file=sys.stderr)
        if rec is None:
            rec = new
        else:
            for k in keys:
                rec[k].update(new[k])
        f.write_bytes(pickle.dumps(rec))
    return rec


def references(name: str, seed: int, cache: Path) -> float:
    """The best reference's test RMSE on this split (bench/quality.py's cache; computed when missing)."""
    from roost.datasets.suite import LABEL, load_table

    df = load_table(name)
    refs = Q.cached_references(df, LABEL, name, seed, cache, "regression")
    return float(min(refs["ref_linear"], refs["ref_lgbm_defaults"], refs["ref_lightgbm"]))


# ---- the rules: (labels, out-of-fold predictions per candidate in order, names, seed) -> weights ----
Rule = Callable[[np.ndarray, list[np.ndarray], list[str], int], list[float]]


def rmse(y: np.ndarray, p: np.ndarray) -> float:
    """Root mean squared error."""
    return float(np.sqrt(np.mean((np.asarray(y) - np.asarray(p)) ** 2)))


def today(y: np.ndarray, preds: list[np.ndarray], names: list[str], seed: int) -> list[float]:
    """auto's weights today (auto_weights.blend_weights: bagged greedy with the best-single guard)."""
    from roost.training.auto_weights import blend_weights

    return blend_weights("regression", y, preds, True, seed)


def equal(y: np.ndarray, preds: list[np.ndarray], names: list[str], seed: int) -> list[float]:
    """Equal weights."""
    return [1.0 / len(preds)] * len(preds)


def best_single(y: np.ndarray, preds: list[np.ndarray], names: list[str], seed: int) -> list[float]:
    """The candidate with the lowest out-of-fold RMSE alone."""
    j = int(np.argmin([rmse(y, p) for p in preds]))
    return [float(k == j) for k in range(len(preds))]


def nnls(y: np.ndarray, preds: list[np.ndarray], names: list[str], seed: int) -> list[float]:
    """Non-negative least squares of y on the out-of-fold predictions, normalised to sum 1."""
    from scipy.optimize import nnls as solve

    w = solve(np.column_stack(preds), np.asarray(y, dtype=np.float64))[0]
    return list(w / w.sum()) if w.sum() > 0 else equal(y, preds, names, seed)


def shrunk(rule: Rule, toward: Rule, share: float) -> Rule:
    """`rule`'s weights averaged with `toward`'s: (1 − share) · rule + share · toward."""

    def r(y: np.ndarray, preds: list[np.ndarray], names: list[str], seed: int) -> list[float]:
        a, b = rule(y, preds, names, seed), toward(y, preds, names, seed)
        return [(1 - share) * x + share * z for x, z in zip(a, b)]

    return r


def penalised(rule: Rule, factor: dict[str, float]) -> Rule:
    """`rule` on out-of-fold predictions whose residuals are inflated by `factor[name]` (1: unchanged): an
    early-stopped candidate's out-of-fold error made as large as it would be without stopping on its scoring
    fold."""

    def r(y: np.ndarray, preds: list[np.ndarray], names: list[str], seed: int) -> list[float]:
        moved = [y + factor.get(n, 1.0) * (p - y) for n, p in zip(names, preds)]
        return rule(y, moved, names, seed)

    return r


def cv_pick(rules: dict[str, Rule], k: int = 5) -> Rule:
    """Nested: which of `rules` to use, chosen by k-fold CV over the out-of-fold rows (each rule's weights fitted
    on k − 1 parts, scored on the left-out part), then that rule fitted on all rows."""

    def r(y: np.ndarray, preds: list[np.ndarray], names: list[str], seed: int) -> list[float]:
        from sklearn.model_selection import KFold

        err = dict.fromkeys(rules, 0.0)
        for fit, held in KFold(k, shuffle=True, random_state=seed).split(y):
            for n, rule in rules.items():
                w = rule(y[fit], [p[fit] for p in preds], names, seed)
                err[n] += float(np.sum((y[held] - sum(wk * p[held] for wk, p in zip(w, preds))) ** 2))
        return rules[min(err, key=lambda n: err[n])](y, preds, names, seed)

    return r


def rules(factor: dict[str, float]) -> dict[str, tuple[str, Rule]]:
    """name: (arm whose out-of-fold predictions it weighs, rule)."""
    half_eq = shrunk(today, equal, 0.5)
    return {
        "today": ("cv", today),
        "inner": ("inner", today),
        "half_equal": ("cv", half_eq),
        "half_best": ("cv", shrunk(today, best_single, 0.5)),
        "equal": ("cv", equal),
        "penalty": ("cv", penalised(today, factor)),
        "nnls": ("cv", nnls),
        "nnls_inner": ("inner", nnls),
        "inner_half_equal": ("inner", half_eq),
        "cv_pick": ("cv", cv_pick({"today": today, "equal": equal, "nnls": nnls})),
        "inner_cv_pick": ("inner", cv_pick({"today": today, "equal": equal, "nnls": nnls})),
    }


def optimism(recs: list[tuple[dict[str, Any], dict[str, Any]]], names: list[str]) -> dict[str, float]:
    """Per candidate: mean over splits of out-of-fold RMSE with inner stopping / with stopping on the scored fold
    (the factor by which stopping on the scoring fold flatters it)."""
    return {n: float(np.mean([rmse(i["y"], i["oof"][n]) / rmse(c["y"], c["oof"][n]) for c, i in recs])) for n in names}


def main(argv: list[str] | None = None) -> int:
    """Capture what is missing, then print each rule's ratio to the best reference and its paired difference."""
    from roost.datasets.suite import LABEL
    from roost.training.auto_candidates import DEFAULT_CANDIDATES, label_candidates, table_candidates

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tables", default=",".join(TABLES))
    ap.add_argument("--seeds", default="0,1,2,3,4")
    ap.add_argument("--extra", default="", help="candidates (auto_candidates.VARIANTS names) beside the defaults")
    ap.add_argument("--swap", default="lightgbm_fine", help="the default candidate each --extra also replaces")
    ap.add_argument("--refs", type=Path, default=BENCH_CACHE / "quality-references.json")
    ap.add_argument("--check", help="table:seed — today's rule replayed vs `roost train`'s test_rmse")
    ap.add_argument("--arms", default="cv,inner")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    tmp = Path(tempfile.mkdtemp(prefix="regression-replay-"))
    if args.check:
        return check(args.check, tmp)
    seeds = [int(s) for s in args.seeds.split(",")]
    extra = [c for c in args.extra.split(",") if c]
    data: dict[str, list[tuple[int, float, dict[str, Any], dict[str, Any]]]] = {}
    for seed in seeds:  # seed-major: a run cut short is balanced
        for name in args.tables.split(","):
            from roost.datasets.suite import load_table

            df = load_table(name)
            n_train = len(df) * 0.8 * 0.9
            cands = table_candidates(list(DEFAULT_CANDIDATES), int(n_train), 0, task="regression")
            cands += [e for e in extra if e not in cands]
            cands = label_candidates(cands, df[LABEL])  # every row's label, as roost train checks them
            arms = {a: load(name, seed, a, cands, tmp) for a in args.arms.split(",")}
            data.setdefault(name, []).append((seed, references(name, seed, args.refs), arms, {"cands": cands}))
    report(data, extra, args.swap)
    return 0


def report(
    data: dict[str, list[tuple[int, float, dict[str, Any], dict[str, Any]]]], extra: list[str], swap: str
) -> None:
    """Per table and pooled: each rule's mean ratio, its paired difference from `today`, wins/losses."""
    base = [n for n in next(iter(data.values()))[0][3]["cands"] if n not in extra]
    both = [(a["cv"], a["inner"]) for rows in data.values() for _, _, a, _ in rows if "inner" in a]
    factor = optimism(both, base) if both else {}
    print("optimism (OOF RMSE inner stop / stop on the scored fold), mean over", len(both), "splits:")
    print("  " + ", ".join(f"{n} {f:.4f}" for n, f in factor.items()))
    sets = {"defaults": base}
    for e in extra:
        sets[f"+{e}"] = [*base, e]
        sets[f"{e} for {swap}"] = [e if n == swap else n for n in base]
    if len(extra) > 1:
        sets["+" + "+".join(extra)] = [*base, *extra]
    todays: dict[str, dict[str, list[float]]] = {}
    for label, names in sets.items():
        all_rules = rules(factor)
        ratios: dict[str, list[float]] = {}
        per_table: dict[str, dict[str, list[float]]] = {}
        for t, rows in data.items():
            for _, best, arms, meta in rows:
                names_t = [n for n in names if n in meta["cands"]]
                cv = arms["cv"]
                single = {n: rmse(cv["yt"], cv["test"][n]) / best for n in names_t}
                for n, r in single.items():
                    per_table.setdefault(t, {}).setdefault(f"[{n}]", []).append(r)
                for rn, (arm, rule) in all_rules.items():
                    if arm not in arms:
                        continue
                    src = arms[arm]
                    w = rule(src["y"], [src["oof"][n] for n in names_t], names_t, src["seed"])
                    held = sum(wk * src["test"][n] for wk, n in zip(w, names_t))
                    r = rmse(cv["yt"], held) / best
                    per_table.setdefault(t, {}).setdefault(rn, []).append(r)
                    ratios.setdefault(rn, []).append(r)
                    if arm == "inner":  # the package: the same weights on the refit (= the cv arm's fold bag)
                        pkg = sum(wk * cv["test"][n] for wk, n in zip(w, names_t))
                        per_table[t].setdefault(rn + "@pkg", []).append(rmse(cv["yt"], pkg) / best)
                        ratios.setdefault(rn + "@pkg", []).append(rmse(cv["yt"], pkg) / best)
        todays[label] = {t: cols["today"] for t, cols in per_table.items()}
        if label != "defaults":
            continue
        print(f"\ncandidates: {','.join(names)} — auto / best reference (test RMSE), mean ± s.e.; rule − today paired")
        for t, cols in per_table.items():
            print(f"{t} ({len(cols['today'])} splits)")
            for rn, v in cols.items():
                m, s = Q.mean_se(v)
                d = [a - b for a, b in zip(v, cols["today"])]
                dm, ds = Q.mean_se(d)
                print(f"  {rn:22} {m:.4f} ± {s:.4f}   {dm:+.4f} ± {ds:.4f}")
        print("pooled")
        for rn, v in ratios.items():
            m, s = Q.mean_se(v)
            d = [a - b for a, b in zip(v, ratios["today"])]
            dm, ds = Q.mean_se(d)
            worst = max(Q.mean_se([a - b for a, b in zip(c[rn], c["today"])])[0] for c in per_table.values() if rn in c)
            print(f"  {rn:22} {m:.4f} ± {s:.4f}   {dm:+.4f} ± {ds:.4f}  worst table {worst:+.4f}  (n {len(v)})")
    if len(todays) > 1:
        print("\ncandidate sets, today's rule: per table the mean ratio (set − defaults, paired mean ± s.e.); pooled")
        for label, per in todays.items():
            cells, pooled = [], []
            for t, v in per.items():
                d = [a - b for a, b in zip(v, todays["defaults"][t])]
                pooled += d
                cells.append("{} {:.4f} ({:+.4f} ± {:.4f})".format(t, Q.mean_se(v)[0], *Q.mean_se(d)))
            m, s = Q.mean_se(pooled)
            print(f"  {label:34} {m:+.4f} ± {s:.4f}  | " + ", ".join(cells))


def check(spec: str, tmp: Path) -> int:
    """Today's rule replayed on the cached capture vs `roost train` (no time budget) on the same split."""
    import roost
    from roost.datasets.suite import LABEL, load_table
    from roost.training.auto_candidates import DEFAULT_CANDIDATES, table_candidates

    name, seed = spec.split(":")
    df = load_table(name)
    cands = table_candidates(list(DEFAULT_CANDIDATES), int(len(df) * 0.72), 0, task="regression")
    rec = load(name, int(seed), "cv", cands, tmp)
    w = today(rec["y"], [rec["oof"][n] for n in cands], cands, rec["seed"])
    replay = rmse(rec["yt"], sum(wk * rec["test"][n] for wk, n in zip(w, cands)))
    path = tmp / f"{name}.parquet"
    if not path.exists():
        df.to_parquet(path)
    split = {"method": "random", "seed": int(seed)}
    cfg = {"data": str(path), "label": LABEL, "task": "regression", "split": split, "time_budget": "none"}
    import roost.workspace as ws

    ws.use(roost.init(tmp / "ws"))
    res = roost.train(cfg, progress=False)
    ws.use(None)
    print(f"{name} seed {seed}: replay {replay:.6g} (weights {dict(zip(cands, np.round(w, 4)))})")
    print(f"  roost train test_rmse {res.metrics['test_rmse']:.6g} (weights {res.weights})")
    return 0 if math.isclose(replay, res.metrics["test_rmse"], rel_tol=1e-4) else 1


if __name__ == "__main__":
    raise SystemExit(main())
