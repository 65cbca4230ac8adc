"""Experiment: does refitting tune's chosen trials on more folds (each fold model fitted on 9/10 of the rows
instead of 4/5) raise the final blend's test ROC-AUC?

For each saved tune20 run (`.bench-cache/tune-trials/<table>-<seed>.npz`, written by bench/quality.py), the best
trial of each model type (tune.cv.best_of_each_type) is cross-fitted again on `--folds` folds with tune's own
plan/cross_fit/build_model; auto's bagged weights are fitted on the refits' out-of-fold predictions and applied to their
fold bags' test predictions. Printed per table: mean ± s.e. over the splits of (refit blend − the saved 5-fold
blend), and of each against the best reference (the larger of the two references on each split) and the table's
better reference (quality.better_reference). `--folds 5` reproduces the saved blend exactly (training is seeded),
which checks that the only change is the folds. Rows are appended to `.bench-cache/tune-refit-folds-<k>.jsonl`;
splits already there are skipped (`--fresh` redoes them).

    python bench/tune_refit_folds.py --folds 10                       # every saved run
    python bench/tune_refit_folds.py --folds 5 --runs hmda-0,oj-0     # the exactness check
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
from _common import BENCH_CACHE
from quality import SPLIT, better_reference
from tune_replay import auc, best_per_type, cell, reference, weighted

import roost

logging.disable(logging.WARNING)


def refit(objective: Any, params: dict[str, Any], k: int) -> tuple[np.ndarray, np.ndarray]:
    """(out-of-fold predictions, fold-bag mean test predictions) of one trial's params cross-fitted on `k` folds of
    the same rows, seeded as auto's (tune.cv.plan with folds=k; the same cross_fit and build_model as tune)."""
    from functools import partial

    from roost.training.api import build_model
    from roost.training.ensemble import cross_fit
    from roost.tune.cv import plan

    f = plan(objective.config_for(params), objective.overrides(params), {**objective.selection, "folds": k})
    X, y, _ = f.rows()
    oof, models = cross_fit(partial(build_model, f.cfg, f.task, f.n_fit), X, y, f.spec, f.splits)
    return oof, np.mean([np.asarray(m.predict(f.parts[2]), dtype=np.float64) for m in models], axis=0)


def refit_run(path: Path, k: int, refs: dict[str, Any], tmp: Path) -> dict[str, Any]:
    """One saved run: the 5-fold per-type blend and the k-fold refit blend, test ROC-AUC of each."""
    from roost.datasets.suite import LABEL, load_table
    from roost.tune import config as C

    z = np.load(path, allow_pickle=True)
    table, seed = path.stem.rsplit("-", 1)
    ref = reference(refs, table, seed)
    data = tmp / f"{table}.parquet"
    if not data.exists():
        load_table(table).to_parquet(data)
    cfg = {"data": str(data), "label": LABEL, "split": {**SPLIT, "seed": int(seed)}, "name": f"{table}-{seed}"}
    objective = C.load(cfg).objective
    picks = best_per_type(z["ye"], z["oof"], z["types"])  # the trials roost tune blends
    base = auc(z["yt"], weighted(z["ye"], z["oof"], picks) @ z["test"])
    start = time.perf_counter()
    fitted = [refit(objective, json.loads(str(z["params"][n])), k) for n in picks]
    seconds = time.perf_counter() - start
    oof = np.array([o for o, _ in fitted])
    test = np.array([p for _, p in fitted])
    w = weighted(z["ye"], oof, list(range(len(picks))))
    new = auc(z["yt"], w @ test)
    row: dict[str, Any] = {"table": table, "seed": int(seed), "folds": k, "types": [str(z["types"][n]) for n in picks]}
    row.update(ref_lightgbm=ref["ref_lightgbm"], ref_logreg=ref["ref_logreg"])
    row.update(five=base, refit=new, gain=new - base, weights=[round(float(x), 4) for x in w], seconds=seconds)
    return row


def summary(rows: list[dict[str, Any]]) -> list[str]:
    """Markdown: per table, mean ± s.e. of the gain and of both blends against the references."""
    lines = [
        "| table | splits | refit − 5-fold blend | 5-fold − best ref | refit − best ref | refit − better ref |",
        "|---|---|---|---|---|---|",
    ]

    for t in dict.fromkeys(r["table"] for r in rows):
        rs = [r for r in rows if r["table"] == t]
        best = [max(r["ref_lightgbm"], r["ref_logreg"]) for r in rs]
        better = better_reference(rs)
        lines.append(
            f"| {t} | {len(rs)} | {cell([r['gain'] for r in rs])} | {cell([r['five'] - b for r, b in zip(rs, best)])} "
            f"| {cell([r['refit'] - b for r, b in zip(rs, best)])} | {cell([r['refit'] - r[better] for r in rs])} |"
        )
    lines.append(f"| all | {len(rows)} | {cell([r['gain'] for r in rows])} | | | |")
    return lines


def main(argv: list[str] | None = None) -> int:
    """Refit every chosen saved run and print the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--folds", type=int, default=10)
    ap.add_argument("--runs", default="", help="table-seed names, e.g. hmda-0,oj-1 (default: every saved run)")
    ap.add_argument("--dir", type=Path, default=BENCH_CACHE / "tune-trials")
    ap.add_argument("--refs", type=Path, default=BENCH_CACHE / "quality-references.json")
    ap.add_argument("--fresh", action="store_true", help="redo splits already in the results file")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    import roost.workspace as ws

    refs = json.loads(args.refs.read_text())
    store = BENCH_CACHE / f"tune-refit-folds-{args.folds}.jsonl"
    wanted = set(filter(None, args.runs.split(",")))
    paths = [p for p in sorted(args.dir.glob("*.npz")) if (not wanted or p.stem in wanted)]
    done = [json.loads(x) for x in store.read_text().splitlines() if x] if store.exists() else []
    if args.fresh:  # the splits redone now leave the file (they were appended again before: listed twice)
        done = [r for r in done if f"{r['table']}-{r['seed']}" not in {p.stem for p in paths}]
        store.write_text("".join(json.dumps(r) + "\n" for r in done))
    have = {f"{r['table']}-{r['seed']}" for r in done}
    rows = [r for r in done if not wanted or f"{r['table']}-{r['seed']}" in wanted]
    with tempfile.TemporaryDirectory(prefix="roost-bench-refit-") as d:
        tmp = Path(d)
        ws.use(roost.init(tmp / "ws"))
        for p in paths:
            if p.stem in have:
                continue
            row = refit_run(p, args.folds, refs, tmp)
            rows.append(row)
            print("  " + json.dumps(row), file=sys.stderr, flush=True)
            with open(store, "a") as fh:
                fh.write(json.dumps(row) + "\n")
        ws.use(None)
    print("\n".join(summary(rows)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
