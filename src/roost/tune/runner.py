"""Run a tuning job: a parent run, trials as child runs, P worker processes over one persisted study, Ctrl-C safe.

The parent run records the sampler used (and why), the best value, trial and run, the counts per state and the
best-so-far curve (`best_so_far`, step = number of finished trials). An objective with a `finalize(result,
parent)` method builds the final model after the trials (a cross-validated study's blend, roost.tune.cv).
`finish` runs on the result before the parent run ends (the CLI registers the final model there). On Ctrl-C,
workers tell their running trial as failed ("interrupted"), finished trials stay, and the parent ends KILLED.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager as ContextManager
from dataclasses import dataclass, field
from typing import Any

from roost.errors import RoostError
from roost.tune.remote import AnyEngine, open_engine
from roost.tune.trials import (
    RUNNER_LEASE_S,
    TAG_STATE,
    TAG_STUDY,
    TAG_TRIAL,
    Pruned,
    TrialContext,
    run_trial,
    run_workers,
    work,
)

__all__ = [
    "RUNNER_LEASE_S",
    "TAG_STATE",
    "TAG_STUDY",
    "TAG_TRIAL",
    "Pruned",
    "TrialContext",
    "TuneResult",
    "TuneSettings",
    "run_trial",
    "run_tuning",
    "tune",
    "work",
]
log = logging.getLogger(__name__)
Display = Callable[[AnyEngine, str], ContextManager[Any]]


@dataclass
class TuneResult:
    """What a tuning job produced."""

    study_id: str
    parent_run_id: str
    sampler: str
    best: dict[str, Any] | None
    trials: list[dict[str, Any]]
    interrupted: bool = False
    registered: str | None = None
    final: dict[str, Any] | None = None  # a cross-validated study's blend: run_id, weights per trial, metrics

    @property
    def model_run_id(self) -> str | None:
        """The run holding the final model: the tuning run when it blends trials, else the best trial's run."""
        return self.final["run_id"] if self.final else self.best_run_id

    @property
    def best_value(self) -> float | None:
        """The best objective value (None when no trial completed)."""
        return None if self.best is None else self.best["value"]

    @property
    def best_params(self) -> dict[str, Any] | None:
        """The best trial's params."""
        return None if self.best is None else self.best["params"]

    @property
    def best_run_id(self) -> str | None:
        """The run of the best trial."""
        return None if self.best is None else (self.best.get("attrs") or {}).get("run_id")


@dataclass(frozen=True)
class TuneSettings:
    """How a tuning job runs, besides what it tunes (the objective, the space, the budget); see `tune` for each."""

    parallel: int | None = None
    sampler: str = "auto"
    prune: str | None = None
    direction: str = "minimize"
    metric: str = "value"
    experiment: str = "tune"
    name: str | None = None
    seed: int | None = None
    backend: str = "local"
    ray_address: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    start: Sequence[dict[str, Any]] = ()


def tune(
    objective: Callable[[TrialContext], Any],
    space: dict[str, Any],
    n_trials: int,
    *,
    parallel: int | None = None,
    sampler: str = "auto",
    prune: str | None = None,
    direction: str = "minimize",
    metric: str = "value",
    experiment: str = "tune",
    name: str | None = None,
    seed: int | None = None,
    display: Display | None = None,
    finish: Callable[[TuneResult], None] | None = None,
    backend: str = "local",
    ray_address: str | None = None,
    tags: dict[str, str] | None = None,
    start: list[dict[str, Any]] | None = None,
) -> TuneResult:
    """Tune `objective` over `space` for `n_trials` as child runs of one tuning run; Ctrl-C keeps finished trials.

    Parameters
    ----------
    objective : callable
        Called with a TrialContext per trial; returns the metric (a number, or a mapping holding `metric`). One
        with a `finalize(result, parent)` method builds the final model after the trials.
    space : dict
        The search space (roost.tune.search_space syntax).
    n_trials : int
        How many trials in all (a positive integer).
    parallel : int, optional
        Trials at once: 1 locally by default, the cluster's CPUs on Ray.
    sampler : str
        auto | grid | random | tpe | gp.
    prune : str, optional
        none | median | hyperband.
    direction : str
        minimize | maximize.
    metric : str
        The objective's name, logged on each trial's run.
    experiment : str
        The experiment of the tuning run and its trials.
    name : str, optional
        The tuning run's and the study's name.
    seed : int, optional
        Seeds the sampler.
    display : callable, optional
        `display(engine, study_id)` returns a context manager shown while the trials run (the CLI's live table).
    finish : callable, optional
        Runs on the result before the tuning run ends (e.g. registers the final model); not after Ctrl-C.
    backend : str
        local (worker processes) | ray (one Ray task a trial, at `ray_address`).
    ray_address : str, optional
        Ray cluster HOST:PORT (default: RAY_ADDRESS or a local Ray).
    tags : dict, optional
        Added to the tuning run.
    start : list of dict, optional
        Points tried first, within the budget.
    """
    settings = TuneSettings(
        parallel=parallel,
        sampler=sampler,
        prune=prune,
        direction=direction,
        metric=metric,
        experiment=experiment,
        name=name,
        seed=seed,
        backend=backend,
        ray_address=ray_address,
        tags=dict(tags or {}),
        start=list(start or []),
    )
    return run_tuning(objective, space, n_trials, settings, display=display, finish=finish)


def run_tuning(
    objective: Callable[[TrialContext], Any],
    space: dict[str, Any],
    n_trials: int,
    settings: TuneSettings,
    *,
    display: Display | None = None,
    finish: Callable[[TuneResult], None] | None = None,
) -> TuneResult:
    """`tune` with its options in one TuneSettings: a parent run, the study, the trials, then the final model."""
    _check_budget(n_trials, settings.backend)
    ray_backend, parallel = _open_backend(settings)
    engine = open_engine()
    interrupted = False
    try:
        parent = _start_parent_run(n_trials, parallel, settings)
    except BaseException:
        if ray_backend is not None:
            ray_backend.close()
        raise
    try:
        study = _create_study(engine, space, n_trials, settings, parent)
        interrupted = _run_trials(engine, study["id"], objective, parent, parallel, settings, ray_backend, display)
        result = _summarise(engine, study["id"], parent, study["sampler_used"], interrupted)
        if not interrupted:
            _finalize(objective, result, parent, finish)
    except BaseException:
        parent.end("KILLED" if interrupted else "FAILED")
        raise
    finally:
        if ray_backend is not None:
            ray_backend.close()
    parent.end("KILLED" if interrupted else "FINISHED")
    return result


def _check_budget(n_trials: int, backend: str) -> None:
    """Reject a budget that is not a positive integer, or an unknown backend."""
    if not isinstance(n_trials, int) or n_trials < 1:
        raise RoostError(f"--trials must be a positive integer, got {n_trials!r}")
    if backend not in ("local", "ray"):
        raise RoostError(f"--backend must be local or ray, got {backend!r}", hint="e.g. --backend ray")


def _open_backend(settings: TuneSettings) -> tuple[Any, int]:
    """(the Ray backend or None for local workers, trials at once): 1 locally by default, Ray's CPUs on Ray."""
    ray_backend = None
    parallel = settings.parallel
    if settings.backend == "ray":
        from roost.tune.ray_backend import RayBackend

        ray_backend = RayBackend(settings.ray_address)
        parallel = ray_backend.slots() if parallel is None else parallel
    parallel = 1 if parallel is None else parallel
    if not isinstance(parallel, int) or parallel < 1:
        if ray_backend is not None:
            ray_backend.close()
        raise RoostError(f"--parallel must be a positive integer, got {parallel!r}")
    return ray_backend, parallel


def _start_parent_run(n_trials: int, parallel: int, settings: TuneSettings) -> Any:
    """The tuning run: the job's settings as params, `roost.kind=tune` and the caller's tags."""
    from roost.registry.api import start_run

    return start_run(
        experiment=settings.experiment,
        name=settings.name or "tune",
        params={
            "tune.n_trials": n_trials,
            "tune.parallel": parallel,
            "tune.sampler": settings.sampler,
            "tune.prune": settings.prune or "none",
            "tune.metric": settings.metric,
            "tune.direction": settings.direction,
        },
        tags={"roost.kind": "tune", "roost.tune.backend": settings.backend, **settings.tags},
    )


def _create_study(engine: AnyEngine, space: dict[str, Any], n_trials: int, settings: TuneSettings, parent: Any) -> Any:
    """The persisted study, its start points enqueued (within the budget), and the sampler it chose tagged."""
    study = engine.create_study(
        space,
        direction=settings.direction,
        objective=settings.metric,
        sampler=settings.sampler,
        pruner=settings.prune,
        seed=settings.seed,
        max_trials=n_trials,
        lease_s=RUNNER_LEASE_S,
        name=settings.name,
        attrs={"parent_run_id": parent.id, "experiment": settings.experiment},
    )
    for point in list(settings.start)[:n_trials]:
        engine.add_trial(study["id"], point)
    parent.set_tags(
        {
            TAG_STUDY: study["id"],
            "roost.tune.sampler_used": study["sampler_used"],
            "roost.tune.sampler_reason": study["sampler_reason"],
        }
    )
    return study


def _run_trials(
    engine: AnyEngine,
    sid: str,
    objective: Callable[[TrialContext], Any],
    parent: Any,
    parallel: int,
    settings: TuneSettings,
    ray_backend: Any,
    display: Display | None,
) -> bool:
    """Run the study's trials (on Ray, in this process, or in worker processes); True when Ctrl-C stopped them."""
    import contextlib

    from roost import workspace

    clients = [f"{parent.id[:8]}-w{i}" for i in range(parallel)]
    experiment, metric = settings.experiment, settings.metric
    cm = display(engine, sid) if display is not None else contextlib.nullcontext()
    try:
        with cm:
            if ray_backend is not None:
                ray_backend.run(
                    workspace.current(), sid, objective, clients, parent.id, experiment, metric, engine, RUNNER_LEASE_S
                )
            elif parallel == 1:
                work(sid, objective, clients[0], parent.id, experiment, metric, engine)
            else:
                run_workers(workspace.current(), sid, objective, clients, parent.id, experiment, metric, engine)
    except KeyboardInterrupt:
        engine.abandon(sid, clients)
        return True
    return False


def _finalize(objective: Any, result: TuneResult, parent: Any, finish: Callable[[TuneResult], None] | None) -> None:
    """After all trials: the objective's final model (a cross-validated blend), then the caller's `finish`."""
    finalize = getattr(objective, "finalize", None)
    if finalize is not None:
        result.final = finalize(result, parent)
    if finish is not None:
        finish(result)


def _summarise(engine: AnyEngine, sid: str, parent: Any, sampler: str, interrupted: bool) -> TuneResult:
    """Log the best-so-far curve and the best trial on the parent run; build the result."""
    st = engine.study(sid)
    best, curve = None, []
    sign = 1.0 if st["direction"] == "minimize" else -1.0
    for t in sorted(st["trials"], key=lambda t: t["finished"] or math.inf):
        if t["state"] == "COMPLETE" and t["value"] is not None:
            if best is None or sign * t["value"] < sign * best:
                best = t["value"]
            curve.append(best)
    for i, v in enumerate(curve):
        parent.log_metric("best_so_far", v, step=i + 1)
    b = st["best_trial"]
    if b is not None:
        parent.log_metric(f"best_{st['objective']}", b["value"])
        tags = {"roost.tune.best_trial": str(b["number"])}
        if (b.get("attrs") or {}).get("run_id"):
            tags["roost.tune.best_run_id"] = b["attrs"]["run_id"]
        parent.set_tags(tags)
    parent.set_tags({f"roost.tune.{k.lower()}": str(v) for k, v in st["counts"].items()})
    return TuneResult(sid, parent.id, sampler, b, st["trials"], interrupted)
