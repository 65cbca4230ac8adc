"""`roost tune CONFIG.yaml`: a training config plus a `search:` block (and an optional `tune:` block).

    data: engagement:20000
    label: clicked
    model: mlp
    register: engagement-ctr          # registers the BEST trial's model (trials themselves register nothing)
    search:
      lr: {loguniform: [1e-4, 1e-1]}  # bare names: trainer.lr; model params otherwise (or write dotted keys)
      hidden: {choice: [[64], [128, 64]]}
    tune:                             # all optional
      metric: val_roc_auc             # default: the task's primary validation metric
      direction: maximize             # default: from the metric's name
      sampler: auto                   # auto | grid | random | tpe | gp
      prune: median                   # none | median | hyperband
      objective: pkg.module:function  # tune a Python function instead of `roost.train`

With `tune.objective`, the rest of the file (besides `search`) is ignored and the function gets a TrialContext.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from roost.errors import ConfigError, closest

log = logging.getLogger(__name__)
TUNE_KEYS = ("metric", "direction", "sampler", "prune", "objective", "seed", "name", "experiment")


@dataclass
class TuneSpec:
    """A parsed tuning config: what to evaluate, over which space, towards which goal."""

    objective: Callable[..., Any]
    space: dict
    metric: str
    direction: str
    experiment: str
    name: str | None = None
    sampler: str = "auto"
    prune: str | None = None
    seed: int | None = None
    register: str | None = None
    options: dict = field(default_factory=dict)


def _primary_metric(train_cfg: dict) -> str:
    """The task's primary validation metric (loads the data once when the config does not state the task)."""
    from roost.train import metrics as M
    from roost.train.config import load_config

    cfg = load_config(train_cfg)
    task = cfg.task
    if task is None:
        from roost.train.data import check_label, load_frame

        task = check_label(load_frame(cfg), cfg.label, None)
    return "val_" + M.PRIMARY[task][0]


def load(path: str | Path | dict) -> TuneSpec:
    """Read a tuning config (file or dict) into a TuneSpec; errors name the offending field."""
    from roost.train.config import load_raw
    from roost.tune.objectives import TrainObjective, direction_for, load_callable, override_key
    from roost.tune.space import Space

    raw, file = load_raw(path)
    if "search" not in raw:
        raise ConfigError(
            "search: the config has no search block", hint="add e.g. `search: {lr: {loguniform: [1e-4, 1e-1]}}`"
        )
    search = raw.pop("search")
    opts = raw.pop("tune", None) or {}
    if not isinstance(opts, dict):
        raise ConfigError("tune: must be a mapping", hint=f"keys: {', '.join(TUNE_KEYS)}")
    for k in opts:
        if k not in TUNE_KEYS:
            near = closest(k, TUNE_KEYS)
            raise ConfigError(
                f"tune.{k}: unknown field",
                hint=(f"did you mean {near!r}? " if near else "") + f"allowed: {', '.join(TUNE_KEYS)}",
            )
    space = Space.parse(search)
    register = raw.pop("register", None)
    if opts.get("objective"):
        objective = load_callable(str(opts["objective"]))
        metric = str(opts.get("metric", "value"))
        experiment = str(opts.get("experiment", raw.get("experiment", "tune")))
    else:
        if file is not None:
            _absolute_data(raw, file)
        keys = {p.name: override_key(p.name, raw) for p in space.params}
        metric = str(opts.get("metric") or _primary_metric(raw))
        experiment = str(opts.get("experiment", raw.get("experiment", "default")))
        objective = TrainObjective(config=raw, metric=metric, keys=keys)
    direction = str(opts.get("direction") or direction_for(metric))
    if isinstance(objective, TrainObjective):
        objective.direction = direction
    return TuneSpec(
        objective,
        space.to_spec(),
        metric,
        direction,
        experiment,
        opts.get("name"),
        str(opts.get("sampler", "auto")),
        opts.get("prune"),
        opts.get("seed"),
        register,
        opts,
    )


def _absolute_data(raw: dict, file: Path) -> None:
    """Make a relative data path absolute against the config file's folder (as `roost train` does)."""
    data = raw.get("data")
    src = data.get("source") if isinstance(data, dict) else data
    if not isinstance(src, str) or ":" in src.split("/")[0] or Path(src).is_absolute():
        return
    cand = file.parent / src
    if cand.exists():
        if isinstance(data, dict):
            data["source"] = str(cand.resolve())
        else:
            raw["data"] = str(cand.resolve())


def register_best(result: Any, name: str) -> str:
    """Register the best trial's model package under `name`; returns 'name/version'."""
    from roost.registry.api import register_model

    if result.best_run_id is None:
        raise ConfigError(f"register: no trial completed, nothing to register as {name!r}")
    mv = register_model(result.best_run_id, name, "model")
    return f"{mv.name}/{mv.version}"
