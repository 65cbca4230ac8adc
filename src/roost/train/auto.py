"""`model: auto` (the default): train the candidates as child runs, then keep a weighted blend of them.

Selection: on tables up to `cv_max_rows` training+validation rows, each candidate is cross-validated (`folds`
stratified folds over training+validation rows) and the blend of the fold models is weighted on the out-of-fold
predictions; on larger tables the children themselves are blended, weighted on the validation rows. Weights:
greedy selection averaged over bootstrap resamples of those rows, kept only when the blend beats the best single
candidate there (ensemble.bagged_weights); else the best candidate alone, a plain selection.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from roost.errors import ConfigError
from roost.train.config import TrainConfig, flatten
from roost.train.from_config import build_model, fit_spec, training_config
from roost.train.run import (
    PACKAGE,
    RESOLVED,
    Interrupted,
    TrainResult,
    TrainRunSettings,
    final_metrics,
    monitor_reference,
    resolved_params,
    start_tensorboard,
    train_run,
    write_package,
    write_yaml,
)

log = logging.getLogger(__name__)


DEFAULT_CANDIDATES = ("logreg", "wide_deep", "lightgbm", "lightgbm_defaults")
# Named variants of a model type with fixed parameters. `lightgbm_defaults` is LightGBM exactly as
# `LGBMClassifier()` / `LGBMRegressor()` fit it (100 rounds, learning rate 0.1, 31 leaves, no early stopping): a
# user's first baseline, so the blend can always fall back to it (issue 36: the small-table settings alone lost
# 0.016 ROC-AUC to it on a 5,000-row churn table).
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "lightgbm_defaults": (
        "lightgbm",
        {
            "n_estimators": 100,
            "learning_rate": 0.1,
            "num_leaves": 31,
            "min_child_samples": 20,
            "subsample": 1.0,
            "colsample_bytree": 1.0,
            "reg_lambda": 0.0,
            "early_stopping_rounds": 0,
        },
    )
}
OPTIONS: dict[str, Any] = {"folds": 5, "cv_max_rows": 20_000, "ensemble": True}


@dataclass(frozen=True)
class AutoOptions:
    """How auto selects: cross-validation folds (0 = none), the row limit for it, blend or pick one."""

    folds: int = 5
    cv_max_rows: int = 20_000
    ensemble: bool = True


def options(cfg: TrainConfig) -> AutoOptions:
    """auto's selection options from model.params (folds, cv_max_rows, ensemble), checked."""
    params = {k: v for k, v in cfg.model.params.items() if k != "candidates"}
    unknown = [k for k in params if k not in OPTIONS]
    if unknown:
        raise ConfigError(
            f"model.params.{unknown[0]}: unknown parameter for auto",
            hint=f"auto takes {', '.join(['candidates', *OPTIONS])}; name a model type to set its parameters",
        )
    opts = {**OPTIONS, **params}
    folds, rows, ens = opts["folds"], opts["cv_max_rows"], opts["ensemble"]
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 0 or folds == 1 or folds > 20:
        raise ConfigError(f"model.params.folds: {folds!r} is not 0 or 2..20", hint="e.g. folds: 5 (0: no CV)")
    if isinstance(rows, bool) or not isinstance(rows, int) or rows < 0:
        raise ConfigError(f"model.params.cv_max_rows: {rows!r} is not a row count", hint="e.g. cv_max_rows: 20000")
    if not isinstance(ens, bool):
        raise ConfigError(f"model.params.ensemble: {ens!r} is not true/false", hint="ensemble: false keeps one")
    return AutoOptions(folds, rows, ens)


def candidates(cfg: TrainConfig) -> list[str]:
    """The candidates (model.params.candidates: model types or VARIANTS names; default DEFAULT_CANDIDATES)."""
    from roost.train.models import MODEL_TYPES

    options(cfg)
    cands = cfg.model.params.get("candidates", list(DEFAULT_CANDIDATES))
    allowed = [m for m in MODEL_TYPES if m not in ("auto", "two_tower")] + list(VARIANTS)
    if not isinstance(cands, list) or not cands or any(c not in allowed for c in cands):
        raise ConfigError(
            f"model.params.candidates: {cands!r} is not a list of model types", hint=f"allowed: {', '.join(allowed)}"
        )
    return list(dict.fromkeys(cands))


def auto_config(cfg: TrainConfig, model_type: str) -> TrainConfig:
    """The config of one `auto` candidate: its model type with default params (a named variant, VARIANTS: its type
    with its fixed params), nothing registered; the `trainer:` loop settings apply to the neural candidates only
    (LightGBM keeps the seed)."""
    from roost.train.config import ModelConfig, TrainerConfig

    base, fixed = VARIANTS.get(model_type, (model_type, {}))
    update: dict[str, Any] = {
        "model": ModelConfig(type=base, params=dict(fixed)),
        "register_as": None,
        "name": f"{cfg.name or 'auto'}:{model_type}",
    }
    if base == "lightgbm":
        update["trainer"] = TrainerConfig(seed=cfg.trainer.seed)
    return cfg.model_copy(deep=True, update=update)


def better(task: str, a: dict[str, float], b: dict[str, float]) -> bool:
    """True when metrics `a` beat `b` on the task's primary validation metric."""
    from roost.metrics.overall import PRIMARY

    name, mode = PRIMARY[task]
    va, vb = a.get(f"val_{name}", float("nan")), b.get(f"val_{name}", float("nan"))
    if vb != vb:
        return True
    return bool(va > vb) if mode == "max" else bool(va < vb)


def train_auto(
    cfg: TrainConfig,
    task: str,
    spec: Any,
    parts: tuple[Any, Any, Any],
    data: dict[str, Any],
    config_file: Path | None,
    progress: bool,
    tensorboard: bool,
    announce: Callable[[str], None] | None,
    parent_run_id: str | None = None,
    extra_tags: dict[str, Any] | None = None,
) -> TrainResult:
    """One parent run; each candidate trains as its child run; the parent keeps the winner's package.

    The parent run is named `cfg.name` (default "auto"), each child `<parent name>:<model type>`. A torch child's
    TensorBoard events live on the parent (one folder per candidate, one TensorBoard for all); the child's
    `roost.tensorboard_logs` tag points there, so `roost tensorboard CHILD` finds them.
    """
    from roost.metrics.overall import PRIMARY
    from roost.registry.api import register_model, start_run
    from roost.train.tensorboard import TB_LOGS_TAG, TB_SUBDIR

    cands = candidates(cfg)
    opts = options(cfg)
    primary = PRIMARY[task][0]
    params = {**flatten(cfg.model_dump(by_alias=True)), "model.params.candidates": ",".join(cands), **data}
    params.pop("model.params", None)
    tags = {"roost.model_type": "auto", "roost.task": task, "roost.kind": "train"}
    tb_proc = tb_url = None
    tags = {**tags, **{str(k): str(v) for k, v in (extra_tags or {}).items()}}
    name = cfg.name or "auto"
    with start_run(
        experiment=cfg.experiment, name=name, params=params, tags=tags, parent_run_id=parent_run_id
    ) as parent:
        try:
            art = parent.artifact_dir
            if config_file is not None:
                parent.log_artifact(config_file, "config.yaml")
            write_yaml(art / RESOLVED, cfg.model_dump(by_alias=True))
            if tensorboard:  # one TensorBoard, one folder per candidate
                tb_proc, tb_url = start_tensorboard(parent, art / TB_SUBDIR, announce)
            results: list[TrainResult] = []
            fitted: list[tuple[str, Any]] = []
            for k, cand in enumerate(cands, 1):
                sub = candidate_config(cfg, cand, len(parts[0]), len(spec.columns))
                model = build_model(sub, task, len(parts[0]))
                label = f"candidate {k}/{len(cands)}: {cand}"
                log.info("auto: %s", label)
                child_tags = {t: v for t, v in tags.items() if t.startswith("roost.distributed.")}
                if model.framework == "torch":
                    child_tags[TB_LOGS_TAG] = f"{parent.id}:{TB_SUBDIR}/{cand}"
                res = train_run(
                    sub,
                    model,
                    task,
                    spec,
                    parts,
                    {**flatten(resolved_params(sub, model)), **data},
                    TrainRunSettings(
                        progress=progress,
                        tb_dir=art / TB_SUBDIR / cand,
                        parent_run_id=parent.id,
                        extra_tags=child_tags,
                        heading=label,
                    ),
                )
                results.append(res)
                fitted.append((cand, model))
                parent.log_metrics({f"{cand}.{k}": v for k, v in res.metrics.items() if v == v})
                log.info("auto: %s val_%s %.5f", cand, primary, res.metrics.get(f"val_{primary}", float("nan")))
            final, held, criterion, weights = select(cfg, task, spec, parts, fitted, opts)
            chosen = [c for c in cands if weights.get(c, 0.0) > 0]
            selected = "+".join(chosen)
            if isinstance(final, tuple):  # one child took all the weight: its package
                best = results[cands.index(final[0])]
                metrics = dict(best.metrics)
                parent.log_artifacts(best.package_path, PACKAGE)
            else:
                blend = final if not isinstance(final, tuple) else final[1]
                metrics = {**final_metrics(blend, task, cfg.label, parts[1], parts[2]), **held}
                write_package(blend, parent, art, parts[2], cfg.label, metrics, cfg)
                monitor_reference(art, blend, task, parts[0], parts[2], cfg.label)
            parent.log_metrics({k: v for k, v in metrics.items() if v == v})
            parent.log_metrics({f"auto.weight.{c}": w for c, w in weights.items()})
            parent.set_tags(
                {
                    "roost.auto.selected": selected,
                    "roost.auto.selected_run": results[cands.index(chosen[0])].run_id if len(chosen) == 1 else "",
                    "roost.auto.criterion": criterion,
                    "roost.auto.weights": json.dumps(weights),
                }
            )
            version = None
            if cfg.register_as:
                mv = register_model(parent.id, cfg.register_as, PACKAGE)
                version = int(mv.version)
                parent.set_tag("roost.registered", f"{mv.name}/{mv.version}")
        except KeyboardInterrupt as exc:
            parent.end("KILLED")
            raise Interrupted(getattr(exc, "run_id", parent.id)) from None
    return TrainResult(
        parent.id,
        metrics,
        parent.local_artifact(PACKAGE),
        version,
        cfg.register_as,
        task,
        selected,
        tb_url,
        tb_proc,
        candidates={c: r.metrics for c, r in zip(cands, results)},
        weights={c: float(weights.get(c, 0.0)) for c in cands},
        criterion=criterion,
        primary=primary,
    )


def candidate_config(cfg: TrainConfig, model_type: str, n_rows: int, n_cols: int | None = None) -> TrainConfig:
    """One candidate's config: its type's defaults (a VARIANTS name: its type with its fixed parameters);
    LightGBM's for `n_rows` training rows of `n_cols` columns."""
    sub = auto_config(cfg, model_type)
    if model_type == "lightgbm":
        from roost.train.lgbm import table_defaults

        sub.model.params = table_defaults(n_rows, n_cols)
    return sub


def select(
    cfg: TrainConfig,
    task: str,
    spec: Any,
    parts: tuple[Any, Any, Any],
    fitted: list[tuple[str, Any]],
    opts: AutoOptions,
) -> tuple[Any, dict[str, float], str, dict[str, float]]:
    """(final model, its held-out val_* metrics, the criterion, weight per candidate).

    The final model is a Blend, or (type, child model) when on the validation path one child takes all weight.
    """
    import numpy as np

    from roost.metrics import overall as M
    from roost.train.ensemble import Blend, cross_fit, encoded

    train_df, val_df, _ = parts
    label, names = cfg.label, [n for n, _ in fitted]
    classes = list(fitted[0][1].classes_)
    primary = M.PRIMARY[task][0]
    n = len(train_df) + len(val_df)

    def weigh(y: np.ndarray, preds: list[np.ndarray]) -> list[float]:
        return blend_weights(task, y, preds, opts.ensemble, cfg.trainer.seed)

    splits = cv_folds(cfg, task, parts, classes, opts)
    if splits:
        X, y = cv_rows(parts, label)
        ye = encoded(y, task, classes)
        n_fit = fit_rows(n, splits)
        preds, bags = [], []
        for name in names:
            log.info("auto: %d-fold cross-validation of %s", len(splits), name)

            def make(name: str = name) -> Any:
                return build_model(candidate_config(cfg, name, n_fit, len(spec.columns)), task, n_fit)

            oof, models = cross_fit(make, X, y, spec, splits)
            preds.append(oof)
            bags.append(models)
        w = weigh(ye, preds)
        final: Any
        final, held = bag_blend(task, names, bags, w, ye, preds)
        criterion = f"{len(splits)}-fold out-of-fold {primary} (training + validation rows)"
    else:
        Xv = val_df.drop(columns=[label])
        ye = encoded(val_df[label], task, classes)
        preds = [np.asarray(m.predict(Xv), dtype=np.float64) for _, m in fitted]
        w = weigh(ye, preds)
        kept = [(name, m) for (name, m), wk in zip(fitted, w) if wk > 0]
        final = kept[0] if len(kept) == 1 else Blend(fitted, w)
        blended = sum(wk * p for wk, p in zip(w, preds))
        held = {f"val_{k}": v for k, v in M.compute(task, ye, np.asarray(blended)).items()}
        criterion = f"validation {primary}"
    weights = {name: float(wk) for name, wk in zip(names, w)}
    log.info("auto: weights %s by %s: %s %.5f", weights, criterion, primary, held.get(f"val_{primary}", float("nan")))
    return final, held, criterion, weights


def blend_weights(task: str, y: Any, preds: list[Any], ensemble: bool, seed: int) -> list[float]:
    """Weights of the candidates from their held-out predictions: bagged greedy weights with the best-single
    guard (ensemble.bagged_weights), or with `ensemble` false the best candidate alone."""
    import numpy as np

    from roost.metrics import overall as M
    from roost.train.ensemble import bagged_weights, score

    if ensemble:
        return bagged_weights(task, y, preds, seed=seed)
    scores = [score(task, y, p) for p in preds]
    best = int(np.nanargmax(scores) if M.PRIMARY[task][1] == "max" else np.nanargmin(scores))
    return [float(j == best) for j in range(len(preds))]


def bag_blend(
    task: str, names: list[str], bags: list[list[Any]], w: list[float], y: Any, preds: list[Any]
) -> tuple[Any, dict[str, float]]:
    """(Blend of the weighted candidates' fold models, each fold model sharing its candidate's weight; the val_*
    metrics of the weighted out-of-fold predictions `preds` against `y`)."""
    import numpy as np

    from roost.metrics import overall as M
    from roost.train.ensemble import Blend

    members = [(name, m) for name, bag, wk in zip(names, bags, w) if wk > 0 for m in bag]
    member_w = [wk / len(bag) for bag, wk in zip(bags, w) if wk > 0 for _ in bag]
    blended = sum(wk * np.asarray(p, dtype=np.float64) for wk, p in zip(w, preds) if wk > 0)
    held = {f"val_{k}": v for k, v in M.compute(task, y, np.asarray(blended)).items()}
    return Blend(members, member_w), held


def cv_folds(
    cfg: TrainConfig, task: str, parts: tuple[Any, Any, Any], classes: list[Any], opts: AutoOptions
) -> list[tuple[Any, Any]]:
    """auto's cross-validation folds over the training+validation rows (ensemble.folds, seeded by trainer.seed);
    [] where auto selects on the validation rows instead (folds: 0, more than cv_max_rows rows, --nproc > 1)."""
    from roost.train.ensemble import encoded, folds

    train_df, val_df, _ = parts
    n = len(train_df) + len(val_df)
    if not opts.folds or n > opts.cv_max_rows or _distributed():
        return []
    y = cv_rows(parts, cfg.label)[1]
    return folds(task, encoded(y, task, classes), opts.folds, cfg.trainer.seed)


def cv_rows(parts: tuple[Any, Any, Any], label: str) -> tuple[Any, Any]:
    """(features, labels) of the rows cross-validation runs over: training then validation rows."""
    import pandas as pd

    both = pd.concat([parts[0], parts[1]])
    return both.drop(columns=[label]), both[label]


def fit_rows(n: int, splits: list[tuple[Any, Any]]) -> int:
    """About how many rows each fold model fits (what a candidate's size-dependent defaults are chosen for)."""
    return n - n // len(splits)


def _distributed() -> bool:
    """True inside a data-parallel group (--nproc > 1): the other ranks fit only the children, in lockstep, so
    rank 0 cannot fit cross-validation folds alone; selection then uses the validation rows."""
    import sys

    dist = sys.modules.get("torch.distributed")
    return bool(dist is not None and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1)


def prepare(
    config: str | Path | dict[str, Any], overrides: list[str] | tuple[str, ...] = ()
) -> tuple[TrainConfig, str, Any, tuple[Any, Any, Any]]:
    """(config, task, feature spec, (training, validation, test) rows) exactly as `roost train` derives them."""
    from roost.train.data import check_label, load_frame, split

    cfg = training_config(config, overrides, None)[0]
    df = load_frame(cfg)
    task = check_label(df, cfg.label, cfg.task)
    train_df, val_df, test_df = split(df, cfg.split)
    return cfg, task, fit_spec(cfg, train_df), (train_df, val_df, test_df)
