"""Feature references ("view:field", "view:*") resolved against the registered definitions."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from roost.errors import NotFoundError, RoostError, closest
from roost.features import repo

__all__ = ["ViewSelection", "Selection", "resolve"]


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
class Selection:
    """Resolved feature refs: per-view selections in first-use order and output column -> dtype."""

    views: list[ViewSelection]
    dtypes: dict[str, str]
    refs: list[str]

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
) -> Selection:
    """Resolve refs like 'user_stats:clicks_7d' or 'user_stats:*'; unknown names raise with the nearest match."""
    if isinstance(features, str):
        features = [features]
    if not features:
        raise RoostError("no features asked for", hint="pass features=['view:field', ...]")
    views = repo.list_all("view") if views is None else views
    sources = repo.list_all("source") if sources is None else sources
    sel: dict[str, ViewSelection] = {}
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
        if spec is None:
            near = closest(vname, list(views))
            if near and fname != "*":
                near = f"{near}:{fname}" if fname in views[near]["fields"] else near
            elif not near:
                near = closest(ref, [f"{v}:{f}" for v, s in views.items() for f in s["fields"]])
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
        names = list(spec["fields"]) if fname == "*" else [fname]
        for f in names:
            if f not in spec["fields"]:
                raise NotFoundError(
                    f"feature {ref!r}: view {vname!r} has no field {f!r}",
                    hint=_nearest_hint(f, list(spec["fields"]), f"field of {vname!r}"),
                )
            vs = sel.setdefault(vname, ViewSelection(spec=spec, source=sources[spec["source"]]))
            if f in vs.fields:
                continue
            out = f"{vname}__{f}" if full_names else f
            if out in owner or out in vs.keys:
                other = owner.get(out, f"{vname} (join key)")
                raise RoostError(
                    f"field name {f!r} is asked of two views ({other} and {vname}); the output columns would collide",
                    hint="pass full_names=True to name columns 'view__field', or ask for one of them",
                )
            owner[out] = vname
            vs.fields.append(f)
            vs.outputs.append(out)
            dtypes[out] = spec["fields"][f]
            refs.append(f"{vname}:{f}")
    return Selection(views=list(sel.values()), dtypes=dtypes, refs=refs)
