"""`apply`: validate the workspace's feature definitions and register them, reporting what was added/changed/removed."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from roost.errors import ConfigError, RoostError
from roost.features import repo

log = logging.getLogger(__name__)
KIND_ORDER = ("entity", "source", "view", "request_view")


__all__ = ["Diff", "validate", "validate_requests", "diff_specs", "registered", "apply", "list_definitions"]


@dataclass
class Diff:
    """What `apply` changed, per kind: names added, changed (with the settings that changed) and removed."""

    added: dict[str, list[str]] = field(default_factory=lambda: {k: [] for k in KIND_ORDER})
    changed: dict[str, dict[str, list[str]]] = field(default_factory=lambda: {k: {} for k in KIND_ORDER})
    removed: dict[str, list[str]] = field(default_factory=lambda: {k: [] for k in KIND_ORDER})

    @property
    def empty(self) -> bool:
        """True when nothing changed."""
        return not any(self.added[k] or self.changed[k] or self.removed[k] for k in KIND_ORDER)

    def lines(self) -> list[str]:
        """Human-readable lines: '+ view user_stats', '~ view user_stats (fields, ttl_seconds)', '- source old'."""
        out = []
        for k in KIND_ORDER:
            out += [f"+ {k} {n}" for n in self.added[k]]
            out += [f"~ {k} {n} ({', '.join(c)})" for n, c in self.changed[k].items()]
            out += [f"- {k} {n}" for n in self.removed[k]]
        return out

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"added": self.added, "changed": self.changed, "removed": self.removed}


def _relativize(specs: dict[str, dict[str, dict[str, Any]]], root: Path) -> None:
    """Store Python transformation files relative to the workspace root, so the repository is portable."""
    for spec in [*specs["view"].values(), *specs.get("request_view", {}).values()]:
        tr = spec.get("transform") or {}
        if tr.get("kind") == "python" and "file" in tr:
            p = Path(tr["file"]).resolve()
            try:
                tr["file"] = str(p.relative_to(root.resolve()))
            except ValueError:
                tr["file"] = str(p)


def validate(specs: dict[str, dict[str, dict[str, Any]]], root: Path) -> None:
    """Check every source can be read with tz-aware times, every view's SQL binds against its source, and every
    request view's sources exist and its transformation returns its fields in their dtypes."""
    from roost.features.sources import connect, run, source_columns, time_expr, view_rows

    con = connect(root)
    try:
        for src in specs["source"].values():
            cols = source_columns(con, src, root)
            for col in (src.get("event_time"), src.get("created_time")):
                if col:
                    time_expr(src, col, cols)
        for name, view in specs["view"].items():
            src = specs["source"][view["source"]]
            if view.get("ttl_seconds") is not None and not src.get("event_time"):
                raise ConfigError(
                    f"view {name!r} has a ttl but source {src['name']!r} has no event time",
                    hint="static sources (event_time=None) are valid forever: drop the ttl",
                )
            run(con, "DESCRIBE " + view_rows(con, view, src, root, limit=5), f"view {name!r}").fetchall()
    finally:
        con.close()
    validate_requests(specs, root)


def diff_specs(new: dict[str, dict[str, dict[str, Any]]], old: dict[str, dict[str, dict[str, Any]]]) -> Diff:
    """Compare desired specs with registered ones."""
    d = Diff()
    for k in KIND_ORDER:
        for name, spec in new[k].items():
            if name not in old[k]:
                d.added[k].append(name)
            elif old[k][name] != spec:
                d.changed[k][name] = sorted(
                    key for key in set(spec) | set(old[k][name]) if spec.get(key) != old[k][name].get(key)
                )
        d.removed[k] = sorted(set(old[k]) - set(new[k]))
    return d


def registered() -> dict[str, dict[str, dict[str, Any]]]:
    """All registered definitions by kind and name."""
    return {k: repo.list_all(k) for k in KIND_ORDER}


def apply(folder: str | Path | None = None, dry_run: bool = False) -> Diff:
    """Load `features/*.py`, validate, and register the definitions (removing ones no longer declared)."""
    from roost import workspace
    from roost.features.loader import load_definitions

    ws = workspace.current()
    specs = load_definitions(ws.root, folder).specs()
    _relativize(specs, ws.root)
    validate(specs, ws.root)
    d = diff_specs(specs, registered())
    if dry_run or d.empty:
        return d
    for k in KIND_ORDER:
        for name in d.added[k] + list(d.changed[k]):
            repo.put(k, name, specs[k][name])
    stale = d.removed["view"] + list(d.changed["view"])
    for name in stale:
        repo.delete("watermark", name)
    if stale:
        _drop_online(stale, ws.online_store)
    for k in reversed(KIND_ORDER):
        for name in d.removed[k]:
            repo.delete(k, name)
    log.info("features apply: %s", "; ".join(d.lines()))
    return d


def _drop_online(views: list[str], url: str) -> None:
    """Forget online values of removed or changed views (the next materialisation reloads them)."""
    from roost.features.online_stores import open_online_store

    try:
        store = open_online_store(url)
    except RoostError as exc:
        log.warning("could not open the online store to drop %s: %s", views, exc)
        return
    for v in views:
        store.drop_view(v)


def list_definitions() -> dict[str, dict[str, dict[str, Any]]]:
    """Registered entities, sources and views, plus each view's materialisation watermark."""
    out = registered()
    out["watermark"] = repo.list_all("watermark")
    return out


def _sample(dtype: str, n: int) -> Any:
    """`n` ordinary, non-null values of a dtype as an Arrow array (the frame `apply` runs a transformation on)."""
    from datetime import UTC, datetime, timedelta

    import pyarrow as pa

    from roost.features.definitions import arrow_type

    vals: list[Any]
    if dtype in ("int64", "int32"):
        vals = list(range(1, n + 1))
    elif dtype in ("float64", "float32"):
        vals = [0.5 + i for i in range(n)]
    elif dtype == "bool":
        vals = [i % 2 == 0 for i in range(n)]
    elif dtype == "string":
        vals = [f"s{i}" for i in range(n)]
    else:
        vals = [datetime(2024, 1, 1, tzinfo=UTC) + timedelta(hours=i) for i in range(n)]
    return pa.array(vals, arrow_type(dtype))


def validate_requests(specs: dict[str, dict[str, dict[str, Any]]], root: Any) -> None:
    """Check request views: names unique among views, sources registered with the field, outputs of their dtypes
    when the transformation runs on 5 sample rows."""
    from roost.errors import closest
    from roost.features.loader import load_function
    from roost.features.request_compute import compute

    views = specs["view"]
    for name, spec in specs.get("request_view", {}).items():
        where = f"request view {name!r}"
        if name in views:
            raise ConfigError(f"{where} has the name of a feature view", hint="feature refs name one view: rename one")
        inputs = {f: _sample(t, 5) for f, t in spec["request"].items()}
        for ref in spec["sources"]:
            vname, fname = ref.split(":")
            view = views.get(vname)
            if view is None:
                near = closest(vname, list(views))
                raise ConfigError(
                    f"{where}: source {ref!r} names unknown feature view {vname!r}",
                    hint=(f"did you mean {near!r}? " if near else "") + "declare it in features/*.py",
                )
            if fname not in view["fields"]:
                near = closest(fname, list(view["fields"]))
                raise ConfigError(
                    f"{where}: source {ref!r}: view {vname!r} has no field {fname!r}",
                    hint=(f"did you mean {near!r}? " if near else "") + f"fields: {', '.join(view['fields'])}",
                )
            inputs[fname] = _sample(view["fields"][fname], 5)
        try:
            fn = load_function(spec["transform"], root)
        except RoostError as exc:
            raise ConfigError(f"{where}: {exc.message}", hint=exc.hint) from exc
        try:
            compute(spec, fn, inputs, 5, strict=True)
        except ConfigError:
            raise
        except RoostError as exc:  # run on 5 sample rows of the declared input dtypes
            raise ConfigError(exc.message, hint=exc.hint) from exc
