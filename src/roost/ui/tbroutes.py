"""Routes that launch TensorBoard for runs and proxy it under /tb/<key>/ (so the token and --host cover it)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from roost.errors import NotFoundError, RoostError
from roost.ui.security import csrf_ok, read_body
from roost.ui.tensorboard import MAX_TB_RUNS

if TYPE_CHECKING:
    from roost.ui.app import UI

HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
    "cookie",
    "authorization",
}


class CsrfRefused(RoostError):
    """A state-changing request without the proof that it comes from the UI's pages (403)."""


async def _checked_body(request: Request, csrf: str) -> bytes:
    """The body of a state-changing request, once it passed the CSRF check."""
    body = await read_body(request)
    if not csrf_ok(request, body, csrf):
        raise CsrfRefused(
            "refused: this form was not sent from the UI's own page (missing or stale CSRF token)",
            hint="reload the page and press the button again; scripts send JSON or the X-CSRF-Token header",
        )
    return body


def _run_ids(request: Request, body: bytes) -> list[str]:
    """Run ids from a JSON body {"runs": [...]}, a form body runs=..., or the query string."""
    ids: list[str] = []
    if request.headers.get("content-type", "").startswith("application/json") and body:
        try:
            got = json.loads(body).get("runs", [])
        except (ValueError, AttributeError, RecursionError):
            raise RoostError('the body must be JSON like {"runs": ["ID", ...]}') from None
        if not isinstance(got, list | str):
            raise RoostError('"runs" must be a list of run ids', hint='{"runs": ["ID", ...]}')
        ids = [x for x in (got if isinstance(got, list) else [got]) if isinstance(x, str)]
    else:
        ids = [v for k, v in parse_qsl(body.decode("latin-1")) if k == "runs"]
    ids += request.query_params.getlist("runs")
    ids = list(dict.fromkeys(i.strip() for v in ids for i in v.split(",") if i.strip()))
    if not 1 <= len(ids) <= MAX_TB_RUNS:
        raise RoostError(
            f"TensorBoard takes 1 to {MAX_TB_RUNS} runs (got {len(ids)})", hint="pick runs on the compare page"
        )
    return ids


def routes(ui: UI) -> list[Route]:
    """TensorBoard launch, listing, stop and proxy routes."""
    from roost.registry import api as reg
    from roost.ui.api import endpoint, error_response, json_response
    from roost.ui.tensorboard import Board, spec_for

    async def launch(request: Request) -> Board:
        body = await _checked_body(request, ui.csrf)
        runs = [reg.get_run(i) for i in _run_ids(request, body)]
        board = ui.tb.ensure(spec_for(runs))
        await run_in_threadpool(ui.tb.wait_ready, board)
        return board

    async def launch_page(request: Request) -> Response:
        try:
            board = await launch(request)
        except NotFoundError as exc:
            return ui.error(request, exc, 404)
        except CsrfRefused as exc:
            return ui.error(request, exc, 403)
        except RoostError as exc:
            return ui.error(request, exc, 400)
        return RedirectResponse(board.prefix + "/", status_code=303)

    async def launch_api(request: Request) -> Response:
        try:
            board = await launch(request)
        except CsrfRefused as exc:
            return error_response(exc, 403)
        return json_response(
            {"key": board.key, "path": board.prefix + "/", "port": board.port, "runs": [n for n, _ in board.spec]}
        )

    @endpoint  # RoostError → 400, NotFoundError → 404, like every /api/ route
    async def api_tensorboard(request: Request) -> Response:
        if request.method == "POST":
            return await launch_api(request)
        return json_response(ui.tb.listing())

    async def stop(request: Request) -> Response:
        key = request.path_params["key"]
        if ui.tb.get(key) is None:
            return json_response({"error": f"no TensorBoard {key!r} is running"}, 404)
        ui.tb.stop(key)
        return json_response({"stopped": key})

    async def proxy(request: Request) -> Response:
        key = request.path_params["key"]
        board = ui.tb.get(key)
        if board is None:
            return ui.error(
                request,
                RoostError(
                    "this TensorBoard is not running (stopped when idle?)",
                    hint="launch it again from the run or compare page",
                ),
                404,
            )
        if "path" not in request.path_params:
            return RedirectResponse(board.prefix + "/", status_code=307)
        client = request.app.state.http
        url = f"http://127.0.0.1:{board.port}{board.prefix}/{request.path_params['path']}"
        headers = [(k, v) for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP]
        try:
            body = await read_body(request)  # TensorBoard's own POSTs are small queries
        except RoostError as exc:
            return Response(exc.message, status_code=413, media_type="text/plain")
        req = client.build_request(request.method, url, params=request.url.query or None, headers=headers, content=body)
        import httpx

        try:
            resp = await client.send(req, stream=True)
        except httpx.HTTPError as exc:
            return Response(f"TensorBoard did not answer: {exc}", status_code=502, media_type="text/plain")
        out_headers = {k: v for k, v in resp.headers.items() if k.lower() not in HOP_BY_HOP | {"set-cookie"}}
        return StreamingResponse(
            resp.aiter_raw(), status_code=resp.status_code, headers=out_headers, background=BackgroundTask(resp.aclose)
        )

    methods = ["GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS"]
    return [
        Route("/tensorboard", launch_page, methods=["POST"]),
        Route("/api/tensorboard", api_tensorboard, methods=["GET", "POST"]),  # one route: 405s list both
        Route("/api/tensorboard/{key}", stop, methods=["DELETE"]),
        Route("/tb/{key}", proxy, methods=methods),
        Route("/tb/{key}/{path:path}", proxy, methods=methods),
    ]
