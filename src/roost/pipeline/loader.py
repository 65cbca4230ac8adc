"""Load a pipeline from a Python file (a module-level `roost.Pipeline`) or a YAML file of built-in tasks."""

from __future__ import annotations

import hashlib
import importlib.util
import re
import sys
from pathlib import Path
from typing import Any

from roost.errors import ConfigError, RoostError, closest
from roost.pipeline.dsl import Param, Pipeline, Ref

_REF = re.compile(r"^\$\{\s*(tasks|params)\.([\w-]+)(?:\.([\w-]+))?\s*\}$")


def load_pipeline(path: str | Path) -> Pipeline:
    """The pipeline defined in `path` (.py or .yaml/.yml)."""
    p = Path(path)
    if not p.is_file():
        raise RoostError(f"pipeline file {p} not found", hint="pass a .py defining a roost.Pipeline or a .yaml")
    if p.suffix in (".yaml", ".yml"):
        return _from_yaml(p)
    if p.suffix != ".py":
        raise RoostError(f"unknown pipeline file type {p.suffix!r}", hint="use a .py or .yaml file")
    modname = "roost_pipeline_" + hashlib.sha1(str(p.resolve()).encode()).hexdigest()[:10]
    spec = importlib.util.spec_from_file_location(modname, p)
    if spec is None or spec.loader is None:
        raise RoostError(f"cannot import {p}", hint="pass a .py file Python can load")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[modname] = mod  # so inspect.getsource finds task code (cache keys)
    sys.path.insert(0, str(p.parent.resolve()))
    try:
        spec.loader.exec_module(mod)
    finally:
        sys.path.pop(0)
    found = [v for v in vars(mod).values() if isinstance(v, Pipeline)]
    if not found and callable(getattr(mod, "pipeline", None)):
        found = [mod.pipeline()]
    if len(found) != 1:
        raise RoostError(f"{p} defines {len(found)} pipelines", hint="define exactly one module-level roost.Pipeline")
    return found[0]


def _value(v: Any, where: str, names: set[str]) -> Any:
    if isinstance(v, str):
        m = _REF.match(v)
        if m:
            kind, name, key = m.groups()
            if kind == "params":
                return Param(name)
            if name not in names:
                near = closest(name, names)
                raise ConfigError(
                    f"{where}: reference to unknown task {name!r}",
                    hint=f"did you mean {near!r}?" if near else f"tasks: {', '.join(sorted(names))}",
                )
            return Ref(name, key)
        if "${" in v:
            raise ConfigError(
                f"{where}: malformed reference {v!r}",
                hint="use ${tasks.NAME}, ${tasks.NAME.key} or ${params.NAME} as the whole value",
            )
    if isinstance(v, dict):
        return {k: _value(x, where, names) for k, x in v.items()}
    if isinstance(v, list):
        return [_value(x, where, names) for x in v]
    return v


def _from_yaml(path: Path) -> Pipeline:
    import yaml

    from roost.pipeline.builtins import BUILTINS

    try:
        doc = yaml.load(path.read_text(), Loader=_unique_key_loader()) or {}  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: the top level must be a mapping with `tasks`")
    tasks = doc.get("tasks")
    if not isinstance(tasks, dict) or not tasks:
        raise ConfigError(f"{path}: `tasks` must be a mapping of task name -> {{uses, with, needs}}")
    params = doc.get("params") or {}
    if not isinstance(params, dict):
        raise ConfigError(f"{path}: `params` must be a mapping of name -> default, got {params!r}")
    p = Pipeline(str(doc.get("name") or path.stem), params=params)
    bad = [n for n in tasks if not isinstance(n, str) or not re.fullmatch(r"[\w-]+", n)]
    if bad:
        raise ConfigError(
            f"task name {bad[0]!r} is not letters, digits, '_' and '-'", hint="${tasks.NAME} can only name those"
        )
    names = set(tasks)
    for name, spec in tasks.items():
        spec = spec or {}
        if not isinstance(spec, dict):
            raise ConfigError(f"tasks.{name}: must be a mapping of uses/with/needs, got {spec!r}")
        extra = set(spec) - {"uses", "with", "needs", "retries", "retry_delay", "cache"}
        if extra:
            raise ConfigError(
                f"tasks.{name}: unknown field(s) {sorted(extra)}",
                hint="allowed: uses, with, needs, retries, retry_delay, cache",
            )
        uses = spec.get("uses")
        if uses not in BUILTINS:
            near = closest(str(uses), list(BUILTINS))
            raise ConfigError(
                f"tasks.{name}.uses: unknown built-in task {uses!r}",
                hint=(f"did you mean {near!r}? " if near else "") + f"built-ins: {', '.join(BUILTINS)}",
            )
        given = spec.get("with") or {}
        if not isinstance(given, dict):
            raise ConfigError(f"tasks.{name}.with: must be a mapping of input name -> value, got {given!r}")
        inputs = {}
        for k, v in given.items():
            val = _value(v, f"tasks.{name}.with.{k}", names)
            if isinstance(val, (dict, list)) and _has_ref(val):
                raise ConfigError(
                    f"tasks.{name}.with.{k}: references must be whole values, not nested",
                    hint="pass ${tasks.X} directly as the input",
                )
            inputs[k] = val
        cache = spec.get("cache")
        if cache is not None and not isinstance(cache, bool):
            raise ConfigError(f"tasks.{name}.cache: must be true or false, got {cache!r}")
        retries, delay = spec.get("retries", 0), spec.get("retry_delay", 1.0)
        try:
            t = BUILTINS[uses].configured(  # the built-in's hooks and its own cache default, unless `cache:` is set
                retries=retries, retry_delay=delay, cache=None if cache is None else bool(cache)
            )
        except ConfigError as exc:
            raise ConfigError(f"tasks.{name}: {exc.message}", hint=exc.hint) from None
        needs = spec.get("needs") or []
        needs = [needs] if isinstance(needs, str) else needs
        for n in needs:
            if n not in names:
                raise ConfigError(f"tasks.{name}.needs: unknown task {n!r}", hint=f"tasks: {', '.join(sorted(names))}")
        try:
            p.add(t, after=list(needs), node_name=name, **inputs)
        except ConfigError as exc:  # the message names the built-in; the user knows the task by its name
            raise ConfigError(f"tasks.{name}: {exc.message}", hint=exc.hint) from None
    p.validate()
    return p


def _unique_key_loader() -> Any:
    """A safe YAML loader class that refuses a key given twice in one mapping (YAML keeps the last silently)."""
    import yaml

    class UniqueKeyLoader(yaml.SafeLoader):
        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            seen: set[Any] = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"{key!r} is given twice (a task name used twice?)", key_node.start_mark
                    )
                seen.add(key)
            return super().construct_mapping(node, deep=deep)

    return UniqueKeyLoader


def _has_ref(v: Any) -> bool:
    if isinstance(v, (Ref, Param)):
        return True
    if isinstance(v, dict):
        return any(_has_ref(x) for x in v.values())
    if isinstance(v, list):
        return any(_has_ref(x) for x in v)
    return False
