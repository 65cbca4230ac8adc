"""roost's linear candidate alone vs scikit-learn's LogisticRegressionCV / RidgeCV on the same rows (issue 36).

Per table and split seed: roost's split (`split: {method: random, seed: S}`: 20 % test, 10 % of the rest
validation), then on the same training rows
- `sgd`: roost's `logreg` fitted by its training loop (AdamW, weight decay 1e-4, early stopping on the validation
  rows) — the linear child before issue 36's change;
- `convex`: roost's `logreg` with its L2 strength chosen by cross-validation over the training rows (the default
  since, training/linear_fit.py);
- `ref`: scikit-learn on the same training rows: LogisticRegressionCV (binary: bench/quality.py's reference, C by
  5-fold ROC-AUC; multiclass: bench/quality_tasks.py's, C by 5-fold log loss) or RidgeCV (regression,
  quality_tasks' 5-fold over 10^-3..10^4);
each scored on the test rows (binary ROC-AUC, higher is better; multiclass log loss and regression RMSE, lower).
Prints per table the means and the paired convex − sgd and convex − ref differences (mean ± s.e.), pooled too.

    python bench/linear_child.py --tables cats,birthwt,melanoma,womenlf,infert --seeds 0,1,2,3,4,5,6,7,8,9
    python bench/linear_child.py --tables digits,cps1985,housing --seeds 0,1,2
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))


def load(name: str) -> tuple[str, pd.DataFrame]:
    """(task, frame with `label`) of a small_tables or quality-suite table."""
    from small_tables import EXTRA
    from small_tables import load as load_small

    from roost.datasets.suite import MULTICLASS_TABLES, REGRESSION_TABLES, load_table

    if name in EXTRA:
        return "binary", load_small(name)
    every = {**REGRESSION_TABLES, **MULTICLASS_TABLES}
    return (every[name].task if name in every else "binary"), load_table(name)


def score(task: str, y: np.ndarray, out: np.ndarray, classes: list[Any] | None) -> float:
    """ROC-AUC (binary), log loss (multiclass) or RMSE (regression)."""
    from quality_tasks import metric
    from sklearn.metrics import roc_auc_score

    if task == "binary":
        return float(roc_auc_score(y, out)) if len(np.unique(y)) == 2 else math.nan
    return metric(task, y, out, classes)


def one(task: str, df: pd.DataFrame, seed: int) -> dict[str, Any]:
    """The three arms' test scores on one split (see the module)."""
    from quality import ref_logreg
    from quality_tasks import ref_linear

    from roost.datasets.suite import LABEL
    from roost.training.config import SplitConfig
    from roost.training.data import split
    from roost.training.models import LogReg
    from roost.training.preprocess import infer_spec

    train, val, test = split(df, SplitConfig(method="random", seed=seed))
    X, y = train.drop(columns=[LABEL]), train[LABEL]
    Xt, yt = test.drop(columns=[LABEL]), test[LABEL].to_numpy()
    spec = infer_spec(X)
    row: dict[str, Any] = {}
    classes: list[Any] | None = None
    for arm in ("sgd", "convex"):
        t = time.perf_counter()
        m = LogReg(task=task, solver=arm).fit(X, y, val.drop(columns=[LABEL]), val[LABEL], spec=spec)
        classes = list(m.classes_) if task == "multiclass" else None
        row[arm] = score(task, yt, np.asarray(m.predict(Xt)), classes)
        row[f"{arm}_seconds"] = time.perf_counter() - t
        if arm == "convex":
            row["penalty"] = getattr(m, "penalty_", {})
    t = time.perf_counter()
    out = ref_logreg(X, y.to_numpy(), Xt) if task == "binary" else ref_linear(task, X, y.to_numpy(), Xt)
    row["ref"] = score(task, yt, out, sorted(set(y)) if task == "multiclass" else None)
    row["ref_seconds"] = time.perf_counter() - t
    return row


def mean_se(v: list[float]) -> tuple[float, float]:
    """Mean and standard error of the finite values."""
    x = [a for a in v if a == a]
    if len(x) < 2:
        return (x[0] if x else math.nan), math.nan
    m = sum(x) / len(x)
    return m, math.sqrt(sum((a - m) ** 2 for a in x) / (len(x) - 1) / len(x))


def report(rows: list[dict[str, Any]]) -> list[str]:
    """Per table (and pooled per task): the arms' means, convex − sgd and convex − ref (paired, mean ± s.e.)."""
    out = [
        f"{'table':14} {'task':10} {'n':>3} {'sgd':>9} {'convex':>9} {'ref':>9} {'convex-sgd':>19} {'convex-ref':>19}"
    ]
    for t in dict.fromkeys(r["table"] for r in rows):
        rs = [r for r in rows if r["table"] == t]
        m = {a: mean_se([r[a] for r in rs])[0] for a in ("sgd", "convex", "ref")}
        d1 = "{:+.4f} ± {:.4f}".format(*mean_se([r["convex"] - r["sgd"] for r in rs]))
        d2 = "{:+.4f} ± {:.4f}".format(*mean_se([r["convex"] - r["ref"] for r in rs]))
        out.append(
            f"{t:14} {rs[0]['task']:10} {len(rs):>3} {m['sgd']:9.4f} {m['convex']:9.4f} {m['ref']:9.4f} "
            f"{d1:>19} {d2:>19}"
        )
    for task in dict.fromkeys(r["task"] for r in rows):
        rs = [r for r in rows if r["task"] == task]
        rel = "relative (÷ ref)" if task != "binary" else "absolute"
        d1 = [(r["convex"] - r["sgd"]) / (r["ref"] if task != "binary" else 1.0) for r in rs]
        d2 = [(r["convex"] - r["ref"]) / (r["ref"] if task != "binary" else 1.0) for r in rs]
        better = sum((x > 0) if task == "binary" else (x < 0) for x in d1)
        out.append(
            f"{task} pooled over {len(rs)} splits, {rel}: convex − sgd {mean_se(d1)[0]:+.4f} ± {mean_se(d1)[1]:.4f} "
            f"(convex better on {better}); convex − ref {mean_se(d2)[0]:+.4f} ± {mean_se(d2)[1]:.4f}"
        )
    secs = {a: mean_se([r[f"{a}_seconds"] for r in rows])[0] for a in ("sgd", "convex", "ref")}
    out.append("seconds per fit: " + ", ".join(f"{a} {s:.2f}" for a, s in secs.items()))
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the arms over tables × seeds and print the comparison."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tables", default="cats,birthwt,melanoma,womenlf,infert")
    ap.add_argument("--seeds", default="0,1,2,3,4")
    ap.add_argument("--json", type=Path, help="also write the rows here")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    rows: list[dict[str, Any]] = []
    print(f"load average before: {os.getloadavg()}", file=sys.stderr)
    for name in args.tables.split(","):
        task, df = load(name)
        for seed in (int(s) for s in args.seeds.split(",")):
            row = {"table": name, "task": task, "seed": seed, **one(task, df, seed)}
            rows.append(row)
            print(f"  {json.dumps(row, default=str)}", file=sys.stderr, flush=True)
            if args.json:
                args.json.write_text(json.dumps(rows, indent=1, default=str))
    print("\n".join(report(rows)))
    print(f"load average after: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
