"""Experiment: does auto's refit on all rows (issue 36 item 2) score better on rows roost never saw?

Per table and split seed: the outer split (quality.test_rows: 20 % outer test rows) gives roost the other 80 %;
there roost's own split and auto's selection run in process exactly as `roost train` does (auto_select.select,
no budget: every candidate cross-validated, weights from the training+validation rows' folds), giving the
held-out blend (fold models on training+validation rows, what auto shipped before) and the refitted blend (the
same candidates and weights, fold models over all of roost's rows, what it ships now). Both are scored on the
outer test rows (ROC-AUC, in memory); printed per split and as mean ± s.e. of refit − held-out.

    nice python bench/auto_refit.py --tables pima,titanic,oj,creditcard --seeds 0,1,2
"""

from __future__ import annotations

import argparse
import time
import warnings
from types import SimpleNamespace
from typing import Any

import numpy as np
from quality import mean_se, test_rows


def one(table: str, seed: int, candidates: list[str]) -> dict[str, Any]:
    """Held-out vs refitted blend of one table and split seed, scored on the outer test rows."""
    from sklearn.metrics import roc_auc_score

    from roost.datasets.suite import LABEL, load_table
    from roost.training.api import build_model, fit_spec
    from roost.training.auto import candidate_config, options
    from roost.training.auto_select import select
    from roost.training.config import TrainConfig
    from roost.training.data import split
    from roost.training.preprocess import encode_labels

    df = load_table(table)
    rest, outer = test_rows(df, seed)
    cfg = TrainConfig.model_validate(
        {
            "data": "unused.parquet",
            "label": LABEL,
            "split": {"method": "random", "seed": seed},
            "model": {"type": "auto", "params": {"candidates": candidates}},
            "time_budget": None,
        }
    )
    parts = split(rest.reset_index(drop=True), cfg.split)
    spec = fit_spec(cfg, parts[0])
    classes = encode_labels(parts[0][LABEL], "binary")[1]
    stubs = [(c, SimpleNamespace(classes_=classes)) for c in candidates]  # the CV path reads only the classes
    cols = len(spec.columns)

    def make(cand: str, n_fit: int) -> Any:
        return build_model(candidate_config(cfg, cand, n_fit, cols), "binary", n_fit)

    t = time.perf_counter()
    sel = select("binary", LABEL, spec, parts, stubs, options(cfg), make, cfg.trainer.seed)
    secs = time.perf_counter() - t
    Xo, yo = outer.drop(columns=[LABEL]), encode_labels(outer[LABEL], "binary", classes)[0]
    held = float(roc_auc_score(yo, np.asarray((sel.heldout or sel.final).predict(Xo), dtype=np.float64)))
    refit = float(roc_auc_score(yo, np.asarray(sel.final.predict(Xo), dtype=np.float64)))
    return {"table": table, "seed": seed, "held": held, "refit": refit, "refitted": bool(sel.refit), "s": secs}


def main(argv: list[str] | None = None) -> int:
    """Every table × seed; print refit − held-out."""
    from roost.training.auto import DEFAULT_CANDIDATES

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tables", default="pima,titanic,oj,creditcard")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--candidates", default=",".join(DEFAULT_CANDIDATES))
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    diffs: list[float] = []
    print("| table | seed | held-out blend | refitted blend | refit − held-out | s |")
    print("|---|---|---|---|---|---|")
    for table in args.tables.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            r = one(table, seed, args.candidates.split(","))
            d = r["refit"] - r["held"]
            diffs.append(d)
            note = "" if r["refitted"] else " (not refitted)"
            print(
                f"| {table} | {seed} | {r['held']:.4f} | {r['refit']:.4f} | {d:+.4f}{note} | {r['s']:.0f} |", flush=True
            )
    m, se = mean_se(diffs)
    print(f"\nrefit − held-out over {len(diffs)} splits: {m:+.4f} ± {se:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
