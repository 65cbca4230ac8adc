"""Replay auto's cross-validated selection on the suite over several split seeds, old vs new blend weights.

For each table and split seed (roost's `random` split, 20 % test): the three candidates are cross-validated
exactly as `model: auto` does on tables up to cv_max_rows (auto.candidate_config, ensemble.folds/cross_fit, 5
stratified folds over training+validation rows), giving out-of-fold predictions and each candidate's fold bag on
the test rows. Blend weights are then chosen from the out-of-fold predictions by the single greedy pass
(`greedy_weights`, auto before 2026-12-04 evening) and by `bagged_weights` (auto now), and the test ROC-AUC of
each weighted bag is compared with bench/quality.py's two references fitted on the same non-test rows (in
training-then-validation row order). No runs, no ONNX export: a cheap way to see the selection rule on many
splits; bench/quality.py --seeds 0,1,2,3,4 measures the real `roost train`.

    python bench/quality_replay.py --tables pima,mroz --seeds 0,1,2,3,4 --cache .bench-cache/quality-replay
"""

from __future__ import annotations

import argparse
import pickle
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from _common import BENCH_CACHE

sys.path.insert(0, str(Path(__file__).parent))
import quality as Q

CANDIDATES = ("logreg", "wide_deep", "lightgbm")


def replay(name: str, seed: int) -> dict[str, Any]:
    """Out-of-fold and test-bag predictions of auto's candidates plus both references' test ROC-AUC."""
    from sklearn.metrics import roc_auc_score

    from roost.datasets.suite import LABEL, load_table
    from roost.training.api import build_model
    from roost.training.auto import candidate_config
    from roost.training.config import TrainConfig
    from roost.training.data import split
    from roost.training.ensemble import cross_fit, folds
    from roost.training.preprocess import infer_spec

    df = load_table(name)
    cfg = TrainConfig(data="unused.parquet", label=LABEL, split={"method": "random", "seed": seed})
    tr, va, te = split(df, cfg.split)
    spec = infer_spec(tr, label=LABEL)  # what train() fits for a config without a features: block
    both = pd.concat([tr, va])
    X, y = both.drop(columns=[LABEL]), both[LABEL]
    Xt, yt = te.drop(columns=[LABEL]), te[LABEL].to_numpy()
    splits = folds("binary", y.to_numpy(), 5, cfg.trainer.seed)
    n_fit = len(both) - len(both) // 5
    rec: dict[str, Any] = {"y": y.to_numpy(), "yt": yt, "oof": {}, "test": {}}
    for c in CANDIDATES:

        def make(c: str = c) -> Any:
            return build_model(candidate_config(cfg, c, n_fit), "binary", n_fit)

        oof, models = cross_fit(make, X, y, spec, splits)
        rec["oof"][c] = oof
        rec["test"][c] = np.mean([np.asarray(m.predict(Xt), dtype=np.float64) for m in models], axis=0)
    rec["ref_lightgbm"] = float(roc_auc_score(yt, Q.ref_lightgbm(X, y.to_numpy(), Xt)[0]))
    rec["ref_logreg"] = float(roc_auc_score(yt, Q.ref_logreg(X, y.to_numpy(), Xt)))
    return rec


def main(argv: list[str] | None = None) -> int:
    """Replay every (table, seed), print per-table mean ± s.e. of auto − best reference, old and new weights."""
    from sklearn.metrics import roc_auc_score

    from roost.datasets.suite import TABLES
    from roost.training.ensemble import bagged_weights, greedy_weights

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tables", default=",".join(t for t in TABLES if t not in ("default", "caravan")))
    ap.add_argument("--seeds", default="0,1,2,3,4")
    ap.add_argument("--cache", type=Path, default=BENCH_CACHE / "quality-replay")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    args.cache.mkdir(parents=True, exist_ok=True)
    print("| table | splits | auto − best ref, one greedy pass | auto − best ref, bagged + best-single guard |")
    print("|---|---|---|---|")
    worst = []
    for name in args.tables.split(","):
        old, new = [], []
        for seed in (int(s) for s in args.seeds.split(",")):
            f = args.cache / f"{name}-{seed}.pkl"
            if not f.exists():
                t = time.perf_counter()
                f.write_bytes(pickle.dumps(replay(name, seed)))
                print(f"  {name} seed {seed}: {time.perf_counter() - t:.0f} s", file=sys.stderr, flush=True)
            rec = pickle.loads(f.read_bytes())
            preds = [rec["oof"][c] for c in CANDIDATES]
            best = max(rec["ref_lightgbm"], rec["ref_logreg"])
            for out, w in (
                (old, greedy_weights("binary", rec["y"], preds)),
                (new, bagged_weights("binary", rec["y"], preds)),
            ):
                blend = sum(wk * rec["test"][c] for c, wk in zip(CANDIDATES, w))
                out.append(float(roc_auc_score(rec["yt"], blend)) - best)
        (mo, so), (mn, sn) = Q.mean_se(old), Q.mean_se(new)
        print(f"| {name} | {len(old)} | {mo:+.4f} ± {so:.4f} | {mn:+.4f} ± {sn:.4f} |", flush=True)
        worst.append(mn)
    print(f"ratio: {min(worst):+.4f}  (worst mean auto − best reference, bagged weights)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
