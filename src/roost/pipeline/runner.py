"""The local pipeline runner: parallel independent tasks, retries with backoff, caching, repository records."""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from roost.errors import RoostError
from roost.pipeline.cache import TaskCache, cache_key, is_miss
from roost.pipeline.dsl import Node, Param, Pipeline, Ref

if TYPE_CHECKING:
    from roost.registry.run import Run as ActiveRun

log = logging.getLogger(__name__)
__all__ = ["PipelineResult", "TaskState", "current_task_run_id", "run_pipeline"]
_local = threading.local()


@dataclass
class TaskState:
    """What happened to one node in a pipeline run."""

    name: str
    state: str = "pending"  # succeeded | cached | failed | skipped
    attempts: int = 0
    seconds: float = 0.0
    error: str | None = None
    run_id: str | None = None
    output: Any = None
    summary: str | None = None  # what the task did, in one line (Task.summary)


@dataclass
class PipelineResult:
    """The outcome of `run_pipeline`."""

    run_id: str
    status: str
    tasks: dict[str, TaskState] = field(default_factory=dict)

    def output(self, name: str) -> Any:
        """The output of task `name`."""
        return self.tasks[name].output


def current_task_run_id() -> str | None:
    """Inside a running task: the id of its task run in the repository."""
    return getattr(_local, "run_id", None)


def _resolve(node: Node, outputs: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """A node's input values: upstream outputs (or one key of them), parameters, constants."""
    vals = {}
    for k, v in node.inputs.items():
        if isinstance(v, Ref):
            out = outputs[v.task]
            if v.key is not None:
                if not isinstance(out, dict) or v.key not in out:
                    raise RoostError(
                        f"task {node.name!r} wants key {v.key!r} of {v.task!r}'s output",
                        hint=f"{v.task!r} returned {type(out).__name__}",
                    )
                out = out[v.key]
            vals[k] = out
        elif isinstance(v, Param):
            vals[k] = params[v.name]
        else:
            vals[k] = v
    return vals


def _scalar_params(inputs: dict[str, Any]) -> dict[str, Any]:
    """Short scalar inputs, recorded as the task run's params."""
    return {
        f"input.{k}": v
        for k, v in inputs.items()
        if isinstance(v, (int, float, str, bool)) and (not isinstance(v, str) or len(v) < 500)
    }


def run_pipeline(
    p: Pipeline,
    params: dict[str, Any] | None = None,
    parallel: int = 4,
    use_cache: bool = True,
    experiment: str = "pipelines",
    on_event: Callable[[str, TaskState], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> PipelineResult:
    """Run a pipeline locally; every pipeline run and task run is recorded in the repository."""
    from roost import workspace

    p.validate()
    run = _PipelineRun(
        p,
        _check_params(p, params),
        TaskCache(workspace.current().state_dir / "pipeline-cache"),
        use_cache,
        experiment,
        on_event or (lambda ev, st: None),
        sleep,
    )
    try:
        run.schedule(parallel)
    except KeyboardInterrupt:
        run.prun.end("KILLED")
        raise
    return run.finish()


def _check_params(p: Pipeline, params: dict[str, Any] | None) -> dict[str, Any]:
    """The pipeline's parameters with the run's values; unknown names are an error."""
    unknown = set(params or {}) - set(p.params)
    if unknown:
        raise RoostError(
            f"unknown pipeline parameter(s) {sorted(unknown)}",
            hint=f"pipeline {p.name!r} takes: {', '.join(sorted(p.params)) or 'none'}",
        )
    return {**p.params, **(params or {})}


class _PipelineRun:
    """One run of a pipeline: its repository record, task states and outputs, and the steps that fill them."""

    def __init__(
        self,
        p: Pipeline,
        params: dict[str, Any],
        cache: TaskCache,
        read_cache: bool,
        experiment: str,
        emit: Callable[[str, TaskState], None],
        sleep: Callable[[float], None],
    ) -> None:
        from roost.registry import api

        self.p, self.params, self.cache, self.read_cache, self.experiment = p, params, cache, read_cache, experiment
        self.emit, self.sleep = emit, sleep
        self.states = {n: TaskState(n) for n in p.nodes}
        self.outputs: dict[str, Any] = {}
        self.prun = api.start_run(
            experiment=experiment,
            name=p.name,
            params={f"param.{k}": v for k, v in params.items() if isinstance(v, (int, float, str, bool))},
            tags={"roost.kind": "pipeline", "roost.pipeline": p.name, "roost.pipeline.tasks": ",".join(p.nodes)},
        )

    def _task_run(self, name: str, **kw: Any) -> ActiveRun:
        """A child run of the pipeline run for node `name`."""
        from roost.registry import api

        return api.start_run(experiment=self.experiment, name=f"{self.p.name}.{name}", parent_run_id=self.prun.id, **kw)

    # -- scheduling ------------------------------------------------------------------------------------
    def schedule(self, parallel: int) -> None:
        """Run nodes as their upstreams finish, independent ones at once; skip those below a failure."""
        pending = dict(self.p.nodes)
        running: dict[Future[TaskState], str] = {}
        with ThreadPoolExecutor(max_workers=max(1, parallel), thread_name_prefix="roost-task") as pool:
            while pending or running:
                for name, node in list(pending.items()):
                    ups = [self.states[u].state for u in node.upstream()]
                    if any(s in ("failed", "skipped") for s in ups):
                        del pending[name]
                        self.skip(node)
                    elif all(s in ("succeeded", "cached") for s in ups):
                        del pending[name]
                        try:
                            inputs = _resolve(node, self.outputs, self.params)
                        except RoostError as exc:  # e.g. a missing key of an upstream dict output
                            self.states[name] = TaskState(name, "failed", error=exc.message)
                            self.emit("failed", self.states[name])
                            continue
                        self.states[name].state = "running"
                        running[pool.submit(self.execute, node, inputs)] = name
                if not running:
                    continue
                done, _ = wait(list(running), return_when=FIRST_COMPLETED)
                for f in done:
                    name = running.pop(f)
                    st = self.states[name] = f.result()
                    if st.state in ("succeeded", "cached"):
                        self.outputs[name] = st.output
                    self.emit(st.state, st)

    def skip(self, node: Node) -> None:
        """Record a node whose upstream failed or was skipped."""
        st = self.states[node.name]
        st.state = "skipped"
        bad = [u for u in node.upstream() if self.states[u].state in ("failed", "skipped")]
        st.error = f"upstream {', '.join(bad)} did not succeed"
        run = self._task_run(
            node.name,
            tags={
                "roost.kind": "task",
                "roost.task": node.name,
                "roost.task.state": "skipped",
                "roost.task.error": st.error,
            },
        )
        st.run_id = run.id
        run.end("SKIPPED")
        self.emit("skipped", st)

    # -- one task --------------------------------------------------------------------------------------
    def execute(self, node: Node, inputs: dict[str, Any]) -> TaskState:
        """Serve one node from the cache or run it (with retries); record it as a task run."""
        st = TaskState(node.name)  # published to `states` by the scheduling thread only
        t = node.task
        key: str | None
        try:
            key = cache_key(node.name, t.code_hash(), inputs, t.refs(inputs) if t.refs else None)
        except Exception as exc:  # noqa: BLE001 - an unreadable input file or a failing refs hook: run uncached
            log.warning("task %s: no cache key (%s: %s); running it uncached", node.name, type(exc).__name__, exc)
            key = None
        trun = self._task_run(
            node.name,
            params=_scalar_params(inputs),
            tags={"roost.kind": "task", "roost.task": node.name, "roost.cache_key": key or ""},
        )
        st.run_id = trun.id
        t0 = time.perf_counter()
        if self._from_cache(node, key, st):
            st.seconds = time.perf_counter() - t0
            trun.set_tags(
                {"roost.task.state": "cached", "roost.task.attempts": 0, **_summary_tag(node, st.output, cached=True)}
            )
            st.summary = _summary(node, st.output, cached=True)
            trun.end("FINISHED")
            return st
        self._attempts(node, inputs, st, trun)
        st.seconds = time.perf_counter() - t0
        if st.state == "succeeded":
            st.summary = _summary(node, st.output, cached=False)
        trun.set_tags(
            {
                "roost.task.state": st.state,
                "roost.task.attempts": st.attempts,
                **({"roost.task.error": st.error} if st.error else {}),
                **({"roost.task.summary": st.summary} if st.summary else {}),
            }
        )
        trun.log_metric("task_seconds", st.seconds)
        if st.state == "succeeded" and t.cache and key:  # written even without reading (--no-cache refreshes it)
            self.cache.put(key, st.output)
        trun.end("FINISHED" if st.state == "succeeded" else "FAILED")
        return st

    def _from_cache(self, node: Node, key: str | None, st: TaskState) -> bool:
        """Fill `st` from the cache when a usable entry exists (its effect, if any, still in place)."""
        if not self.read_cache or not node.task.cache or key is None:
            return False
        hit = self.cache.get(key)
        if is_miss(hit):
            return False
        if node.task.still_holds is not None and not node.task.still_holds(hit):
            log.info("task %s: the cached output's effect no longer holds; running it again", node.name)
            return False
        st.state, st.output = "cached", hit
        return True

    def _attempts(self, node: Node, inputs: dict[str, Any], st: TaskState, trun: ActiveRun) -> None:
        """Call the task until it succeeds or its retries are spent (exponential backoff)."""
        t = node.task
        for attempt in range(1, t.retries + 2):
            st.attempts = attempt
            self.emit("start", st)
            _local.run_id = trun.id
            try:
                st.output = t.fn(**inputs)
                st.state, st.error = "succeeded", None
                return
            except (Exception, SystemExit) as exc:  # noqa: BLE001 - a failure (sys.exit too) is data for the caller
                st.error = f"{type(exc).__name__}: {exc}"
                log.warning("task %s attempt %d failed: %s", node.name, attempt, st.error)
                trun.set_tag(f"roost.task.error.{attempt}", traceback.format_exc()[-2000:])
                if attempt <= t.retries:
                    self.emit("retry", st)
                    self.sleep(t.retry_delay * 2 ** (attempt - 1))
                else:
                    st.state = "failed"
            finally:
                _local.run_id = None

    # -- the end ---------------------------------------------------------------------------------------
    def finish(self) -> PipelineResult:
        """End the pipeline run: FAILED when any task failed (the first failure is tagged)."""
        failed = [s for s in self.states.values() if s.state == "failed"]
        status = "FAILED" if failed else "FINISHED"
        self.prun.set_tags(
            {
                "roost.pipeline.state": status.lower(),
                **({"roost.pipeline.error": f"{failed[0].name}: {failed[0].error}"} if failed else {}),
            }
        )
        self.prun.end(status)
        return PipelineResult(self.prun.id, status, self.states)


def _summary(node: Node, output: Any, cached: bool) -> str | None:
    """The task's one-line account of its output (cached: said to be an earlier run's, nothing done now)."""
    if node.task.summary is None:
        return "nothing run: output of an earlier run" if cached else None
    try:
        text = node.task.summary(output)
    except Exception as exc:  # noqa: BLE001 - a summary must never fail the task
        log.debug("task %s summary failed: %s", node.name, exc)
        return None
    return f"nothing run (cached); earlier run: {text}" if cached else text


def _summary_tag(node: Node, output: Any, cached: bool) -> dict[str, str]:
    text = _summary(node, output, cached)
    return {"roost.task.summary": text} if text else {}
