"""An Optuna callback for users who keep their own Optuna loop: each finished trial becomes a child run of one run
per study, with the trial's params, its value(s), its intermediate values as a metric history and its state.

    study.optimize(objective, n_trials=50, callbacks=[roost.autologging.optuna.OptunaCallback()])

The study's run (named after the study) carries the best value so far at each trial number (`best_value`, step =
trial number) and the best trial's number and params as tags; it stays open while the study runs and is ended by
`callback.end()` (or at exit). Logging never breaks the study: a failure is a warning.
"""

from __future__ import annotations

import json
import logging
import math
import warnings
from typing import TYPE_CHECKING

from roost.autologging.record import param_value

if TYPE_CHECKING:
    import optuna

    from roost.registry.run import Run

log = logging.getLogger(__name__)

STATES = {"COMPLETE": "FINISHED", "PRUNED": "FINISHED", "FAIL": "FAILED"}  # Optuna's state → the run's status


class OptunaCallback:
    """Record every trial of the studies it is passed to (one callback can serve several studies)."""

    def __init__(
        self, experiment: str = "default", metric_name: str | list[str] = "value", silent: bool = False
    ) -> None:
        self.experiment = experiment
        self.metric_name = metric_name
        self.silent = silent
        self._parents: dict[str, Run] = {}

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        """Optuna calls this after each trial."""
        try:
            self._record(study, trial)
        except Exception as exc:  # noqa: BLE001 - the study goes on whatever logging does
            if not self.silent:
                warnings.warn(f"roost could not record Optuna trial {trial.number}: {exc}", stacklevel=2)

    def parent(self, study: optuna.Study) -> Run:
        """The study's run (started on its first trial)."""
        from roost.registry import api

        run = self._parents.get(study.study_name)
        if run is None:
            directions = [d.name.lower() for d in study.directions]
            tags = {"roost.autolog": "optuna", "optuna.study": study.study_name, "optuna.directions": directions}
            run = api.start_run(self.experiment, name=study.study_name, tags=tags)
            self._parents[study.study_name] = run
        return run

    def end(self) -> None:
        """End the studies' runs (FINISHED)."""
        for run in self._parents.values():
            if not run.ended:
                run.end()
        self._parents.clear()

    def _names(self, n: int) -> list[str]:
        if isinstance(self.metric_name, str):
            return [self.metric_name] if n == 1 else [f"{self.metric_name}_{i}" for i in range(n)]
        if len(self.metric_name) != n:
            raise ValueError(f"metric_name has {len(self.metric_name)} names for {n} objective values")
        return list(self.metric_name)

    def _record(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        from roost.registry import api

        parent = self.parent(study)
        tags = {
            "roost.autolog": "optuna",
            "optuna.trial": trial.number,
            "optuna.state": trial.state.name,
            "optuna.distributions": json.dumps({k: repr(d) for k, d in trial.distributions.items()}),
        }
        if trial.duration is not None:
            tags["optuna.duration_s"] = round(trial.duration.total_seconds(), 6)
        params = {k: param_value(v) for k, v in trial.params.items()}
        run = api.start_run(self.experiment, name=f"trial-{trial.number}", params=params, tags=tags,
                            parent_run_id=parent.id)  # fmt: skip
        with run:
            for step, value in sorted(trial.intermediate_values.items()):
                if math.isfinite(value):
                    run.log_metric("intermediate_value", value, step=step)
            if trial.values is not None:
                run.log_metrics(dict(zip(self._names(len(trial.values)), trial.values, strict=True)))
            status = STATES.get(trial.state.name, "KILLED")
            if status != "FINISHED":
                run.end(status, error=str(trial.user_attrs.get("error") or trial.system_attrs.get("fail_reason")))
        self._record_best(study, parent, trial.number)

    def _record_best(self, study: optuna.Study, parent: Run, number: int) -> None:
        if len(study.directions) != 1:  # several objectives: the Pareto front has no single best
            return
        try:
            best = study.best_trial
        except ValueError:  # no trial completed yet
            return
        parent.log_metric("best_value", float(best.values[0]), step=number)
        parent.set_tags({"optuna.best_trial": best.number, "optuna.best_params": json.dumps(best.params)})
