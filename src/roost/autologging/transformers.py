"""Hugging Face `Trainer`: a TrainerCallback that records a training in a roost run, and `autolog()` that adds it
to every Trainer.

What the Trainer logs (its `log_history`: loss, learning rate, grad norm, eval metrics, at `state.global_step`)
becomes the run's metric histories; the TrainingArguments and the model's config become params (`args/…`,
`model/…`); the final model folder (`save_model`) is uploaded as the artifact `model/` when `log_models`.

    trainer = Trainer(model, args, train_dataset=ds, callbacks=[RoostCallback(experiment="sentiment")])
    # or, for every Trainer:  roost.transformers.autolog()
"""

from __future__ import annotations

import logging
import math
import numbers
import tempfile
from typing import TYPE_CHECKING, Any

from transformers import Trainer, TrainerCallback

from roost.autologging import core
from roost.autologging.record import param_value

if TYPE_CHECKING:
    from roost.registry.run import Run

log = logging.getLogger(__name__)

FLAVOR = "transformers"
SKIP_ARGS = frozenset({"hub_token", "push_to_hub_token", "output_dir", "logging_dir"})  # secrets and local paths
MAX_PARAMS = 200  # TrainingArguments has ~130 fields; a model config can have many more


def _params(args: Any, model: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in (args.to_dict() if args is not None else {}).items():
        if k not in SKIP_ARGS and isinstance(v, str | int | float | bool) and v is not None:
            out[f"args/{k}"] = param_value(v)
    config = getattr(model, "config", None)
    if config is not None:
        for k, v in config.to_dict().items():
            if isinstance(v, str | int | float | bool):
                out[f"model/{k}"] = param_value(v)
    return dict(list(out.items())[:MAX_PARAMS])


class RoostCallback(TrainerCallback):
    """Record a Trainer's training: the active roost run if there is one (left open), else its own."""

    def __init__(self, experiment: str = "default", run_name: str | None = None, log_models: bool = False) -> None:
        self.experiment, self.run_name, self.log_models = experiment, run_name, log_models
        self.run: Run | None = None
        self._owned = False
        self._model: Any = None

    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kw: Any) -> None:
        """The run, with the arguments and the model's config as params (rank 0 only)."""
        from roost.registry import api

        if not state.is_world_process_zero or self.run is not None:
            return
        active = api.active_run()
        if active is not None:
            self.run = active
        else:
            tags = {"roost.autolog": FLAVOR, "roost.step_kind": "step"}
            self.run = api.start_run(self.experiment, name=self.run_name or args.run_name, tags=tags)
            self._owned = True
        self._model = model
        self.run.log_params(_params(args, model))

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kw: Any) -> None:
        """One Trainer log entry: its numbers at the global step."""
        if self.run is None or not logs:
            return
        values = {
            k: float(v)
            for k, v in logs.items()
            if isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(float(v))
        }
        if values:
            self.run.log_metrics(values, step=int(state.global_step))

    def on_train_end(self, args: Any, state: Any, control: Any, model: Any = None, **kw: Any) -> None:
        """Upload the model (log_models) and end a run started here."""
        if self.run is None:
            return
        if self.log_models and (model or self._model) is not None:
            with tempfile.TemporaryDirectory() as tmp:
                (model or self._model).save_pretrained(tmp)
                self.run.log_artifacts(tmp, "model")
        core.end_owned(self.run, self._owned)
        self.run = None

    def fail(self, exc: BaseException) -> None:
        """The training raised: end a run started here as its `with` block would (KILLED on Ctrl-C/SIGTERM, else
        FAILED with the error described)."""
        core.end_owned(self.run, self._owned, exc)
        self.run = None


def _train_wrapper(original: Any) -> Any:
    def train(self: Any, *args: Any, **kwargs: Any) -> Any:
        conf = core.settings(FLAVOR)
        if conf is None or any(isinstance(cb, RoostCallback) for cb in self.callback_handler.callbacks):
            return original(self, *args, **kwargs)
        cb = RoostCallback(experiment=conf.experiment, log_models=conf.log_models)
        self.add_callback(cb)
        try:
            return original(self, *args, **kwargs)
        except BaseException as exc:
            cb.fail(exc)
            raise
        finally:
            self.remove_callback(cb)

    return train


def autolog(
    disable: bool = False,
    log_models: bool = True,
    log_datasets: bool = True,
    silent: bool = False,
    registered_model_name: str | None = None,
    experiment: str = "default",
) -> None:
    """Add a RoostCallback to every `Trainer.train` (log_models: upload the saved model); disable=True undoes it."""
    core.switch(FLAVOR, disable, lambda: [(Trainer, "train", _train_wrapper)], log_models=log_models,
                log_datasets=log_datasets, silent=silent, registered_model_name=registered_model_name,
                experiment=experiment)  # fmt: skip
