"""Replay `model: auto` on the multiclass suite, offline, per candidate (issue 36 item 5: digits' log loss gap).

Capture (once per table × split seed, cached as pickles; candidates captured later are merged in): auto's own
selection code (auto.prepare, candidate_config, build_model, auto_select.select: the default folds and seed, no time
budget, no refit, no child runs or export) on roost's split `split: {method: random, seed: S}`. Per candidate: its
out-of-fold class probabilities over the training + validation rows, the mean of its fold models' probabilities on
the test rows (the fold bag), its fit seconds. Probe candidates (PROBES: LightGBM settings under a name) are
registered as auto variants for the run, so they train exactly as a shipped variant would.
Replay (seconds): a candidate set's blend weights from auto_weights.blend_weights (today's rule) on the
out-of-fold probabilities; the weighted fold bags scored by log loss on the test rows and divided by the best of
bench/quality.py's three references on the same split (multinomial LogisticRegressionCV, `LGBMClassifier()`,
Optuna-tuned LightGBM; cached in .bench-cache/quality-references.json). Per table: each candidate alone (out-of-fold
and test log loss), the blend, and each probe set's paired difference from the default set (mean ± s.e.).

    python bench/multiclass_replay.py --seeds 0,1,2                                   # the default candidates
    python bench/multiclass_replay.py --seeds 0,1,2 --sets 'lightgbm=bag_small'       # a probe in lightgbm's place
"""

from __future__ import annotations

import argparse
import pickle
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from _common import BENCH_CACHE

sys.path.insert(0, str(Path(__file__).parent))
import quality as Q
from quality_tasks import metric
from regression_replay import cached_capture, timed_maker

TABLES = ("fishing", "beps", "digits", "yogurt", "chile", "cracker")
CACHE = BENCH_CACHE / "multiclass-replay"
_SMALL = {"num_leaves": 7, "min_child_samples": 20, "learning_rate": 0.03, "colsample_bytree": 0.5, "reg_lambda": 1.0}
_USUAL = {"num_leaves": 31, "min_child_samples": 20, "learning_rate": 0.05, "colsample_bytree": 1.0, "reg_lambda": 0.0}
# probe name: LightGBM parameters (10,000 rounds cap, early stopping 50 as auto's LightGBM candidates)
PROBES: dict[str, dict[str, Any]] = {
    "bag_small": {**_SMALL, "subsample": 0.7},
    "bag_deep": {**_USUAL, "subsample": 0.7, "colsample_bytree": 0.5},
    "mid_bag": {**_SMALL, "num_leaves": 15, "min_child_samples": 10, "subsample": 0.7},
    "deep_cs": {**_USUAL, "colsample_bytree": 0.5},
    "bag_deep5": {**_USUAL, "subsample": 0.5, "colsample_bytree": 0.5},
    "bag_deep8": {**_USUAL, "subsample": 0.8, "colsample_bytree": 0.5},
    "bag_deep_mcs10": {**_USUAL, "subsample": 0.7, "colsample_bytree": 0.5, "min_child_samples": 10},
    # large leaves of a few rows (AutoGluon's "GBMLarge" settings), and the same bagged
    "large": {**_USUAL, "num_leaves": 128, "min_child_samples": 3, "learning_rate": 0.03, "colsample_bytree": 0.9},
}
PROBES["large_bag"] = {**PROBES["large"], "subsample": 0.7}  # = the shipped lightgbm_large


def register_probes() -> None:
    """PROBES as auto variants (auto_candidates.VARIANTS) for this process."""
    from roost.training.auto_candidates import VARIANTS

    for name, p in PROBES.items():
        VARIANTS[name] = ("lightgbm", {"n_estimators": 10_000, "early_stopping_rounds": 50, "subsample": 1.0, **p})


def capture(name: str, seed: int, cands: list[str], tmp: Path) -> dict[str, Any]:
    """`cands` cross-validated by auto's own select() on the table's split `seed`."""
    from roost.datasets.suite import LABEL, load_table
    from roost.training.auto import options, prepare
    from roost.training.auto_select import select
    from roost.training.preprocess import encode_labels

    path = tmp / f"{name}.parquet"
    if not path.exists():
        load_table(name).to_parquet(path)
    params = {"candidates": cands, "refit": False}
    cfg = {"data": str(path), "label": LABEL, "task": "multiclass", "split": {"method": "random", "seed": seed}}
    conf, task, spec, parts = prepare({**cfg, "model": {"type": "auto", "params": params}, "time_budget": "none"})
    rest = pd.concat([parts[0], parts[1]])
    y, classes = encode_labels(rest[LABEL], task)
    secs = dict.fromkeys(cands, 0.0)
    make = timed_maker(conf, task, len(spec.columns), secs)
    fitted = [(c, type("Child", (), {"classes_": list(classes)})()) for c in cands]
    sel = select(task, LABEL, spec, parts, fitted, options(conf), make, conf.trainer.seed)
    Xt = parts[2].drop(columns=[LABEL])
    return {
        "y": np.asarray(y),
        "yt": np.asarray(encode_labels(parts[2][LABEL], task, list(classes))[0]),
        "oof": {c: np.asarray(sel.cv[c][0], dtype=np.float64) for c in cands},
        "test": {
            c: np.mean([np.asarray(m.predict(Xt), dtype=np.float64) for m in sel.cv[c][1]], axis=0) for c in cands
        },
        "rounds": {c: [int(getattr(m, "best_iteration_", 0) or 0) for m in sel.cv[c][1]] for c in cands},
        "seconds": secs,
        "seed": conf.trainer.seed,
    }


def load(name: str, seed: int, cands: list[str], tmp: Path) -> dict[str, Any]:
    """The cached capture with every one of `cands` (missing ones captured and merged in)."""
    return cached_capture(
        CACHE / f"{name}-{seed}.pkl",
        cands,
        lambda missing: capture(name, seed, missing, tmp),
        f"{name} seed {seed}",
        ("oof", "test", "seconds", "rounds"),
    )


def logloss(y: np.ndarray, P: np.ndarray) -> float:
    """Multiclass log loss of the class probabilities P (columns = the encoded classes 0..K-1), as bench/quality.py
    scores the references (quality_tasks.metric)."""
    return metric("multiclass", np.asarray(y, dtype=int), P, list(range(np.shape(P)[1])))


def best_reference(name: str, seed: int, cache: Path) -> float:
    """The best reference's test log loss on this split (bench/quality.py's cache; computed when missing)."""
    from roost.datasets.suite import LABEL, load_table

    refs = Q.cached_references(load_table(name), LABEL, name, seed, cache, "multiclass")
    return float(min(refs["ref_linear"], refs["ref_lgbm_defaults"], refs["ref_lightgbm"]))


def blend(rec: dict[str, Any], names: list[str]) -> tuple[float, list[float]]:
    """Test log loss of today's blend rule over `names`, and its weights."""
    from roost.training.auto_weights import blend_weights

    w = blend_weights("multiclass", rec["y"], [rec["oof"][n] for n in names], True, rec["seed"])
    return logloss(rec["yt"], sum(wk * rec["test"][n] for wk, n in zip(w, names))), list(w)


def parse_sets(text: str, base: list[str]) -> dict[str, list[str]]:
    """'a=b;c=d,e=f' → sets: each `;` part a candidate set, `x=y` replacing x by y, `+y` adding y."""
    out: dict[str, list[str]] = {}
    for part in [p for p in text.split(";") if p]:
        names = list(base)
        for op in part.split(","):
            if op.startswith("+"):
                names.append(op[1:])
            elif op.startswith("-"):
                names.remove(op[1:])
            else:
                old, new = op.split("=")
                names = [new if n == old else n for n in names]
        out[part] = names
    return out


def main(argv: list[str] | None = None) -> int:
    """Capture what is missing, then print per-candidate and blend ratios."""
    from roost.training.auto_candidates import DEFAULT_CANDIDATES, table_candidates

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tables", default=",".join(TABLES))
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--sets", default="", help="candidate sets vs the defaults: 'lightgbm=bag_small;+bag_deep'")
    ap.add_argument("--refs", type=Path, default=BENCH_CACHE / "quality-references.json")
    ap.add_argument("--no-capture", action="store_true", help="report only what is cached")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    register_probes()
    tmp = Path(tempfile.mkdtemp(prefix="multiclass-replay-"))
    seeds = [int(s) for s in args.seeds.split(",")]
    from roost.datasets.suite import load_table

    base_by: dict[str, list[str]] = {}
    sets_by: dict[str, dict[str, list[str]]] = {}
    rows: dict[str, list[tuple[float, dict[str, Any]]]] = {}
    for seed in seeds:
        for name in args.tables.split(","):
            n_train = int(len(load_table(name)) * 0.8 * 0.9)
            base = table_candidates(list(DEFAULT_CANDIDATES), n_train, 0, task="multiclass")
            sets = parse_sets(args.sets, base)
            need = list(dict.fromkeys([*base, *(n for s in sets.values() for n in s)]))
            f = CACHE / f"{name}-{seed}.pkl"
            if args.no_capture:
                if not f.exists():
                    continue
                rec = pickle.loads(f.read_bytes())
                if any(n not in rec["oof"] for n in need):
                    continue
            else:
                rec = load(name, seed, need, tmp)
            base_by[name], sets_by[name] = base, sets
            rows.setdefault(name, []).append((best_reference(name, seed, args.refs), rec))
    pooled: dict[str, list[float]] = {}
    for name, recs in rows.items():
        base = base_by[name]
        print(f"{name} ({len(recs)} splits): out-of-fold / test log loss, test / best reference; fit s")
        cands = list(dict.fromkeys([*base, *(n for s in sets_by[name].values() for n in s)]))
        for c in cands:
            oof = np.mean([logloss(r["y"], r["oof"][c]) for _, r in recs])
            te = [logloss(r["yt"], r["test"][c]) / b for b, r in recs]
            rounds = np.mean([np.mean(r["rounds"][c]) for _, r in recs])
            sec = np.mean([r["seconds"][c] for _, r in recs])
            print(f"  {c:18} oof {oof:.4f}  test/best {np.mean(te):.4f}  rounds {rounds:6.0f}  {sec:6.1f} s")
        ref = [blend(r, base)[0] / b for b, r in recs]
        w = np.mean([blend(r, base)[1] for _, r in recs], axis=0)
        print(
            f"  blend defaults     {np.mean(ref):.4f} ± {Q.mean_se(ref)[1]:.4f}  weights "
            + ", ".join(f"{n} {x:.2f}" for n, x in zip(base, w))
        )
        pooled.setdefault("defaults", []).extend(ref)
        for label, names in sets_by[name].items():
            v = [blend(r, names)[0] / b for b, r in recs]
            d = [a - z for a, z in zip(v, ref)]
            w = np.mean([blend(r, names)[1] for _, r in recs], axis=0)
            print(
                f"  blend {label:30} {np.mean(v):.4f}  {Q.mean_se(d)[0]:+.4f} ± {Q.mean_se(d)[1]:.4f}  weights "
                + ", ".join(f"{n} {x:.2f}" for n, x in zip(names, w))
            )
            pooled.setdefault(label, []).extend(v)
    print("pooled (all tables × splits): mean ratio, paired difference from defaults")
    for label, v in pooled.items():
        d = [a - z for a, z in zip(v, pooled["defaults"])]
        print(
            f"  {label:36} {np.mean(v):.4f}  {Q.mean_se(d)[0]:+.4f} ± {Q.mean_se(d)[1]:.4f}  max "
            f"{max(v):.4f}  (n {len(v)})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
