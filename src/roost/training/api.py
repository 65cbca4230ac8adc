"""`roost.train(config)`: load data, fit, evaluate, export the model package, record everything as a run."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from roost.errors import RoostError
from roost.training.auto import auto_config
from roost.training.config import TrainConfig, flatten, load_config
from roost.training.from_config import build_model, fit_spec, resume_state, training_config
from roost.training.run import (
    CHECKPOINTS,
    PACKAGE,
    PARITY_ROWS,
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

if TYPE_CHECKING:
    from roost.training.preprocess import FeatureSpec

# the one-run pieces live in roost.training.run, the config-to-estimator ones in roost.training.from_config (auto_config
# in roost.training.auto); their names stay importable from here, where callers import them
__all__ = [
    "CHECKPOINTS",
    "PACKAGE",
    "PARITY_ROWS",
    "RESOLVED",
    "Interrupted",
    "TrainResult",
    "TrainRunSettings",
    "auto_config",
    "build_model",
    "final_metrics",
    "fit_spec",
    "monitor_reference",
    "print_tensorboard_url",
    "resolved_params",
    "start_tensorboard",
    "train",
    "train_run",
    "training_config",
    "write_package",
    "write_yaml",
]
log = logging.getLogger(__name__)


def train(
    config: str | Path | dict[str, Any] | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    resume: str | None = None,
    tensorboard: bool = False,
    progress: bool | None = None,
    announce: Callable[[str], None] | None = None,
    parent_run_id: str | None = None,
    tags: dict[str, Any] | None = None,
    callbacks: list[Any] | None = None,
    nproc: int | str = 1,
) -> TrainResult:
    """Train from a config (file or dict) and record the run; `resume` continues a killed run from its checkpoint.

    `progress` shows a Rich bar (default: when stderr is a terminal); `announce` receives the TensorBoard URL.
    `parent_run_id`/`tags` place the run (e.g. under a tuning run); `callbacks` get the trainer's
    `on_epoch_end(state, logs)` calls (torch models), so a tuner can prune a trial mid-training.
    `nproc` > 1 trains data-parallel in that many processes (see roost.training.distributed); under a launcher
    such as torchrun, ranks other than 0 return None.
    """
    from roost.training import distributed as D

    nproc = D.check_nproc(nproc)
    if nproc > 1 and not D.launched():
        launched = _launch(
            nproc,
            {
                "config": config,
                "overrides": list(overrides),
                "resume": resume,
                "tensorboard": tensorboard,
                "progress": progress,
                "parent_run_id": parent_run_id,
                "tags": tags,
                "callbacks": callbacks,
                "announce": print_tensorboard_url if announce else None,
            },
        )
        if launched is not None:
            return launched
    ctx = D.setup()
    cfg, ckpt, resume, config_file = training_config(config, overrides, resume)
    df, task, parts = _load_data(cfg, ckpt)
    spec = fit_spec(cfg, parts[0])
    if not ctx.leader:
        _follow(cfg, task, spec, parts, ckpt)
        return None  # type: ignore[return-value]  # ranks > 0 have no result: only rank 0's is returned
    if ctx.active:
        tags = {**(tags or {}), "roost.distributed.world_size": ctx.world, "roost.distributed.backend": ctx.backend}
    settings = TrainRunSettings(
        config_file=config_file,
        ckpt=ckpt,
        resumed_from=resume,
        tensorboard=tensorboard,
        progress=bool(progress) if progress is not None else sys.stderr.isatty(),
        announce=announce,
        parent_run_id=parent_run_id,
        extra_tags=dict(tags or {}),
        extra_callbacks=list(callbacks or []),
    )
    return _fit_and_record(cfg, task, spec, parts, _data_params(df, parts, task), settings)


def _load_data(cfg: TrainConfig, ckpt: dict[str, Any] | None) -> tuple[Any, str, tuple[Any, Any, Any]]:
    """(the whole frame, the task, its train/validation/test parts); the configured models are checked first."""
    from roost.training.data import check_label, load_frame, split

    df = load_frame(cfg)
    task = check_label(df, cfg.label, cfg.task)
    if ckpt is not None:
        task = ckpt["task"]
    _check_models(cfg, task)  # config errors before any run starts
    return df, task, split(df, cfg.split)


def _fit_and_record(
    cfg: TrainConfig,
    task: str,
    spec: FeatureSpec,
    parts: tuple[Any, Any, Any],
    data: dict[str, Any],
    settings: TrainRunSettings,
) -> TrainResult:
    """One run of the configured model, or for `model: auto` a parent run with a child run per candidate."""
    if cfg.model.type == "auto":
        from roost.training.auto import train_auto

        s = settings
        return train_auto(
            cfg,
            task,
            spec,
            parts,
            data,
            s.config_file,
            s.progress,
            s.tensorboard,
            s.announce,
            parent_run_id=s.parent_run_id,
            extra_tags=dict(s.extra_tags),
        )
    model = build_model(cfg, task, len(parts[0]))
    params = {**flatten(resolved_params(cfg, model)), **data}
    return train_run(cfg, model, task, spec, parts, params, settings)


def _launch(nproc: int, kwargs: dict[str, Any]) -> TrainResult | None:
    """Train in `nproc` worker processes; None when the model trains in this process instead (LightGBM)."""
    from roost.training import distributed as D

    source = resume_state(kwargs["resume"])[0] if kwargs["resume"] else kwargs["config"]
    if source is None:
        raise RoostError("no config given", hint="roost train CONFIG.yaml (or --resume RUN_ID)")
    # config errors surface here, before any worker starts
    if load_config(source, kwargs["overrides"]).model.type == "lightgbm":
        log.warning("lightgbm trains with its own threads (model.params.n_jobs); --nproc %d ignored", nproc)
        return None
    return _attach_tensorboard(D.launch(nproc, train, kwargs))


def _check_models(cfg: TrainConfig, task: str) -> None:
    """Build the configured model (each candidate of `auto`) once, so parameter errors come before any run."""
    if cfg.model.type == "auto":
        from roost.training.auto import candidates

        for cand in candidates(cfg):
            build_model(auto_config(cfg, cand), task)
    else:
        build_model(cfg, task)


def _data_params(df: Any, parts: tuple[Any, Any, Any], task: str) -> dict[str, Any]:
    """The run params that describe the data: fingerprint, row counts, resolved task."""
    from roost.datasets import fingerprint

    train_df, val_df, test_df = parts
    return {
        "data.fingerprint": fingerprint(df),
        "data.rows": len(df),
        "data.train_rows": len(train_df),
        "data.val_rows": len(val_df),
        "data.test_rows": len(test_df),
        "task.resolved": task,
    }


def print_tensorboard_url(url: str) -> None:
    """Announce TensorBoard on stdout (the CLI's announcer; also used by training workers, where the caller's own
    callback cannot follow)."""
    print(f"TensorBoard: {url}", flush=True)


def _attach_tensorboard(res: TrainResult) -> TrainResult:
    """Give the parent a handle on the TensorBoard that rank 0 started (by pid)."""
    if res.tensorboard_pid is not None and res.tensorboard_process is None:
        from roost.training.tensorboard import attach

        res.tensorboard_process = attach(res.tensorboard_pid)
    return res


def _follow(cfg: TrainConfig, task: str, spec: Any, parts: tuple[Any, Any, Any], ckpt: dict[str, Any] | None) -> None:
    """Ranks other than 0: fit the same torch models in the same order, stepping in lockstep with rank 0.

    Nothing is logged, checkpointed or exported here; LightGBM candidates are rank 0's alone.
    """
    train_df, val_df, _ = parts
    label = cfg.label
    if cfg.model.type == "auto":
        from roost.training.auto import candidates

        configs = [auto_config(cfg, c) for c in candidates(cfg)]
    else:
        configs = [cfg]
    X, Xv = train_df.drop(columns=[label]), val_df.drop(columns=[label])
    for sub in configs:
        model = build_model(sub, task, len(train_df))
        if model.framework == "torch":
            model.fit(X, train_df[label], Xv, val_df[label], spec=spec, resume=ckpt)
