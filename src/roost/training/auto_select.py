"""`model: auto`'s selection: cross-validate the candidates the budget plan keeps, weigh them, refit on all rows.

The weights and the held-out metrics come from the training+validation rows' folds; with `refit` (the default when
the budget allows) the kept candidates' fold models are fitted again over every row, test rows included, and that
blend is the package: the reported test metric is then the held-out estimate of the same procedure run on the
training+validation rows (bench/RESULTS.md, issue 36: refitting on all rows gained +0.0031 ± 0.0013 ROC-AUC);
a convex member (Estimator.refit_once: the linear candidate) is fitted once on every row instead.
Opt-in (`repeats`, `inner_stop`; "auto": below REPEAT_ROWS rows): repeated rounds of folds, each row's out-of-fold
prediction averaged over them, and fold models that early-stop on an inner split of their training rows, never on
the fold that scores them (off by default until bench/small_tables.py shows a gain). Opt-in (`oof_rounds:
others`): each early-stopped fold model scored out of fold at the other folds' mean best round (ensemble.cross_fit;
no gain measured over 60 regression and 130 small binary splits, bench/oof_replay.py).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from roost.training.auto_weights import blend_weights as blend_weights
from roost.training.auto_weights import with_children
from roost.training.budget import SAFETY, Budget, Plan, candidate_values, deadline, final_reserve, plan
from roost.training.budget_schedule import Schedule

log = logging.getLogger(__name__)
# A refit fold model fits (k-1)/k of all rows; a fold model (k-1)/k of the training+validation rows.
MakeModel = Callable[[str, int], Any]
# Small tables (< REPEAT_ROWS cross-validation rows) with repeats/inner_stop "auto": repeated folds and early
# stopping on an inner split (issue 36 item 3: out-of-fold scores of 17-38-row folds, each fold model stopping
# on the fold that scores it, misled the blend by -0.026 and -0.037 ROC-AUC on two tables under 200 rows).
REPEAT_ROWS = 1000
MAX_REPEATS = 5
INNER_SHARE = 0.2  # of a fold's training rows, held out for its early stopping


@dataclass
class Selection:
    """What select() chose: the final model (a Blend, or (type, child model) on the validation path), its held-out
    val_* metrics, the criterion, the weights, the held-out blend (when `final` is a refit) and what was skipped;
    `cv`: every cross-validated candidate's (out-of-fold predictions over the training then validation rows, fold
    models), weighted or not (what bench/regression_replay.py replays blending rules on)."""

    final: Any
    held: dict[str, float]
    criterion: str
    weights: dict[str, float]
    heldout: Any = None
    refit: str = ""
    skipped: list[str] = field(default_factory=list)
    extra: dict[str, float] = field(default_factory=dict)
    cv: dict[str, tuple[Any, list[Any]]] = field(default_factory=dict)


@dataclass(frozen=True)
class Costs:
    """The children's measured seconds per candidate: one fit on the training rows, its package export."""

    fit: dict[str, float]
    export: dict[str, float]
    scores: dict[str, float]


def select(
    task: str,
    label: str,
    spec: Any,
    parts: tuple[Any, Any, Any],
    fitted: list[tuple[str, Any]],
    opts: Any,
    make: MakeModel,
    seed: int,
    budget: Budget | None = None,
    costs: Costs | None = None,
) -> Selection:
    """Cross-validate the candidates the budget's plan keeps (all without a budget), weigh them on their out-of-fold
    predictions, refit the kept ones on all rows when planned; the validation path without folds."""

    from roost.metrics import overall as M
    from roost.training.ensemble import encoded, repeated_folds

    train_df, val_df, _ = parts
    names = [n for n, _ in fitted]
    classes = list(fitted[0][1].classes_)
    primary, mode = M.PRIMARY[task]
    budget = budget or Budget(None)
    splits = cv_folds(label, task, parts, classes, opts, seed)
    sizes = (len(parts[0]), len(parts[0]) + len(parts[1]), len(parts[2]))
    kept_s = 0.0
    if budget.seconds is not None and costs is not None:
        kept_s = _kept(budget, costs, fitted, opts)
        nets = {n for n, m in fitted if getattr(m, "framework", "") == "torch"}  # their exports are in kept_s
        costs = Costs(costs.fit, {n: 0.0 if n in nets else e for n, e in costs.export.items()}, costs.scores)
    chosen, reps = _plan_repeats(budget, costs, names, opts, len(splits), mode, sizes, kept_s)
    refit = bool(getattr(opts, "refit", True))
    if splits and chosen.cv:
        if chosen.folds != len(splits):
            splits = cv_folds(label, task, parts, classes, opts, seed, chosen.folds)
        k = len(splits)
        X, y = cv_rows(parts, label)
        ye = encoded(y, task, classes)
        n_fit = fit_rows(len(X), splits)
        if reps > 1:
            splits = repeated_folds(task, ye, k, seed, reps)
        inner = (INNER_SHARE, None if task == "regression" else ye, seed) if inner_stop(opts, len(X)) else None
        oof_at = getattr(opts, "oof_rounds", "own")
        preds: list[Any] = []
        bags: list[list[Any]] = []
        done: list[str] = []
        rounds = f"{k}-fold" + (f" × {reps}" if reps > 1 else "")
        sched = _schedule(budget, costs, names, len(splits), (mode, refit, reps), sizes, fitted, kept_s)
        for s in chosen.skipped:
            if s.startswith("folds "):
                budget.skip(s)
        while (name := sched.next()) is not None:
            budget.step(f"{rounds} cross-validation of {name} (estimated {sched.estimate(name):.0f} s)")
            out = _cross_validate(sched, partial(make, name, n_fit), X, y, spec, splits, inner, oof_at)
            if out is None:
                continue
            done.append(name)
            preds.append(out[0])
            bags.append(out[1])
        for s in sched.skipped():
            budget.skip(s)
        if not done:  # nothing cross-validated after all: weigh the children on the validation rows
            return _on_validation(task, label, parts, fitted, opts, seed, budget)
        order = {n: j for j, n in enumerate(names)}  # the blend in the candidates' order, however they ran
        ranked = sorted(range(len(done)), key=lambda j: order[done[j]])
        done, preds, bags = [done[j] for j in ranked], [preds[j] for j in ranked], [bags[j] for j in ranked]
        spent = dict(sched.spent)
        w = blend_weights(task, ye, preds, opts.ensemble, seed)
        rest = [(n, m) for n, m in fitted if n not in done]
        mixed = with_children(task, label, parts, (done, bags, preds), rest, ye, opts, seed) if rest else None
        if mixed is not None:  # a child the budget kept out of cross-validation weighs in: no refit
            if refit:
                budget.skip("refit on all rows (the blend holds children weighed on the validation rows)")
            log.info("auto: weights %s by %s", mixed[3], mixed[2])
            return Selection(*mixed, skipped=list(budget.skipped))
        final, held = bag_blend(task, done, bags, w, ye, preds)
        weights = dict.fromkeys(names, 0.0) | {n: float(wk) for n, wk in zip(done, w)}
        stops = ", early stopping on an inner split" if inner is not None else ""
        stops += ", scored at the other folds' best rounds" if inner is None and oof_at == "others" else ""
        crit = f"{rounds} out-of-fold {primary} (training + validation rows{stops})"
        sel = Selection(final, held, crit, weights, extra={"auto.cv_repeats": float(reps)})
        sel.cv = {n: (p, bag) for n, p, bag in zip(done, preds, bags)}
        if refit:  # when it fits now (_refit), whatever the first plan expected
            spent = {n: t / reps for n, t in spent.items()}  # the refit fits one round of folds
            _refit(sel, task, label, spec, parts, classes, (k, seed, n_fit), make, budget, costs, spent, kept_s)
        sel.skipped = list(budget.skipped)
        log.info("auto: weights %s by %s: %s %.5f", weights, crit, primary, held.get(f"val_{primary}", float("nan")))
        return sel
    for s in chosen.skipped:
        budget.skip(s)
    return _on_validation(task, label, parts, fitted, opts, seed, budget)


def _schedule(
    budget: Budget,
    costs: Costs | None,
    names: list[str],
    fits: int,
    how: tuple[str, bool, int],
    sizes: tuple[int, int, int],
    fitted: list[tuple[str, Any]],
    held: float = 0.0,
) -> Schedule:
    """The budget's schedule of the candidates' cross-validation (budget_schedule): `fits` fold models each, the
    estimates from the children's fits scaled by rows; `how`: (the metric's mode, refit allowed, rounds of folds).
    Without a budget (or costs) every candidate fits, in the candidates' order."""
    mode, refit, reps = how
    n_train, n_cv, n_test = sizes
    k = max(1, fits // max(reps, 1))
    if budget.seconds is None or costs is None:
        zero = dict.fromkeys(names, 0.0)
        values = {n: 1.0 - j / (len(names) + 1) for j, n in enumerate(names)}  # in order, all of them
        return Schedule(budget, zero, values, fits, refit=refit)
    fold_costs = {n: costs.fit.get(n, 0.0) * fit_share(n_cv, k) / max(n_train, 1) for n in names}
    values = candidate_values(mode, {n: costs.scores.get(n, float("nan")) for n in names})
    kinds = {n: str(getattr(m, "model_type", n)) for n, m in fitted}  # LightGBM variants: one kind
    return Schedule(
        budget,
        fold_costs,
        values,
        fits,
        exports={n: costs.export.get(n, 0.0) for n in names},
        refit_ratio=(n_cv + n_test) / max(n_cv, 1),
        refit=refit,
        kinds=kinds,
        held=held,
    )


def _kept(budget: Budget, costs: Costs, fitted: list[tuple[str, Any]], opts: Any) -> float:
    """Seconds kept free for the final package: its last steps (budget.final_reserve) and one export per network
    candidate (a child or its fold networks: one graph either way; Costs.export holds its share per fold model)."""
    frameworks = {str(getattr(m, "framework", n)) for n, m in fitted}
    nets = [n for n, m in fitted if getattr(m, "framework", "") == "torch"]
    folds = max(int(getattr(opts, "folds", 1) or 1), 1)
    return final_reserve(frameworks, budget.contention()) + sum(costs.export.get(n, 0.0) * folds for n in nets)


def _cross_validate(
    sched: Schedule,
    make: Callable[[], Any],
    X: Any,
    y: Any,
    spec: Any,
    splits: list[tuple[Any, Any]],
    inner: tuple[float, Any, int] | None,
    rounds: str = "own",
) -> tuple[Any, list[Any]] | None:
    """The current candidate's out-of-fold predictions and fold models, one fold at a time: each fold model stops
    at its allowance (Schedule.fold_allowance), and after each the schedule says whether the rest still fits;
    None (the candidate cut) when not."""
    from roost.training.ensemble import OutOfFold, fit_fold, others_rounds_oof

    clock = sched.budget.clock
    oof = OutOfFold(len(X))
    models: list[Any] = []
    curves: list[Any] = []
    for i, split in enumerate(splits):
        allowance = sched.fold_allowance()
        t0, at = clock(), (time.monotonic() + allowance if math.isfinite(allowance) else None)
        with deadline(at):
            model, curve = fit_fold(make, X, y, spec, split, inner, i, rounds)
            held = split[1]
            p = model.predict(X.iloc[held])
        seconds = clock() - t0
        if at is not None and time.monotonic() >= at:
            sched.stop(f"fold {i + 1} stopped at its allowance, {allowance:.0f} s")
            return None
        oof.add(held, p)
        models.append(model)
        curves.append(curve)
        if not sched.fold_done(seconds):
            return None
    sched.finished()
    if rounds == "others" and inner is None:  # every fold's best round known: score each at the others' mean
        return others_rounds_oof(models, curves, X, splits), models
    return oof.mean(), models


def _on_validation(
    task: str, label: str, parts: tuple[Any, Any, Any], fitted: list[tuple[str, Any]], opts: Any, seed: int, budget: Any
) -> Selection:
    """The children weighed on the validation rows (no cross-validation)."""
    import numpy as np

    from roost.metrics import overall as M
    from roost.training.ensemble import Blend, encoded

    val_df = parts[1]
    names = [n for n, _ in fitted]
    classes = list(fitted[0][1].classes_)
    primary = M.PRIMARY[task][0]
    Xv = val_df.drop(columns=[label])
    ye = encoded(val_df[label], task, classes)
    preds = [np.asarray(m.predict(Xv), dtype=np.float64) for _, m in fitted]
    w = blend_weights(task, ye, preds, opts.ensemble, seed)
    kept = [(name, m) for (name, m), wk in zip(fitted, w) if wk > 0]
    final = kept[0] if len(kept) == 1 else Blend(fitted, w)
    blended = sum(wk * p for wk, p in zip(w, preds))
    held = {f"val_{k}": v for k, v in M.compute(task, ye, np.asarray(blended)).items()}
    weights = {name: float(wk) for name, wk in zip(names, w)}
    log.info("auto: weights %s by validation %s: %.5f", weights, primary, held.get(f"val_{primary}", float("nan")))
    return Selection(final, held, f"validation {primary}", weights, skipped=list(budget.skipped))


def cv_repeats(opts: Any, n: int) -> int:
    """Rounds of folds for `n` cross-validation rows: opts.repeats, or with "auto" ceil(REPEAT_ROWS / n) capped at
    MAX_REPEATS (1 from REPEAT_ROWS rows up): a small table's out-of-fold scores rest on few rows per fold, and
    averaging each row's prediction over reshuffled rounds steadies the blend and the selection at little cost."""
    reps = getattr(opts, "repeats", 1)
    if reps != "auto":
        return int(reps)
    return 1 if n >= REPEAT_ROWS else min(MAX_REPEATS, -(-REPEAT_ROWS // max(n, 1)))


def inner_stop(opts: Any, n: int) -> bool:
    """Whether fold models early-stop on an inner split of their training rows (opts.inner_stop; "auto": under
    REPEAT_ROWS cross-validation rows, where a fold of 20-40 rows both stops a model and scores it)."""
    flag = getattr(opts, "inner_stop", False)
    return n < REPEAT_ROWS if flag == "auto" else bool(flag)


def _plan_repeats(
    budget: Budget,
    costs: Costs | None,
    names: list[str],
    opts: Any,
    k: int,
    mode: str,
    sizes: tuple[int, int, int],
    held: float = 0.0,
) -> tuple[Plan, int]:
    """(the budget's plan, rounds of folds): the most rounds up to cv_repeats whose plan keeps what one round's
    plan keeps (candidates, folds, refit); else one round. `held`: seconds kept for the package's last steps."""
    base = _plan(budget, costs, names, opts, k, mode, sizes, 1, held)
    for reps in range(cv_repeats(opts, sizes[1]) if k and base.cv else 1, 1, -1):
        cand = _plan(budget, costs, names, opts, k, mode, sizes, reps, held)
        if (cand.cv, cand.folds, cand.refit) == (base.cv, base.folds, base.refit):
            return cand, reps
    return base, 1


def _plan(
    budget: Budget,
    costs: Costs | None,
    names: list[str],
    opts: Any,
    k: int,
    mode: str,
    sizes: tuple[int, int, int],
    reps: int = 1,
    held: float = 0.0,
) -> Plan:
    """The budget's plan (everything without a budget or without folds); `sizes`: training, training+validation
    and test rows; `reps` rounds of folds (each fold model's cost counted `reps` times, the refit's too: an upper
    bound); `held`: seconds kept for the package's last steps."""
    refit = bool(getattr(opts, "refit", True))
    if budget.seconds is None or costs is None or not k:
        return Plan(tuple(names), k, refit and k > 0, 0.0)
    n_train, n_cv, n_test = sizes
    fold_costs = {n: reps * costs.fit.get(n, 0.0) * fit_share(n_cv, k) / max(n_train, 1) for n in names}
    values = candidate_values(mode, {n: costs.scores.get(n, float("nan")) for n in names})
    return plan(
        budget.left(),
        fold_costs,
        values,
        k,
        refit_ratio=(n_cv + n_test) / max(n_cv, 1),
        export_costs={n: costs.export.get(n, 0.0) for n in names},
        refit=refit,
        kept=held,
    )


def fit_share(n: int, k: int) -> float:
    """Rows one of k fold models fits, of n rows."""
    return n * (k - 1) / k


def _refit(
    sel: Selection,
    task: str,
    label: str,
    spec: Any,
    parts: tuple[Any, Any, Any],
    classes: list[Any],
    folding: tuple[int, int, int],
    make: MakeModel,
    budget: Budget,
    costs: Costs | None,
    spent: dict[str, float],
    reserve: float = 0.0,
) -> None:
    """Fit the kept candidates again over all rows (test rows included), same folds, same weights; sel.final becomes
    that blend and sel.heldout the held-out one (skipped, and said, when it would not fit).

    `folding`: (folds, seed, rows the cross-validation's fold models were configured for): the refit models keep
    those configurations, which the weights were chosen for (size-dependent defaults do not change regime). A
    member whose fit is a convex solve (Estimator.refit_once: the linear candidate) is fitted once on every row
    with its candidate's whole weight; the others as one round of fold models, each early-stopping on its own fold
    (nothing here is selected on those scores), a bag that steadies them (bench/linear_refit.py, issue 36).
    sel.extra's refit_oof_<metric>: the refit blend's out-of-fold score over the training + validation rows —
    the fold-bagged members' refit fold models there, each once-fitted member's out-of-fold predictions from the
    cross-validation that chose the weights (its fold models had its configuration and saw no test rows)."""
    import numpy as np
    import pandas as pd

    from roost.metrics import overall as M
    from roost.training.ensemble import Blend, cross_fit, encoded, folds

    k, seed, n_fit = folding
    kept = [n for n, w in sel.weights.items() if w > 0]
    every = pd.concat(list(parts))
    once = {n for n in kept if make(n, n_fit).refit_once(len(every), spec)}
    ratio = len(every) / max(len(parts[0]) + len(parts[1]), 1)  # rows per refit fold model / per CV fold model
    # a fit on every row costs about one CV fold model × ratio × k / (k - 1); a fold bag k of them
    est = sum(spent.get(n, 0.0) * (1 / max(k - 1, 1) if n in once else 1.0) for n in kept) * ratio
    export = sum(costs.export.get(n, 0.0) * (1 if n in once else k) for n in kept) if costs is not None else 0.0
    if budget.seconds is not None and est + export > (budget.left() - reserve) * SAFETY:
        budget.skip(f"refit on all rows (estimated {est:.0f} s, {budget.left():.0f} s left)")
        return
    ye = encoded(every[label], task, classes)
    splits = folds(task, ye, k, seed)
    if len(splits) != k:
        budget.skip(f"refit on all rows (the rarest class has fewer than {k} rows)")
        return
    X, y = every.drop(columns=[label]), every[label]
    n_cv = len(parts[0]) + len(parts[1])
    members, member_w, preds = [], [], []
    end = budget.end()
    for name in kept:
        if name in once:
            budget.step(f"refit of {name} on all {len(every)} rows (once: a convex solve)")
            model = make(name, n_fit)
            model.fit(X, y, spec=spec)
            models, oof = [model], np.asarray(sel.cv[name][0], dtype=np.float64)
        else:
            budget.step(f"refit of {name} on all {len(every)} rows ({k} folds)")
            fold_oof, models = cross_fit(partial(make, name, n_fit), X, y, spec, splits)
            oof = np.asarray(fold_oof, dtype=np.float64)[:n_cv]
        if end is not None and time.monotonic() >= end:  # cut at the budget's end: keep the held-out blend
            budget.skip(f"refit on all rows (stopped at the budget's end during {name})")
            return
        members += [(name, m) for m in models]
        member_w += [sel.weights[name] / len(models)] * len(models)
        preds.append((sel.weights[name], oof))
    sel.heldout, sel.final = sel.final, Blend(members, member_w)
    how = f"{k} folds" + (f"; {'+'.join(n for n in kept if n in once)} once" if once else "")
    sel.refit = f"{'+'.join(kept)} refitted on all {len(every)} rows ({how}, the held-out weights)"
    blended = np.sum([w * p for w, p in preds], axis=0)
    primary = M.PRIMARY[task][0]
    sel.extra[f"refit_oof_{primary}"] = float(M.compute(task, ye[:n_cv], blended)[primary])


def bag_blend(
    task: str, names: list[str], bags: list[list[Any]], w: list[float], y: Any, preds: list[Any]
) -> tuple[Any, dict[str, float]]:
    """(Blend of the weighted candidates' fold models, each fold model sharing its candidate's weight; the val_*
    metrics of the weighted out-of-fold predictions `preds` against `y`)."""
    import numpy as np

    from roost.metrics import overall as M
    from roost.training.ensemble import Blend

    members = [(name, m) for name, bag, wk in zip(names, bags, w) if wk > 0 for m in bag]
    member_w = [wk / len(bag) for bag, wk in zip(bags, w) if wk > 0 for _ in bag]
    blended = sum(wk * np.asarray(p, dtype=np.float64) for wk, p in zip(w, preds) if wk > 0)
    held = {f"val_{k}": v for k, v in M.compute(task, y, np.asarray(blended)).items()}
    return Blend(members, member_w), held


def cv_folds(
    label: str,
    task: str,
    parts: tuple[Any, Any, Any],
    classes: list[Any],
    opts: Any,
    seed: int,
    k: int | None = None,
) -> list[tuple[Any, Any]]:
    """auto's cross-validation folds over the training+validation rows (ensemble.folds, seeded by trainer.seed;
    `k` folds instead of opts.folds); [] where auto selects on the validation rows instead (folds: 0, more than
    cv_max_rows rows, --nproc > 1)."""
    from roost.training.ensemble import encoded, folds

    train_df, val_df, _ = parts
    n = len(train_df) + len(val_df)
    if not opts.folds or n > opts.cv_max_rows or in_data_parallel_group():
        return []
    y = cv_rows(parts, label)[1]
    return folds(task, encoded(y, task, classes), k or opts.folds, seed)


def cv_rows(parts: tuple[Any, Any, Any], label: str) -> tuple[Any, Any]:
    """(features, labels) of the rows cross-validation runs over: training then validation rows."""
    import pandas as pd

    both = pd.concat([parts[0], parts[1]])
    return both.drop(columns=[label]), both[label]


def fit_rows(n: int, splits: list[tuple[Any, Any]]) -> int:
    """About how many rows each fold model fits (what a candidate's size-dependent defaults are chosen for)."""
    return n - n // len(splits)


def in_data_parallel_group() -> bool:
    """True inside a data-parallel group (--nproc > 1): the other ranks fit only the children, in lockstep, so
    rank 0 cannot fit cross-validation folds alone; selection then uses the validation rows."""
    import sys

    dist = sys.modules.get("torch.distributed")
    return bool(dist is not None and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1)
