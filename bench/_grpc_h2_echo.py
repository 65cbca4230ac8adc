"""The ASGI HTTP/2 gRPC echo (#35): uvicorn's HTTP/2 (`http="zttp"`, prior-knowledge h2c) with the transport of
roost's ASGI gRPC front (roost.serve.grpc.h2: one write per loop turn, the stream cap) serving a bare ASGI app that
answers every ModelInfer with a fixed gRPC-framed ModelInferResponse of the size roost answers, with
`grpc-status: 0` and an x-request-id in the trailers — the same work as bench/_grpc_echo.py (bytes in and out, no
protobuf parse, no model), on an event loop instead of grpcio's thread pool: the limit of roost's ASGI front.

    python bench/_grpc_h2_echo.py PORT REQUEST=REPLY ...

Prints "ready" once serving; runs until SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from pathlib import Path
from typing import Any

PATH = "/inference.GRPCInferenceService/ModelInfer"


def main() -> None:
    """Serve the fixed reply until SIGTERM."""
    import uvloop

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("port", type=int)
    ap.add_argument("pairs", nargs="+", help="REQUEST_FILE=REPLY_FILE")
    args = ap.parse_args()
    replies = {}
    for pair in args.pairs:
        req, rep = pair.split("=", 1)
        reply = Path(rep).read_bytes()
        replies[len(Path(req).read_bytes()) + 5] = b"\0" + len(reply).to_bytes(4, "big") + reply
    headers = [(b"content-type", b"application/grpc")]
    start = {"type": "http.response.start", "status": 200, "headers": headers, "trailers": True}
    trailers = {
        "type": "http.response.trailers",
        "headers": [(b"grpc-status", b"0"), (b"x-request-id", b"0" * 32)],
        "more_trailers": False,
    }

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            msg = await receive()
            body += msg.get("body", b"")
            if not msg.get("more_body"):
                break
        await send(start)
        await send({"type": "http.response.body", "body": replies[len(body)], "more_body": False})
        await send(trailers)

    async def run() -> None:
        from roost.netpolicy.limits import ConnLimits
        from roost.serve.grpc.h2 import serve

        server = await serve(app, "127.0.0.1", args.port, ConnLimits())
        print("ready", flush=True)
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
        await server.stop(1.0)

    uvloop.run(run())


if __name__ == "__main__":
    main()
