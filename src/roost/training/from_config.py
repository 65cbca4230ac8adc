"""From a training config to what a run needs: the estimator, the feature spec, the config of a new or resumed run.

The pieces `roost.training.api` (one training) and `roost.training.auto` (its candidates) both build on; they stay
importable from `roost.training.api`, where callers import them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from roost.errors import RoostError
from roost.training.config import TrainConfig, load_config
from roost.training.run import CHECKPOINTS, RESOLVED

if TYPE_CHECKING:
    from roost.training.base import Estimator

__all__ = ["build_model", "fit_spec", "resume_state", "training_config"]


def build_model(cfg: TrainConfig, task: str, n_train: int | None = None) -> Estimator:
    """The estimator for the config: model params, with trainer settings folded in for torch models.

    With `n_train`, an `auto` batch size is resolved to its number (so the run records what was used).
    """
    from roost.errors import ConfigError
    from roost.training.models import check_task, make_model

    params = dict(cfg.model.params)
    tr = {k: v for k, v in cfg.trainer.model_dump().items() if v is not None}
    if cfg.model.type == "lightgbm":
        extra = sorted(k for k in tr if k != "seed")
        if extra:
            raise ConfigError(
                f"trainer.{extra[0]}: does not apply to lightgbm",
                hint="set model.params (n_estimators, learning_rate, num_leaves, ...) instead",
            )
        params.setdefault("seed", tr.get("seed", 0))
    else:
        for k, v in tr.items():
            if k in params and params[k] != v:
                raise ConfigError(f"trainer.{k} and model.params.{k} disagree", hint="set it in one place")
            params[k] = v
    model = make_model(cfg.model.type, task, **params)
    if n_train is not None and model.params.get("batch_size") == "auto":
        from roost.training.base import auto_batch_size

        model.params["batch_size"] = auto_batch_size(n_train)
    check_task(model, task)
    validate = getattr(model, "_validate", None)
    if validate:
        validate()
    return model


def resume_state(run_id: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    """(raw resolved config, checkpoint, full run id) of a run to continue."""
    import yaml

    from roost.errors import NotFoundError
    from roost.registry.api import get_run, local_artifact

    run = get_run(run_id)
    if run["tags"].get("roost.model_type") == "auto":
        from roost.registry.api import search_runs

        kids = [r for r in search_runs() if r.get("parent_run_id") == run["run_id"] and r["status"] != "FINISHED"]
        raise RoostError(
            f"run {run['run_id']} is an auto run; its candidates train as child runs",
            hint=(
                f"resume the interrupted candidate: roost train --resume {kids[0]['run_id']}"
                if kids
                else "no candidate run was interrupted; start a new run"
            ),
        )
    ck: Path | None
    conf: Path | None
    try:  # on a remote root (s3://, …) the two files come down once into the workspace's cache
        ck, conf = local_artifact(run, f"{CHECKPOINTS}/last.pt"), local_artifact(run, RESOLVED)
    except NotFoundError:
        ck = conf = None
    if ck is None or conf is None or not ck.is_file() or not conf.is_file():
        raise RoostError(
            f"run {run['run_id']} has no checkpoint to resume from",
            hint="only torch runs that finished at least one epoch can be resumed",
        )
    from roost.training.trainer import load_checkpoint

    raw = yaml.safe_load(conf.read_text())
    raw.pop("trainer", None) if raw.get("model", {}).get("type") == "lightgbm" else None
    return raw, load_checkpoint(ck), run["run_id"]


def training_config(
    config: str | Path | dict[str, Any] | None, overrides: list[str] | tuple[str, ...], resume: str | None
) -> tuple[TrainConfig, dict[str, Any] | None, str | None, Path | None]:
    """(config, checkpoint, run id resumed from, config file) of a new or a resumed training."""
    if resume:
        raw, ckpt, resumed = resume_state(resume)
        return load_config(raw, overrides), ckpt, resumed, None
    if config is None:
        raise RoostError("no config given", hint="roost train CONFIG.yaml (or --resume RUN_ID)")
    config_file = Path(config) if not isinstance(config, dict) else None
    return load_config(config, overrides), None, None, config_file


def fit_spec(cfg: TrainConfig, train_df: Any) -> Any:
    """The feature spec, fitted on the training rows only."""
    from roost.training.preprocess import infer_spec

    f = cfg.features
    exclude = list(f.exclude)
    if cfg.split.column and (f.include is None or cfg.split.column not in f.include):
        exclude.append(cfg.split.column)
    return infer_spec(
        train_df,
        label=cfg.label,
        include=f.include,
        exclude=exclude,
        kinds=dict(f.kinds),
        max_vocab=f.max_vocab,
        min_count=f.min_count,
    )
