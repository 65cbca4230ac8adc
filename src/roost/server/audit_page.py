"""The audit log page of the team server's UI, for admins: GET /admin/audit (filters as `roost audit`)."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from roost.errors import RoostError
from roost.registry.audit_log import parse_since
from roost.server.identity import identity_of
from roost.server.permissions import require_admin
from roost.server.settings import ServerSettings


def routes(settings: ServerSettings) -> list[BaseRoute]:
    """GET /admin/audit."""

    async def page(request: Request) -> Response:
        from roost.registry import audit_log
        from roost.server.login import template

        who = identity_of(request)
        require_admin(who)
        q = request.query_params
        actor, action, since = q.get("actor") or None, q.get("action") or None, q.get("since") or None
        refused = q.get("refused") == "1"
        error, events = None, []
        try:
            limit = int(q.get("limit") or 200)
            events = await run_in_threadpool(
                audit_log.query,
                settings.store(),
                actor=actor,
                action=action,
                since=parse_since(since),
                limit=limit,
                status_min=400 if refused else None,
            )
        except ValueError:
            limit, error = 200, RoostError("limit must be a whole number", hint="e.g. 200")
        except RoostError as exc:
            limit, error = 200, exc
        html = template("audit.html").render(
            who=who.name, events=events, actor=actor, action=action, since=since, refused=refused, limit=limit,
            error=error,
        )  # fmt: skip
        return HTMLResponse(html, status_code=400 if error else 200, headers={"cache-control": "no-store"})

    return [Route("/admin/audit", page, methods=["GET"])]
