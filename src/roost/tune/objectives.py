"""Objectives: a training config tuned through `roost.train`, a `module:function` import, and test functions.

TrainObjective is picklable, so `--parallel` worker processes can run it. Each trial IS the training run, made a
child of the tuning run; on a small table (`cv`) it is auto's k-fold cross-validation instead, and `finalize`
blends the trials after the study (roost.tune.cv). Intermediate values are the objective metric per epoch (or
val_loss, sign-adjusted; per fold when cross-validated).
Stopping a trial early needs a per-epoch hook in `roost.train` (a `callbacks=` argument); while the
installed train has none, the epochs are reported after the run — later trials are judged against them, but a
running training cannot be stopped. `parent_run_id=`/`tags=` are used likewise when train accepts them; until
then the run is re-parented right after it ends.
"""

from __future__ import annotations

import importlib
import inspect
import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from roost.errors import ConfigError

log = logging.getLogger(__name__)

MAXIMIZE_HINTS = ("auc", "accuracy", "f1", "r2", "rce", "precision", "recall", "ndcg", "map", "score")


def direction_for(metric: str) -> str:
    """minimize or maximize, guessed from a metric's name (losses and errors go down, AUC and accuracy up)."""
    m = metric.lower()
    if any(w in m for w in ("loss", "rmse", "mae", "error", "ece", "regret")):
        return "minimize"
    return "maximize" if any(w in m for w in MAXIMIZE_HINTS) else "minimize"


def load_callable(spec: str) -> Callable[..., Any]:
    """Import `package.module:function` (ConfigError naming the part that is missing)."""
    mod, _, attr = spec.partition(":")
    if not mod or not attr:
        raise ConfigError(
            f"tune.objective: expected module:function, got {spec!r}", hint="e.g. roost.tune.objectives:branin"
        )
    try:
        m = importlib.import_module(mod)
    except ImportError as exc:
        raise ConfigError(f"tune.objective: cannot import {mod!r}: {exc}") from None
    fn: Callable[..., Any] | None = getattr(m, attr, None)
    if not callable(fn):
        raise ConfigError(f"tune.objective: {mod} has no function {attr!r}")
    return fn


def override_key(name: str, config: dict[str, Any]) -> str:
    """The `--set` key of a search param: as given if dotted, else its one config leaf, trainer.X or model.params.X."""
    if "." in name or name in config:
        return name
    found = [p for p in config_leaves(config) if p.rsplit(".", 1)[-1] == name]
    if len(found) == 1:
        return found[0]
    if len(found) > 1:
        raise ConfigError(
            f"search.{name}: ambiguous, the config has {', '.join(found)}",
            hint="use the dotted name in the search block",
        )
    from roost.training.config import TrainerConfig

    return f"trainer.{name}" if name in TrainerConfig.model_fields else f"model.params.{name}"


def config_leaves(d: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted paths of the non-mapping values of a nested dict."""
    out = []
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out += config_leaves(v, f"{prefix}{k}.")
        else:
            out.append(f"{prefix}{k}")
    return out


def _intermediate(logs: dict[str, float], metric: str, direction: str) -> float | None:
    """The per-epoch value to report: the objective's own metric, else val_loss (negated when maximizing)."""
    if logs.get(metric) is not None:
        return float(logs[metric])
    if logs.get("val_loss") is not None:
        return float(logs["val_loss"]) * (-1.0 if direction == "maximize" else 1.0)
    return None


class PruneCallback:
    """A trainer callback: reports each epoch's validation metric; raises Pruned when the pruner says so."""

    def __init__(self, ctx: Any, metric: str, direction: str) -> None:
        self.ctx, self.metric, self.direction = ctx, metric, direction

    def on_epoch_end(self, state: Any, logs: dict[str, float]) -> None:
        """Report and maybe stop."""
        from roost.tune.runner import Pruned

        v = _intermediate(logs, self.metric, self.direction)
        if v is not None and self.ctx.engine.report(self.ctx.study_id, self.ctx.number, int(state.epoch), v)["prune"]:
            raise Pruned(f"pruned at epoch {state.epoch}")


@dataclass
class TrainObjective:
    """Train `config` with a trial's params as overrides; the trial's value is `metric` of the training run."""

    config: dict[str, Any]
    metric: str
    direction: str = "minimize"
    keys: dict[str, str] = field(default_factory=dict)
    cv: bool = False  # small table: each trial is cross-validated as auto's candidates are (roost.tune.cv)
    selection: dict[str, Any] = field(default_factory=dict)  # auto's selection params (folds, cv_max_rows, ...)
    starts: int = 0  # the first trials are the start points (the model defaults): tune.cv keeps them unless beaten
    owns_run = True

    def overrides(self, params: dict[str, Any]) -> list[str]:
        """`key=value` overrides for a trial's params (values as JSON, which YAML reads back)."""
        return [f"{self.keys.get(k, k)}={json.dumps(v)}" for k, v in params.items()]

    def config_for(self, params: dict[str, Any]) -> dict[str, Any]:
        """The base config of a trial: across model types, the `trainer:` loop settings (bar the seed) apply to
        the neural types only, so a LightGBM trial drops them."""
        cfg = dict(self.config)
        if params.get("model.type") == "lightgbm" and isinstance(cfg.get("trainer"), dict):
            cfg["trainer"] = {k: v for k, v in cfg["trainer"].items() if k == "seed"}
        return cfg

    def __call__(self, ctx: Any) -> float:
        """Run one training and return its metric."""
        from roost.registry.backend import default_store
        from roost.training.api import train

        sig = inspect.signature(train).parameters
        kw: dict[str, Any] = {"progress": False} if "progress" in sig else {}
        if "parent_run_id" in sig:
            kw["parent_run_id"] = ctx.parent_run_id
        if "tags" in sig:
            kw["tags"] = ctx.tags
        if "callbacks" in sig:
            kw["callbacks"] = [PruneCallback(ctx, self.metric, self.direction)]
        cfg = {**self.config_for(ctx.params), "experiment": ctx.experiment, "name": f"trial-{ctx.number}"}
        if self.cv:
            from roost.tune.cv import run_trial

            value = run_trial(self, ctx, cfg, self.overrides(ctx.params))
            if value is not None:
                return value
        res = train(cfg, overrides=self.overrides(ctx.params), **kw)
        ctx.run_id = res.run_id
        st = default_store()
        if "parent_run_id" not in sig:
            st.update_run(res.run_id, parent_run_id=ctx.parent_run_id)
        st.log_batch(res.run_id, tags={**ctx.tags, "roost.tune.package": str(res.package_path)})
        if "callbacks" not in sig:  # report the epochs afterwards: later trials are judged against them
            epochs: dict[int, dict[str, float]] = {}
            for h in st.metric_history(res.run_id):
                if h["key"] in (self.metric, "val_loss"):
                    epochs.setdefault(int(h["step"]), {})[h["key"]] = h["value"]
            for step, logs in sorted(epochs.items()):
                if "val_loss" not in logs:  # not an epoch: the final evaluation is logged at the next step
                    continue
                v = _intermediate(logs, self.metric, self.direction)
                if v is not None:
                    ctx.engine.report(ctx.study_id, ctx.number, step, v)
        if self.metric not in res.metrics:
            raise ConfigError(
                f"tune.metric: training produced no {self.metric!r}", hint="one of " + ", ".join(sorted(res.metrics))
            )
        return float(res.metrics[self.metric])

    def finalize(self, result: Any, parent: Any) -> dict[str, Any] | None:
        """After the study: on a cross-validated study, the blend of its trials as the tuning run's model."""
        if not self.cv:
            return None
        from roost.tune.cv import final_blend

        return final_blend(self, result, parent)


# -- test functions (bench/tuning.py and the CLI's examples) ------------------------------------------------
BRANIN_MIN = 0.397887357729738
HARTMANN6_MIN = -3.322368011391339
_H6_A = [[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14], [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]]
_H6_P = [
    [1312, 1696, 5569, 124, 8283, 5886],
    [2329, 4135, 8307, 3736, 1004, 9991],
    [2348, 1451, 3522, 2883, 3047, 6650],
    [4047, 8828, 8732, 5743, 1091, 381],
]
_H6_ALPHA = [1.0, 1.2, 3.0, 3.2]
BRANIN_SPACE = {"x": {"uniform": [-5.0, 10.0]}, "y": {"uniform": [0.0, 15.0]}}
HARTMANN6_SPACE = {f"x{i}": {"uniform": [0.0, 1.0]} for i in range(6)}


def branin_xy(x: float, y: float) -> float:
    """The Branin function (global minimum 0.397887 at three points)."""
    b, c, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 1 / (8 * math.pi)
    return (y - b * x * x + c * x - 6) ** 2 + 10 * (1 - t) * math.cos(x) + 10


def hartmann6_x(x: list[float]) -> float:
    """The 6-D Hartmann function on [0, 1]^6 (global minimum -3.32237)."""
    total = 0.0
    for a, p, al in zip(_H6_A, _H6_P, _H6_ALPHA):
        total += al * math.exp(-sum(ai * (xi - pi * 1e-4) ** 2 for ai, xi, pi in zip(a, x, p)))
    return -total


def branin(ctx: Any) -> float:
    """Branin as a tuning objective over BRANIN_SPACE."""
    return branin_xy(ctx.params["x"], ctx.params["y"])


def hartmann6(ctx: Any) -> float:
    """Hartmann-6 as a tuning objective over HARTMANN6_SPACE."""
    return hartmann6_x([ctx.params[f"x{i}"] for i in range(6)])
