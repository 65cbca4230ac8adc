"""Prescribed search spaces: what `roost tune CONFIG` searches when the config has no `search:` block.

One space per model type, its ranges chosen from measurements (bench/tuning.py --spaces; the table is in
docs/training.md): random search over wide ranges on real tables, then each range narrowed to where the best
quarter of the trials fell, widened to round numbers. Names are the short ones a `search:` block uses (`lr` is
`trainer.lr`, `hidden` is `model.params.hidden`); `keys` maps each name to its config key.

`model: auto` searches across model types: a conditional space whose first param is `model.type`, then each
type's params under `TYPE.NAME` (active only when that type is drawn), so TPE models each branch on its own.
"""

from __future__ import annotations

from typing import Any

from roost.errors import ConfigError, closest

__all__ = ["AUTO_TYPES", "PRESCRIBED", "auto_space", "default_points", "merge", "prescribed", "variant_points"]

# measured ranges (docs/training.md, "Tuning"): where the best quarter of random trials over wide ranges fell
_TORCH = {"lr": {"loguniform": [3e-4, 3e-2]}, "weight_decay": {"loguniform": [1e-6, 1e-2]}}
_NET = {
    "hidden": {"choice": [[128], [256, 128], [256, 128, 64], [512, 256]]},
    "dropout": {"uniform": [0.0, 0.5]},
}
PRESCRIBED: dict[str, dict[str, Any]] = {
    "logreg": {"lr": {"loguniform": [1e-2, 1.0]}, "weight_decay": {"loguniform": [1e-6, 3e-2]}},
    "mlp": {**_TORCH, **_NET},
    "wide_deep": {**_TORCH, **_NET},
    "dcn": {
        "lr": {"loguniform": [3e-4, 5e-2]},
        "weight_decay": {"loguniform": [1e-7, 1e-2]},
        "cross_layers": {"int": [1, 5]},
        **_NET,
    },
    "two_tower": {
        "lr": {"loguniform": [3e-4, 3e-2]},
        "weight_decay": {"loguniform": [1e-7, 1e-3]},
        "dim": {"choice": [8, 16, 32, 64]},
        "hidden": {"choice": [[], [64], [128]]},
        "dropout": {"uniform": [0.0, 0.3]},
    },
    # where the Optuna-tuned LightGBM reference's best trials fell on the quality suite's splits (bench/quality.py):
    # 2-3 leaves (additive stumps) on 12 of 33, learning_rate < 0.01 on 7, min_child_samples < 10 on 8, row
    # subsampling 0.4-0.7 on most; the earlier [4, 128] / [10, 200] / no-subsample ranges left those out
    "lightgbm": {
        "learning_rate": {"loguniform": [0.005, 0.3]},
        "num_leaves": {"int": [2, 128], "log": True},
        "min_child_samples": {"int": [2, 200], "log": True},
        "subsample": {"uniform": [0.4, 1.0]},
        "colsample_bytree": {"uniform": [0.3, 1.0]},
        "reg_lambda": {"loguniform": [1e-3, 10.0]},
    },
}
TRAINER_KEYS = ("lr", "weight_decay", "batch_size", "epochs", "patience")
# what `model: auto` searches over: every tabular type (two_tower needs user and item columns named for it)
AUTO_TYPES = ("logreg", "mlp", "wide_deep", "dcn", "lightgbm")


def key_for(model: str, name: str) -> str:
    """The config key a prescribed param sets: trainer.NAME for loop settings of torch models, else model.params."""
    if model != "lightgbm" and name in TRAINER_KEYS:
        return f"trainer.{name}"
    return f"model.params.{name}"


def prescribed(model: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The prescribed space of a model type and the config key of each param."""
    if model not in PRESCRIBED:
        near = closest(model, list(PRESCRIBED))
        raise ConfigError(
            f"model.type: no prescribed search space for {model!r}",
            hint=(f"did you mean {near!r}? " if near else "") + f"spaces exist for {', '.join(PRESCRIBED)}; "
            "or write a search: block",
        )
    space = {k: dict(v) for k, v in PRESCRIBED[model].items()}
    return space, {k: key_for(model, k) for k in space}


def auto_space(types: list[str] | tuple[str, ...] = AUTO_TYPES) -> tuple[dict[str, Any], dict[str, str]]:
    """A conditional space over model types: `model.type` first, then `TYPE.NAME` params active for that type."""
    types = list(dict.fromkeys(types))
    for t in types:
        prescribed(t)  # raises naming an unknown type
    space: dict[str, Any] = {"model.type": {"choice": types}}
    keys = {"model.type": "model.type"}
    for t in types:
        sub, sub_keys = prescribed(t)
        for name, spec in sub.items():
            space[f"{t}.{name}"] = {**spec, "when": {"model.type": t}}
            keys[f"{t}.{name}"] = sub_keys[name]
    return space, keys


def merge(base: dict[str, Any], search: dict[str, Any]) -> dict[str, Any]:
    """`search` over `base` (tune.extend): a same-named param replaces the prescribed one, `null` removes it,
    a new name is added after the prescribed ones."""
    out = dict(base)
    for name, spec in search.items():
        spec = {"choice": spec} if isinstance(spec, list) else spec
        if spec is None:
            if name not in out:
                near = closest(name, list(out))
                raise ConfigError(
                    f"search.{name}: null removes a prescribed param, but there is none of that name",
                    hint=(f"did you mean {near!r}? " if near else "") + f"prescribed: {', '.join(out)}",
                )
            del out[name]
        elif name in out and isinstance(out[name], dict) and "when" in out[name] and isinstance(spec, dict):
            out[name] = {**spec, "when": spec.get("when", out[name]["when"])}
        else:
            out[name] = spec
    return out


def default_points(
    space: dict[str, Any], model: str, known: dict[str, dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """The model defaults as points of `space` (one per type when `model` is auto), clamped into its ranges:
    tuning starts from them, so the best trial is never worse than the untuned model (FLAML starts each learner
    from its defaults; Optuna users enqueue_trial them). A type with a searched param that has no default (a name
    added by a search block) gets no point. `known` overrides a type's defaults (auto's size-dependent LightGBM
    parameters, so tuning `model: auto` starts from auto's own candidates)."""
    from roost.training.models import get_model_class
    from roost.tune.search_space import Space

    sp = Space.parse(space)
    across = model == "auto"
    types = list(sp.by_name["model.type"].choices) if across and "model.type" in sp.by_name else [model]
    points = []
    for t in types:
        defaults = {**get_model_class(str(t)).DEFAULTS, **(known or {}).get(str(t), {})}
        point: dict[str, Any] = {"model.type": t} if across else {}
        for p in sp.params:
            if p.name == "model.type" or not p.active(point):
                continue
            short = p.name.split(".", 1)[1] if across else p.name
            if defaults.get(short) is None:
                break
            point[p.name] = _clamp(p, defaults[short])
        else:
            points.append(point)
    return points


def variant_points(space: dict[str, Any], task: str | None = None) -> list[dict[str, Any]]:
    """Points of a `model: auto` space for auto's named candidate variants (auto.VARIANTS, e.g. LightGBM with its
    library defaults) that auto trains for `task`, so tuning auto starts from every candidate auto itself trains."""
    from roost.training.auto import VARIANTS
    from roost.training.auto_candidates import task_variants

    types = _type_choices(space)
    out = []
    for name in task_variants(list(VARIANTS), task):
        base, fixed = VARIANTS[name]
        if base in types:
            out += [p for p in default_points(space, "auto", {base: fixed}) if p.get("model.type") == base]
    return out


def _type_choices(space: dict[str, Any]) -> list[Any]:
    """The model types a `model: auto` space chooses from ([] without a model.type choice)."""
    spec = space.get("model.type")
    return list(spec.get("choice") or []) if isinstance(spec, dict) else []


def _clamp(p: Any, value: Any) -> Any:
    """`value` moved into param `p`'s range (the first choice when a choice param does not offer it)."""
    if p.kind == "choice":
        return value if value in p.choices else p.choices[0]
    lo, hi = p.bounds
    v = min(max(float(value), lo), hi)
    return int(round(v)) if p.kind == "int" else v
