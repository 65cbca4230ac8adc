"""/lineage: request → model version → run → data fingerprint → feature views as a picture with clickable nodes.

The chain comes from roost.lineage (what `roost lineage` prints); the picture is SVG drawn here, on the server,
in the house style of roost.monitor.svg (no JavaScript): one column per link of the chain, each node a link to
the page that shows it.
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from roost.errors import NotFoundError, RoostError

if TYPE_CHECKING:
    from roost.ui.app import UI

NODE_W, NODE_H, GAP_X, GAP_Y, PAD = 190, 58, 46, 14, 10
COLORS = {"request": "#fef3c7", "model_version": "#e0e7ff", "run": "#dbeafe", "data": "#dcfce7", "view": "#f3e8ff"}
STROKE = "#4b5563"

__all__ = ["lineage_nodes", "lineage_svg", "routes"]


def _features_href(app: Any, name: str) -> str:
    """A feature view's page: /features/{name} where the app has that route, else its anchor on /features."""
    paths = {getattr(r, "path", "") for r in getattr(app, "routes", [])}
    return f"/features/{quote(name, safe='')}" if "/features/{name}" in paths else f"/features#view-{quote(name)}"


def _first(*values: Any) -> str:
    """The first value that says something ('' for none; params hold a missing value as 'null')."""
    return next((str(v) for v in values if v not in (None, "", "null", "None")), "")


def lineage_nodes(lin: dict[str, Any], features_href: Any = None) -> list[list[dict[str, Any]]]:
    """The chain as columns of nodes {kind, title, lines, href}: request, model version, run, data, views."""
    href_view = features_href or (lambda n: f"/features#view-{quote(n)}")
    cols: list[list[dict[str, Any]]] = []
    req = lin.get("request")
    if req:
        cols.append(
            [
                {
                    "kind": "request",
                    "title": f"request {req['request_id']}",
                    "lines": [
                        str(req.get("served_at") or ""),
                        f"{req.get('rows', '')} row(s) · {req.get('protocol') or ''}",
                    ],
                    "href": "/lineage?" + urlencode({"target": req["request_id"]}),
                }
            ]
        )
    mv = lin.get("model_version")
    if mv:
        aliases = ", ".join(f"@{a}" for a in mv.get("aliases") or [])
        cols.append(
            [
                {
                    "kind": "model_version",
                    "title": f"{mv['name']}/{mv['version']}",
                    "lines": ["model version", aliases],
                    "href": f"/models/{quote(str(mv['name']), safe='')}#version-{mv['version']}",
                }
            ]
        )
    run = lin.get("run")
    if run:
        cols.append(
            [
                {
                    "kind": "run",
                    "title": f"run {run.get('name') or run['run_id'][:8]}",
                    "lines": [f"{run['run_id'][:8]} · {run.get('model_type') or ''}", str(run.get("experiment") or "")],
                    "href": f"/runs/{run['run_id']}",
                }
            ]
        )
    data = lin.get("data") or {}
    if run and (data.get("fingerprint") or data.get("source") or data.get("entities")):
        fp = str(data.get("fingerprint") or "")
        q = f"params.`data.fingerprint` = '{fp}'" if fp else f"run_id = '{run['run_id']}'"
        cols.append(
            [
                {
                    "kind": "data",
                    "title": f"data {fp[:12]}" if fp else "data",
                    "lines": [_first(data.get("source"), data.get("entities")), f"{data.get('rows') or '?'} rows"],
                    "href": "/runs?" + urlencode({"q": q}),
                }
            ]
        )
    views = lin.get("feature_views") or []
    if views:
        cols.append(
            [
                {
                    "kind": "view",
                    "title": f"view {v['name']}",
                    "lines": [
                        f"definition {str(v.get('definition_version') or '')[:12]}",
                        "changed since training" if v.get("changed_since_training") else "unchanged since training",
                    ],
                    "href": href_view(str(v["name"])),
                }
                for v in views
            ]
        )
    return cols


def lineage_svg(cols: list[list[dict[str, Any]]]) -> str:
    """The columns of nodes as an SVG picture: boxes left to right, arrows between neighbouring columns."""
    from roost.monitor.svg import fit_text

    if not cols:
        return ""
    rows = max(len(c) for c in cols)
    w = PAD * 2 + len(cols) * NODE_W + (len(cols) - 1) * GAP_X
    h = PAD * 2 + rows * NODE_H + (rows - 1) * GAP_Y
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="group" '
        f'aria-labelledby="lineage-svg-title" class="lineage-svg" style="font:11px sans-serif">',
        '<title id="lineage-svg-title">lineage: '
        + escape(" → ".join(n["title"] for c in cols for n in c[:1]))
        + "</title>",
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
        f'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="{STROKE}"/></marker></defs>',
    ]
    centres: list[list[tuple[float, float]]] = []
    for i, col in enumerate(cols):
        left = float(PAD + i * (NODE_W + GAP_X))
        top = PAD + (h - 2 * PAD - (len(col) * NODE_H + (len(col) - 1) * GAP_Y)) / 2
        centres.append([(left, top + j * (NODE_H + GAP_Y)) for j in range(len(col))])
    for i in range(1, len(cols)):
        for x0, y0 in centres[i - 1]:
            for x1, y1 in centres[i]:
                out.append(
                    f'<line x1="{x0 + NODE_W:.1f}" y1="{y0 + NODE_H / 2:.1f}" x2="{x1:.1f}" y2="{y1 + NODE_H / 2:.1f}" '
                    f'stroke="{STROKE}" stroke-width="1.3" marker-end="url(#arrow)"/>'
                )
    for col, cs in zip(cols, centres):
        for node, (x, y) in zip(col, cs):
            title = fit_text(node["title"], NODE_W - 12, 12)
            out.append(
                f'<a href="{escape(node["href"])}" class="node {node["kind"]}" data-kind="{node["kind"]}" '
                f'data-name="{escape(node["title"])}">'
                f"<title>{escape(node['title'])}</title>"
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{NODE_W}" height="{NODE_H}" rx="6" '
                f'fill="{COLORS[node["kind"]]}" stroke="{STROKE}"/>'
                f'<text x="{x + 8:.1f}" y="{y + 17:.1f}" font-weight="bold" font-size="12" fill="#111827">'
                f"{escape(title)}</text>"
            )
            for k, line in enumerate(node["lines"][:2]):
                out.append(
                    f'<text x="{x + 8:.1f}" y="{y + 33 + 14 * k:.1f}" fill="#374151">'
                    f"{escape(fit_text(str(line), NODE_W - 12))}</text>"
                )
            out.append("</a>")
    out.append("</svg>")
    return "".join(out)


def routes(ui: UI) -> list[Route]:
    """/lineage?target=REQUEST_ID | MODEL@ALIAS | MODEL/VERSION | RUN_ID."""

    async def page(request: Request) -> Response:
        from markupsafe import Markup

        from roost.lineage import lineage
        from roost.registry.api import list_models
        from roost.ui.security import scrub_paths

        target = request.query_params.get("target", "").strip()[:300]
        models = [m["name"] for m in list_models()]
        if not target:
            return ui.render(request, "lineage.html", target="", lin=None, svg="", models=models, error=None)
        try:
            lin = lineage(target)
        except RoostError as exc:
            err = {"message": scrub_paths(exc.message), "hint": scrub_paths(exc.hint) if exc.hint else ""}
            status = 404 if isinstance(exc, NotFoundError) else 400
            return ui.render(request, "lineage.html", status, target=target, lin=None, svg="", models=models, error=err)
        cols = lineage_nodes(lin, lambda n: _features_href(request.app, n))
        return ui.render(
            request, "lineage.html", target=target, lin=lin, svg=Markup(lineage_svg(cols)), models=models, error=None
        )

    return [Route("/lineage", page)]
