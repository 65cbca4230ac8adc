"""`model: auto` (the default): train the candidate models as child runs, keep the best on validation."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from roost.errors import ConfigError
from roost.train.api import (
    PACKAGE,
    RESOLVED,
    Interrupted,
    TrainResult,
    auto_config,
    build_model,
    resolved_params,
    start_tensorboard,
    train_run,
    write_yaml,
)
from roost.train.config import TrainConfig, flatten

log = logging.getLogger(__name__)


def candidates(cfg: TrainConfig) -> list[str]:
    """The candidate model types (model.params.candidates, default logreg and wide_deep)."""
    from roost.train.models import AUTO_CANDIDATES, MODEL_TYPES

    params = dict(cfg.model.params)
    cands = params.pop("candidates", list(AUTO_CANDIDATES))
    if params:
        raise ConfigError(
            f"model.params.{next(iter(params))}: unknown parameter for auto",
            hint="auto takes only `candidates`; name a model type to set its parameters",
        )
    allowed = [m for m in MODEL_TYPES if m not in ("auto", "two_tower")]
    if not isinstance(cands, list) or not cands or any(c not in allowed for c in cands):
        raise ConfigError(
            f"model.params.candidates: {cands!r} is not a list of model types", hint=f"allowed: {', '.join(allowed)}"
        )
    return list(dict.fromkeys(cands))


def better(task: str, a: dict[str, float], b: dict[str, float]) -> bool:
    """True when metrics `a` beat `b` on the task's primary validation metric."""
    from roost.train.metrics import PRIMARY

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
    from roost.registry.api import register_model, start_run
    from roost.train.metrics import PRIMARY
    from roost.train.tensorboard import TB_LOGS_TAG, TB_SUBDIR

    cands = candidates(cfg)
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
            for k, cand in enumerate(cands, 1):
                sub = auto_config(cfg, cand)
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
                    progress=progress,
                    tb_dir=art / TB_SUBDIR / cand,
                    parent_run_id=parent.id,
                    extra_tags=child_tags,
                    heading=label,
                )
                results.append(res)
                parent.log_metrics({f"{cand}.{k}": v for k, v in res.metrics.items() if v == v})
                log.info("auto: %s val_%s %.5f", cand, primary, res.metrics.get(f"val_{primary}", float("nan")))
            best = results[0]
            for res in results[1:]:
                if better(task, res.metrics, best.metrics):
                    best = res
            parent.log_artifacts(best.package_path, PACKAGE)
            parent.log_metrics({k: v for k, v in best.metrics.items() if v == v})
            parent.set_tags(
                {
                    "roost.auto.selected": best.model_type,
                    "roost.auto.selected_run": best.run_id,
                    "roost.auto.criterion": f"val_{primary}",
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
        best.metrics,
        parent.local_artifact(PACKAGE),
        version,
        cfg.register_as,
        task,
        best.model_type,
        tb_url,
        tb_proc,
        candidates={r.model_type: r.metrics for r in results},
    )
