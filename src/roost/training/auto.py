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
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from roost.errors import ConfigError
from roost.training.auto_candidates import DEFAULT_CANDIDATES as DEFAULT_CANDIDATES
from roost.training.auto_candidates import VARIANTS as VARIANTS
from roost.training.auto_candidates import label_candidates
from roost.training.auto_candidates import table_candidates as table_candidates
from roost.training.auto_select import bag_blend as bag_blend
from roost.training.auto_select import blend_weights as blend_weights
from roost.training.auto_select import cv_rows as cv_rows
from roost.training.auto_select import fit_rows as fit_rows
from roost.training.config import TrainConfig, flatten
from roost.training.from_config import build_model, fit_spec, training_config
from roost.training.run import (
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


OPTIONS: dict[str, Any] = {
    "folds": 5,
    "cv_max_rows": 20_000,
    "ensemble": True,
    "refit": True,
    "repeats": 1,
    "inner_stop": False,
    "oof_rounds": "own",
}


@dataclass(frozen=True)
class AutoOptions:
    """How auto selects: cross-validation folds (0 = none), the row limit for it, blend or pick one, refit on all
    rows, rounds of folds ("auto": auto_select.cv_repeats), early stopping on an inner split ("auto": small tables;
    both off by default until bench/small_tables.py shows a gain: issue 36 item 3), the round early-stopped fold
    models are scored at out of fold ("own": the one their scored fold chose; "others": ensemble.cross_fit)."""

    folds: int = 5
    cv_max_rows: int = 20_000
    ensemble: bool = True
    refit: bool = True
    repeats: int | str = 1
    inner_stop: bool | str = False
    oof_rounds: str = "own"


def options(cfg: TrainConfig) -> AutoOptions:
    """auto's selection options from model.params (folds, cv_max_rows, ensemble, refit, repeats, inner_stop,
    oof_rounds), checked."""
    params = {k: v for k, v in cfg.model.params.items() if k != "candidates"}
    unknown = [k for k in params if k not in OPTIONS]
    if unknown:
        raise ConfigError(
            f"model.params.{unknown[0]}: unknown parameter for auto",
            hint=f"auto takes {', '.join(['candidates', *OPTIONS])}; name a model type to set its parameters",
        )
    opts = {**OPTIONS, **params}
    folds, rows, ens, refit = opts["folds"], opts["cv_max_rows"], opts["ensemble"], opts["refit"]
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 0 or folds == 1 or folds > 20:
        raise ConfigError(f"model.params.folds: {folds!r} is not 0 or 2..20", hint="e.g. folds: 5 (0: no CV)")
    if isinstance(rows, bool) or not isinstance(rows, int) or rows < 0:
        raise ConfigError(f"model.params.cv_max_rows: {rows!r} is not a row count", hint="e.g. cv_max_rows: 20000")
    if not isinstance(ens, bool):
        raise ConfigError(f"model.params.ensemble: {ens!r} is not true/false", hint="ensemble: false keeps one")
    if not isinstance(refit, bool):
        raise ConfigError(f"model.params.refit: {refit!r} is not true/false", hint="refit: false keeps the fold models")
    reps, inner = opts["repeats"], opts["inner_stop"]
    if reps != "auto" and (isinstance(reps, bool) or not isinstance(reps, int) or not 1 <= reps <= 10):
        raise ConfigError(f"model.params.repeats: {reps!r} is not auto or 1..10", hint="e.g. repeats: 3 (1: no repeat)")
    if inner != "auto" and not isinstance(inner, bool):
        raise ConfigError(f"model.params.inner_stop: {inner!r} is not auto/true/false", hint="e.g. inner_stop: true")
    if opts["oof_rounds"] not in ("own", "others"):
        raise ConfigError(
            f"model.params.oof_rounds: {opts['oof_rounds']!r} is not own/others",
            hint="oof_rounds: others scores each fold model at the other folds' mean best round",
        )
    return AutoOptions(folds, rows, ens, refit, reps, inner, opts["oof_rounds"])


def candidates(cfg: TrainConfig) -> list[str]:
    """The candidates (model.params.candidates: model types or VARIANTS names; default DEFAULT_CANDIDATES)."""
    from roost.training.models import MODEL_TYPES

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
    from roost.training.config import ModelConfig, TrainerConfig

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
    `roost.tensorboard_logs` tag points there, so `roost tensorboard CHILD` finds them. Under a time budget
    (`time_budget:`) the children, folds and refit that would not fit are skipped and recorded (train.budget).
    """
    import pandas as pd

    from roost.metrics.overall import PRIMARY
    from roost.registry.api import register_model, start_run
    from roost.training.auto_select import Costs, in_data_parallel_group, select
    from roost.training.budget import Budget, deadline, export_cost
    from roost.training.tensorboard import TB_SUBDIR

    cands = candidates(cfg)
    default = "candidates" not in cfg.model.params
    cands = table_candidates(cands, len(parts[0]), len(spec.columns), default, task)
    labels = pd.concat([p[cfg.label] for p in parts])  # every row's: the refit fits on the test rows too
    cands = label_candidates(cands, labels, default)
    opts = options(cfg)
    primary = PRIMARY[task][0]
    classes = int(labels.dropna().astype(str).nunique()) if task == "multiclass" else 0
    seconds = budget_seconds(cfg, len(labels), len(spec.columns), classes)
    if seconds is not None and in_data_parallel_group():  # the other ranks train every child in lockstep: no skipping
        log.info("auto: no time budget under --nproc > 1 (the ranks train every candidate in lockstep)")
        seconds = None
    budget = Budget(seconds, say=_say if progress else None)
    params = {**flatten(cfg.model_dump(by_alias=True)), "model.params.candidates": ",".join(cands), **data}
    params.pop("model.params", None)
    params["auto.time_budget_s"] = "none" if seconds is None else round(seconds, 1)
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
            with deadline(budget.end()):  # nothing trains past the budget's end
                results = _children(cfg, task, spec, parts, data, cands, parent, tags, progress, budget)
            # under a budget in training order (the secured candidates cross-validate first)
            trained = list(results) if seconds is not None else [c for c in cands if c in results]
            fitted = [(c, results[c][1]) for c in trained]
            costs = Costs(
                {c: results[c][0].seconds.get("fit", 0.0) for c in trained},
                {c: export_cost(*results[c], opts.folds, budget.contention()) for c in trained},
                {c: results[c][0].metrics.get(f"val_{primary}", float("nan")) for c in trained},
            )

            def make(cand: str, n_fit: int) -> Any:
                return build_model(candidate_config(cfg, cand, n_fit, len(spec.columns)), task, n_fit)

            with deadline(budget.end()):
                sel = select(task, cfg.label, spec, parts, fitted, opts, make, cfg.trainer.seed, budget, costs)
            weights, criterion = sel.weights, sel.criterion
            chosen = [c for c in trained if weights.get(c, 0.0) > 0]
            selected = "+".join(chosen)
            if isinstance(sel.final, tuple):  # one child took all the weight: its package
                best, model = results[sel.final[0]]
                metrics = dict(best.metrics)
                if best.package_path.exists():
                    parent.log_artifacts(best.package_path, PACKAGE)
                else:  # a budgeted child has no package of its own: export the winner once, here
                    budget.step(f"exporting {sel.final[0]}")
                    write_package(model, parent, art, parts[2], cfg.label, metrics, cfg)
                    monitor_reference(art, model, task, parts[0], parts[2], cfg.label)
            else:
                blend, heldout = sel.final, sel.heldout or sel.final
                # test_*: the held-out blend's score (a refitted blend has seen the test rows)
                metrics = {**final_metrics(heldout, task, cfg.label, parts[1], parts[2]), **sel.held, **sel.extra}
                budget.step(f"exporting the blend of {len(blend.members)} models")
                write_package(blend, parent, art, parts[2], cfg.label, metrics, cfg, score=blend is heldout)
                monitor_reference(art, blend, task, parts[0], parts[2], cfg.label)
            metrics["auto.seconds"] = budget.elapsed()
            parent.log_metrics({k: v for k, v in metrics.items() if v == v})
            parent.log_metrics({f"auto.weight.{c}": w for c, w in weights.items()})
            parent.set_tags(
                {
                    "roost.auto.selected": selected,
                    "roost.auto.selected_run": results[chosen[0]][0].run_id if len(chosen) == 1 else "",
                    "roost.auto.criterion": criterion,
                    "roost.auto.weights": json.dumps(weights),
                    "roost.auto.skipped": json.dumps(sel.skipped),
                    "roost.auto.refit": sel.refit,
                }
            )
            for line in sel.skipped:
                log.info("auto: skipped %s", line)
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
        candidates={c: results[c][0].metrics for c in trained},
        weights={c: float(weights.get(c, 0.0)) for c in trained},
        criterion=criterion,
        primary=primary,
        skipped=list(sel.skipped),
        refit=sel.refit,
        budget_s=seconds,
        elapsed_s=budget.elapsed(),
    )


def budget_seconds(cfg: TrainConfig, rows: int, cols: int, classes: int = 0) -> float | None:
    """The run's time budget in seconds: `time_budget:` (auto: $ROOST_TIME_BUDGET when set, e.g. `none` on a
    shared CI machine, else budget.default_budget of the table and its label's `classes` (multiclass); None:
    none)."""
    import os

    from roost.training.budget import default_budget, parse_budget

    if cfg.time_budget == "auto":
        env = os.environ.get("ROOST_TIME_BUDGET")
        return parse_budget(env, "ROOST_TIME_BUDGET") if env else default_budget(rows, cols, classes)
    return None if cfg.time_budget is None else float(cfg.time_budget)


def _children(
    cfg: TrainConfig,
    task: str,
    spec: Any,
    parts: tuple[Any, Any, Any],
    data: dict[str, Any],
    cands: list[str],
    parent: Any,
    tags: dict[str, Any],
    progress: bool,
    budget: Any,
) -> dict[str, tuple[TrainResult, Any]]:
    """Train each candidate as a child run ({name: (result, fitted model)}); under a budget (budget.child_order,
    child_allowance) each under a deadline, skipping (and recording) a child whose estimate exceeds its share."""
    from roost.metrics.overall import PRIMARY
    from roost.training.budget import (
        CV_SLACK,
        SAFETY,
        SECURED,
        child_allowance,
        child_order,
        deadline,
        export_seconds,
        final_reserve,
        warm_imports,
    )
    from roost.training.tensorboard import TB_LOGS_TAG, TB_SUBDIR

    primary, cells = PRIMARY[task][0], len(parts[0]) * max(1, len(spec.columns)) / 1e6
    budgeted = budget.seconds is not None
    warm_imports(cands)  # a cold import is not any one child's cost
    budget.measure_from_now()  # the contention of the fits, not of reading the libraries
    classes = parts[0][cfg.label].nunique() if task == "multiclass" else 1

    def prior_s(c: str) -> float:  # seconds before it ran: LightGBM grows one tree per class and round
        return _prior(c)[1] * cells * (classes if _kind(c) == "lightgbm" else 1)

    # the order by the priors as measured (on binary tables): the classes scale every LightGBM candidate alike
    order = child_order(cands, {c: _prior(c)[0] / _prior(c)[1] for c in cands}) if budgeted else cands
    out: dict[str, tuple[TrainResult, Any]] = {}
    speed: dict[str, list[float]] = {}  # measured / prior seconds of the children so far, by kind (load: slower)
    for k, cand in enumerate(order, 1):
        secured = cand in SECURED
        same = speed.get(_kind(cand)) or [r for rs in speed.values() for r in rs]
        est = prior_s(cand) * (sum(same) / len(same) if same else 1.0)
        # kept free: the package's last steps and one export per network trained so far, and this one's
        nets = [c for c in [*out, cand] if _kind(c) == "torch"]
        kept = final_reserve({_kind(c) for c in [*out, cand]}, budget.contention())
        kept += sum(export_seconds("torch", len(spec.columns), budget.contention()) for _ in nets)
        room = budget.left() * SAFETY - kept
        allowed = child_allowance(budget.left(), secured)
        if out and not secured:  # a later child trains when its estimate fits what is left, up to 2 × it
            if est > room:
                budget.skip(f"candidate {cand} (estimated {est:.0f} s, {budget.left():.0f} s left, {kept:.0f} kept)")
                continue
            allowed = min(room, max(allowed, CV_SLACK * est + 1.0))
        sub = candidate_config(cfg, cand, len(parts[0]), len(spec.columns))
        model = build_model(sub, task, len(parts[0]))
        label = f"candidate {k}/{len(cands)}: {cand}{budget.note()}"
        log.info("auto: %s", label)
        child_tags = {t: v for t, v in tags.items() if t.startswith("roost.distributed.")}
        if model.framework == "torch":
            child_tags[TB_LOGS_TAG] = f"{parent.id}:{TB_SUBDIR}/{cand}"
        art = parent.artifact_dir
        # its share of the time left: its epochs / boosting rounds stop there (the best so far is kept)
        at = time.monotonic() + allowed if budgeted else None
        with deadline(at):
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
                    package=not budgeted,  # under a budget only the final model is exported (once)
                ),
            )
        if at is not None and time.monotonic() >= at:
            budget.skip(f"training of {cand} after {allowed:.0f} s (its share of the time left; best so far kept)")
        out[cand] = (res, model)
        speed.setdefault(_kind(cand), []).append(sum(res.seconds.values()) / max(prior_s(cand), 1e-6))
        parent.log_metrics({f"{cand}.{m}": v for m, v in res.metrics.items() if v == v})
        val, fit_s = res.metrics.get(f"val_{primary}", float("nan")), res.seconds.get("fit", 0.0)
        log.info("auto: %s val_%s %.5f (fit %.1f s, all %.1f s)", cand, primary, val, fit_s, sum(res.seconds.values()))
    return out


def _say(line: str) -> None:
    """A progress line on stderr (Rich, as the training progress bar prints)."""
    from rich.console import Console

    Console(stderr=True).print(f"[dim]{line}[/]", highlight=False)


def _kind(cand: str) -> str:
    """The framework a candidate trains with: "lightgbm" for LightGBM and its VARIANTS, else "torch"."""
    return "lightgbm" if VARIANTS.get(cand, (cand, {}))[0] == "lightgbm" else "torch"


def _prior(cand: str) -> tuple[float, float]:
    """budget.prior of a candidate (a VARIANTS name: by its own name, else its type's)."""
    from roost.training.budget import prior

    return prior(cand, VARIANTS.get(cand, (cand, {}))[0])


def candidate_config(cfg: TrainConfig, model_type: str, n_rows: int, n_cols: int | None = None) -> TrainConfig:
    """One candidate's config: its type's defaults (a VARIANTS name: its type with its fixed parameters);
    LightGBM's for `n_rows` training rows of `n_cols` columns."""
    sub = auto_config(cfg, model_type)
    if model_type == "lightgbm":
        from roost.training.lgbm import candidate_params

        sub.model.params = candidate_params(n_rows, n_cols)
    return sub


def cv_folds(
    cfg: TrainConfig, task: str, parts: tuple[Any, Any, Any], classes: list[Any], opts: AutoOptions
) -> list[tuple[Any, Any]]:
    """auto's cross-validation folds over the training+validation rows ([] where auto selects on the validation
    rows instead): auto_select.cv_folds with the config's label and seed."""
    from roost.training import auto_select

    return auto_select.cv_folds(cfg.label, task, parts, classes, opts, cfg.trainer.seed)


def prepare(
    config: str | Path | dict[str, Any], overrides: list[str] | tuple[str, ...] = ()
) -> tuple[TrainConfig, str, Any, tuple[Any, Any, Any]]:
    """(config, task, feature spec, (training, validation, test) rows) exactly as `roost train` derives them."""
    from roost.training.data import check_label, load_frame, split

    cfg = training_config(config, overrides, None)[0]
    df = load_frame(cfg)
    task = check_label(df, cfg.label, cfg.task)
    train_df, val_df, test_df = split(df, cfg.split)
    return cfg, task, fit_spec(cfg, train_df), (train_df, val_df, test_df)
