"""Search spaces: the `search:` block parsed into typed params, with conditions, validation and grid enumeration.

A space is a mapping from a (dotted) parameter name to a distribution, in declaration order:

    lr: {loguniform: [1e-4, 1e-1]}
    layers: {int: [1, 4]}
    hidden: {choice: [64, 128, 256]}          # a bare list [64, 128, 256] means the same
    dropout: {uniform: [0.0, 0.5], step: 0.1}
    model: {params: {alpha: {uniform: [0, 1]}}}  # nested mappings flatten to "model.params.alpha"
    width: {int: [8, 64], log: true, when: {model.type: mlp}}   # conditional: only when model.type == mlp

A `when:` condition may only name earlier params; a param whose condition fails is *inactive* and absent.
Parsing needs no optimiser; `suggest` and `distributions` import Optuna lazily.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from roost.errors import ConfigError, closest

KINDS = ("uniform", "loguniform", "int", "choice")
ALIASES = {"float": "uniform", "categorical": "choice", "logint": "int"}
OPTIONS = {"step", "log", "when"}
GRID_LIMIT = 100_000


class SpaceError(ConfigError):
    """A search space, or a point in it, is invalid; `param` names the offending parameter."""

    def __init__(self, param: str | None, message: str, hint: str | None = None) -> None:
        super().__init__(f"{param}: {message}" if param else message, hint)
        self.param = param


def _label(v: Any) -> Any:
    """A choice value as an Optuna categorical label (lists become JSON text)."""
    import json

    return json.dumps(v) if isinstance(v, list) else v


_EXP = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$")


def _yaml_number(v: Any) -> Any:
    """'1e-3' → 0.001: PyYAML (YAML 1.1) reads exponent numbers without a dot as strings."""
    return float(v) if isinstance(v, str) and _EXP.match(v.strip()) else v


def _number(v: Any) -> bool:
    """True for real numbers (not bools)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool)


@dataclass(frozen=True)
class Param:
    """One dimension of a space: a distribution plus an optional activation condition."""

    name: str
    kind: str
    low: float | int | None = None
    high: float | int | None = None
    step: float | int | None = None
    log: bool = False
    choices: tuple[Any, ...] = ()
    when: dict[str, tuple[Any, ...]] = field(default_factory=dict[str, Any])

    def active(self, chosen: dict[str, Any]) -> bool:
        """Whether this param applies given the values chosen for earlier params."""
        return all(k in chosen and chosen[k] in allowed for k, allowed in self.when.items())

    @property
    def bounds(self) -> tuple[float, float]:
        """(low, high) of a numeric param."""
        if self.low is None or self.high is None:
            raise SpaceError(self.name, f"a {self.kind} param has no bounds")
        return self.low, self.high

    def values(self) -> list[Any] | None:
        """Every value of a discrete param (None when the param is continuous)."""
        if self.kind == "choice":
            return list(self.choices)
        if self.kind == "int":
            lo, hi = (int(b) for b in self.bounds)
            return list(range(lo, hi + 1, 1 if self.log else int(self.step or 1)))
        if self.kind == "uniform" and self.step:
            flo, fhi = self.bounds
            n = int(round((fhi - flo) / self.step))
            return [round(flo + i * self.step, 12) for i in range(n + 1)]
        return None

    def labels(self) -> list[Any]:
        """Choices as Optuna sees them (lists encoded as JSON strings)."""
        return [_label(c) for c in self.choices]

    def check(self, value: Any) -> Any:
        """Return `value` normalised for this param, or raise SpaceError naming it."""
        if self.kind == "choice":
            for c in self.choices:
                if _label(value) == _label(c) or (_number(value) and _number(c) and value == c):
                    return c
            raise SpaceError(self.name, f"{value!r} is not one of {list(self.choices)}")
        if not _number(value) or (isinstance(value, float) and not math.isfinite(value)):
            raise SpaceError(self.name, f"{value!r} is not a finite number")
        if self.kind == "int":
            if float(value) != int(value):
                raise SpaceError(self.name, f"{value!r} is not an integer")
            value = int(value)
        else:
            value = float(value)
        if not (self.low <= value <= self.high):
            raise SpaceError(self.name, f"{value!r} is outside [{self.low}, {self.high}]")
        if self.step and not self.log:
            k = (value - self.low) / self.step
            if abs(k - round(k)) > 1e-9:
                raise SpaceError(self.name, f"{value!r} is not on the grid {self.low} + k*{self.step}")
        return value

    def to_spec(self) -> dict[str, Any]:
        """The canonical JSON form of this param."""
        d: dict[str, Any] = {self.kind: list(self.choices) if self.kind == "choice" else [self.low, self.high]}
        if self.step:
            d["step"] = self.step
        if self.log and self.kind == "int":
            d["log"] = True
        if self.when:
            d["when"] = {k: list(v) for k, v in self.when.items()}
        return d


def _parse_param(name: str, spec: Any, earlier: dict[str, Param]) -> Param:
    """Parse one leaf of the search block."""
    if isinstance(spec, list):
        spec = {"choice": spec}
    kinds = [k for k in spec if k in KINDS or k in ALIASES]
    unknown = [k for k in spec if k not in KINDS and k not in ALIASES and k not in OPTIONS]
    if unknown:
        near = closest(str(unknown[0]), [*KINDS, *OPTIONS])
        raise SpaceError(
            name,
            f"unknown key {unknown[0]!r}",
            hint=f"did you mean {near!r}?" if near else f"use one of {', '.join(KINDS)}",
        )
    if len(kinds) != 1:
        raise SpaceError(name, "needs exactly one distribution", hint=f"one of {', '.join(KINDS)}")
    raw_kind = kinds[0]
    kind = ALIASES.get(raw_kind, raw_kind)
    arg = spec[raw_kind]
    arg = [_yaml_number(v) for v in arg] if isinstance(arg, list) else arg
    log = bool(spec.get("log", False)) or raw_kind in ("loguniform", "logint")
    step = _yaml_number(spec.get("step"))
    when = _parse_when(name, spec.get("when") or {}, earlier)
    if kind == "choice":
        if not isinstance(arg, list) or not arg:
            raise SpaceError(name, "choice needs a non-empty list of values")
        for v in arg:
            if v is not None and not isinstance(v, (bool, int, float, str, list)):
                raise SpaceError(name, f"choice value {v!r} must be a number, string, bool, list or null")
        if len({_label(v) for v in arg}) != len(arg):
            raise SpaceError(name, "choice values must be distinct")
        return Param(name, "choice", choices=tuple(arg), when=when)
    if not (isinstance(arg, list) and len(arg) == 2 and all(_number(v) for v in arg)):
        raise SpaceError(name, f"{raw_kind} needs two numbers, low and high, got {arg!r}")
    low, high = arg
    if kind == "int":
        if low != int(low) or high != int(high):
            raise SpaceError(name, f"int bounds must be integers, got {arg!r}")
        low, high = int(low), int(high)
        if step is not None and (not _number(step) or step != int(step) or step < 1):
            raise SpaceError(name, f"int step must be a positive integer, got {step!r}")
    else:
        low, high = float(low), float(high)
    if not low <= high:
        raise SpaceError(name, f"low {low} is greater than high {high}")
    if log and low <= 0:
        raise SpaceError(name, f"log scale needs low > 0, got {low}")
    if step is not None:
        if log:
            raise SpaceError(name, "step and log scale cannot be combined")
        if not _number(step) or step <= 0:
            raise SpaceError(name, f"step must be a positive number, got {step!r}")
    return Param(name, kind, low, high, step if kind == "uniform" or step is None else int(step), log, when=when)


def _parse_when(name: str, when: Any, earlier: dict[str, Param]) -> dict[str, tuple[Any, ...]]:
    """Parse a `when:` condition (each key an earlier param, each value one allowed value or a list)."""
    if not isinstance(when, dict):
        raise SpaceError(name, "when: must map earlier params to allowed values")
    out = {}
    for k, v in when.items():
        if k not in earlier:
            near = closest(k, list(earlier))
            raise SpaceError(
                name,
                f"when: {k!r} is not an earlier param",
                hint=f"did you mean {near!r}?" if near else "conditions may only name params above",
            )
        allowed = tuple(v) if isinstance(v, list) else (v,)
        for a in allowed:
            earlier[k].check(a)
        out[k] = allowed
    return out


def _flatten(block: dict[str, Any], prefix: str = "") -> Iterable[tuple[str, Any]]:
    """Yield (dotted name, leaf spec) from a possibly nested search block."""
    for key, val in block.items():
        name = f"{prefix}{key}"
        if isinstance(val, dict) and not any(k in KINDS or k in ALIASES for k in val) and "when" not in val:
            if not val:
                raise SpaceError(name, "empty mapping")
            for k in val:
                near = difflib.get_close_matches(str(k), [*KINDS, *ALIASES], n=1, cutoff=0.8)
                if near:
                    raise SpaceError(name, f"unknown distribution {k!r}", hint=f"did you mean {near[0]!r}?")
            yield from _flatten(val, name + ".")
        else:
            yield name, val


class Space:
    """An ordered set of params; validates points, suggests through Optuna, enumerates grids."""

    def __init__(self, params: list[Param]) -> None:
        self.params = params
        self.by_name = {p.name: p for p in params}

    @classmethod
    def parse(cls, block: dict[str, Any] | Space) -> Space:
        """Parse a `search:` block (nested or dotted names) into a Space."""
        if isinstance(block, Space):
            return block
        if not isinstance(block, dict) or not block:
            raise SpaceError(
                None,
                "the search space must be a non-empty mapping of param -> distribution",
                hint="e.g. search: {lr: {loguniform: [1e-4, 1e-1]}}",
            )
        parsed: dict[str, Param] = {}
        for name, spec in _flatten(block):
            if name in parsed:
                raise SpaceError(name, "declared twice")
            if not isinstance(spec, (dict, list)):
                raise SpaceError(
                    name,
                    f"expected a distribution, got {spec!r}",
                    hint="e.g. {uniform: [0, 1]}, {int: [1, 4]}, {choice: [a, b]}",
                )
            parsed[name] = _parse_param(name, spec, parsed)
        return cls(list(parsed.values()))

    def to_spec(self) -> dict[str, Any]:
        """The canonical JSON form (dotted names, declaration order)."""
        return {p.name: p.to_spec() for p in self.params}

    @property
    def conditional(self) -> bool:
        """Whether any param has a condition."""
        return any(p.when for p in self.params)

    def validate(self, point: dict[str, Any]) -> dict[str, Any]:
        """Check a point: every active param present and in range, nothing else; returns it normalised."""
        if not isinstance(point, dict):
            raise SpaceError(None, "params must be a mapping of name -> value")
        for k in point:
            if k not in self.by_name:
                near = closest(k, list(self.by_name))
                raise SpaceError(
                    k,
                    "not a parameter of this space",
                    hint=f"did you mean {near!r}?" if near else f"params: {', '.join(self.by_name)}",
                )
        out: dict[str, Any] = {}
        for p in self.params:
            if p.active(out):
                if p.name not in point:
                    raise SpaceError(p.name, "missing (it is active for these values)")
                out[p.name] = p.check(point[p.name])
            elif p.name in point:
                raise SpaceError(
                    p.name,
                    "is inactive here: its condition "
                    + ", ".join(f"{k} in {list(v)}" for k, v in p.when.items())
                    + " does not hold",
                )
        return out

    def suggest(self, trial: Any) -> dict[str, Any]:
        """Draw a point through an Optuna trial (define-by-run, honouring conditions)."""
        out: dict[str, Any] = {}
        for p in self.params:
            if not p.active(out):
                continue
            if p.kind == "choice":
                labels = p.labels()
                out[p.name] = p.choices[labels.index(trial.suggest_categorical(p.name, labels))]
            elif p.kind == "int":
                out[p.name] = trial.suggest_int(p.name, p.low, p.high, step=p.step or 1, log=p.log)
            else:
                out[p.name] = trial.suggest_float(p.name, p.low, p.high, step=p.step, log=p.log)
        return out

    def distributions(self, point: dict[str, Any]) -> dict[str, Any]:
        """Optuna distributions of the params present in `point`."""
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        out: dict[str, Any] = {}
        for name in point:
            p = self.by_name[name]
            if p.kind == "choice":
                out[name] = CategoricalDistribution(p.labels())
            elif p.kind == "int":
                lo, hi = (int(b) for b in p.bounds)
                out[name] = IntDistribution(lo, hi, log=p.log, step=1 if p.log else int(p.step or 1))
            else:
                out[name] = FloatDistribution(*p.bounds, log=p.log, step=p.step)
        return out

    def encode(self, point: dict[str, Any]) -> dict[str, Any]:
        """A point as Optuna params (list choices as their JSON labels)."""
        return {k: _label(v) if self.by_name[k].kind == "choice" else v for k, v in point.items()}

    def grid_size(self) -> int | None:
        """The number of distinct grid points (None when a param is continuous or the grid is huge)."""
        try:
            return len(self.grid())
        except SpaceError:
            return None

    def grid(self) -> list[dict[str, Any]]:
        """Every distinct point of a discrete space, conditions honoured (inactive params omitted)."""
        points: list[dict[str, Any]] = [{}]
        for p in self.params:
            vals = p.values()
            if vals is None:
                raise SpaceError(
                    p.name,
                    f"{'log-scale ' if p.log else ''}{p.kind} is continuous: it has no grid",
                    hint="use choice, int, or uniform with a step",
                )
            nxt: list[dict[str, Any]] = []
            for pt in points:
                if p.active(pt):
                    nxt.extend({**pt, p.name: v} for v in vals)
                else:
                    nxt.append(pt)
                if len(nxt) > GRID_LIMIT:
                    raise SpaceError(
                        None, f"the grid has more than {GRID_LIMIT} points", hint="use the random, tpe or gp sampler"
                    )
            points = nxt
        return points


def point_key(point: dict[str, Any]) -> str:
    """A canonical string for a point (grid bookkeeping)."""
    import json

    return json.dumps(sorted(point.items()), default=str)
