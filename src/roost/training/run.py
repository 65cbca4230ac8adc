"""One training run: fit inside a registry run with its callbacks, evaluate, export the package, register.

`train_run` is what `roost.train` and each `model: auto` candidate call once the data, the features and the
estimator are ready; its optional knobs come in one TrainRunSettings.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from roost.training.base import Estimator
    from roost.training.config import TrainConfig
    from roost.training.preprocess import FeatureSpec

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
    weights: dict[str, float] | None = None  # model: auto — each candidate's blend weight (0: left out)
    criterion: str = ""  # model: auto — how the weights were chosen (e.g. validation, 5-fold cross-fit)
    primary: str = ""  # model: auto — the task's headline metric the candidates were compared on (val_<primary>)
    seconds: dict[str, float] = field(default_factory=dict)  # wall time of the run's parts: fit, export
    skipped: list[str] = field(default_factory=list)  # model: auto — what the time budget left out
    refit: str = ""  # model: auto — how the registered blend was refitted (empty: not refitted)
    budget_s: float | None = None  # model: auto — the time budget in seconds (None: none)
    elapsed_s: float | None = None  # model: auto — the seconds it took


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


def write_yaml(path: Path, data: Any) -> Path:
    """Write YAML (block style, key order kept)."""
    import yaml

    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@dataclass(frozen=True)
class TrainRunSettings:
    """The optional knobs of `train_run`: where the run goes, what it shows, how fitting resumes.

    Attributes
    ----------
    config_file : Path, optional
        Logged as the run's `config.yaml` artifact (else the config is written there).
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
    extra_tags : mapping
        Added to the run's tags.
    extra_callbacks : sequence
        Fit callbacks beside the run logger.
    heading : str, optional
        Heads the progress output.
    """

    config_file: Path | None = None
    ckpt: dict[str, Any] | None = None
    resumed_from: str | None = None
    tensorboard: bool = False
    progress: bool = False
    announce: Callable[[str], None] | None = None
    tb_dir: Path | None = None
    parent_run_id: str | None = None
    extra_tags: Mapping[str, Any] = field(default_factory=dict)
    extra_callbacks: Sequence[Any] = ()
    heading: str | None = None
    package: bool = True  # false: no package (auto's children under a time budget: only the final model is exported)


def train_run(
    cfg: TrainConfig,
    model: Estimator,
    task: str,
    spec: FeatureSpec,
    parts: tuple[Any, Any, Any],
    params: dict[str, Any],
    settings: TrainRunSettings | None = None,
) -> TrainResult:
    """Fit inside a run: callbacks, evaluation, package, registration.

    `cfg` is the resolved config (label, experiment, run name, registration), `parts` the (train, validation,
    test) frames, `params` the run's params; `spec` builds the package's preprocessing.
    """
    from roost.registry.api import start_run

    s = settings or TrainRunSettings()
    train_df, val_df, test_df = parts
    tb_proc = tb_url = None
    tags = _run_tags(model, task, s)
    with start_run(
        experiment=cfg.experiment, name=cfg.name, params=params, tags=tags, parent_run_id=s.parent_run_id
    ) as run:
        cbs: list[Any] = []
        try:
            art = run.artifact_dir
            _log_configs(run, cfg, model, s.config_file)
            _add_callbacks(cbs, run, model, task, s)
            if s.tensorboard:
                from roost.training.tensorboard import TB_SUBDIR

                tb_proc, tb_url = start_tensorboard(run, art / TB_SUBDIR, s.announce)
            t0 = time.monotonic()
            _fit(model, cfg.label, spec, parts, cbs, art, s.ckpt)
            t1 = time.monotonic()
            metrics = final_metrics(model, task, cfg.label, val_df, test_df)
            if s.package:
                write_package(model, run, art, test_df, cfg.label, metrics, cfg)  # test_*: the package's own score
            else:
                run.set_tag("roost.package", "none: a candidate of model auto under a time budget")
            _log_final(run, model, metrics)
            if s.package:
                monitor_reference(art, model, task, train_df, test_df, cfg.label)
            seconds = {"fit": t1 - t0, "export": time.monotonic() - t1}
            _log_features(art, cfg)
            version = _register(run, cfg)
        except KeyboardInterrupt:
            _close(cbs)
            run.end("KILLED")
            raise Interrupted(run.id) from None
        except BaseException:
            _close(cbs)
            raise
    # a remote run's staging folder is gone: a downloaded copy (without a package: where it would be, empty)
    pkg = run.local_artifact(PACKAGE) if s.package else art / PACKAGE
    return TrainResult(
        run.id, metrics, pkg, version, cfg.register_as, task, model.model_type, tb_url, tb_proc, seconds=seconds
    )


def _run_tags(model: Estimator, task: str, s: TrainRunSettings) -> dict[str, str]:
    """The run's tags: model type, task, framework, kind, where it resumed from, and the caller's tags."""
    tags = {
        "roost.model_type": model.model_type,
        "roost.task": task,
        "roost.framework": model.framework,
        "roost.kind": "train",
        "roost.step_kind": model.step_kind,  # what a curve's step counts: the UI labels and splits axes by it
    }
    if s.resumed_from:
        tags["roost.resumed_from"] = s.resumed_from
    tags.update({str(k): str(v) for k, v in s.extra_tags.items()})
    return tags


def _log_configs(run: Any, cfg: TrainConfig, model: Estimator, config_file: Path | None) -> None:
    """config.yaml (the file given, else the config's non-default settings) and every resolved setting."""
    art = run.artifact_dir
    if config_file is not None:
        run.log_artifact(config_file, "config.yaml")
    else:
        write_yaml(art / "config.yaml", cfg.model_dump(by_alias=True, exclude_defaults=True))
    write_yaml(art / RESOLVED, resolved_params(cfg, model))


def _add_callbacks(cbs: list[Any], run: Any, model: Estimator, task: str, s: TrainRunSettings) -> None:
    """Append the fit callbacks to `cbs`: the run logger, the caller's, TensorBoard events (torch), progress."""
    from roost.training import metrics as M
    from roost.training.callbacks import Progress, RunLogger
    from roost.training.tensorboard import TB_SUBDIR

    every = int(model.params.get("log_every", 50))
    cbs.append(RunLogger(run, every))
    cbs.extend(s.extra_callbacks)
    if model.framework == "torch":
        from roost.training.callbacks import TensorBoard

        cbs.append(TensorBoard(s.tb_dir or run.artifact_dir / TB_SUBDIR, every))
    if s.progress:
        cbs.append(Progress(primary=M.PRIMARY[task][0], label=s.heading))


def _fit(
    model: Estimator,
    label: str,
    spec: FeatureSpec,
    parts: tuple[Any, Any, Any],
    cbs: list[Any],
    art: Path,
    ckpt: dict[str, Any] | None,
) -> None:
    """Fit on the training rows with early stopping on the validation rows (torch models checkpoint each epoch)."""
    train_df, val_df, _ = parts
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


def _register(run: Any, cfg: TrainConfig) -> int | None:
    """Register the run's package under `register_as` (tagging the run); its version, or None when not asked."""
    from roost.registry.api import register_model

    if not cfg.register_as:
        return None
    mv = register_model(run.id, cfg.register_as, PACKAGE)
    run.set_tag("roost.registered", f"{mv.name}/{mv.version}")
    return int(mv.version)


def _close(cbs: list[Any]) -> None:
    """Close the callbacks that hold something open (a progress bar, an event writer)."""
    for cb in cbs:
        getattr(cb, "close", lambda: None)()


def start_tensorboard(run: Any, logdir: Path, announce: Callable[[str], None] | None) -> tuple[Any, str]:
    """Start TensorBoard on `logdir`, tag the run with its URL and announce it."""
    from roost.training.tensorboard import start

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
        log.warning("could not write the monitoring reference: %s", exc)


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
    meta: dict[str, Any] = {"feature_refs": list(sel.refs), "entities": list(sel.join_keys)}
    if sel.request_fields:
        meta["request_fields"] = dict(sel.request_fields)
    return meta


def final_metrics(model: Estimator, task: str, label: str, val_df: Any, test_df: Any) -> dict[str, float]:
    """test_* and val_* metrics of a fitted model (the restored best weights)."""
    from roost.training import metrics as M
    from roost.training.preprocess import encode_labels

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
    model: Estimator,
    run: Any,
    art: Path,
    test_df: Any,
    label: str,
    metrics: dict[str, float],
    cfg: TrainConfig,
    score: bool = True,
) -> Path:
    """Export the model package into the run's artifacts (`model/`); `metrics`' test_* become the package's own
    score on `test_df` (the float32 ONNX graph users get, not the in-memory model), in place and in its metadata.
    `score` false keeps `metrics` as given (a model refitted on the test rows cannot score itself on them)."""
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
        from roost.training.package_score import package_test_metrics, rewrite_metrics

        if score and package_test_metrics(out, model, test_df, label, metrics):
            rewrite_metrics(out, metrics)
        run.log_artifacts(out, PACKAGE)
    from roost.modelpkg import read_meta

    run.log_metric("parity_max_abs_diff", float(read_meta(pkg).get("parity_max_abs_diff") or 0.0))
    return pkg
