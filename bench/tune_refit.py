"""Experiment: would refitting tune's chosen trials on all training+validation rows beat their fold bags?

For each saved tune20 run (`.bench-cache/tune-trials/<table>-<seed>.npz`, written by bench/quality.py), the best
trial of each model type is cross-validated again exactly as `roost tune` did (auto's folds; its fold bag's test
predictions must match the saved ones), then refitted once on all training+validation rows with the fold models'
mean best epoch / number of trees (no early stopping: no rows are left to stop on). The per-type blend weights
(auto's bagged weights on the saved out-of-fold predictions) are applied to the fold bags, to the refits, and to
their average; test ROC-AUC − best reference of each is printed.

    python bench/tune_refit.py --tables pima,hmda --seeds 0
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from _common import BENCH_CACHE
from quality import SPLIT, mean_se
from tune_replay import best_per_type

import roost


def refit_one(cfg: dict[str, Any], params: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, float]:
    """(fold-bag test predictions, refit test predictions, mean best epoch) of one trial's params."""
    from roost.training.api import build_model
    from roost.training.auto import fit_rows
    from roost.training.ensemble import cross_fit
    from roost.tune import config as C
    from roost.tune.cv import plan

    objective = C.load(cfg).objective
    f = plan(objective.config_for(params), objective.overrides(params), objective.selection)
    X, y, _ = f.rows()
    n_fit = fit_rows(len(X), f.splits)
    _, models = cross_fit(lambda: build_model(f.cfg, f.task, n_fit), X, y, f.spec, f.splits)
    test_df = f.parts[2]
    bag = np.mean([np.asarray(m.predict(test_df), dtype=np.float64) for m in models], axis=0)
    lgbm = f.cfg.model.type == "lightgbm"
    best = [
        float(getattr(m, "best_iteration_", 0) if lgbm else getattr(getattr(m, "state_", None), "best_epoch", 0))
        for m in models
    ]
    k = max(1, int(round(float(np.mean(best)))))
    if lgbm:
        params_all = {**f.cfg.model.params, "n_estimators": k}
        cfg_all = f.cfg.model_copy(update={"model": f.cfg.model.model_copy(update={"params": params_all})})
    else:
        cfg_all = f.cfg.model_copy(update={"trainer": f.cfg.trainer.model_copy(update={"epochs": k})})
    full = build_model(cfg_all, f.task, len(X)).fit(X, y, spec=f.spec)
    return bag, np.asarray(full.predict(test_df), dtype=np.float64), float(np.mean(best))


def main(argv: list[str] | None = None) -> int:
    from roost.datasets.suite import LABEL, load_table
    from roost.training.ensemble import bagged_weights, score

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tables", required=True)
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--dir", type=Path, default=BENCH_CACHE / "tune-trials")
    args = ap.parse_args(argv)
    refs = json.loads((BENCH_CACHE / "quality-references.json").read_text())
    import roost.workspace as ws

    rows = []
    with tempfile.TemporaryDirectory(prefix="roost-bench-refit-") as d:
        ws.use(roost.init(Path(d) / "ws"))
        for table in args.tables.split(","):
            df = load_table(table)
            path = Path(d) / f"{table}.parquet"
            df.to_parquet(path)
            for seed in [int(s) for s in args.seeds.split(",")]:
                npz = args.dir / f"{table}-{seed}.npz"
                if not npz.exists():
                    continue
                z = np.load(npz)
                ref = refs[f"{table}/{seed}/{len(df)}"]
                best_ref = max(ref["ref_lightgbm"], ref["ref_logreg"])
                cfg = {"data": str(path), "label": LABEL, "split": {**SPLIT, "seed": seed}}
                picks = best_per_type(z["ye"], z["oof"], z["types"])
                w = bagged_weights("binary", z["ye"], [z["oof"][j] for j in picks])
                bags, fulls = {}, {}
                row: dict[str, Any] = {"table": table, "seed": seed}
                for j, wk in zip(picks, w):
                    params = json.loads(str(z["params"][j]))
                    bag, full, epochs = refit_one(cfg, params)
                    t = str(z["types"][j])
                    bags[j], fulls[j] = bag, full
                    row[t] = {
                        "w": round(float(wk), 3),
                        "saved_vs_bag": float(np.max(np.abs(bag - z["test"][j]))),
                        "bag": score("binary", z["yt"], bag) - best_ref,
                        "refit": score("binary", z["yt"], full) - best_ref,
                        "epochs": epochs,
                    }
                blend_bag = sum(wk * bags[j] for j, wk in zip(picks, w))
                blend_full = sum(wk * fulls[j] for j, wk in zip(picks, w))
                row["blend_bag"] = score("binary", z["yt"], np.asarray(blend_bag)) - best_ref
                row["blend_refit"] = score("binary", z["yt"], np.asarray(blend_full)) - best_ref
                row["blend_both"] = score("binary", z["yt"], np.asarray(blend_bag + blend_full) / 2) - best_ref
                rows.append(row)
                print("  " + json.dumps(row), file=sys.stderr, flush=True)
        ws.use(None)
    for k in ("blend_bag", "blend_refit", "blend_both"):
        m, se = mean_se([r[k] for r in rows])
        print(f"{k} − best ref over {len(rows)} runs: {m:+.4f} ± {se:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
