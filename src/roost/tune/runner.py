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
import os
import signal
import time
from collections.abc import Callable
from contextlib import AbstractContextManager as ContextManager
from dataclasses import dataclass, field
from typing import Any

from roost.errors import RoostError
from roost.tune.engine import Engine

log = logging.getLogger(__name__)
TAG_STUDY, TAG_TRIAL, TAG_STATE = "roost.tune.study", "roost.tune.trial", "roost.tune.state"
RUNNER_LEASE_S = 3600.0


class Pruned(Exception):
    """Raise from an objective to stop a trial that the pruner rejected."""


@dataclass
class TrialContext:
    """What an objective receives: the trial's params, its number, where to log, and `report` for pruning."""

    study_id: str
    number: int
    params: dict[str, Any]
    parent_run_id: str
    experiment: str
    metric: str
    engine: Engine = field(repr=False)
    run: Any = field(default=None, repr=False)
    run_id: str | None = None

    @property
    def tags(self) -> dict[str, str]:
        """Tags that mark a run as this trial."""
        return {TAG_STUDY: self.study_id, TAG_TRIAL: str(self.number)}

    def report(self, value: float, step: int) -> bool:
        """Send an intermediate value (also logged on the trial's run); True means: prune this trial."""
        if self.run is not None and math.isfinite(value):
            self.run.log_metric(self.metric, value, step=step)
        return bool(self.engine.report(self.study_id, self.number, int(step), float(value))["prune"])


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


def _value(out: Any, metric: str) -> float:
    """An objective's return (a number or a mapping holding `metric`) as a float."""
    if isinstance(out, dict):
        if metric not in out:
            raise RoostError(f"the objective returned no {metric!r}", hint=f"it returned {sorted(out)}")
        out = out[metric]
    return float(out)


def run_trial(engine: Engine, ctx: TrialContext, objective: Callable[[TrialContext], Any]) -> str:
    """Evaluate one leased trial and tell the outcome; returns the final state."""
    from roost.registry.api import start_run

    sid, n = ctx.study_id, ctx.number
    try:
        if getattr(objective, "owns_run", False):
            value = _value(objective(ctx), ctx.metric)
        else:
            with start_run(
                experiment=ctx.experiment,
                name=f"trial-{n}",
                params=_run_params(ctx.params),
                tags=ctx.tags,
                parent_run_id=ctx.parent_run_id,
            ) as run:
                ctx.run, ctx.run_id = run, run.id
                try:
                    value = _value(objective(ctx), ctx.metric)
                except Pruned:
                    run.set_tag(TAG_STATE, "PRUNED")
                    raise
                if math.isfinite(value):
                    run.log_metric(ctx.metric, value)
                run.set_tag(TAG_STATE, "COMPLETE" if math.isfinite(value) else "FAIL")
    except Pruned:
        engine.tell(sid, n, state="pruned", attrs={"run_id": ctx.run_id})
        return "PRUNED"
    except KeyboardInterrupt:
        engine.tell(sid, n, state="fail", reason="interrupted", attrs={"run_id": ctx.run_id})
        raise
    except Exception as exc:  # noqa: BLE001 - a failing trial is recorded, the study goes on
        log.warning("trial %d failed: %s: %s", n, type(exc).__name__, exc)
        engine.tell(sid, n, state="fail", reason=f"{type(exc).__name__}: {exc}"[:500], attrs={"run_id": ctx.run_id})
        return "FAIL"
    return str(engine.tell(sid, n, value, attrs={"run_id": ctx.run_id})["state"])


def _run_params(params: dict[str, Any]) -> dict[str, Any]:
    """Trial params as run params (lists as JSON text)."""
    import json

    return {k: v if isinstance(v, (bool, int, float, str)) else json.dumps(v) for k, v in params.items()}


def work(
    sid: str,
    objective: Callable[[TrialContext], Any],
    client_id: str,
    parent_run_id: str,
    experiment: str,
    metric: str,
    engine: Engine | None = None,
) -> int:
    """A worker: ask, evaluate, tell until the study is done; returns how many trials it ran."""
    engine = engine or Engine()
    n = 0
    while True:
        r = engine.ask(sid, client_id=client_id, lease_s=RUNNER_LEASE_S)
        t = r["trial"]
        if t is None:
            if r["done"]:
                return n
            time.sleep(min(r["retry_after"] or 0.5, 0.5))
            continue
        ctx = TrialContext(sid, t["number"], t["params"], parent_run_id, experiment, metric, engine)
        run_trial(engine, ctx, objective)
        n += 1


def _worker_main(
    ws: Any, sid: str, objective: Any, client_id: str, parent_run_id: str, experiment: str, metric: str
) -> None:
    """Entry point of a worker process (spawned): adopt the workspace, then work."""
    from roost import workspace

    logging.basicConfig(level=logging.WARNING)
    workspace.use(ws)
    try:
        work(sid, objective, client_id, parent_run_id, experiment, metric)
    except KeyboardInterrupt:
        pass


def _run_workers(
    ws: Any,
    sid: str,
    objective: Any,
    clients: list[str],
    parent_run_id: str,
    experiment: str,
    metric: str,
    engine: Engine,
) -> None:
    """Run one spawned process per client id; a worker that dies has its running trial failed."""
    import multiprocessing as mp
    import pickle

    try:
        pickle.dumps(objective)
    except Exception as exc:  # noqa: BLE001 - lambdas, closures, objects holding locks
        raise RoostError(
            f"--parallel needs an objective that worker processes can import: {exc}",
            hint="use a module-level function (tune.objective: module:function)",
        ) from None
    ctx = mp.get_context("spawn")
    procs = {
        c: ctx.Process(
            target=_worker_main,
            args=(ws, sid, objective, c, parent_run_id, experiment, metric),
            name=f"roost-tune-{c}",
            daemon=False,
        )
        for c in clients
    }
    for p in procs.values():
        p.start()
    handled: set[str] = set()
    try:
        while any(p.is_alive() for p in procs.values()):
            time.sleep(0.2)
            for c, p in procs.items():
                if c not in handled and p.exitcode not in (None, 0):
                    handled.add(c)
                    engine.abandon(sid, [c], reason=f"worker exited with code {p.exitcode}")
        for c, p in procs.items():
            if c not in handled and p.exitcode not in (None, 0):
                engine.abandon(sid, [c], reason=f"worker exited with code {p.exitcode}")
    except KeyboardInterrupt:
        # a terminal's Ctrl-C reaches the workers too; signal only those that did not hear it
        deadline = time.time() + 3
        while time.time() < deadline and any(p.is_alive() for p in procs.values()):
            time.sleep(0.1)
        for p in procs.values():
            if p.is_alive() and p.pid:
                os.kill(p.pid, signal.SIGINT)
        for p in procs.values():
            p.join(timeout=30)
            if p.is_alive():
                p.terminate()
                p.join(timeout=5)
        raise


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
    display: Callable[[Engine, str], ContextManager[Any]] | None = None,
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
        The search space (roost.tune.space syntax).
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
    import contextlib

    from roost import workspace
    from roost.registry.api import start_run

    if not isinstance(n_trials, int) or n_trials < 1:
        raise RoostError(f"--trials must be a positive integer, got {n_trials!r}")
    if backend not in ("local", "ray"):
        raise RoostError(f"--backend must be local or ray, got {backend!r}", hint="e.g. --backend ray")
    ray_backend = None
    if backend == "ray":
        from roost.tune.ray_backend import RayBackend

        ray_backend = RayBackend(ray_address)
        parallel = ray_backend.slots() if parallel is None else parallel
    parallel = 1 if parallel is None else parallel
    if not isinstance(parallel, int) or parallel < 1:
        if ray_backend is not None:
            ray_backend.close()
        raise RoostError(f"--parallel must be a positive integer, got {parallel!r}")
    engine = Engine()
    parent = start_run(
        experiment=experiment,
        name=name or "tune",
        params={
            "tune.n_trials": n_trials,
            "tune.parallel": parallel,
            "tune.sampler": sampler,
            "tune.prune": prune or "none",
            "tune.metric": metric,
            "tune.direction": direction,
        },
        tags={"roost.kind": "tune", "roost.tune.backend": backend, **(tags or {})},
    )
    interrupted = False
    try:
        study = engine.create_study(
            space,
            direction=direction,
            objective=metric,
            sampler=sampler,
            pruner=prune,
            seed=seed,
            max_trials=n_trials,
            lease_s=RUNNER_LEASE_S,
            name=name,
            attrs={"parent_run_id": parent.id, "experiment": experiment},
        )
        sid = study["id"]
        for point in (start or [])[:n_trials]:
            engine.add_trial(sid, point)
        parent.set_tags(
            {
                TAG_STUDY: sid,
                "roost.tune.sampler_used": study["sampler_used"],
                "roost.tune.sampler_reason": study["sampler_reason"],
            }
        )
        clients = [f"{parent.id[:8]}-w{i}" for i in range(parallel)]
        cm = display(engine, sid) if display is not None else contextlib.nullcontext()
        try:
            with cm:
                if ray_backend is not None:
                    ray_backend.run(
                        workspace.current(),
                        sid,
                        objective,
                        clients,
                        parent.id,
                        experiment,
                        metric,
                        engine,
                        RUNNER_LEASE_S,
                    )
                elif parallel == 1:
                    work(sid, objective, clients[0], parent.id, experiment, metric, engine)
                else:
                    _run_workers(workspace.current(), sid, objective, clients, parent.id, experiment, metric, engine)
        except KeyboardInterrupt:
            interrupted = True
            engine.abandon(sid, clients)
        result = _summarise(engine, sid, parent, study["sampler_used"], interrupted)
        finalize = getattr(objective, "finalize", None)
        if finalize is not None and not interrupted:
            result.final = finalize(result, parent)
        if finish is not None and not interrupted:
            finish(result)
    except BaseException:
        parent.end("KILLED" if interrupted else "FAILED")
        raise
    finally:
        if ray_backend is not None:
            ray_backend.close()
    parent.end("KILLED" if interrupted else "FINISHED")
    return result


def _summarise(engine: Engine, sid: str, parent: Any, sampler: str, interrupted: bool) -> TuneResult:
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
