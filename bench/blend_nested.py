"""Where `model: auto`'s blend loses on tables under 300 rows, and rules that cross-validate the blending step itself
(issue 36 item 3), replayed from bench/oof_replay.py's captures in seconds.

The blend weights are fitted on the candidates' out-of-fold (OOF) predictions and then judged on those same rows,
so the choice between "the fitted blend" and anything simpler is made on an in-sample score. Here the blending
procedure is itself cross-validated over the OOF rows (`nested`: fit the weights on 4/5 of the rows, blend the 5th
with them, repeat over the folds and over `REPEATS` reshufflings; one score of the pooled held-out blend), which
is as honest for a fitted procedure as a single candidate's OOF score is for that candidate.

Diagnosis (per split, binary ROC-AUC / regression RMSE relative to the better reference): each candidate's OOF and
test score, the blend's in-sample OOF score, its nested score and its test score, equal weights, the linear member.
Rules (each replayed on the `cv` arm's fold bag = the package auto ships, paired against today's rule):
- `nested_eq`: today's weights or equal weights, whichever has the better nested score;
- `nested_eq_lin`: the same among today's weights, equal weights and the linear member alone;
- `nested_all`: the same among today's weights, equal weights and every single candidate (its OOF score);
- `prior_eq`: today's weights only when their nested score beats equal weights' by more than one bootstrap s.e.
  of that difference (over the pooled nested rows), else equal weights;
- `prior_lin`: today's weights only when their nested score beats the linear member's OOF score by more than one
  s.e., else the linear member alone;
- `shrink_eq`: today's weights moved toward equal weights by the evidence: share of today's = clip(z / 2, 0, 1),
  z = (nested today − nested equal) / s.e.;
- `eq75`: three quarters of equal weights instead of half below 300 binary rows; `bags100`: 100 bootstrap bags
  instead of 20;
- `near1` / `near2`: the half-way target narrowed to equal weights over the candidates whose OOF ROC-AUC is within
  1 / 2 bootstrap s.e. of the best one's (the clearly worse ones lose their forced share);
- `logloss`: binary only, today's procedure with the greedy weights chosen by log loss instead of ROC-AUC
  (`logloss_pure`: without the half-way shrink; `logloss_others`: on the honest `others` OOF predictions).
The diagnosis also asks whether the OOF side predicts the test side: per split, the nested difference between
today's weights and equal weights (or the linear member) against the same difference on the test rows — sign
agreement and correlation, pooled and within tables (each table's mean removed).

    python bench/blend_nested.py --seeds 0,1,2,3,4,5,6,7,8,9      # both suites from .bench-cache/oof-replay
    python bench/blend_nested.py --linear-auc                      # logreg's C by ROC-AUC (captures ~2 s a split)
"""

from __future__ import annotations

import argparse
import math
import pickle
import sys
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from oof_replay import CACHE, gather, mean_se, metric, todays_weights

REPEATS = 3
SMALL = ("cats", "birthwt", "melanoma", "womenlf", "infert")

Proc = Callable[[str, np.ndarray, list[np.ndarray], int, int], list[float]]


def todays(
    task: str, y: np.ndarray, preds: list[np.ndarray], seed: int, n: int, share: float | None = None, bags: int = 20
) -> list[float]:
    """auto's weights on these rows, the half-way shrink decided by the full OOF row count `n` (`share` of equal
    weights below SHRINK_ROWS: auto's SHRINK unless given)."""
    from roost.training.auto_weights import SHRINK, SHRINK_ROWS
    from roost.training.ensemble import bagged_weights

    share = SHRINK if share is None else share
    w = bagged_weights(task, y, preds, bags=bags, seed=seed)
    if task == "binary" and n < SHRINK_ROWS:
        return [(1 - share) * wk + share / len(w) for wk in w]
    return w


def near_equal(task: str, y: np.ndarray, preds: list[np.ndarray], seed: int, n: int, z: float) -> list[float]:
    """today's procedure with the half-way target narrowed to equal weights over the candidates whose OOF score is
    within `z` bootstrap s.e. of the best one's (the others get no forced share)."""
    from roost.training.auto_weights import SHRINK, SHRINK_ROWS
    from roost.training.ensemble import bagged_weights, score

    w = bagged_weights(task, y, preds, seed=seed)
    if not (task == "binary" and n < SHRINK_ROWS):
        return w
    singles = np.array([score(task, y, p) for p in preds])
    best = int(np.argmax(singles))
    rng = np.random.default_rng(seed)
    groups = [np.flatnonzero(y == k) for k in np.unique(y)]
    diffs = []
    for _ in range(100):
        r = np.concatenate([rng.choice(g, len(g)) for g in groups])
        sb = np.array([score(task, y[r], p[r]) for p in preds])
        diffs.append(sb[best] - sb)
    se = np.std(diffs, axis=0, ddof=1)
    keep = [j for j in range(len(preds)) if j == best or singles[best] - singles[j] <= z * se[j]]
    return [(1 - SHRINK) * wk + SHRINK * (j in keep) / len(keep) for j, wk in enumerate(w)]


def equal(task: str, y: np.ndarray, preds: list[np.ndarray], seed: int, n: int) -> list[float]:
    """Equal weights."""
    return [1.0 / len(preds)] * len(preds)


def logloss_greedy(
    task: str, y: np.ndarray, preds: list[np.ndarray], seed: int, n: int, share: float | None = None
) -> list[float]:
    """today's procedure with the greedy passes scoring log loss (binary)."""
    from roost.metrics.overall import log_loss_binary
    from roost.training import ensemble

    orig = ensemble.score

    def ll(task: str, y: np.ndarray, out: np.ndarray) -> float:
        return -log_loss_binary(y, np.clip(out, 1e-6, 1 - 1e-6))  # higher is better, as ROC-AUC

    ensemble.score = ll  # the greedy passes look the metric up here; restored below
    try:
        return todays(task, y, preds, seed, n, share)
    finally:
        ensemble.score = orig


def folds(task: str, y: np.ndarray, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """5 stratified (binary) or plain folds over the OOF rows."""
    from roost.training.ensemble import folds as roost_folds

    return roost_folds(task, np.asarray(y), 5, seed)


def nested(task: str, y: np.ndarray, preds: list[np.ndarray], seed: int, proc: Proc) -> list[np.ndarray]:
    """Per repeat, the pooled held-out blend: `proc`'s weights fitted on 4/5 of the OOF rows blend the 5th."""
    out = []
    for r in range(REPEATS):
        p = np.zeros(len(y))
        for fit, held in folds(task, y, seed + 101 * (r + 1)):
            w = proc(task, y[fit], [q[fit] for q in preds], seed, len(y))
            p[held] = sum(wk * q[held] for wk, q in zip(w, preds))
        out.append(p)
    return out


def nested_cached(key: str, task: str, y: np.ndarray, preds: list[np.ndarray], seed: int, proc: Proc) -> list[Any]:
    """nested(), cached beside the capture."""
    f = CACHE / f"{key}-nested{REPEATS}.pkl"
    if f.exists():
        return list(pickle.loads(f.read_bytes()))
    v = nested(task, y, preds, seed, proc)
    f.write_bytes(pickle.dumps(v))
    return v


def gain(task: str, y: np.ndarray, a: list[np.ndarray], b: list[np.ndarray], boots: int = 200) -> tuple[float, float]:
    """(mean over repeats of score(a) − score(b), its bootstrap s.e. over rows), signed so that + favours `a`."""
    sign = 1.0 if task == "binary" else -1.0
    d = np.mean([sign * (metric(task, y, x) - metric(task, y, z)) for x, z in zip(a, b)])
    rng = np.random.default_rng(0)
    bs = []
    for _ in range(boots):
        r = rng.integers(0, len(y), len(y))
        if task == "binary" and len(np.unique(y[r])) < 2:
            continue
        bs.append(np.mean([sign * (metric(task, y[r], x[r]) - metric(task, y[r], z[r])) for x, z in zip(a, b)]))
    return float(d), float(np.std(bs, ddof=1)) if len(bs) > 1 else math.inf


def split_rules(
    suite: str, name: str, seed: int, cv: dict[str, Any]
) -> tuple[dict[str, list[float]], dict[str, float]]:
    """Each rule's weights on one split, and the diagnosis' OOF-side numbers."""
    task, cands, y = cv["task"], cv["cands"], cv["y"]
    preds = [cv["oof"][c]["own"] for c in cands]
    m, n, s = len(cands), len(y), cv["seed"]
    key = f"{suite}-{name}-{seed}"
    w_today = todays_weights(f"{key}-own", task, y, preds, s)
    w_eq = [1.0 / m] * m
    lin = cands.index("logreg")
    w_lin = [float(j == lin) for j in range(m)]
    nt = nested_cached(f"{key}-today", task, y, preds, s, todays)
    ne = [sum(wk * q for wk, q in zip(w_eq, preds))] * REPEATS
    nl = [preds[lin]] * REPEATS
    gf = CACHE / f"{key}-nested{REPEATS}-gains.pkl"
    if not gf.exists():
        gf.write_bytes(pickle.dumps((*gain(task, y, nt, ne), *gain(task, y, nt, nl))))
    g_eq, se_eq, g_lin, se_lin = pickle.loads(gf.read_bytes())
    rules: dict[str, list[float]] = {"today": w_today, "equal": w_eq, "linear": w_lin}
    rules["nested_eq"] = w_today if g_eq >= 0 else w_eq
    best3 = max([(0.0, w_today), (-g_eq, w_eq), (-g_lin, w_lin)], key=lambda t: t[0])
    rules["nested_eq_lin"] = best3[1]
    sgn = 1.0 if task == "binary" else -1.0
    nested_today = float(np.mean([sgn * metric(task, y, p) for p in nt]))
    menu = [(nested_today, w_today), (sgn * metric(task, y, ne[0]), w_eq)]
    menu += [(sgn * metric(task, y, p), [float(j == k) for j in range(m)]) for k, p in enumerate(preds)]
    rules["nested_all"] = max(menu, key=lambda t: t[0])[1]  # ties: the earlier entry (today's weights first)
    rules["prior_eq"] = w_today if g_eq > se_eq else w_eq
    rules["prior_lin"] = w_today if g_lin > se_lin else w_lin
    lam = float(np.clip(g_eq / (2 * se_eq), 0.0, 1.0)) if se_eq > 0 else 1.0
    rules["shrink_eq"] = [lam * a + (1 - lam) * b for a, b in zip(w_today, w_eq)]
    variants: dict[str, tuple[str, Callable[..., list[float]]]] = {
        "eq75": ("own", lambda y, p: todays(task, y, p, s, n, share=0.75)),
        "bags100": ("own", lambda y, p: todays(task, y, p, s, n, bags=100)),
        "near1": ("own", lambda y, p: near_equal(task, y, p, s, n, 1.0)),
        "near2": ("own", lambda y, p: near_equal(task, y, p, s, n, 2.0)),
    }
    if task == "binary":
        variants["logloss"] = ("own", lambda y, p: logloss_greedy(task, y, p, s, n))
        variants["logloss_pure"] = ("own", lambda y, p: logloss_greedy(task, y, p, s, n, share=0.0))
        variants["logloss_others"] = ("others", lambda y, p: logloss_greedy(task, y, p, s, n))
    for vn, (kind, fn) in variants.items():
        f = CACHE / f"{key}-{kind}-{vn}-weights.pkl"
        if not f.exists():
            f.write_bytes(pickle.dumps(fn(y, [cv["oof"][c][kind] for c in cands])))
        rules[vn] = list(pickle.loads(f.read_bytes()))
    sign = 1.0 if task == "binary" else -1.0
    blend_oof = sum(wk * q for wk, q in zip(w_today, preds))
    diag = {
        "oof_blend": metric(task, y, blend_oof),  # in-sample: the weights were fitted on these rows
        "nested_blend": float(np.mean([metric(task, y, p) for p in nt])),
        "oof_equal": metric(task, y, ne[0]),
        "oof_linear": metric(task, y, preds[lin]),
        "oof_best_single": max(sign * metric(task, y, p) for p in preds) * sign,
        "g_eq": g_eq,
        "se_eq": se_eq,
        "g_lin": g_lin,
        "se_lin": se_lin,
    }
    return rules, diag


def run(suite: str, seeds: list[int]) -> list[str]:
    """The diagnosis and the rules' paired comparison for one suite."""
    from oof_replay import suite_tables
    from scipy.stats import wilcoxon

    rows = gather(suite, list(suite_tables(suite)), seeds, Path(tempfile.mkdtemp()), False)
    sign = 1.0 if suite == "binary" else -1.0
    per: dict[str, dict[str, list[float]]] = {}  # table -> rule -> test score relative to the better reference
    diag: dict[str, dict[str, list[float]]] = {}
    for name, seed, refs, arms in rows:
        cv = arms["cv"]
        task, cands = cv["task"], cv["cands"]
        best = max(refs.values()) if task == "binary" else min(refs.values())

        def rel(p: np.ndarray) -> float:
            s = metric(task, cv["yt"], p)
            return s - best if task == "binary" else s / best

        rules, dg = split_rules(suite, name, seed, cv)
        cols = per.setdefault(name, {})
        for rn, w in rules.items():
            cols.setdefault(rn, []).append(rel(sum(wk * cv["test"][c] for wk, c in zip(w, cands))))
        d = diag.setdefault(name, {})
        for k, v in dg.items():
            d.setdefault(k, []).append(v)
        d.setdefault("test_blend", []).append(
            metric(task, cv["yt"], sum(wk * cv["test"][c] for wk, c in zip(rules["today"], cands)))
        )
        d.setdefault("test_linear", []).append(metric(task, cv["yt"], cv["test"]["logreg"]))
        d.setdefault("test_equal", []).append(metric(task, cv["yt"], sum(cv["test"][c] for c in cands) / len(cands)))
        unit = 1.0 if task == "binary" else best  # regression differences as shares of the better reference's RMSE
        d.setdefault("t_eq", []).append(sign * (d["test_blend"][-1] - d["test_equal"][-1]) / unit)
        d.setdefault("t_lin", []).append(sign * (d["test_blend"][-1] - d["test_linear"][-1]) / unit)
        d.setdefault("n_eq", []).append(dg["g_eq"] / unit)
        d.setdefault("n_lin", []).append(dg["g_lin"] / unit)
        d.setdefault("opt", []).append(sign * (dg["oof_blend"] - dg["nested_blend"]) / unit)
    out = [f"{suite}: {len(rows)} splits; diagnosis (means over splits; raw metric)"]
    out.append(
        "  table        oof_blend nested_blend oof_equal oof_linear oof_best | test_blend test_equal test_linear"
        " | nested today−equal (s.e.)  today−linear (s.e.)"
    )
    for t, d in diag.items():
        mm = {k: float(np.mean(v)) for k, v in d.items()}
        out.append(
            f"  {t:12} {mm['oof_blend']:.4f}   {mm['nested_blend']:.4f}      {mm['oof_equal']:.4f}   "
            f"{mm['oof_linear']:.4f}    {mm['oof_best_single']:.4f} | {mm['test_blend']:.4f}     "
            f"{mm['test_equal']:.4f}     {mm['test_linear']:.4f}     | {mm['g_eq']:+.4f} ({mm['se_eq']:.4f})"
            f"  {mm['g_lin']:+.4f} ({mm['se_lin']:.4f})"
        )
    out.append("  does the nested (OOF-side) difference predict the test one? (+ favours today's weights)")
    for g, ts in {"small5": [t for t in diag if t in SMALL], "rest": [t for t in diag if t not in SMALL]}.items():
        if not ts:
            continue
        opt = [x for t in ts for x in diag[t]["opt"]]
        for other in ("eq", "lin"):
            nd = np.array([x for t in ts for x in diag[t][f"n_{other}"]])
            td = np.array([x for t in ts for x in diag[t][f"t_{other}"]])
            agree = float(np.mean(np.sign(nd) == np.sign(td)))
            r = float(np.corrcoef(nd, td)[0, 1]) if nd.std() > 0 and td.std() > 0 else math.nan
            # within tables: each table's mean taken out, so that differences between tables do not count
            nw = np.concatenate([np.subtract(diag[t][f"n_{other}"], np.mean(diag[t][f"n_{other}"])) for t in ts])
            tw = np.concatenate([np.subtract(diag[t][f"t_{other}"], np.mean(diag[t][f"t_{other}"])) for t in ts])
            rw = float(np.corrcoef(nw, tw)[0, 1]) if nw.std() > 0 and tw.std() > 0 else math.nan
            out.append(
                f"    {g:6} today−{other:3}: nested {np.mean(nd):+.4f}, test {np.mean(td):+.4f}"
                f" ± {mean_se(list(td))[1]:.4f};"
                f" same sign on {agree:.0%} of {len(nd)} splits, correlation {r:+.2f} (within tables {rw:+.2f})"
            )
        out.append(
            f"    {g:6} in-sample optimism of the fitted weights (OOF − nested):"
            f" {mean_se(opt)[0]:+.4f} ± {mean_se(opt)[1]:.4f}"
        )
    out.append("  rules, test score relative to the better reference; rule − today paired (mean ± s.e.), better/worse:")
    names = list(next(iter(per.values())))
    groups = {"all": list(per), "small5": [t for t in per if t in SMALL], "rest": [t for t in per if t not in SMALL]}
    for rn in names:
        cells = []
        for g, ts in groups.items():
            d = [a - b for t in ts for a, b in zip(per[t][rn], per[t]["today"])]
            if not d:
                continue
            dm, ds = mean_se(d)
            w, lo = sum(sign * x > 1e-12 for x in d), sum(sign * x < -1e-12 for x in d)
            nz = [x for x in d if abs(x) > 1e-12]
            pw = float(wilcoxon(nz).pvalue) if len(nz) > 5 else math.nan
            cells.append(f"{g} {dm:+.4f} ± {ds:.4f} {w}/{lo} p {pw:.2f}")
        per_t = {t: float(np.mean([a - b for a, b in zip(per[t][rn], per[t]["today"])])) for t in per}
        worst = min(per_t.items(), key=lambda kv: sign * kv[1])
        v = [x for t in per for x in per[t][rn]]
        out.append(f"    {rn:14} {np.mean(v):+.4f} | " + " | ".join(cells) + f" | worst {worst[0]} {worst[1]:+.4f}")
    out.append("  per table (rule − today):")
    for t in per:
        out.append(
            f"    {t:12} today {np.mean(per[t]['today']):+.4f}: "
            + ", ".join(
                f"{rn} {np.mean([a - b for a, b in zip(per[t][rn], per[t]['today'])]):+.4f}" for rn in names[1:]
            )
        )
    return out


def linear_auc(seeds: list[int]) -> list[str]:
    """`--linear-auc`: roost's convex `logreg` re-captured alone with its C chosen by ROC-AUC instead of log loss (the
    same folds and rows as the cached `cv` capture), swapped into today's blend; paired against today."""
    import os
    import time

    import oof_replay as R
    import sklearn.linear_model as lm
    from scipy.stats import wilcoxon
    from small_tables import TABLES

    from roost.training import auto
    from roost.training.auto_weights import blend_weights

    orig_cv, orig_cands = lm.LogisticRegressionCV, auto.table_candidates

    def by_auc(**kw: Any) -> Any:
        return orig_cv(**{**kw, "scoring": "roc_auc"})

    tmp = Path(tempfile.mkdtemp())
    R.ARMS["auclin"] = {}
    diffs: dict[str, dict[str, list[float]]] = {}
    for seed in seeds:
        for t in TABLES:
            f = CACHE / f"binary-{t}-{seed}-auclin.pkl"
            if not f.exists():
                lm.LogisticRegressionCV, auto.table_candidates = by_auc, lambda *a, **k: ["logreg"]
                try:
                    t0 = time.perf_counter()
                    rec = R.capture(t, "binary", seed, "auclin", tmp)
                finally:
                    lm.LogisticRegressionCV, auto.table_candidates = orig_cv, orig_cands
                oof = next(iter(rec["oof"]["logreg"].values()))
                f.write_bytes(pickle.dumps({"oof": oof, "test": rec["test"]["logreg"], "y": rec["y"]}))
                took, load = time.perf_counter() - t0, os.getloadavg()[0]
                print(f"  captured {t} seed {seed}: {took:.1f} s, load {load:.1f}", file=sys.stderr)
            cv = R.load(t, "binary", seed, "cv", tmp, run=False)
            if cv is None:
                continue
            a = pickle.loads(f.read_bytes())
            cands, y, yt = cv["cands"], cv["y"], cv["yt"]
            w0 = todays_weights(f"binary-{t}-{seed}-own", "binary", y, [cv["oof"][c]["own"] for c in cands], cv["seed"])
            w1 = blend_weights(
                "binary", y, [a["oof"] if c == "logreg" else cv["oof"][c]["own"] for c in cands], True, cv["seed"]
            )
            t1 = {c: a["test"] if c == "logreg" else cv["test"][c] for c in cands}
            d = diffs.setdefault(t, {"blend": [], "linear member": []})
            d["blend"].append(
                metric("binary", yt, sum(wk * t1[c] for wk, c in zip(w1, cands)))
                - metric("binary", yt, sum(wk * cv["test"][c] for wk, c in zip(w0, cands)))
            )
            d["linear member"].append(metric("binary", yt, a["test"]) - metric("binary", yt, cv["test"]["logreg"]))
    out = ["binary: roost's logreg with C by ROC-AUC − today (test ROC-AUC, paired, mean ± s.e.)"]
    for t, d in diffs.items():
        out.append(f"  {t:13} " + ", ".join(f"{k} {mean_se(v)[0]:+.4f} ± {mean_se(v)[1]:.4f}" for k, v in d.items()))
    for g, ts in {"small5": [t for t in diffs if t in SMALL], "rest": [t for t in diffs if t not in SMALL]}.items():
        for k in ("blend", "linear member"):
            v = [x for t in ts for x in diffs[t][k]]
            nz = [x for x in v if abs(x) > 1e-12]
            pw = float(wilcoxon(nz).pvalue) if len(nz) > 5 else math.nan
            m, se = mean_se(v)
            out.append(
                f"  {g:6} {k:13} {m:+.4f} ± {se:.4f} ({sum(x > 0 for x in nz)}/{sum(x < 0 for x in nz)}, p {pw:.2f})"
            )
    return out


def main(argv: list[str] | None = None) -> int:
    """Print the diagnosis and the rules for the cached captures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--suite", choices=["regression", "binary", "both"], default="both")
    ap.add_argument("--seeds", default="0,1,2,3,4,5,6,7,8,9")
    ap.add_argument("--linear-auc", action="store_true", help="only: the linear candidate's C chosen by ROC-AUC")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    seeds = [int(s) for s in args.seeds.split(",")]
    if args.linear_auc:
        print("\n".join(linear_auc(seeds)), flush=True)
        return 0
    for suite in ("binary", "regression") if args.suite == "both" else (args.suite,):
        print("\n".join(run(suite, seeds)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
