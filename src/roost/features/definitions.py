"""Feature definitions: entities (join keys), sources (files or DuckDB SQL) and feature views, with their specs."""

from __future__ import annotations

import hashlib
import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from roost.errors import ConfigError

# dtype name -> (DuckDB type, SQLite column type)
DTYPES: dict[str, tuple[str, str]] = {
    "int64": ("BIGINT", "INTEGER"),
    "int32": ("INTEGER", "INTEGER"),
    "float64": ("DOUBLE", "REAL"),
    "float32": ("FLOAT", "REAL"),
    "bool": ("BOOLEAN", "INTEGER"),
    "string": ("VARCHAR", "TEXT"),
    "timestamp": ("TIMESTAMPTZ", "INTEGER"),
}
KEY_DTYPES = ("int64", "int32", "string")
_ALIASES = {
    "int": "int64",
    "float": "float64",
    "str": "string",
    "boolean": "bool",
    "double": "float64",
    "datetime": "timestamp",
}
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
LOADER_PREFIX = "roost_feature_defs"


__all__ = [
    "DTYPES",
    "KEY_DTYPES",
    "check_name",
    "norm_dtype",
    "Entity",
    "Source",
    "function_ref",
    "FeatureView",
    "Definitions",
    "arrow_type",
]


def check_name(what: str, name: str) -> str:
    """Return `name` if it is a plain identifier (it becomes a SQL column or table name), else raise."""
    if not isinstance(name, str) or not _IDENT.match(name) or name.startswith("__"):
        raise ConfigError(
            f"{what} name {name!r} is not a plain identifier",
            hint="use letters, digits and underscores, not starting with a digit or '__'",
        )
    return name


def norm_dtype(dtype: Any, where: str) -> str:
    """Normalise a dtype name (or a Python/numpy type) to one of DTYPES, else raise naming `where`."""
    name = getattr(dtype, "__name__", None) if not isinstance(dtype, str) else dtype
    name = str(name if name is not None else dtype).lower()
    name = {"str_": "string", "bool_": "bool", "object": "string"}.get(name, name)
    name = _ALIASES.get(name, name)
    if name not in DTYPES:
        from roost.errors import closest

        near = closest(name, list(DTYPES))
        raise ConfigError(
            f"{where}: unknown dtype {dtype!r}",
            hint=(f"did you mean {near!r}? " if near else "") + "known: " + ", ".join(DTYPES),
        )
    return name


@dataclass
class Entity:
    """A thing features describe, identified by one or more typed join keys (e.g. user_id: int64)."""

    name: str
    join_keys: dict[str, str] | list[str] | str = "id"
    description: str = ""

    def __post_init__(self) -> None:
        check_name("entity", self.name)
        keys = self.join_keys
        if isinstance(keys, str):
            keys = {keys: "int64"}
        elif isinstance(keys, (list, tuple)):
            keys = dict.fromkeys(keys, "int64")
        if not keys:
            raise ConfigError(f"entity {self.name!r} has no join keys", hint="Entity('user', {'user_id': 'int64'})")
        self.join_keys = {
            check_name("join key", k): norm_dtype(t, f"entity {self.name!r} key {k!r}") for k, t in dict(keys).items()
        }
        bad = {k: t for k, t in self.join_keys.items() if t not in KEY_DTYPES}
        if bad:
            raise ConfigError(
                f"entity {self.name!r}: join keys must be {' or '.join(KEY_DTYPES)}, got {bad}",
                hint="use an integer or string id",
            )

    @property
    def keys(self) -> dict[str, str]:
        """Join key name -> dtype (`join_keys` as normalised by the constructor)."""
        keys = self.join_keys
        assert isinstance(keys, dict)
        return keys

    def spec(self) -> dict[str, Any]:
        """The JSON spec stored in the repository."""
        return {"name": self.name, "join_keys": dict(self.keys), "description": self.description}


@dataclass
class Source:
    """Where feature rows come from: a Parquet/CSV path or glob, or a DuckDB SQL query, with its time columns."""

    name: str
    path: str | None = None
    sql: str | None = None
    event_time: str | None = "event_time"
    created_time: str | None = None
    timezone: str | None = None
    description: str = ""

    def __post_init__(self) -> None:
        check_name("source", self.name)
        if (self.path is None) == (self.sql is None):
            raise ConfigError(
                f"source {self.name!r} needs exactly one of path= or sql=",
                hint="Source('clicks', path='data/clicks/*.parquet', event_time='event_time')",
            )
        for col in (self.event_time, self.created_time):
            if col is not None and not isinstance(col, str):
                raise ConfigError(f"source {self.name!r}: time column names must be strings, got {col!r}")

    @property
    def static(self) -> bool:
        """True when the source has no event time: every row is valid forever."""
        return self.event_time is None

    def spec(self) -> dict[str, Any]:
        """The JSON spec stored in the repository."""
        return {
            "name": self.name,
            "path": self.path,
            "sql": self.sql,
            "event_time": self.event_time,
            "created_time": self.created_time,
            "timezone": self.timezone,
            "description": self.description,
        }


def function_ref(fn: Callable[..., Any]) -> dict[str, Any]:
    """Describe a Python transformation so it can be found again: its module (or workspace file) and a hash."""
    try:
        src = inspect.getsource(fn)
    except (OSError, TypeError):
        src = getattr(fn, "__qualname__", repr(fn))
    if "<locals>" in getattr(fn, "__qualname__", "") or getattr(fn, "__name__", "") == "<lambda>":
        raise ConfigError(
            f"transformation {fn!r} must be a module-level named function",
            hint="define it with `def` at the top level of the features file",
        )
    mod = fn.__module__
    ref = {"kind": "python", "function": fn.__qualname__, "hash": hashlib.sha256(src.encode()).hexdigest()[:16]}
    if mod.startswith(LOADER_PREFIX + "."):
        ref["file"] = inspect.getfile(fn)
    else:
        ref["module"] = mod
    return ref


@dataclass
class FeatureView:
    """Typed fields about one or more entities, read from a source, valid for `ttl` after their event time."""

    # `transform`: {field: DuckDB SQL expression over source columns}, or a vectorised row-wise Python function
    # fn(pandas.DataFrame of source rows) -> DataFrame/dict of fields. It runs on the source rows for training sets
    # and for materialisation alike, so offline and online values come from the same code.

    name: str
    entities: list[Entity] | Entity
    source: Source
    fields: dict[str, str]
    ttl: timedelta | None = None
    transform: dict[str, str] | Callable[..., Any] | None = None
    description: str = ""

    def __post_init__(self) -> None:
        check_name("feature view", self.name)
        if isinstance(self.entities, Entity):
            self.entities = [self.entities]
        if not self.entities or not all(isinstance(e, Entity) for e in self.entities):
            raise ConfigError(f"feature view {self.name!r}: entities must be Entity objects")
        if not isinstance(self.source, Source):
            raise ConfigError(f"feature view {self.name!r}: source must be a Source object")
        if not self.fields:
            raise ConfigError(f"feature view {self.name!r} declares no fields", hint="fields={'clicks_7d': 'int64'}")
        self.fields = {
            check_name("field", f): norm_dtype(t, f"view {self.name!r} field {f!r}")
            for f, t in dict(self.fields).items()
        }
        keys = self.join_keys
        clash = sorted(set(keys) & set(self.fields))
        if clash:
            raise ConfigError(
                f"feature view {self.name!r}: field(s) {clash} are also join keys",
                hint="join keys are added automatically; remove them from fields",
            )
        if self.ttl is not None:
            if isinstance(self.ttl, (int, float)):
                self.ttl = timedelta(seconds=self.ttl)
            if self.ttl <= timedelta(0):
                raise ConfigError(f"feature view {self.name!r}: ttl must be positive, got {self.ttl}")
        if isinstance(self.transform, dict):
            extra = sorted(set(self.transform) - set(self.fields))
            if extra:
                raise ConfigError(
                    f"feature view {self.name!r}: transform names unknown field(s) {extra}",
                    hint="every transformed column must be declared in fields",
                )
        elif self.transform is not None and not callable(self.transform):
            raise ConfigError(f"feature view {self.name!r}: transform must be a dict of SQL expressions or a function")

    @property
    def entity_list(self) -> list[Entity]:
        """The view's entities (`entities` as normalised by the constructor)."""
        ents = self.entities
        return [ents] if isinstance(ents, Entity) else list(ents)

    @property
    def join_keys(self) -> dict[str, str]:
        """All join keys of the view's entities, in order."""
        out: dict[str, str] = {}
        for e in self.entity_list:
            out.update(e.keys)
        return out

    def spec(self) -> dict[str, Any]:
        """The JSON spec stored in the repository."""
        if self.transform is None:
            tr = None
        elif isinstance(self.transform, dict):
            tr = {"kind": "sql", "exprs": dict(self.transform)}
        else:
            tr = function_ref(self.transform)
        return {
            "name": self.name,
            "entities": [e.name for e in self.entity_list],
            "join_keys": self.join_keys,
            "source": self.source.name,
            "fields": dict(self.fields),
            "ttl_seconds": None if self.ttl is None else self.ttl.total_seconds(),
            "transform": tr,
            "description": self.description,
        }


@dataclass
class Definitions:
    """Everything declared in a workspace's features folder, by kind and name."""

    entities: dict[str, Entity] = field(default_factory=dict)
    sources: dict[str, Source] = field(default_factory=dict)
    views: dict[str, FeatureView] = field(default_factory=dict)
    requests: dict[str, Any] = field(default_factory=dict)  # name -> RequestView (roost.features.ondemand)

    def add(self, obj: Any, origin: str) -> None:
        """Add an Entity, Source or FeatureView (and the entities/source it uses); same name twice must agree."""
        if isinstance(obj, FeatureView):
            for e in obj.entity_list:
                self.add(e, origin)
            self.add(obj.source, origin)
            self._put(self.views, "feature view", obj, origin)
        elif isinstance(obj, Entity):
            self._put(self.entities, "entity", obj, origin)
        elif isinstance(obj, Source):
            self._put(self.sources, "source", obj, origin)

    def add_request(self, obj: Any, origin: str) -> None:
        """Add a RequestView (roost.features.ondemand) and the FeatureViews it names as sources."""
        for v in obj.views:
            self.add(v, origin)
        self._put(self.requests, "request view", obj, origin)

    @staticmethod
    def _put(table: dict[str, Any], what: str, obj: Any, origin: str) -> None:
        old = table.get(obj.name)
        if old is not None and old is not obj and old.spec() != obj.spec():
            raise ConfigError(
                f"{what} {obj.name!r} is defined twice with different settings ({origin})",
                hint=f"give each {what} a unique name",
            )
        table[obj.name] = obj

    def specs(self) -> dict[str, dict[str, dict[str, Any]]]:
        """All specs by kind ('entity', 'source', 'view', 'request_view') and name."""
        return {
            "entity": {n: o.spec() for n, o in sorted(self.entities.items())},
            "source": {n: o.spec() for n, o in sorted(self.sources.items())},
            "view": {n: o.spec() for n, o in sorted(self.views.items())},
            "request_view": {n: o.spec() for n, o in sorted(self.requests.items())},
        }


_ARROW_TYPES: dict[str, Any] = {}


def arrow_type(dtype: str) -> Any:
    """The Arrow type of a dtype name (timestamps are UTC microseconds)."""
    got = _ARROW_TYPES.get(dtype)
    if got is not None:
        return got
    import pyarrow as pa

    types = {
        "int64": pa.int64(),
        "int32": pa.int32(),
        "float64": pa.float64(),
        "float32": pa.float32(),
        "bool": pa.bool_(),
        "string": pa.string(),
        "timestamp": pa.timestamp("us", tz="UTC"),
    }
    _ARROW_TYPES.update(types)  # built once: a push looks types up ~10 times
    return types[dtype]
