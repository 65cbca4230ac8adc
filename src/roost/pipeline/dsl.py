"""The pipeline language: `@task` functions with typed inputs/outputs, wired by calling them in a Pipeline."""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from roost.errors import ConfigError, RoostError

_current: list[Pipeline] = []


@dataclass
class Ref:
    """A reference to another task's output (optionally one key of a dict output)."""

    task: str
    key: str | None = None

    def __getitem__(self, key: str) -> Ref:
        return Ref(self.task, key)


@dataclass
class Param:
    """A pipeline parameter (`-p name=value` on the command line)."""

    name: str


class Task:
    """A pipeline step: a Python function with type-hinted inputs and output, retries and caching.

    Hooks for tasks that read or change state outside their inputs (the registry, the online store):
    `refs(inputs)` returns the references the inputs resolve to now (alias -> version, run prefix -> id), which
    join the cache key; `still_holds(output)` says whether a cached output's effect is still in place (else the
    task runs again); `summary(output)` is one line saying what the task did, shown in the run summary.
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        name: str | None = None,
        retries: int = 0,
        retry_delay: float = 1.0,
        cache: bool = True,
        refs: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        still_holds: Callable[[Any], bool] | None = None,
        summary: Callable[[Any], str] | None = None,
    ) -> None:
        self.fn = fn
        self.name = name or fn.__name__
        _check_retries(self.name, retries, retry_delay)
        self.retries = retries
        self.retry_delay = retry_delay
        self.cache = cache
        self.refs = refs
        self.still_holds = still_holds
        self.summary = summary
        self.signature = inspect.signature(fn)
        try:
            self.hints = typing.get_type_hints(fn)
        except Exception:  # noqa: BLE001 - unresolvable annotations: no type checks
            self.hints = {}
        functools.update_wrapper(self, fn)

    def configured(
        self, name: str | None = None, retries: int = 0, retry_delay: float = 1.0, cache: bool | None = None
    ) -> Task:
        """A copy with other retry/cache settings and the same function and hooks."""
        return Task(
            self.fn,
            name or self.name,
            retries,
            retry_delay,
            self.cache if cache is None else cache,
            self.refs,
            self.still_holds,
            self.summary,
        )

    @property
    def output_type(self) -> Any:
        """The annotated return type (Any when absent)."""
        return self.hints.get("return", Any)

    def code_hash(self) -> str:
        """A hash of the function's code and the user code and constants it reaches (roost.pipeline.codehash)."""
        from roost.pipeline.codehash import code_hash

        return code_hash(self.fn)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not _current:
            return self.fn(*args, **kwargs)  # plain call outside a pipeline
        return _current[-1].add(self, *args, **kwargs)

    def __repr__(self) -> str:
        return f"Task({self.name!r})"


@typing.overload
def task(
    fn: Callable[..., Any],
    *,
    name: str | None = None,
    retries: int = 0,
    retry_delay: float = 1.0,
    cache: bool = True,
    refs: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    still_holds: Callable[[Any], bool] | None = None,
    summary: Callable[[Any], str] | None = None,
) -> Task: ...


@typing.overload
def task(
    fn: None = None,
    *,
    name: str | None = None,
    retries: int = 0,
    retry_delay: float = 1.0,
    cache: bool = True,
    refs: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    still_holds: Callable[[Any], bool] | None = None,
    summary: Callable[[Any], str] | None = None,
) -> Callable[[Callable[..., Any]], Task]: ...


def task(
    fn: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    retries: int = 0,
    retry_delay: float = 1.0,
    cache: bool = True,
    refs: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    still_holds: Callable[[Any], bool] | None = None,
    summary: Callable[[Any], str] | None = None,
) -> Task | Callable[[Callable[..., Any]], Task]:
    """Decorator: make a function a pipeline task (`@roost.task` or `@roost.task(retries=2)`)."""

    def make(f: Callable[..., Any]) -> Task:
        return Task(f, name, retries, retry_delay, cache, refs, still_holds, summary)

    return make(fn) if fn is not None else make


@dataclass
class Node:
    """One task instance in a pipeline with its bound inputs (values, Refs or Params)."""

    name: str
    task: Task
    inputs: dict[str, Any]
    after: list[str] = field(default_factory=list)

    def upstream(self) -> list[str]:
        """Names of the nodes this one needs."""
        ups = [v.task for v in self.inputs.values() if isinstance(v, Ref)]
        return list(dict.fromkeys(ups + self.after))


class Pipeline:
    """A DAG of task nodes; build it with `with Pipeline(name) as p:` and task calls."""

    def __init__(self, name: str, params: dict[str, Any] | None = None) -> None:
        self.name = name
        self.params: dict[str, Any] = dict(params or {})
        self.nodes: dict[str, Node] = {}

    def __enter__(self) -> Pipeline:
        _current.append(self)
        return self

    def __exit__(self, *exc: Any) -> None:
        _current.remove(self)
        if exc[0] is None:
            self.validate()

    def param(self, name: str, default: Any = None) -> Param:
        """A parameter reference; `default` is used when the run does not set it."""
        self.params.setdefault(name, default)
        return Param(name)

    def add(
        self, t: Task, *args: Any, after: list[str] | None = None, node_name: str | None = None, **kwargs: Any
    ) -> Ref:
        """Add a node running task `t` with these inputs; returns a Ref to its output."""
        try:
            bound = t.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise ConfigError(f"task {t.name!r}: {exc}", hint=f"its signature is {t.name}{t.signature}") from None
        bound.apply_defaults()
        if node_name is not None and node_name in self.nodes:
            raise ConfigError(f"task name {node_name!r} is used twice in pipeline {self.name!r}", hint="rename one")
        name = node_name or t.name
        k = 2
        while name in self.nodes:
            name, k = f"{node_name or t.name}_{k}", k + 1
        self.nodes[name] = Node(name, t, dict(bound.arguments), list(after or []))
        return Ref(name)

    # -- validation --------------------------------------------------------------------------------------
    def validate(self) -> None:
        """Check references, types and acyclicity; errors name the offending tasks."""
        for n in self.nodes.values():
            for up in n.upstream():
                if up not in self.nodes:
                    raise ConfigError(
                        f"task {n.name!r} needs {up!r}, which is not in pipeline {self.name!r}",
                        hint=f"tasks: {', '.join(self.nodes)}",
                    )
            for arg, v in n.inputs.items():
                if isinstance(v, Param) and v.name not in self.params:
                    raise ConfigError(
                        f"task {n.name!r} input {arg!r} uses unknown parameter {v.name!r}",
                        hint=f"declare it with p.param({v.name!r}, default)",
                    )
                if isinstance(v, Ref) and v.key is None:
                    _check_types(self.nodes[v.task].task, n.task, arg) if v.task in self.nodes else None
        self.order()

    def order(self) -> list[list[str]]:
        """Topological levels (nodes in a level are independent); a cycle is an error naming it."""
        indeg = dict.fromkeys(self.nodes, 0)
        for n in self.nodes.values():
            for _ in n.upstream():
                indeg[n.name] += 1
        levels, done = [], set()
        ready = [n for n, d in indeg.items() if d == 0]
        while ready:
            levels.append(sorted(ready))
            done.update(ready)
            nxt = []
            for n in self.nodes.values():
                if n.name not in done and n.name not in nxt and all(u in done for u in n.upstream()):
                    nxt.append(n.name)
            ready = nxt
        if len(done) != len(self.nodes):
            cycle = _find_cycle({n.name: n.upstream() for n in self.nodes.values() if n.name not in done})
            raise ConfigError(
                f"pipeline {self.name!r} has a cycle: {' -> '.join(cycle)}",
                hint="a task cannot depend on itself, directly or through others",
            )
        return levels


def _check_retries(name: str, retries: Any, retry_delay: Any) -> None:
    """retries a whole number >= 0 and retry_delay a finite number of seconds >= 0, else a ConfigError."""
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ConfigError(f"task {name!r}: retries must be a whole number >= 0, got {retries!r}", hint="e.g. 2")
    if (
        isinstance(retry_delay, bool)
        or not isinstance(retry_delay, (int, float))
        or not 0 <= retry_delay < float("inf")
    ):
        raise ConfigError(
            f"task {name!r}: retry_delay must be a finite number of seconds >= 0, got {retry_delay!r}", hint="e.g. 1.0"
        )


def _check_types(up: Task, down: Task, arg: str) -> None:
    """Refuse wiring an output into an input of an incompatible annotated type."""
    out_t, in_t = up.output_type, down.hints.get(arg, Any)
    if out_t is Any or in_t is Any or out_t is inspect.Signature.empty:
        return
    if _compatible(out_t, in_t):
        return
    raise ConfigError(
        f"type mismatch: task {up.name!r} returns {_tname(out_t)} but {down.name!r} input {arg!r} "
        f"expects {_tname(in_t)}",
        hint="change one annotation, or convert in a task between them",
    )


def _compatible(out_t: Any, in_t: Any) -> bool:
    o, i = typing.get_origin(out_t) or out_t, typing.get_origin(in_t) or in_t
    if i is typing.Union or str(i) == "types.UnionType":
        return any(_compatible(out_t, a) for a in typing.get_args(in_t))
    if o is typing.Union or str(o) == "types.UnionType":
        return all(_compatible(a, in_t) for a in typing.get_args(out_t))
    if i is float and o is int:
        return True
    try:
        return isinstance(o, type) and isinstance(i, type) and issubclass(o, i)
    except TypeError:
        return True


def _tname(t: Any) -> str:
    return getattr(t, "__name__", None) or str(t)


def _find_cycle(graph: dict[str, list[str]]) -> list[str]:
    """One cycle in a graph of node -> upstream nodes, as a closed path."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for u in graph.get(n, []):
            if u not in graph:
                continue
            if state.get(u) == 1:
                return stack[stack.index(u) :] + [u]
            if state.get(u) is None:
                found = visit(u)
                if found:
                    return found
        state[n] = 2
        stack.pop()
        return None

    for n in sorted(graph):
        if state.get(n) is None:
            found = visit(n)
            if found:
                return list(reversed(found))
    raise RoostError("internal: no cycle found")  # pragma: no cover
