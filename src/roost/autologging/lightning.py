"""PyTorch Lightning: a Lightning logger that records a fit in a roost run, and `autolog()` that adds it to every
`Trainer.fit` without a code change.

Lightning itself decides what reaches a logger and at which step (everything `self.log` records, at the global
step, with `epoch` alongside), so the run's metric histories are what Lightning's own CSVLogger would write;
`save_hyperparameters()` values become params, and the best checkpoint of a ModelCheckpoint is uploaded as the
artifact `checkpoints/<file>` when the fit ends. On several processes (DDP) only rank 0 logs.

    trainer = L.Trainer(max_epochs=5, logger=RoostLogger(experiment="mnist"))
    # or, for every fit:  roost.lightning.autolog()
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lightning.pytorch.loggers.logger import Logger
from lightning.pytorch.utilities import rank_zero_only

from roost.autologging import core
from roost.autologging.record import param_value

if TYPE_CHECKING:
    from roost.registry.run import Run

log = logging.getLogger(__name__)

FLAVOR = "lightning"
STATUS = {"success": "FINISHED", "failed": "FAILED", "finished": "FINISHED"}  # Lightning's finalize status → run's


def _flat(d: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(d, argparse.Namespace):
        d = vars(d)
    out: dict[str, Any] = {}
    for k, v in dict(d).items():
        if isinstance(v, dict | argparse.Namespace):
            out.update(_flat(v, f"{prefix}{k}/"))
        else:
            out[f"{prefix}{k}"] = v
    return out


class RoostLogger(Logger):
    """A Lightning logger writing to a roost run: the active run if there is one (left open), else its own."""

    def __init__(self, experiment: str = "default", run_name: str | None = None, log_checkpoints: bool = True) -> None:
        super().__init__()
        self.experiment_name, self.run_name, self.log_checkpoints = experiment, run_name, log_checkpoints
        self._run: Run | None = None
        self._owned = False
        self._checkpoint: Any = None

    @property
    def name(self) -> str:
        """The experiment's name."""
        return self.experiment_name

    @property
    def version(self) -> str:
        """The run's id (the run starts on first use)."""
        return self.run.id

    @property
    def run(self) -> Run:
        """The run this logger writes to."""
        if self._run is None:
            from roost.registry import api

            active = api.active_run()
            if active is not None:
                self._run = active
            else:
                tags = {"roost.autolog": FLAVOR, "roost.step_kind": "step"}
                self._run = api.start_run(self.experiment_name, name=self.run_name, tags=tags)
                self._owned = True
        return self._run

    @rank_zero_only
    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        """save_hyperparameters() values (nested keys joined by '/') as params."""
        values = {k: param_value(v) for k, v in _flat(params).items()}
        if values:
            self.run.log_params(values)

    @rank_zero_only
    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        """What Lightning logs, at its global step (non-finite values are left out: roost refuses them)."""
        values = {k: float(v) for k, v in metrics.items() if math.isfinite(float(v))}
        if values:
            self.run.log_metrics(values, step=step)

    def after_save_checkpoint(self, checkpoint_callback: Any) -> None:
        """Remember the ModelCheckpoint: its best file is uploaded when the fit ends."""
        self._checkpoint = checkpoint_callback

    @rank_zero_only
    def finalize(self, status: str) -> None:
        """The fit ended: upload the best checkpoint; end a run started here (FAILED when the fit failed)."""
        if self._run is None:
            return
        best = getattr(self._checkpoint, "best_model_path", "") if self.log_checkpoints else ""
        if best and Path(best).is_file():
            self.run.log_artifact(best, f"checkpoints/{Path(best).name}")
            score = getattr(self._checkpoint, "best_model_score", None)
            if score is not None:
                self.run.set_tags({"lightning.best_checkpoint": Path(best).name, "lightning.best_score": float(score)})
        if status == "failed":  # Lightning calls it while handling the fit's exception: the run ends as `with` would
            self.fail(sys.exc_info()[1] or RuntimeError("the Lightning fit failed"))

    def fail(self, exc: BaseException) -> None:
        """The fit raised: end a run started here as its `with` block would (KILLED on Ctrl-C/SIGTERM, else FAILED)."""
        core.end_owned(self._run, self._owned, exc)

    def close(self) -> None:
        """End a run started here (FINISHED unless finalize ended it)."""
        core.end_owned(self._run, self._owned)


def _fit_wrapper(original: Any) -> Any:
    def fit(self: Any, *args: Any, **kwargs: Any) -> Any:
        conf = core.settings(FLAVOR)
        if conf is None or any(isinstance(lg, RoostLogger) for lg in self.loggers):
            return original(self, *args, **kwargs)
        logger = RoostLogger(experiment=conf.experiment, log_checkpoints=conf.log_models)
        self.loggers = [*self.loggers, logger]
        try:
            result = original(self, *args, **kwargs)
        except BaseException as exc:
            logger.fail(exc)
            raise
        logger.close()
        return result

    return fit


def autolog(
    disable: bool = False,
    log_models: bool = True,
    log_datasets: bool = True,
    silent: bool = False,
    registered_model_name: str | None = None,
    experiment: str = "default",
) -> None:
    """Add a RoostLogger to every `Trainer.fit` (log_models: upload the best checkpoint); disable=True undoes it."""
    from lightning.pytorch import Trainer

    core.switch(FLAVOR, disable, lambda: [(Trainer, "fit", _fit_wrapper)], log_models=log_models,
                log_datasets=log_datasets, silent=silent, registered_model_name=registered_model_name,
                experiment=experiment)  # fmt: skip
