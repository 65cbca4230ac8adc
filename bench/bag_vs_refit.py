"""Experiment: what does fitting fold models on 4/5 (or 9/10) of the rows cost against one refit on all of them?

roost's cross-validated candidates and tune trials are fold bags (each fold model fits the other folds' rows); the
quality suite's references refit on all non-test rows. Here both references are fitted both ways on the same
split: scikit-learn's LogisticRegressionCV (quality.ref_logreg) and LightGBM with the tuned reference's cached
params (`.bench-cache/quality-references.json`, bench/quality.py writes it), as a k-fold bag (stratified, seeded by
the split seed; the bag's test prediction is the mean) and refitted on all rows. Printed: test ROC-AUC of each
bag − the refit, per split, and the mean ± s.e. over all splits.

    python bench/bag_vs_refit.py --tables pima,hmda,oj,titanic --seeds 0,1,2,3,4
"""

from __future__ import annotations

import argparse
import json
import warnings
from typing import Any

import numpy as np
import pandas as pd
from _common import BENCH_CACHE
from quality import lightgbm_frames, mean_se, ref_logreg, test_rows


def lightgbm_fit(X: pd.DataFrame, y: np.ndarray, Xt: pd.DataFrame, params: dict[str, Any]) -> np.ndarray:
    """LightGBM with fixed params on the reference's frames (quality.lightgbm_frames): P(1) on Xt."""
    import lightgbm as lgb

    X, Xt = lightgbm_frames(X, Xt)
    p = dict(params)
    n = int(p.pop("n_estimators"))
    m = lgb.LGBMClassifier(n_estimators=n, subsample_freq=1, random_state=0, verbose=-1, n_jobs=1, **p)
    return np.asarray(m.fit(X, y).predict_proba(Xt)[:, 1])


def main(argv: list[str] | None = None) -> int:
    """Fit both ways on every table and seed; print the differences."""
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    from roost.datasets.suite import LABEL, load_table

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tables", default="pima,hmda,oj,titanic")
    ap.add_argument("--seeds", default="0,1,2,3,4")
    ap.add_argument("--folds", default="5,10")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    refs = json.loads((BENCH_CACHE / "quality-references.json").read_text())
    ks = [int(k) for k in args.folds.split(",")]
    diffs: dict[str, list[float]] = {}
    for table in args.tables.split(","):
        df = load_table(table)
        for seed in (int(s) for s in args.seeds.split(",")):
            rest, test = test_rows(df, seed)
            X, y = rest.drop(columns=[LABEL]), rest[LABEL].to_numpy()
            Xt, yt = test.drop(columns=[LABEL]), test[LABEL].to_numpy()
            params = refs[f"{table}/{seed}/{len(df)}"]["lightgbm_params"]
            fits = {"logreg": ref_logreg, "lightgbm": lambda a, b, c: lightgbm_fit(a, b, c, params)}
            row = []
            for name, fit in fits.items():
                full = roc_auc_score(yt, fit(X, y, Xt))
                for k in ks:
                    folds = StratifiedKFold(k, shuffle=True, random_state=seed).split(X, y)
                    bag = np.mean([fit(X.iloc[tr], y[tr], Xt) for tr, _ in folds], axis=0)
                    d = float(roc_auc_score(yt, bag) - full)
                    diffs.setdefault(f"{name} {k}-fold bag − refit", []).append(d)
                    row.append(f"{name}{k}={d:+.4f}")
            print(f"{table} {seed} " + " ".join(row), flush=True)
    for name, v in diffs.items():
        m, se = mean_se(v)
        print(f"{name}: {m:+.4f} ± {se:.4f} over {len(v)} splits")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
