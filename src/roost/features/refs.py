"""Feature references ("view:field", "view:*") resolved against the registered definitions."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from roost.errors import NotFoundError, RoostError, closest
from roost.features import repo

__all__ = ["ViewSelection", "RequestSelection", "Selection", "resolve", "HIDDEN"]

HIDDEN = "__src__"  # + "view__field": a stored feature read only as a request view's input


@dataclass
class ViewSelection:
    """The fields asked of one registered view, with the view's and its source's specs."""

    spec: dict[str, Any]
    source: dict[str, Any]
    fields: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        """The view's name."""
        return str(self.spec["name"])

    @property
    def keys(self) -> dict[str, str]:
        """Join key name -> dtype."""
        keys: dict[str, str] = self.spec["join_keys"]
        return keys


@dataclass
class RequestSelection:
    """The fields asked of one request view, and where its inputs come from."""

    spec: dict[str, Any]
    fields: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)  # input column -> stored output column of the selection

    @property
    def name(self) -> str:
        """The request view's name."""
        return str(self.spec["name"])

    @property
    def request(self) -> dict[str, str]:
        """Request field -> dtype."""
        req: dict[str, str] = self.spec["request"]
        return req


@dataclass
class Selection:
    """Resolved feature refs: per-view selections in first-use order and output column -> dtype.

    `views` also reads the source features of request views (outputs named HIDDEN + 'view__field' unless asked
    for); `dtypes` holds only the asked features, stored and request-time, in the order asked."""

    views: list[ViewSelection]
    dtypes: dict[str, str]
    refs: list[str]
    requests: list[RequestSelection] = field(default_factory=list)

    @property
    def request_fields(self) -> dict[str, str]:
        """Every request field the selected request views need, with its dtype."""
        out: dict[str, str] = {}
        for r in self.requests:
            out.update(r.request)
        return out

    @property
    def hidden(self) -> list[str]:
        """Stored outputs read only as request-view inputs (not returned)."""
        return [o for v in self.views for o in v.outputs if o.startswith(HIDDEN)]

    @property
    def join_keys(self) -> dict[str, str]:
        """Every join key any selected view needs, with its dtype."""
        out: dict[str, str] = {}
        for v in self.views:
            out.update(v.keys)
        return out


def _nearest_hint(name: str, candidates: list[str], what: str) -> str:
    near = closest(name, candidates)
    if near:
        return f"did you mean {near!r}? (`roost features list` shows every {what})"
    return f"`roost features list` shows every {what}" + (
        f"; known: {', '.join(sorted(candidates)[:12])}" if candidates else "; none is registered yet"
    )


def resolve(
    features: list[str] | tuple[str, ...] | str,
    full_names: bool = False,
    views: dict[str, dict[str, Any]] | None = None,
    sources: dict[str, dict[str, Any]] | None = None,
    requests: dict[str, dict[str, Any]] | None = None,
) -> Selection:
    """Resolve refs like 'user_stats:clicks_7d' or 'user_stats:*' (of feature or request views); unknown names raise
    with the nearest match."""
    if isinstance(features, str):
        features = [features]
    if not features:
        raise RoostError("no features asked for", hint="pass features=['view:field', ...]")
    views = repo.list_all("view") if views is None else views
    sources = repo.list_all("source") if sources is None else sources
    requests = repo.list_all("request_view") if requests is None else requests
    sel: dict[str, ViewSelection] = {}
    rsel: dict[str, RequestSelection] = {}
    dtypes: dict[str, str] = {}
    owner: dict[str, str] = {}
    refs: list[str] = []
    for ref in features:
        if not isinstance(ref, str) or ref.count(":") != 1:
            raise RoostError(
                f"feature ref {ref!r} is not of the form 'view:field'",
                hint="e.g. 'user_stats:clicks_7d' or 'user_stats:*' for every field",
            )
        vname, fname = ref.split(":")
        spec = views.get(vname)
        if spec is None and vname in requests:
            rs = rsel.setdefault(vname, RequestSelection(spec=requests[vname]))
            for f in _fields(ref, requests[vname], fname):
                if f not in rs.fields:
                    out = f"{vname}__{f}" if full_names else f
                    _claim(owner, out, vname, f, ())
                    rs.fields.append(f)
                    rs.outputs.append(out)
                    dtypes[out] = requests[vname]["fields"][f]
                    refs.append(f"{vname}:{f}")
            continue
        if spec is None:
            every = {**views, **requests}
            near = closest(vname, list(every))
            if near and fname != "*":
                near = f"{near}:{fname}" if fname in every[near]["fields"] else near
            elif not near:
                near = closest(ref, [f"{v}:{f}" for v, s in every.items() for f in s["fields"]])
            raise NotFoundError(
                f"feature view {vname!r} (in {ref!r}) is not registered",
                hint=(f"did you mean {near!r}? " if near else "")
                + "run `roost features apply` after adding definitions; `roost features list` "
                "shows what is registered",
            )
        if spec["source"] not in sources:
            raise RoostError(
                f"view {vname!r} uses source {spec['source']!r}, which is not registered",
                hint="run `roost features apply`",
            )
        for f in _fields(ref, spec, fname):
            vs = sel.setdefault(vname, ViewSelection(spec=spec, source=sources[spec["source"]]))
            if f in vs.fields:
                continue
            out = f"{vname}__{f}" if full_names else f
            _claim(owner, out, vname, f, vs.keys)
            vs.fields.append(f)
            vs.outputs.append(out)
            dtypes[out] = spec["fields"][f]
            refs.append(f"{vname}:{f}")
    for rs in rsel.values():
        _add_sources(rs, sel, views, sources)
    return Selection(views=list(sel.values()), dtypes=dtypes, refs=refs, requests=list(rsel.values()))


def _fields(ref: str, spec: dict[str, Any], fname: str) -> list[str]:
    """The fields a ref asks of a view ('*' = all), each checked to exist."""
    names = list(spec["fields"]) if fname == "*" else [fname]
    for f in names:
        if f not in spec["fields"]:
            raise NotFoundError(
                f"feature {ref!r}: view {spec['name']!r} has no field {f!r}",
                hint=_nearest_hint(f, list(spec["fields"]), f"field of {spec['name']!r}"),
            )
    return names


def _claim(owner: dict[str, str], out: str, vname: str, f: str, keys: Any) -> None:
    """Reserve an output column name for `vname`, or raise when another view (or a join key) has it."""
    if out in owner or out in keys:
        other = owner.get(out, f"{vname} (join key)")
        raise RoostError(
            f"field name {f!r} is asked of two views ({other} and {vname}); the output columns would collide",
            hint="pass full_names=True to name columns 'view__field', or ask for one of them",
        )
    owner[out] = vname


def _add_sources(
    rs: RequestSelection,
    sel: dict[str, ViewSelection],
    views: dict[str, dict[str, Any]],
    sources: dict[str, dict[str, Any]],
) -> None:
    """Read a request view's source features too (as hidden outputs unless asked for) and map its inputs to them."""
    for ref in rs.spec["sources"]:
        vname, f = ref.split(":")
        spec = views.get(vname)
        if spec is None or f not in spec["fields"] or spec["source"] not in sources:
            raise RoostError(
                f"request view {rs.name!r} reads {ref!r}, which is not registered",
                hint="run `roost features apply` (it checks every request view's sources)",
            )
        vs = sel.setdefault(vname, ViewSelection(spec=spec, source=sources[spec["source"]]))
        if f not in vs.fields:
            vs.fields.append(f)
            vs.outputs.append(f"{HIDDEN}{vname}__{f}")
        rs.sources[f] = vs.outputs[vs.fields.index(f)]
