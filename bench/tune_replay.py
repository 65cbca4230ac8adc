"""Replay `roost tune`'s final-model rule on saved trials: which rule turns 20 cross-validated trials into the best
test ROC-AUC, without refitting anything.

Input: the .npz files `bench/quality.py` writes per tune20 run (`.bench-cache/tune-trials/<table>-<seed>.npz`:
every completed trial's out-of-fold predictions on the training+validation rows, its fold bag's mean prediction on
the test rows, model type, objective value). Each rule picks weights from the out-of-fold predictions only; its
test score is the weighted test predictions' ROC-AUC (the blend roost exports predicts exactly that weighted mean).
References (tuned LightGBM, LogisticRegressionCV) come from `.bench-cache/quality-references.json`.

    python bench/tune_replay.py                       # every saved run
    python bench/tune_replay.py --tables pima,hmda
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from _common import BENCH_CACHE
from quality import better_reference, mean_se

Rule = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def auc(y: np.ndarray, p: np.ndarray) -> float:
    from roost.training.ensemble import score

    return float(score("binary", y, p))


def all_trials(ye: np.ndarray, oof: np.ndarray, types: np.ndarray) -> np.ndarray:
    """roost tune before: auto's bagged greedy weights over every completed trial."""
    from roost.training.ensemble import bagged_weights

    return np.asarray(bagged_weights("binary", ye, list(oof)))


def best_single(ye: np.ndarray, oof: np.ndarray, types: np.ndarray) -> np.ndarray:
    """The trial with the best out-of-fold score alone."""
    s = [auc(ye, p) for p in oof]
    return np.eye(len(oof))[int(np.nanargmax(s))]


def weighted(ye: np.ndarray, oof: np.ndarray, picks: list[int]) -> np.ndarray:
    """auto's bagged weights over the picked trials, as a weight per trial (0 for the others)."""
    from roost.training.ensemble import bagged_weights

    w = np.zeros(len(oof))
    w[picks] = bagged_weights("binary", ye, [oof[j] for j in picks])
    return w


def best_per_type(ye: np.ndarray, oof: np.ndarray, types: np.ndarray) -> list[int]:
    """The trials `roost tune` blends: tune.cv.best_of_each_type on the out-of-fold ROC-AUC (the trials' values)."""
    from roost.tune.cv import best_of_each_type

    trials = [
        {"number": j, "value": auc(ye, p), "params": {"model.type": str(t)}} for j, (p, t) in enumerate(zip(oof, types))
    ]
    kept, _ = best_of_each_type(trials, list(oof), "maximize", "")
    return [int(t["number"]) for t in kept]


def per_type(ye: np.ndarray, oof: np.ndarray, types: np.ndarray) -> np.ndarray:
    """roost tune now: the best trial of each model type, then auto's bagged weights over those few."""
    return weighted(ye, oof, best_per_type(ye, oof, types))


def two_per_type(ye: np.ndarray, oof: np.ndarray, types: np.ndarray) -> np.ndarray:
    """The two best trials of each model type (out-of-fold), then auto's bagged weights over them."""
    s = np.asarray([auc(ye, p) for p in oof])
    picks = [int(j) for t in dict.fromkeys(types) for j in np.flatnonzero(types == t)[np.argsort(-s[types == t])[:2]]]
    return weighted(ye, oof, picks)


def top_k(k: int) -> Rule:
    def rule(ye: np.ndarray, oof: np.ndarray, types: np.ndarray) -> np.ndarray:
        s = np.asarray([auc(ye, p) for p in oof])
        return weighted(ye, oof, [int(j) for j in np.argsort(-s)[:k]])

    rule.__doc__ = f"The {k} best trials (out-of-fold), then bagged weights over them."
    return rule


def auto_defaults(ye: np.ndarray, oof: np.ndarray, types: np.ndarray) -> np.ndarray:
    """auto replayed: the first logreg, wide_deep and lightgbm trials (auto's default candidates), auto's weights."""
    first = [int(np.flatnonzero(types == t)[0]) for t in ("logreg", "wide_deep", "lightgbm") if (types == t).any()]
    return weighted(ye, oof, first)


def nested(ye: np.ndarray, oof: np.ndarray, types: np.ndarray) -> np.ndarray:
    """Pick among {auto, per_type, all} by cross-validating the rule itself on the out-of-fold rows (5 stratified
    parts: weights from four, scored on the fifth), then apply the winner to all rows."""
    from sklearn.model_selection import StratifiedKFold

    options = {"auto": auto_defaults, "per_type": per_type, "all": all_trials}
    scores = {}
    for name, rule in options.items():
        held = np.zeros(len(ye))
        for fit, out in StratifiedKFold(5, shuffle=True, random_state=1).split(oof.T, ye):
            w = rule(ye[fit], oof[:, fit], types)
            held[out] = w @ oof[:, out]
        scores[name] = auc(ye, held)
    return options[max(scores, key=scores.__getitem__)](ye, oof, types)


def _numbered(ye: np.ndarray, oof: np.ndarray, types: np.ndarray, numbers: np.ndarray) -> list[dict[str, Any]]:
    """The saved trials as tune's trial records (number, out-of-fold ROC-AUC as the value, model type)."""
    return [
        {"number": int(n), "value": auc(ye, p), "params": {"model.type": str(t)}}
        for n, p, t in zip(numbers, oof, types)
    ]


def starts_only(ye: np.ndarray, oof: np.ndarray, types: np.ndarray, numbers: np.ndarray) -> np.ndarray:
    """Where tune starts: the best start point (model defaults, the first START trials) of each type, weighed."""
    from roost.tune.cv import best_of_each_type

    trials = _numbered(ye, oof, types, numbers)
    first = [j for j, t in enumerate(trials) if t["number"] < START]
    kept, _ = best_of_each_type([trials[j] for j in first], [oof[j] for j in first], "maximize", "")
    return weighted(ye, oof, [numbers.tolist().index(t["number"]) for t in kept])


def keep_defaults(ye: np.ndarray, oof: np.ndarray, types: np.ndarray, numbers: np.ndarray) -> np.ndarray:
    """roost tune now (issue 36): per type, its best start point unless a tuned trial beats it on auto's folds by
    more than NOISE_K standard errors of the paired fold difference (tune.cv.beats_noise), then auto's weights."""
    from roost.training.ensemble import folds
    from roost.tune.cv import best_of_each_type, fold_scores

    splits = folds("binary", ye, 5, 0)  # auto's folds: 5, seeded by trainer.seed (0), over the same rows
    trials = _numbered(ye, oof, types, numbers)
    kept, _ = best_of_each_type(
        trials, list(oof), "maximize", "", START, lambda p: fold_scores("binary", "roc_auc", ye, p, splits)
    )
    return weighted(ye, oof, [numbers.tolist().index(t["number"]) for t in kept])


START = 6  # model auto's start points: the defaults of its 5 types, then LightGBM's library defaults
NUMBERED: dict[str, Callable[..., np.ndarray]] = {"start": starts_only, "keep_defaults": keep_defaults}

RULES: dict[str, Rule] = {
    "all": all_trials,
    "single": best_single,
    "per_type": per_type,
    "per_type2": two_per_type,
    "top3": top_k(3),
    "top5": top_k(5),
    "auto": auto_defaults,
    "nested": nested,
}


def reference(refs: dict[str, Any], table: str, seed: str | int) -> dict[str, Any]:
    """The cached references of one table and split seed (quality.cached_references keys "table/seed/rows")."""
    return dict(next(v for k, v in refs.items() if k.startswith(f"{table}/{seed}/")))


def cell(values: list[float]) -> str:
    """Mean ± s.e. for a Markdown cell (the mean alone for one value)."""
    m, se = mean_se(values)
    return f"{m:+.4f}" + (f" ± {se:.4f}" if se == se else "")


def replay(path: Path, refs: dict[str, Any]) -> dict[str, Any]:
    """Test ROC-AUC − best reference of each rule on one saved run."""
    z = np.load(path)
    table, seed = path.stem.rsplit("-", 1)
    ref = reference(refs, table, seed)
    best_ref = max(ref["ref_lightgbm"], ref["ref_logreg"])
    row: dict[str, Any] = {"table": table, "seed": int(seed), "trials": len(z["oof"]), "best_ref": best_ref}
    row.update(ref_lightgbm=ref["ref_lightgbm"], ref_logreg=ref["ref_logreg"])
    for name, rule in {**RULES, **NUMBERED}.items():
        w = (
            rule(z["ye"], z["oof"], z["types"], z["numbers"])
            if name in NUMBERED
            else rule(z["ye"], z["oof"], z["types"])
        )
        row[name] = auc(z["yt"], w @ z["test"]) - best_ref
        row[f"{name}_oof"] = auc(z["ye"], w @ z["oof"])
        row[f"{name}_n"] = int((w > 0).sum())
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", type=Path, default=BENCH_CACHE / "tune-trials")
    ap.add_argument("--refs", type=Path, default=BENCH_CACHE / "quality-references.json")
    ap.add_argument("--tables", default="")
    args = ap.parse_args(argv)
    refs = json.loads(args.refs.read_text())
    wanted = set(filter(None, args.tables.split(",")))
    rows = [replay(p, refs) for p in sorted(args.dir.glob("*.npz")) if not wanted or p.stem.rsplit("-", 1)[0] in wanted]
    for r in rows:
        print("  " + json.dumps(r), file=sys.stderr)
    names = [*RULES, *NUMBERED]
    print("| table | splits | " + " | ".join(f"{n} − best ref" for n in names) + " |")
    print("|---|---|" + "---|" * len(names))
    for t in dict.fromkeys(r["table"] for r in rows):
        rs = [r for r in rows if r["table"] == t]
        cells = [cell([r[n] for r in rs]) + f" ({np.mean([r[n + '_n'] for r in rs]):.0f})" for n in names]
        print(f"| {t} | {len(rs)} | " + " | ".join(cells) + " |")
    for n in names:
        ok = sum(
            mean_se([r[n] for r in rows if r["table"] == t])[0] >= 0 for t in dict.fromkeys(r["table"] for r in rows)
        )
        print(f"{n}: at or above the best reference on {ok} of {len({r['table'] for r in rows})} tables (mean)")
    print(better_reference_lines(rows, names))
    return 0


def better_reference_lines(rows: list[dict[str, Any]], names: list[str]) -> str:
    """Markdown: each rule's mean ± s.e. against the table's better reference (quality.better_reference: the one
    with the higher mean over the splits) instead of the larger of the two on each split."""
    lines = ["| table | better ref | " + " | ".join(f"{n} − better ref" for n in names) + " |"]
    lines.append("|---|---|" + "---|" * len(names))
    ok = dict.fromkeys(names, 0)
    tables = list(dict.fromkeys(r["table"] for r in rows))
    for t in tables:
        rs = [r for r in rows if r["table"] == t]
        ref = better_reference(rs)
        cells = []
        for n in names:
            diffs = [r[n] + r["best_ref"] - r[ref] for r in rs]
            ok[n] += mean_se(diffs)[0] >= 0
            cells.append(cell(diffs))
        lines.append(f"| {t} | {ref[4:]} | " + " | ".join(cells) + " |")
    lines += [f"{n}: at or above the table's better reference on {ok[n]} of {len(tables)} tables (mean)" for n in names]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
