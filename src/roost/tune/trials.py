"""One trial of a tuning job: the context an objective receives, and the workers that ask, evaluate and tell.

`run_trial` evaluates one leased trial (in its own child run unless the objective owns its run); `work` loops
ask/evaluate/tell in this process; `run_workers` runs one spawned process per client id (`--parallel`).
"""

from __future__ import annotations

import logging
import math
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from roost.errors import RoostError
from roost.tune.remote import AnyEngine, open_engine

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
    engine: AnyEngine = field(repr=False)
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


def _value(out: Any, metric: str) -> float:
    """An objective's return (a number or a mapping holding `metric`) as a float."""
    if isinstance(out, dict):
        if metric not in out:
            raise RoostError(f"the objective returned no {metric!r}", hint=f"it returned {sorted(out)}")
        out = out[metric]
    return float(out)


def run_trial(engine: AnyEngine, ctx: TrialContext, objective: Callable[[TrialContext], Any]) -> str:
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
    engine: AnyEngine | None = None,
) -> int:
    """A worker: ask, evaluate, tell until the study is done; returns how many trials it ran."""
    engine = engine or open_engine()
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


def run_workers(
    ws: Any,
    sid: str,
    objective: Any,
    clients: list[str],
    parent_run_id: str,
    experiment: str,
    metric: str,
    engine: AnyEngine,
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
