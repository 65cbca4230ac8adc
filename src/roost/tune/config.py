"""`roost tune CONFIG.yaml`: a training config, an optional `search:` block and an optional `tune:` block.

Without `search:`, the model type's prescribed space is searched (roost.tune.prescribed; across model types for
`model: auto`), minus the params the config itself sets. A `search:` block replaces it, or with `tune.extend:
true` is merged over it (same name: replaced or narrowed; `null`: not searched; new names: added).

    data: engagement:20000
    label: clicked
    model: mlp
    register: engagement-ctr          # registers the BEST trial's model (trials themselves register nothing)
    search:
      lr: {loguniform: [1e-4, 1e-1]}  # bare names: trainer.lr; model params otherwise (or write dotted keys)
      hidden: {choice: [[64], [128, 64]]}
    tune:                             # all optional
      metric: val_roc_auc             # default: the task's primary validation metric
      direction: maximize             # default: from the metric's name
      sampler: auto                   # auto | grid | random | tpe | gp
      prune: median                   # none | median | hyperband
      objective: pkg.module:function  # tune a Python function instead of `roost.train`
      extend: false                   # true: merge the search block over the prescribed space

With `tune.objective`, the rest of the file (besides `search`) is ignored and the function gets a TrialContext.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from roost.errors import ConfigError, closest

if TYPE_CHECKING:
    from roost.tune.remote import AnyEngine
    from roost.tune.runner import TuneResult

log = logging.getLogger(__name__)
TUNE_KEYS = ("metric", "direction", "sampler", "prune", "objective", "seed", "name", "experiment", "extend")


@dataclass
class TuneSpec:
    """A parsed tuning config: what to evaluate, over which space, towards which goal."""

    objective: Callable[..., Any]
    space: dict[str, Any]
    metric: str
    direction: str
    experiment: str
    name: str | None = None
    sampler: str = "auto"
    prune: str | None = None
    seed: int | None = None
    register: str | None = None
    options: dict[str, Any] = field(default_factory=dict[str, Any])
    source: str = "search block"
    start: list[dict[str, Any]] = field(default_factory=list)  # points tried first (the model defaults)


def _task(train_cfg: dict[str, Any]) -> str:
    """The training config's task (loads the data once when the config does not state it)."""
    from roost.training.config import load_config

    cfg = load_config(train_cfg)
    task: str | None = cfg.task
    if task is None:
        from roost.training.data import check_label, load_frame

        task = check_label(load_frame(cfg), cfg.label, None)
    return task


def _primary_metric(task: str) -> str:
    """The task's primary validation metric."""
    from roost.metrics import overall as M

    return "val_" + M.PRIMARY[task][0]


def load(path: str | Path | dict[str, Any]) -> TuneSpec:
    """Read a tuning config (file or dict) into a TuneSpec; errors name the offending field."""
    from roost.training.config import load_raw
    from roost.tune import prescribed as spaces
    from roost.tune.objectives import TrainObjective, direction_for, load_callable, override_key
    from roost.tune.search_space import Space

    raw, file = load_raw(path)
    search = raw.pop("search", None)
    opts = raw.pop("tune", None) or {}
    if not isinstance(opts, dict):
        raise ConfigError("tune: must be a mapping", hint=f"keys: {', '.join(TUNE_KEYS)}")
    for k in opts:
        if k not in TUNE_KEYS:
            near = closest(k, TUNE_KEYS)
            raise ConfigError(
                f"tune.{k}: unknown field",
                hint=(f"did you mean {near!r}? " if near else "") + f"allowed: {', '.join(TUNE_KEYS)}",
            )
    if search is not None and not isinstance(search, dict):
        raise ConfigError(
            "search: must be a mapping of param -> distribution", hint="e.g. lr: {loguniform: [1e-4, 0.1]}"
        )
    register = raw.pop("register", None)
    source = "search block"
    keys: dict[str, str] = {}
    start: list[dict[str, Any]] = []
    if opts.get("objective"):
        if search is None:
            raise ConfigError(
                "search: a tune.objective function needs a search block",
                hint="add e.g. `search: {x: {uniform: [-5, 10]}}`",
            )
        space = Space.parse(search)
        objective: Callable[..., Any] = load_callable(str(opts["objective"]))
        metric = str(opts.get("metric", "value"))
        experiment = str(opts.get("experiment", raw.get("experiment", "tune")))
    else:
        if file is not None:
            _absolute_data(raw, file)
        model = _model_type(raw)
        selection = _selection(raw) if model == "auto" else {}
        prescribed = search is None or bool(opts.get("extend"))
        if prescribed:
            block, keys, source = _prescribed_block(raw, search or {})
        else:
            block = search or {}
        folds = _folds(raw, selection)
        # the task, where a step needs it: found once (a config that does not state it loads the data for it)
        task = _task(raw) if (prescribed and model == "auto") or not opts.get("metric") else None
        if prescribed:
            start = spaces.default_points(block, model, _table_defaults(folds) if model == "auto" else None)
            if model == "auto":  # and from auto's named variants (LightGBM's library defaults)
                start += [p for p in spaces.variant_points(block, task) if p not in start]
        space = Space.parse(block)
        keys = {p.name: keys.get(p.name) or override_key(p.name, raw) for p in space.params}
        metric = str(opts.get("metric") or _primary_metric(str(task)))
        experiment = str(opts.get("experiment", raw.get("experiment", "default")))
        cv = folds is not None and bool(folds.splits) and metric.startswith("val_")
        objective = TrainObjective(config=raw, metric=metric, keys=keys, cv=cv, selection=selection, starts=len(start))
    direction = str(opts.get("direction") or direction_for(metric))
    if isinstance(objective, TrainObjective):
        objective.direction = direction
    return TuneSpec(
        objective,
        space.to_spec(),
        metric,
        direction,
        experiment,
        opts.get("name"),
        str(opts.get("sampler", "auto")),
        opts.get("prune"),
        opts.get("seed"),
        register,
        opts,
        source,
        start,
    )


def _selection(raw: dict[str, Any]) -> dict[str, Any]:
    """`model: auto`'s selection params (folds, cv_max_rows, ensemble): tune selects its final model by them."""
    from roost.training.auto import OPTIONS

    model = raw.get("model")
    params = (model.get("params") or {}) if isinstance(model, dict) else {}
    return {k: v for k, v in params.items() if k in OPTIONS}


def _folds(raw: dict[str, Any], selection: dict[str, Any]) -> Any:
    """The config's data and auto's folds (roost.tune.cv.Folds; no splits on a large table); None when the
    trials do not train one model type (a search block over `model: auto` itself)."""
    from roost.tune.cv import plan

    if _model_type(raw) == "auto":
        return None
    return plan(raw, [], selection)


def _table_defaults(folds: Any) -> dict[str, dict[str, Any]] | None:
    """auto's size-dependent defaults per model type (LightGBM's for the rows each candidate fits)."""
    from roost.training.lgbm import table_defaults

    if folds is None:
        return None
    rows = folds.n_fit if folds.splits else len(folds.parts[0])
    return {"lightgbm": table_defaults(rows, len(folds.spec.columns))}


def _model_type(raw: dict[str, Any]) -> str:
    """The config's model type (`auto` when unset, as `roost train` does)."""
    from roost.training.models import DEFAULT_MODEL

    model = raw.get("model")
    if isinstance(model, dict):
        return str(model.get("type") or DEFAULT_MODEL)
    return str(model or DEFAULT_MODEL)


def _prescribed_block(raw: dict[str, Any], search: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str], str]:
    """The model's prescribed space (across types for `model: auto`), `search` merged over it, minus params the
    config pins; returns (block, config key per param, a description of what is searched)."""
    from roost.tune import prescribed as spaces
    from roost.tune.objectives import config_leaves

    model = _model_type(raw)
    if model == "auto":
        params = raw["model"].get("params") or {} if isinstance(raw.get("model"), dict) else {}
        types = params.get("candidates") or list(spaces.AUTO_TYPES)
        narrowed = search.get("model.type")
        if isinstance(narrowed, dict) and isinstance(narrowed.get("choice"), list):
            types = narrowed["choice"]
        elif isinstance(narrowed, list):
            types = narrowed
        if not isinstance(types, list) or not types:
            raise ConfigError("model.params.candidates: must be a non-empty list of model types")
        base, keys = spaces.auto_space(types)
        raw["model"] = {"type": types[0]}  # each trial sets model.type; auto's own params do not apply to a type
        what = f"prescribed space across {', '.join(types)} (model: auto)"
    else:
        base, keys = spaces.prescribed(model)
        what = f"prescribed space for {model}"
    pinned = set(config_leaves(raw))
    dropped = [n for n, k in keys.items() if k in pinned and n not in search and k != "model.type"]
    for n in dropped:
        del base[n]
    if dropped:
        log.info("not searching %s: the config sets them", ", ".join(dropped))
        what += f" (pinned by the config: {', '.join(dropped)})"
    block = spaces.merge(base, search)
    if search:
        what += " + search block"
    return block, keys, what


def _absolute_data(raw: dict[str, Any], file: Path) -> None:
    """Make a relative data path absolute against the config file's folder (as `roost train` does)."""
    data = raw.get("data")
    src = data.get("source") if isinstance(data, dict) else data
    if not isinstance(src, str) or ":" in src.split("/")[0] or Path(src).is_absolute():
        return
    cand = file.parent / src
    if cand.exists():
        if isinstance(data, dict):
            data["source"] = str(cand.resolve())
        else:
            raw["data"] = str(cand.resolve())


def register_best(result: Any, name: str) -> str:
    """Register the final model under `name` (a cross-validated study's blend, else the best trial's model);
    returns 'name/version'."""
    from roost.registry.api import register_model

    if result.model_run_id is None:
        raise ConfigError(f"register: no trial completed, nothing to register as {name!r}")
    mv = register_model(result.model_run_id, name, "model")
    return f"{mv.name}/{mv.version}"


def tune_config(
    config: str | Path | dict[str, Any] | TuneSpec,
    trials: int = 20,
    *,
    parallel: int | None = None,
    sampler: str | None = None,
    prune: str | None = None,
    seed: int | None = None,
    register: str | None = None,
    display: Callable[[AnyEngine, str], AbstractContextManager[Any]] | None = None,
    backend: str = "local",
    ray_address: str | None = None,
) -> TuneResult:
    """Tune a training config (a file, a dict or a loaded TuneSpec) for `trials` trials; what `roost tune` runs.

    Options left None take the config's `tune:` block (or `register:`); `register` names the final model.
    """
    from roost.tune.runner import TuneSettings, run_tuning

    spec = config if isinstance(config, TuneSpec) else load(config)
    name = register or spec.register

    def finish(result: TuneResult) -> None:
        if name:
            result.registered = register_best(result, name)

    settings = TuneSettings(
        parallel=parallel,
        sampler=sampler or spec.sampler,
        prune=prune or spec.prune,
        direction=spec.direction,
        metric=spec.metric,
        experiment=spec.experiment,
        name=spec.name,
        seed=seed if seed is not None else spec.seed,
        backend=backend,
        ray_address=ray_address,
        tags={"roost.tune.space": spec.source},
        start=spec.start,
    )
    return run_tuning(spec.objective, spec.space, int(trials), settings, display=display, finish=finish)


def describe_space(space: dict[str, Any]) -> list[str]:
    """One line per searched param: name, distribution, and its condition."""
    from roost.tune.search_space import Space

    out = []
    for p in Space.parse(space).params:
        if p.kind == "choice":
            dist = "one of " + ", ".join(str(c) for c in p.choices)
        else:
            dist = f"{'log-' if p.log else ''}{'int' if p.kind == 'int' else 'uniform'} [{p.low:g}, {p.high:g}]"
        cond = "".join(f" (when {k} = {'/'.join(map(str, v))})" for k, v in p.when.items())
        out.append(f"{p.name}: {dist}{cond}")
    return out


def best_by_type(trials: list[dict[str, Any]], direction: str) -> dict[str, tuple[int, float | None]]:
    """For a search across model types: per type, (trials run, best complete value)."""
    out: dict[str, tuple[int, float | None]] = {}
    pick = max if direction == "maximize" else min
    for t in trials:
        mt = (t.get("params") or {}).get("model.type")
        if mt is None:
            continue
        n, best = out.get(mt, (0, None))
        v = t["value"] if t["state"] == "COMPLETE" else None
        out[mt] = (n + 1, best if v is None else (v if best is None else pick(best, v)))
    return out
