"""The package's members that do not early-stop, fitted once on all rows instead of as a 5-fold bag (issue 36).

auto's refit (auto_select._refit) fitted every kept member as a bag of k fold models, each on (k-1)/k of the
rows; a member that stops on nothing (the convex linear candidate `logreg`, whose penalty comes from its own
cross-validation; `lightgbm_defaults`, a fixed 100 rounds) loses 1/k of the rows per model for it. Replayed on
bench/oof_replay.py's cached captures (auto's own select() per table × split seed, no time budget; the `cv` arm's
fold bags are exactly the package refitted over the non-test rows, test rows unseen) with today's weights
(oof_replay.todays_weights): per split, each such member with a positive weight is fitted once on all non-test
rows (auto's make(candidate, fold rows): the configuration the fold models had) and swapped for its fold bag.
Arms: `bag` (the package before), `lin` (logreg fitted once), `lin+dflt` (logreg and lightgbm_defaults once).
Printed per table: today's package test metric and each arm − today (mean ± s.e. over splits, better/worse),
pooled over the binary tables under 300 rows (small5), the others and the regression tables (RMSE ratio − 1).

    python bench/linear_refit.py --suite binary --seeds 0,1,2,3,4,5,6,7,8,9
    python bench/linear_refit.py --suite regression --seeds 0,1,2,3,4,5,6,7,8,9

`--live` (binary tables not in the captures, e.g. the larger suite tables): auto's selection run through today's
code (small_tables.run_arm, auto's defaults, refit over the non-test rows); before = its held-out blend (with no
test rows, the old refit's fold bags are exactly the cross-validation's fold models: checked on birthwt and
cats, equal to the replay's `bag` to the last digit, and the new package equal to its `lin`), after = the package.

    python bench/linear_refit.py --live --tables titanic,oj,creditcard,hmda --seeds 0,1,2,3,4
"""

from __future__ import annotations

import argparse
import math
import os
import pickle
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from oof_replay import CACHE, frame, load, metric, suite_tables, todays_weights

SINGLE = ("logreg", "lightgbm_defaults")
SMALL5 = ("birthwt", "infert", "cats", "melanoma", "womenlf")


def singles(name: str, suite: str, seed: int, cands: list[str], tmp: Path) -> dict[str, np.ndarray]:
    """Test predictions of each SINGLE candidate fitted once on all non-test rows of split `seed` (cached)."""
    f = CACHE / f"{suite}-{name}-{seed}-single.pkl"
    if f.exists():
        return dict(pickle.loads(f.read_bytes()))
    from roost.datasets.suite import LABEL
    from roost.training.auto import candidate_config, options, prepare
    from roost.training.auto_select import cv_folds, cv_rows, fit_rows
    from roost.training.from_config import build_model
    from roost.training.preprocess import encode_labels

    path = tmp / f"{name}.parquet"
    if not path.exists():
        frame(name, suite).to_parquet(path)
    cfg: dict[str, Any] = {"data": str(path), "label": LABEL, "split": {"method": "random", "seed": seed}}
    if suite == "regression":
        cfg["task"] = "regression"
    params = {"refit": False, "oof_rounds": "others"}
    conf, task, spec, parts = prepare({**cfg, "model": {"type": "auto", "params": params}, "time_budget": "none"})
    classes = encode_labels(parts[0][LABEL], task)[1]
    X, y = cv_rows(parts, LABEL)
    n_fit = fit_rows(len(X), cv_folds(LABEL, task, parts, classes, options(conf), conf.trainer.seed))
    Xt = parts[2].drop(columns=[LABEL])
    out = {}
    for c in SINGLE:
        if c in cands:
            m = build_model(candidate_config(conf, c, n_fit, len(spec.columns)), task, n_fit)
            m.fit(X, y, spec=spec)
            out[c] = np.asarray(m.predict(Xt), dtype=np.float64)
    f.write_bytes(pickle.dumps(out))
    return out


def mean_se(v: list[float]) -> tuple[float, float]:
    """Mean and standard error."""
    a = np.asarray([x for x in v if x == x], dtype=np.float64)
    if len(a) < 2:
        return (float(a.mean()) if len(a) else math.nan), math.nan
    return float(a.mean()), float(a.std(ddof=1) / math.sqrt(len(a)))


def live(tables: list[str], seeds: list[int]) -> int:
    """--live: per split the package's test ROC-AUC before (the held-out blend) and after (the package)."""
    from small_tables import load as load_table
    from small_tables import run_arm

    diffs: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            for name in tables:
                path = Path(tmp) / f"{name}.parquet"
                if not path.exists():
                    load_table(name).to_parquet(path)
                r = run_arm(path, name, seed, "old")
                diffs.setdefault(name, []).append(r["old"] - r["old_heldout"])
                print(
                    f"{name} seed {seed}: before {r['old_heldout']:.4f} after {r['old']:.4f} "
                    f"({r['old_model']}; {r['old_seconds']:.0f} s, load {os.getloadavg()[0]:.1f})",
                    flush=True,
                )
    for name, d in diffs.items():
        m, s = mean_se(d)
        print(
            f"{name:14} {len(d):>3} after − before {m:+.4f} ± {s:.4f} {sum(x > 0 for x in d)}/{sum(x < 0 for x in d)}"
        )
    m, s = mean_se([x for d in diffs.values() for x in d])
    print(f"{'all':14} after − before {m:+.4f} ± {s:.4f}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Fit the singles that are missing, then print the comparison."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--suite", choices=["regression", "binary"], default="binary")
    ap.add_argument("--tables", default="")
    ap.add_argument("--seeds", default="0,1,2,3,4,5,6,7,8,9")
    ap.add_argument("--live", action="store_true", help="run auto's selection with today's code (binary)")
    a = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    if a.live:
        return live(a.tables.split(","), [int(s) for s in a.seeds.split(",")])
    tables = a.tables.split(",") if a.tables else list(suite_tables(a.suite))
    seeds = [int(s) for s in a.seeds.split(",")]
    arms = {"lin": ("logreg",), "lin+dflt": SINGLE, "[logreg]": (), "[lightgbm_defaults]": ()}
    diffs: dict[str, dict[str, list[float]]] = {}
    base: dict[str, list[float]] = {}
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            for name in tables:
                cap = load(name, a.suite, seed, "cv", Path(tmp), run=False)
                if cap is None:
                    continue
                task, cands = cap["task"], cap["cands"]
                if task == "binary" and len(np.unique(cap["yt"])) < 2:
                    continue
                preds = [cap["oof"][c]["own"] for c in cands]
                w = todays_weights(f"{a.suite}-{name}-{seed}-own", task, cap["y"], preds, cap["seed"])
                one = singles(name, a.suite, seed, cands, Path(tmp))

                def score(p: np.ndarray, yt: np.ndarray = cap["yt"], task: str = task) -> float:
                    return metric(task, yt, p)

                def rel(new: float, old: float, task: str = task) -> float:  # + is better
                    return new - old if task == "binary" else 1.0 - new / old

                today = score(sum(wk * cap["test"][c] for wk, c in zip(w, cands)))
                base.setdefault(name, []).append(today)
                d = diffs.setdefault(name, {})
                for arm, swap in arms.items():
                    if arm.startswith("["):  # a member alone: its single fit − its fold bag
                        c = arm[1:-1]
                        d.setdefault(arm, []).append(rel(score(one[c]), score(cap["test"][c])))
                        continue
                    p = sum(wk * (one[c] if c in swap else cap["test"][c]) for wk, c in zip(w, cands))
                    d.setdefault(arm, []).append(rel(score(p), today))
    unit = "ROC-AUC arm − today" if a.suite == "binary" else "RMSE 1 − arm/today"
    print(
        f"{a.suite}: {sum(map(len, base.values()))} splits, {unit} (+ better), {time.perf_counter() - t0:.0f} s, "
        f"load {os.getloadavg()[0]:.1f}"
    )
    print(f"{'table':14} {'n':>3} {'today':>8} " + " ".join(f"{arm:>30}" for arm in arms))

    def cell(v: list[float]) -> str:
        m, s = mean_se(v)
        return f"{m:+.4f} ± {s:.4f} {sum(x > 0 for x in v):>2}/{sum(x < 0 for x in v):<2}"

    for name, d in diffs.items():
        print(
            f"{name:14} {len(base[name]):>3} {np.mean(base[name]):8.4f} " + " ".join(f"{cell(d[k]):>30}" for k in arms)
        )
    groups = {"all": list(diffs)}
    if a.suite == "binary":
        groups = {"small5": [t for t in diffs if t in SMALL5], "rest": [t for t in diffs if t not in SMALL5], **groups}
    for g, ts in groups.items():
        print(f"{g:14} " + " ".join(f"{cell([x for t in ts for x in diffs[t][k]]):>30}" for k in arms))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
