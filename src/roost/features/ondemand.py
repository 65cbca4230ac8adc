"""Request-time (on-demand) feature views: fields computed from data sent with the request, and optionally from
stored features of other views, by one vectorised Python function — the same code in `training_set` (from the
entity frame's columns) and in online reads (from the request data)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from roost.errors import ConfigError
from roost.features.definitions import FeatureView, check_name, function_ref, norm_dtype

__all__ = ["RequestView", "load_transform"]


def load_transform(ref: str, where: str) -> Callable[..., Any]:
    """The function named by 'module:function' (ConfigError naming `where` when it cannot be found)."""
    mod_name, _, fname = ref.partition(":")
    if not mod_name or not fname:
        raise ConfigError(f"{where}: transform {ref!r} is not 'module:function'", hint="e.g. 'mypkg.feats:ratios'")
    try:
        mod = importlib.import_module(mod_name)
    except ImportError as exc:
        raise ConfigError(f"{where}: cannot import module {mod_name!r} of transform {ref!r}: {exc}") from exc
    obj: Any = mod
    for part in fname.split("."):
        obj = getattr(obj, part, None)
    if not callable(obj):
        raise ConfigError(f"{where}: module {mod_name!r} has no function {fname!r}", hint="check the transform name")
    fn: Callable[..., Any] = obj
    return fn


@dataclass
class RequestView:
    """Fields computed at request time by `transform(DataFrame) -> DataFrame` from request fields and source features.

    `request`: {field: dtype} sent with each request (columns of the entity frame offline); `sources`: stored
    features the transformation also reads, as 'view:field' refs or whole FeatureViews (their fields, by field name);
    `fields`: {output field: dtype}; `transform`: a module-level function or 'module:function'."""

    name: str
    request: dict[str, str]
    fields: dict[str, str]
    transform: Callable[..., Any] | str
    sources: list[str | FeatureView] = field(default_factory=list)
    description: str = ""

    def __post_init__(self) -> None:
        check_name("request view", self.name)
        where = f"request view {self.name!r}"
        self.request = {
            check_name("request field", f): norm_dtype(t, f"{where} request field {f!r}")
            for f, t in dict(self.request or {}).items()
        }
        if not self.fields:
            raise ConfigError(f"{where} declares no fields", hint="fields={'amount_ratio': 'float64'}")
        self.fields = {
            check_name("field", f): norm_dtype(t, f"{where} field {f!r}") for f, t in dict(self.fields).items()
        }
        if isinstance(self.sources, (str, FeatureView)):
            self.sources = [self.sources]
        self._views: list[FeatureView] = [s for s in self.sources if isinstance(s, FeatureView)]
        refs: list[str] = []
        for s in self.sources:
            if isinstance(s, FeatureView):
                refs += [f"{s.name}:{f}" for f in s.fields]
            elif isinstance(s, str) and s.count(":") == 1 and "*" not in s:
                refs.append(s)
            else:
                raise ConfigError(
                    f"{where}: source {s!r} is not a 'view:field' ref or a FeatureView",
                    hint="sources=['txn_stats:amount_avg_7d'] or sources=[txn_stats]",
                )
        self.source_refs = list(dict.fromkeys(refs))
        if not self.request and not self.source_refs:
            raise ConfigError(f"{where} reads nothing", hint="declare request fields and/or source features")
        seen = dict.fromkeys(self.request, "request field")
        for ref in self.source_refs:
            name = ref.split(":")[1]
            if name in seen:
                raise ConfigError(
                    f"{where}: input column {name!r} is both a {seen[name]} and source {ref!r}",
                    hint="the transformation sees every input under its field name: rename one of them",
                )
            seen[name] = f"source {ref!r}"
        clash = sorted(set(self.fields) & set(seen))
        if clash:
            raise ConfigError(
                f"{where}: output field(s) {clash} are also input columns",
                hint="give outputs their own names (a training set holds request fields and outputs side by side)",
            )
        if isinstance(self.transform, str):
            self.transform = load_transform(self.transform, where)
        if not callable(self.transform):
            raise ConfigError(f"{where}: transform must be a function or 'module:function'")

    @property
    def views(self) -> list[FeatureView]:
        """FeatureView objects given as sources (registered along with this view)."""
        return list(self._views)

    def spec(self) -> dict[str, Any]:
        """The JSON spec stored in the repository."""
        assert callable(self.transform)
        return {
            "name": self.name,
            "request": dict(self.request),
            "sources": list(self.source_refs),
            "fields": dict(self.fields),
            "transform": function_ref(self.transform),
            "description": self.description,
        }
