"""`roost.train(config)`: load data, fit, evaluate, export the model package, record everything as a run."""

from __future__ import annotations

import logging
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from roost.errors import RoostError
from roost.train.config import TrainConfig, flatten, load_config

if TYPE_CHECKING:
    from roost.train.base import Estimator
    from roost.train.preprocess import FeatureSpec

log = logging.getLogger(__name__)
CHECKPOINTS = "checkpoints"
PACKAGE = "model"
RESOLVED = "config.resolved.yaml"
PARITY_ROWS = 1000


@dataclass
class TrainResult:
    """What a training run produced."""

    run_id: str
    metrics: dict[str, float]
    package_path: Path
    version: int | None = None
    model_name: str | None = None
    task: str = ""
    model_type: str = ""
    tensorboard_url: str | None = None
    tensorboard_process: Any = field(default=None, repr=False)
    tensorboard_pid: int | None = None  # set instead of the process when rank 0 of `nproc` workers started it
    candidates: dict[str, dict[str, float]] | None = None  # model: auto — each candidate's val/test metrics


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during training: the run is marked KILLED and its last checkpoint kept."""

    def __init__(self, run_id: str) -> None:
        super().__init__(run_id)
        self.run_id = run_id


def resolved_params(cfg: TrainConfig, model: Estimator) -> dict[str, Any]:
    """Every setting of the run, defaults included: the config plus the model's full parameter set."""
    d = cfg.model_dump(by_alias=True)
    params = model.get_params()
    loop = set(d["trainer"]) if model.framework == "torch" else set()
    d["model"]["params"] = {k: v for k, v in params.items() if k != "task" and k not in loop}
    if loop:
        d["trainer"] = {k: params[k] for k in d["trainer"] if k in params}
    else:
        d.pop("trainer")
    return d


def build_model(cfg: TrainConfig, task: str, n_train: int | None = None) -> Estimator:
    """The estimator for the config: model params, with trainer settings folded in for torch models.

    With `n_train`, an `auto` batch size is resolved to its number (so the run records what was used).
    """
    from roost.errors import ConfigError
    from roost.train.models import check_task, make_model

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
        from roost.train.base import auto_batch_size

        model.params["batch_size"] = auto_batch_size(n_train)
    check_task(model, task)
    validate = getattr(model, "_validate", None)
    if validate:
        validate()
    return model


def write_yaml(path: Path, data: Any) -> Path:
    """Write YAML (block style, key order kept)."""
    import yaml

    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _resume_state(run_id: str) -> tuple[dict[str, Any], dict[str, Any], str]:
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
    from roost.train.trainer import load_checkpoint

    raw = yaml.safe_load(conf.read_text())
    raw.pop("trainer", None) if raw.get("model", {}).get("type") == "lightgbm" else None
    return raw, load_checkpoint(ck), run["run_id"]


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
    `nproc` > 1 trains data-parallel in that many processes (see roost.train.distributed); under a launcher
    such as torchrun, ranks other than 0 return None.
    """
    from roost.train import distributed as D
    from roost.train.data import check_label, load_frame, split

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
    df = load_frame(cfg)
    task = check_label(df, cfg.label, cfg.task)
    if ckpt is not None:
        task = ckpt["task"]
    _check_models(cfg, task)  # config errors before any run starts
    train_df, val_df, test_df = split(df, cfg.split)
    spec = fit_spec(cfg, train_df)
    if not ctx.leader:
        _follow(cfg, task, spec, (train_df, val_df, test_df), ckpt)
        return None  # type: ignore[return-value]  # ranks > 0 have no result: only rank 0's is returned
    if ctx.active:
        tags = {**(tags or {}), "roost.distributed.world_size": ctx.world, "roost.distributed.backend": ctx.backend}
    data = _data_params(df, (train_df, val_df, test_df), task)
    show = bool(progress) if progress is not None else sys.stderr.isatty()
    parts = (train_df, val_df, test_df)
    if cfg.model.type == "auto":
        from roost.train.auto import train_auto

        return train_auto(
            cfg,
            task,
            spec,
            parts,
            data,
            config_file,
            show,
            tensorboard,
            announce,
            parent_run_id=parent_run_id,
            extra_tags=tags,
        )
    model = build_model(cfg, task, len(train_df))
    params = {**flatten(resolved_params(cfg, model)), **data}
    return train_run(
        cfg,
        model,
        task,
        spec,
        parts,
        params,
        config_file=config_file,
        ckpt=ckpt,
        resumed_from=resume,
        tensorboard=tensorboard,
        progress=show,
        announce=announce,
        parent_run_id=parent_run_id,
        extra_tags=tags,
        extra_callbacks=callbacks,
    )


def _launch(nproc: int, kwargs: dict[str, Any]) -> TrainResult | None:
    """Train in `nproc` worker processes; None when the model trains in this process instead (LightGBM)."""
    from roost.train import distributed as D

    source = _resume_state(kwargs["resume"])[0] if kwargs["resume"] else kwargs["config"]
    if source is None:
        raise RoostError("no config given", hint="roost train CONFIG.yaml (or --resume RUN_ID)")
    # config errors surface here, before any worker starts
    if load_config(source, kwargs["overrides"]).model.type == "lightgbm":
        log.warning("lightgbm trains with its own threads (model.params.n_jobs); --nproc %d ignored", nproc)
        return None
    return _attach_tensorboard(D.launch(nproc, kwargs))


def training_config(
    config: str | Path | dict[str, Any] | None, overrides: list[str] | tuple[str, ...], resume: str | None
) -> tuple[TrainConfig, dict[str, Any] | None, str | None, Path | None]:
    """(config, checkpoint, run id resumed from, config file) of a new or a resumed training."""
    if resume:
        raw, ckpt, resumed = _resume_state(resume)
        return load_config(raw, overrides), ckpt, resumed, None
    if config is None:
        raise RoostError("no config given", hint="roost train CONFIG.yaml (or --resume RUN_ID)")
    config_file = Path(config) if not isinstance(config, dict) else None
    return load_config(config, overrides), None, None, config_file


def _check_models(cfg: TrainConfig, task: str) -> None:
    """Build the configured model (each candidate of `auto`) once, so parameter errors come before any run."""
    if cfg.model.type == "auto":
        from roost.train.auto import candidates

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
        from roost.train.tensorboard import attach

        res.tensorboard_process = attach(res.tensorboard_pid)
    return res


def _follow(cfg: TrainConfig, task: str, spec: Any, parts: tuple[Any, Any, Any], ckpt: dict[str, Any] | None) -> None:
    """Ranks other than 0: fit the same torch models in the same order, stepping in lockstep with rank 0.

    Nothing is logged, checkpointed or exported here; LightGBM candidates are rank 0's alone.
    """
    train_df, val_df, _ = parts
    label = cfg.label
    if cfg.model.type == "auto":
        from roost.train.auto import candidates

        configs = [auto_config(cfg, c) for c in candidates(cfg)]
    else:
        configs = [cfg]
    X, Xv = train_df.drop(columns=[label]), val_df.drop(columns=[label])
    for sub in configs:
        model = build_model(sub, task, len(train_df))
        if model.framework == "torch":
            model.fit(X, train_df[label], Xv, val_df[label], spec=spec, resume=ckpt)


def auto_config(cfg: TrainConfig, model_type: str) -> TrainConfig:
    """The config of one `auto` candidate: its model type with default params, nothing registered; the `trainer:`
    loop settings apply to the neural candidates only (LightGBM keeps the seed)."""
    from roost.train.config import ModelConfig, TrainerConfig

    update: dict[str, Any] = {
        "model": ModelConfig(type=model_type),
        "register_as": None,
        "name": f"{cfg.name or 'auto'}:{model_type}",
    }
    if model_type == "lightgbm":
        update["trainer"] = TrainerConfig(seed=cfg.trainer.seed)
    return cfg.model_copy(deep=True, update=update)


def fit_spec(cfg: TrainConfig, train_df: Any) -> Any:
    """The feature spec, fitted on the training rows only."""
    from roost.train.preprocess import infer_spec

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


def train_run(
    cfg: TrainConfig,
    model: Estimator,
    task: str,
    spec: FeatureSpec,
    parts: tuple[Any, Any, Any],
    params: dict[str, Any],
    *,
    config_file: Path | None = None,
    ckpt: dict[str, Any] | None = None,
    resumed_from: str | None = None,
    tensorboard: bool = False,
    progress: bool = False,
    announce: Callable[[str], None] | None = None,
    tb_dir: Path | None = None,
    parent_run_id: str | None = None,
    extra_tags: dict[str, Any] | None = None,
    extra_callbacks: list[Any] | None = None,
    heading: str | None = None,
) -> TrainResult:
    """Fit inside a run: callbacks, evaluation, package, registration; `heading` heads the progress output.

    Parameters
    ----------
    cfg : TrainConfig
        The resolved training config (label, experiment, run name, registration).
    model : Estimator
        The estimator to fit.
    task : str
        binary | multiclass | regression.
    spec : FeatureSpec
        The features the model package's preprocessing is built from.
    parts : tuple
        The (train, validation, test) frames.
    params : dict
        Logged as the run's params.
    config_file : Path, optional
        Logged as the run's `config.yaml` artifact.
    ckpt : dict, optional
        A checkpoint to resume fitting from.
    resumed_from : str, optional
        The run the checkpoint came from (tagged `roost.resumed_from`).
    tensorboard : bool
        Start TensorBoard on the run's log folder and tag the run with its URL.
    progress : bool
        Show a progress bar.
    announce : callable, optional
        Receives TensorBoard's URL once it answers.
    tb_dir : Path, optional
        Where a torch model's TensorBoard events go (default: the run's artifact folder).
    parent_run_id : str, optional
        Makes this a nested run (a tuning trial, an `auto` candidate, a pipeline task).
    extra_tags : dict, optional
        Added to the run's tags.
    extra_callbacks : list, optional
        Fit callbacks beside the run logger.
    heading : str, optional
        Heads the progress output.
    """
    from roost.registry.api import register_model, start_run
    from roost.train import metrics as M
    from roost.train.callbacks import Progress, RunLogger
    from roost.train.tensorboard import TB_SUBDIR

    train_df, val_df, test_df = parts
    label = cfg.label
    tags = {
        "roost.model_type": model.model_type,
        "roost.task": task,
        "roost.framework": model.framework,
        "roost.kind": "train",
    }
    if resumed_from:
        tags["roost.resumed_from"] = resumed_from
    tags.update({str(k): str(v) for k, v in (extra_tags or {}).items()})
    tb_proc = tb_url = None
    with start_run(
        experiment=cfg.experiment, name=cfg.name, params=params, tags=tags, parent_run_id=parent_run_id
    ) as run:
        cbs: list[Any] = []
        try:
            art = run.artifact_dir
            if config_file is not None:
                run.log_artifact(config_file, "config.yaml")
            else:
                write_yaml(art / "config.yaml", cfg.model_dump(by_alias=True, exclude_defaults=True))
            write_yaml(art / RESOLVED, resolved_params(cfg, model))
            every = int(model.params.get("log_every", 50))
            cbs.append(RunLogger(run, every))
            cbs.extend(extra_callbacks or [])
            if model.framework == "torch":
                from roost.train.callbacks import TensorBoard

                cbs.append(TensorBoard(tb_dir or art / TB_SUBDIR, every))
            if tensorboard:
                tb_proc, tb_url = start_tensorboard(run, art / TB_SUBDIR, announce)
            if progress:
                cbs.append(Progress(primary=M.PRIMARY[task][0], label=heading))
            X, Xv = train_df.drop(columns=[label]), val_df.drop(columns=[label])
            model.fit(
                X,
                train_df[label],
                Xv,
                val_df[label],
                spec=spec,
                callbacks=cbs,
                checkpoint_dir=art / CHECKPOINTS if model.framework == "torch" else None,
                resume=ckpt,
            )
            metrics = final_metrics(model, task, label, val_df, test_df)
            _log_final(run, model, metrics)
            pkg = write_package(model, run, art, test_df, label, metrics, cfg)
            monitor_reference(art, model, task, train_df, test_df, label)
            _log_features(art, cfg)
            version = None
            if cfg.register_as:
                mv = register_model(run.id, cfg.register_as, PACKAGE)
                version = int(mv.version)
                run.set_tag("roost.registered", f"{mv.name}/{mv.version}")
        except KeyboardInterrupt:
            for cb in cbs:
                getattr(cb, "close", lambda: None)()
            run.end("KILLED")
            raise Interrupted(run.id) from None
        except BaseException:
            for cb in cbs:
                getattr(cb, "close", lambda: None)()
            raise
    pkg = run.local_artifact(PACKAGE)  # a remote run's staging folder is gone: a downloaded copy
    return TrainResult(run.id, metrics, pkg, version, cfg.register_as, task, model.model_type, tb_url, tb_proc)


def start_tensorboard(run: Any, logdir: Path, announce: Callable[[str], None] | None) -> tuple[Any, str]:
    """Start TensorBoard on `logdir`, tag the run with its URL and announce it."""
    from roost.train.tensorboard import start

    proc, url = start(logdir)
    run.set_tag("roost.tensorboard_url", url)
    log.info("TensorBoard at %s", url)
    if announce is not None:
        announce(url)
    return proc, url


def monitor_reference(art: Path, model: Estimator, task: str, train_df: Any, test_df: Any, label: str) -> None:
    """Store the training profile, a reference sample and the scored evaluation set with the run (for drift)."""
    try:
        from roost.monitor import write_run_reference

        write_run_reference(
            art,
            train_df,
            test_df,
            label=label,
            predict=model.predict,
            output={"binary": "probability", "regression": "prediction"}.get(task, "probabilities"),
        )
    except Exception as exc:  # noqa: BLE001 - monitoring data must never fail a finished training
        import logging

        logging.getLogger(__name__).warning("could not write the monitoring reference: %s", exc)


def _log_features(art: Path, cfg: TrainConfig) -> None:
    """features.json: per feature view read (data.entities), its definition version, TTL, keys, fields, source."""
    if cfg.data.entities is None:
        return
    import json

    from roost.lineage import FEATURES_ARTIFACT, training_features

    (art / FEATURES_ARTIFACT).write_text(json.dumps(training_features(list(cfg.data.features or [])), indent=2))


def _feature_meta(cfg: TrainConfig) -> dict[str, Any]:
    """feature_refs + entity join keys for a model trained from the feature store (serving fetches them online)."""
    if cfg.data.entities is None:
        return {}
    from roost.features.refs import resolve

    sel = resolve(list(cfg.data.features or []))
    return {"feature_refs": list(sel.refs), "entities": list(sel.join_keys)}


def final_metrics(model: Estimator, task: str, label: str, val_df: Any, test_df: Any) -> dict[str, float]:
    """test_* and val_* metrics of a fitted model (the restored best weights)."""
    from roost.train import metrics as M
    from roost.train.preprocess import encode_labels

    out: dict[str, float] = {}
    for prefix, df in (("test", test_df), ("val", val_df)):
        y = encode_labels(df[label], task, model.classes_ or None)[0]
        out.update({f"{prefix}_{k}": v for k, v in M.compute(task, y, model.predict(df)).items()})
    return out


def _log_final(run: Any, model: Estimator, metrics: dict[str, float]) -> None:
    """Log the restored model's metrics: test_* once; val_* at the last epoch's step, never as an extra epoch."""
    history = getattr(model, "history_", None) or []
    last = max((int(h["epoch"]) for h in history), default=None)
    curves = {k for h in history for k in h} - {"epoch"}
    finite = {k: v for k, v in metrics.items() if v == v}
    run.log_metrics({k: v for k, v in finite.items() if k not in curves or last is None})
    at_last = {k: v for k, v in finite.items() if k in curves and last is not None}
    if at_last:  # same step as the last epoch, later in time: the latest value is the restored model's
        run.log_metrics(at_last, step=last)
    best = getattr(getattr(model, "state_", None), "best_epoch", None) or getattr(model, "best_iteration_", None)
    run.set_tag("roost.best_epoch", best if best is not None else "")
    if best:
        run.log_metric("best_epoch", float(best))


def write_package(
    model: Estimator, run: Any, art: Path, test_df: Any, label: str, metrics: dict[str, float], cfg: TrainConfig
) -> Path:
    """Export the model package into the run's artifacts (`model/`)."""
    sample = test_df.drop(columns=[label]).head(PARITY_ROWS)
    pkg = art / PACKAGE
    if pkg.exists():
        shutil.rmtree(pkg)
    with tempfile.TemporaryDirectory(prefix="roost-pkg-") as tmp:
        out = model.save_package(
            Path(tmp) / PACKAGE,
            sample,
            label=label,
            run_id=run.id,
            metrics=metrics,
            extra_meta={"data_source": cfg.data.description, **_feature_meta(cfg)},
        )
        run.log_artifacts(out, PACKAGE)
    from roost.modelpkg import read_meta

    run.log_metric("parity_max_abs_diff", float(read_meta(pkg).get("parity_max_abs_diff") or 0.0))
    return pkg
