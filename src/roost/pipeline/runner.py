"""The local pipeline runner: parallel independent tasks, retries with backoff, caching, repository records."""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from roost.errors import RoostError
from roost.pipeline.cache import TaskCache, cache_key, is_miss
from roost.pipeline.dsl import Node, Param, Pipeline, Ref

log = logging.getLogger(__name__)
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
    from roost.registry import api

    p.validate()
    unknown = set(params or {}) - set(p.params)
    if unknown:
        raise RoostError(
            f"unknown pipeline parameter(s) {sorted(unknown)}",
            hint=f"pipeline {p.name!r} takes: {', '.join(sorted(p.params)) or 'none'}",
        )
    allp = {**p.params, **(params or {})}
    cache = TaskCache(workspace.current().state_dir / "pipeline-cache")
    states = {n: TaskState(n) for n in p.nodes}
    outputs: dict[str, Any] = {}
    emit = on_event or (lambda ev, st: None)
    prun = api.start_run(
        experiment=experiment,
        name=p.name,
        params={f"param.{k}": v for k, v in allp.items() if isinstance(v, (int, float, str, bool))},
        tags={"roost.kind": "pipeline", "roost.pipeline": p.name, "roost.pipeline.tasks": ",".join(p.nodes)},
    )

    def execute(node: Node, inputs: dict[str, Any]) -> TaskState:
        st = TaskState(node.name)  # published to `states` by the scheduling thread only
        key = cache_key(node.name, node.task.code_hash(), inputs)
        trun = api.start_run(
            experiment=experiment,
            name=f"{p.name}.{node.name}",
            parent_run_id=prun.id,
            params=_scalar_params(inputs),
            tags={"roost.kind": "task", "roost.task": node.name, "roost.cache_key": key},
        )
        st.run_id = trun.id
        t0 = time.perf_counter()
        if use_cache and node.task.cache:
            hit = cache.get(key)
            if not is_miss(hit):
                st.state, st.output, st.seconds = "cached", hit, time.perf_counter() - t0
                trun.set_tags({"roost.task.state": "cached", "roost.task.attempts": 0})
                trun.end("FINISHED")
                return st
        for attempt in range(1, node.task.retries + 2):
            st.attempts = attempt
            emit("start", st)
            _local.run_id = trun.id
            try:
                st.output = node.task.fn(**inputs)
                st.state, st.error = "succeeded", None
                break
            except Exception as exc:  # noqa: BLE001 - a task failure is data, recorded below
                st.error = f"{type(exc).__name__}: {exc}"
                log.warning("task %s attempt %d failed: %s", node.name, attempt, st.error)
                trun.set_tag(f"roost.task.error.{attempt}", traceback.format_exc()[-2000:])
                if attempt <= node.task.retries:
                    emit("retry", st)
                    sleep(node.task.retry_delay * 2 ** (attempt - 1))
                else:
                    st.state = "failed"
            finally:
                _local.run_id = None
        st.seconds = time.perf_counter() - t0
        trun.set_tags(
            {
                "roost.task.state": st.state,
                "roost.task.attempts": st.attempts,
                **({"roost.task.error": st.error} if st.error else {}),
            }
        )
        trun.log_metric("task_seconds", st.seconds)
        if st.state == "succeeded" and node.task.cache:
            cache.put(key, st.output)
        trun.end("FINISHED" if st.state == "succeeded" else "FAILED")
        return st

    pending = dict(p.nodes)
    running: dict[Future, str] = {}
    try:
        with ThreadPoolExecutor(max_workers=max(1, parallel), thread_name_prefix="roost-task") as pool:
            while pending or running:
                for name, node in list(pending.items()):
                    ups = [states[u].state for u in node.upstream()]
                    if any(s in ("failed", "skipped") for s in ups):
                        st = states[name]
                        st.state = "skipped"
                        bad = [u for u in node.upstream() if states[u].state in ("failed", "skipped")]
                        st.error = f"upstream {', '.join(bad)} did not succeed"
                        skip = api.start_run(
                            experiment=experiment,
                            name=f"{p.name}.{name}",
                            parent_run_id=prun.id,
                            tags={
                                "roost.kind": "task",
                                "roost.task": name,
                                "roost.task.state": "skipped",
                                "roost.task.error": st.error,
                            },
                        )
                        st.run_id = skip.id
                        skip.end("SKIPPED")
                        emit("skipped", st)
                        del pending[name]
                    elif all(s in ("succeeded", "cached") for s in ups):
                        del pending[name]
                        try:
                            inputs = _resolve(node, outputs, allp)
                        except RoostError as exc:  # e.g. a missing key of an upstream dict output
                            states[name] = TaskState(name, "failed", error=exc.message)
                            emit("failed", states[name])
                            continue
                        states[name].state = "running"
                        running[pool.submit(execute, node, inputs)] = name
                if not running:
                    continue
                done, _ = wait(list(running), return_when=FIRST_COMPLETED)
                for f in done:
                    name = running.pop(f)
                    st = states[name] = f.result()
                    if st.state in ("succeeded", "cached"):
                        outputs[name] = st.output
                    emit(st.state, st)
    except KeyboardInterrupt:
        prun.end("KILLED")
        raise
    failed = [s for s in states.values() if s.state == "failed"]
    status = "FAILED" if failed else "FINISHED"
    prun.set_tags(
        {
            "roost.pipeline.state": status.lower(),
            **({"roost.pipeline.error": f"{failed[0].name}: {failed[0].error}"} if failed else {}),
        }
    )
    prun.end(status)
    return PipelineResult(prun.id, status, states)
