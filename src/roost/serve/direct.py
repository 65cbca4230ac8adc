"""The direct route of `POST /v2/models/{name}[/versions/{v}]/infer`, taken from ServeApp.__call__ before the router.

Inference is nearly every request a serving worker answers, and the router's layers cost ~10 µs of a ~40 µs
1-row request (bench/RESULTS.md "Serving"): this route runs the same checks in the same order — the Host
allow-list, the cross-site and token gate, the request id, the body limit and decompression, V2's own checks —
and counts the same metrics, from one function. Every refusal is the general route's (roost.serve.replies.failed), which
tests/serve/test_serve_direct.py checks by sending the same hostile requests both ways.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from roost.serve import replies
from roost.serve.protocols import v2
from roost.serve.reqid import HEADER, Call, checked, new_id

if TYPE_CHECKING:
    from roost.serve.app import Receive, Scope, Send, ServeApp


async def v2_infer(app: ServeApp, scope: Scope, receive: Receive, send: Send) -> None:
    """Answer one V2 inference request (ServeApp.direct chose this route for its path)."""
    t0 = time.perf_counter()
    metrics = app.metrics
    if metrics is not None:
        metrics.enter()
    call = Call()
    try:
        headers = dict(scope["headers"])
        sent = headers.get(HEADER)
        call.request_id = new_id() if sent is None else checked(sent, "X-Request-Id")
        app._gate(scope, headers)
        name, version, _ = v2.route(app, "POST", scope["path"][11:])  # (/infer: "infer", or an HTTPError)
        if app.repo.get(name) is not None:
            call.model = name
        call.protocol = "v2"
        body = await app._read_body(scope, receive, headers)
        status, out, ctype, extra = await v2.infer(app, name, version, body, headers, call)
    except Exception as exc:  # noqa: BLE001 - every failure is answered, as on the general route
        status, out, ctype, extra = replies.failed(scope, exc)
    finally:
        if metrics is not None:
            metrics.leave()
    await replies.answer(send, status, out, ctype, call.request_id, extra)
    if metrics is not None:
        metrics.observe(call.model, call.protocol, status, time.perf_counter() - t0)
