"""Cross-validated trials on small tables and the final ensemble over them: `model: auto`'s selection, for tune.

On a table of at most auto's `cv_max_rows` training+validation rows, a trial is scored as auto scores its
candidates: the trial's config is fitted on each of auto's folds (auto.cv_folds: same folds, same seed) and its
objective value is the out-of-fold metric over the training+validation rows. The trial run keeps, under `cv/`,
its out-of-fold predictions, its fold bag's mean predictions on the test rows and the fold models. When the study
ends, `final_blend` takes the best completed trial of each model type and weighs them on their out-of-fold
predictions with auto's rule (bagged greedy weights, kept only when the blend beats the best single trial); the
tuning run gets the blend of the weighted trials' fold models as its model package, as auto's parent run does.
Larger tables keep the validation split and the best trial.
"""

from __future__ import annotations

import json
import logging
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

log = logging.getLogger(__name__)
__all__ = ["CV_DIR", "Folds", "beats_noise", "best_of_each_type", "final_blend", "fold_scores", "plan", "run_trial"]
CV_DIR = "cv"
OOF, TEST, MODELS = "oof.npy", "test.npy", "folds.pkl"
# A tuned trial replaces its type's start point (the defaults) only when its mean paired fold difference exceeds
# NOISE_K standard errors of that mean (issue 36: choosing the best of 20 trials on out-of-fold scores of a few
# hundred rows lost 0.0027 ROC-AUC to the defaults on average, 0.012 on two small tables).
NOISE_K = 2.0


@dataclass
class Folds:
    """A training config's data, split and folds as `roost train` and auto derive them."""

    cfg: Any
    task: str
    spec: Any
    parts: tuple[Any, Any, Any]
    classes: list[Any]
    splits: list[tuple[Any, Any]]

    def rows(self) -> tuple[Any, Any, np.ndarray]:
        """(features, labels, encoded labels) of the cross-validated (training+validation) rows."""
        from roost.training.auto import cv_rows
        from roost.training.ensemble import encoded

        X, y = cv_rows(self.parts, self.cfg.label)
        return X, y, encoded(y, self.task, self.classes)

    @property
    def n_fit(self) -> int:
        """About how many rows each fold model fits."""
        from roost.training.auto import fit_rows

        return fit_rows(len(self.parts[0]) + len(self.parts[1]), self.splits)


def plan(config: dict[str, Any], overrides: list[str] | tuple[str, ...], selection: dict[str, Any]) -> Folds:
    """The folds of `config` with `overrides`; `splits` is [] where auto would select on the validation rows."""
    from roost.training.auto import cv_folds, options, prepare
    from roost.training.preprocess import encode_labels

    cfg, task, spec, parts = prepare(config, overrides)
    opts = options(cfg.model_copy(update={"model": cfg.model.model_copy(update={"params": dict(selection)})}))
    classes = encode_labels(parts[0][cfg.label], task)[1]
    return Folds(cfg, task, spec, parts, classes, cv_folds(cfg, task, parts, classes, opts))


def metric_name(metric: str, task: str, y: np.ndarray, n_classes: int) -> str | None:
    """The metrics.compute name behind a `val_*` tuning metric (None for any other metric)."""
    from roost.metrics import overall as M

    if not metric.startswith("val_"):
        return None
    exact = np.eye(max(n_classes, 1))[y] if task == "multiclass" else y.astype(np.float64)
    return metric[4:] if metric[4:] in M.compute(task, y, exact) else None


def run_trial(objective: Any, ctx: Any, config: dict[str, Any], overrides: list[str]) -> float | None:
    """Cross-validate one trial in its own run (a child of the tuning run); its out-of-fold metric, or None when
    the table is too large for cross-validation (the caller then trains on the validation split)."""
    from roost.metrics import overall as M
    from roost.registry.api import start_run
    from roost.training.api import build_model, resolved_params
    from roost.training.config import flatten
    from roost.training.ensemble import cross_fit, encoded
    from roost.tune.runner import TAG_STATE, Pruned

    f = plan(config, overrides, objective.selection)
    if not f.splits:
        return None
    X, y, ye = f.rows()
    name = metric_name(objective.metric, f.task, ye, len(f.classes))
    if name is None:
        return None
    n_fit = f.n_fit

    def make() -> Any:
        return build_model(f.cfg, f.task, n_fit)

    def report(k: int, done: np.ndarray, oof: np.ndarray) -> None:
        if k == len(f.splits):
            return
        v = float(M.compute(f.task, ye[done], oof[done])[name])
        if v == v and ctx.engine.report(ctx.study_id, ctx.number, k, v)["prune"]:
            raise Pruned(f"pruned after fold {k} of {len(f.splits)}")

    criterion = f"{len(f.splits)}-fold out-of-fold {name} (training + validation rows)"
    model = make()
    params = {**flatten(resolved_params(f.cfg, model)), "tune.criterion": criterion}
    tags = {
        **ctx.tags,
        "roost.kind": "train",
        "roost.model_type": model.model_type,
        "roost.task": f.task,
        "roost.framework": model.framework,
        "roost.tune.criterion": criterion,
    }
    with start_run(
        experiment=ctx.experiment, name=f"trial-{ctx.number}", params=params, tags=tags, parent_run_id=ctx.parent_run_id
    ) as run:
        ctx.run_id = run.id
        try:
            oof, models = cross_fit(make, X, y, f.spec, f.splits, on_fold=report)
        except Pruned:
            run.set_tag(TAG_STATE, "PRUNED")
            raise
        test_df = f.parts[2]
        test = np.mean([np.asarray(m.predict(test_df), dtype=np.float64) for m in models], axis=0)
        metrics = {f"val_{k}": v for k, v in M.compute(f.task, ye, oof).items()}
        yt = encoded(test_df[f.cfg.label], f.task, f.classes)
        metrics.update({f"test_{k}": v for k, v in M.compute(f.task, yt, test).items()})
        run.log_metrics({k: v for k, v in metrics.items() if v == v})
        out = run.artifact_dir / CV_DIR
        out.mkdir(parents=True, exist_ok=True)
        np.save(out / OOF, oof)
        np.save(out / TEST, test)
        (out / MODELS).write_bytes(pickle.dumps(models))
        value = float(metrics[objective.metric])
        run.set_tag(TAG_STATE, "COMPLETE" if value == value else "FAIL")
    return value


def _load(run_id: str, what: str) -> Any:
    """A trial run's saved cross-validation artifact (`cv/<what>`)."""
    from roost.registry.api import get_run
    from roost.registry.run import local_artifact

    path = local_artifact(get_run(run_id), f"{CV_DIR}/{what}")
    return pickle.loads(path.read_bytes()) if what == MODELS else np.load(path)


def trial_type(trial: dict[str, Any], default: str) -> str:
    """A trial's model type (its `model.type` param; the config's type when it does not search types)."""
    return str((trial.get("params") or {}).get("model.type") or default)


def beats_noise(challenger: np.ndarray, incumbent: np.ndarray, direction: str, k: float = NOISE_K) -> bool:
    """True when per-fold scores `challenger` beat `incumbent` (same folds) by more than the selection noise: the
    mean paired difference exceeds k standard errors of that mean (a one-sided paired t-test's rule)."""
    d = (np.asarray(challenger, np.float64) - np.asarray(incumbent, np.float64)) * (
        1.0 if direction == "maximize" else -1.0
    )
    if len(d) == 0 or not np.isfinite(d).all():
        return False
    se = float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else 0.0
    return bool(d.mean() > k * se and d.mean() > 0)


def fold_scores(task: str, name: str, y: np.ndarray, oof: np.ndarray, splits: list[tuple[Any, Any]]) -> np.ndarray:
    """Metric `name` of out-of-fold predictions `oof` on each fold's held-out rows."""
    from roost.metrics import overall as M
    from roost.training.ensemble import score

    fast = name == M.PRIMARY[task][0]
    return np.asarray(
        [score(task, y[v], oof[v]) if fast else M.compute(task, y[v], oof[v])[name] for _, v in splits], np.float64
    )


def best_of_each_type(
    trials: list[dict[str, Any]],
    preds: list[np.ndarray],
    direction: str,
    default: str,
    starts: int = 0,
    folds: Callable[[np.ndarray], np.ndarray] | None = None,
) -> tuple[list[dict[str, Any]], list[np.ndarray]]:
    """The best trial of each model type by its objective value (ties: the earlier trial), with its predictions.

    With `starts` (trials numbered below it are the start points: the model defaults) and `folds` (a prediction's
    per-fold scores), a type keeps its best start point unless its best other trial beats it on the same folds by
    more than the selection noise (beats_noise): the best of many noisy scores is mostly luck on a small table.
    The blend is weighed over these few, as AutoGluon ensembles one tuned model per family: on the quality suite
    a blend over all 20 trials fitted the out-of-fold rows it was weighed on (above auto there on every split,
    below it on the test rows on 12 of 22) and held 65-100 fold models; one per type holds at most 5 x folds."""
    sign = 1.0 if direction == "maximize" else -1.0

    def merit(t: dict[str, Any]) -> float:
        v = t.get("value")
        return sign * float(v) if v is not None and v == v else float("-inf")

    def best_of(js: list[int]) -> dict[str, int]:
        out: dict[str, int] = {}
        for j in js:
            kind = trial_type(trials[j], default)
            if kind not in out or merit(trials[j]) > merit(trials[out[kind]]):
                out[kind] = j
        return out

    best = best_of(list(range(len(trials))))
    if starts and folds is not None:
        start = best_of([j for j, t in enumerate(trials) if int(t["number"]) < starts and merit(t) > float("-inf")])
        for kind, s in start.items():
            b = best[kind]
            if b != s and not beats_noise(folds(preds[b]), folds(preds[s]), direction):
                log.info("tune: %s keeps its defaults (trial %s): trial %s wins by less than the noise", kind, s, b)
                best[kind] = s
    keep = sorted(best.values())
    return [trials[j] for j in keep], [preds[j] for j in keep]


def final_blend(objective: Any, result: Any, parent: Any) -> dict[str, Any] | None:
    """Weigh the best completed cross-validated trial of each model type on their out-of-fold predictions (auto's
    rule), write the blend of the weighted trials' fold models as the tuning run's model package; what it blends
    (None: no such trial)."""
    from roost.metrics import overall as M
    from roost.training.api import PACKAGE, final_metrics, monitor_reference, write_package
    from roost.training.auto import bag_blend, blend_weights, options

    done = [
        t
        for t in sorted(result.trials, key=lambda t: t["number"])
        if t["state"] == "COMPLETE" and (t.get("attrs") or {}).get("run_id")
    ]
    f = plan(objective.config, [], objective.selection)
    if not done or not f.splits:
        return None
    _, _, ye = f.rows()
    kept, preds = [], []
    for t in done:
        try:
            p = _load(t["attrs"]["run_id"], OOF)
        except Exception:  # noqa: BLE001 - a trial trained on the validation split (or its files are gone)
            continue
        if len(p) == len(ye):
            kept.append(t)
            preds.append(p)
    if not kept:
        return None
    name = metric_name(objective.metric, f.task, ye, len(f.classes)) or M.PRIMARY[f.task][0]

    def per_fold(p: np.ndarray) -> np.ndarray:
        return fold_scores(f.task, name, ye, p, f.splits)

    starts = int(getattr(objective, "starts", 0))
    kept, preds = best_of_each_type(kept, preds, objective.direction, f.cfg.model.type, starts, per_fold)
    sel = options(f.cfg.model_copy(update={"model": f.cfg.model.model_copy(update={"params": objective.selection})}))
    w = blend_weights(f.task, ye, preds, sel.ensemble, f.cfg.trainer.seed)
    names = [trial_type(t, f.cfg.model.type) for t in kept]
    bags = [_load(t["attrs"]["run_id"], MODELS) if wk > 0 else [] for t, wk in zip(kept, w)]
    blend, held = bag_blend(f.task, names, bags, w, ye, preds)
    _, val_df, test_df = f.parts
    label = f.cfg.label
    metrics = {**final_metrics(blend, f.task, label, val_df, test_df), **held}
    art = parent.artifact_dir
    write_package(blend, parent, art, test_df, label, metrics, f.cfg)
    monitor_reference(art, blend, f.task, f.parts[0], test_df, label)
    trial_w = {int(t["number"]): float(wk) for t, wk in zip(kept, w) if wk > 0}
    criterion = f"{len(f.splits)}-fold out-of-fold {objective.metric[4:]} (training + validation rows)"
    parent.log_metrics({k: v for k, v in metrics.items() if v == v})
    parent.log_metrics({f"tune.weight.trial-{n}": wk for n, wk in trial_w.items()})
    parent.set_tags(
        {
            "roost.tune.blend": json.dumps({str(n): wk for n, wk in trial_w.items()}),
            "roost.tune.blend_runs": json.dumps([t["attrs"]["run_id"] for t, wk in zip(kept, w) if wk > 0]),
            "roost.tune.criterion": criterion,
            "roost.tune.package": str(art / PACKAGE),
        }
    )
    log.info("tune: final blend of trials %s by %s: %s", trial_w, criterion, held.get(objective.metric))
    return {
        "run_id": parent.id,
        "weights": trial_w,
        "metrics": metrics,
        "criterion": criterion,
        "model_type": "+".join(dict.fromkeys(n for n, wk in zip(names, w) if wk > 0)),
    }
