"""A Ray Tune logger: each trial becomes a child run of one run per Tune experiment, with the trial's config as
params and every numeric result it reports as a metric at its `training_iteration`.

    tuner = tune.Tuner(train_fn, param_space=space,
                       run_config=tune.RunConfig(callbacks=[RoostLoggerCallback(experiment="churn")]))

The callback runs in the Tune driver (not in the trial workers), so the workers need no roost configuration; a
trial that errors ends its run FAILED. Logging never stops the tuning: a failure is a warning.
"""

from __future__ import annotations

import logging
import math
import numbers
import warnings
from typing import TYPE_CHECKING, Any

from ray.tune.logger import LoggerCallback

from roost.autologging.record import param_value

if TYPE_CHECKING:
    from roost.registry.run import Run

log = logging.getLogger(__name__)

# what Tune adds to every result: bookkeeping, not the user's metrics
AUTO_KEYS = frozenset({
    "training_iteration", "timestamp", "time_this_iter_s", "time_total_s", "time_since_restore",
    "iterations_since_restore", "timesteps_since_restore", "timesteps_total", "episodes_total", "pid", "date",
    "hostname", "node_ip", "done", "trial_id", "experiment_tag", "config", "checkpoint_dir_name",
    "should_checkpoint",
})  # fmt: skip


def flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested dict as one level, keys joined by '/' (Tune's own convention for nested results)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flat(v, key + "/"))
        else:
            out[key] = v
    return out


class RoostLoggerCallback(LoggerCallback):
    """Record every trial of a Tune run (`experiment`: the roost experiment; `name`: the parent run's name)."""

    def __init__(self, experiment: str = "default", name: str = "ray-tune") -> None:
        self.experiment, self.name = experiment, name
        self._parent: Run | None = None
        self._runs: dict[str, Run] = {}

    def _parent_run(self) -> Run:
        from roost.registry import api

        if self._parent is None:
            self._parent = api.start_run(self.experiment, name=self.name, tags={"roost.autolog": "ray_tune"})
        return self._parent

    def log_trial_start(self, trial: Any) -> None:
        """A trial started: its run, with its config as params."""
        self._safely("start", self._start, trial)

    def log_trial_result(self, iteration: int, trial: Any, result: dict[str, Any]) -> None:
        """A reported result: its numeric values as metrics at `training_iteration`."""
        self._safely("result", self._result, trial, result)

    def log_trial_end(self, trial: Any, failed: bool = False) -> None:
        """A trial ended: FINISHED, or FAILED with Tune's error."""
        self._safely("end", self._end, trial, failed)

    def on_experiment_end(self, trials: list[Any], **info: Any) -> None:
        """The Tune run ended: end the parent run."""
        if self._parent is not None and not self._parent.ended:
            self._parent.end()

    def _start(self, trial: Any) -> None:
        from roost.registry import api

        if trial.trial_id in self._runs:  # a restored trial goes on in its run
            return
        params = {k: param_value(v) for k, v in flat(dict(trial.config)).items()}
        tags = {"roost.autolog": "ray_tune", "ray.trial_id": trial.trial_id}
        parent = self._parent_run()
        self._runs[trial.trial_id] = api.start_run(
            self.experiment, name=str(trial), params=params, tags=tags, parent_run_id=parent.id
        )

    def _result(self, trial: Any, result: dict[str, Any]) -> None:
        run = self._runs.get(trial.trial_id)
        if run is None:
            self._start(trial)
            run = self._runs[trial.trial_id]
        step = int(result.get("training_iteration") or 0)
        metrics = {
            k: float(v)
            for k, v in flat({k: v for k, v in result.items() if k not in AUTO_KEYS}).items()
            if isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(float(v))
        }
        if metrics:
            run.log_metrics(metrics, step=step)

    def _end(self, trial: Any, failed: bool) -> None:
        run = self._runs.pop(trial.trial_id, None)
        if run is None:
            return
        if failed:
            run.end("FAILED", error=str(getattr(trial, "error_file", None) or "the trial raised"))
        else:
            run.end()

    def _safely(self, what: str, fn: Any, *args: Any) -> None:
        try:
            fn(*args)
        except Exception as exc:  # noqa: BLE001 - the tuning goes on whatever logging does
            warnings.warn(f"roost could not record a Ray Tune trial's {what}: {exc}", stacklevel=2)
