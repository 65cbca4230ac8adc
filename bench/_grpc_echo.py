"""The gRPC ceiling (#35): a bare grpcio server of roost's kind — `grpc.server(ThreadPoolExecutor)`, a generic
handler, bytes in and bytes out (no protobuf parse, no model) — answering every ModelInfer with a fixed
ModelInferResponse of the size roost answers. Driven by the same h2load command as roost's gRPC server, it is the
limit of what grpcio allows on this machine.

    python bench/_grpc_echo.py PORT REQUEST=REPLY ... [--threads 64] [--opt grpc.key=value ...]

Each REQUEST=REPLY pair names a serialized request and the serialized response answered to a request of that byte
length (bench/serving.py writes one pair per row count, the reply the size roost answers: model name and version,
a 32-character id, `probability` FP32 [n] and `label` INT64 [n] raw). Every answer also carries an x-request-id
trailing metadata, as roost's does. Prints "ready" once serving; runs until SIGTERM.
"""

from __future__ import annotations

import argparse
import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc

PATH_SERVICE = "inference.GRPCInferenceService"


def main() -> None:
    """Serve the fixed reply until SIGTERM."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("port", type=int)
    ap.add_argument("pairs", nargs="+", help="REQUEST_FILE=REPLY_FILE")
    ap.add_argument("--threads", type=int, default=64, help="pool threads (roost's server: 64)")
    ap.add_argument("--opt", action="append", default=[], help="a grpc server option key=value (int values)")
    args = ap.parse_args()
    replies = {}
    for pair in args.pairs:
        req, rep = pair.split("=", 1)
        replies[len(Path(req).read_bytes())] = Path(rep).read_bytes()
    trailer = (("x-request-id", "0" * 32),)

    def infer(req: bytes, context: grpc.ServicerContext) -> bytes:
        context.set_trailing_metadata(trailer)
        return replies[len(req)]

    opts = [("grpc.so_reuseport", 0)] + [(k, int(v)) for k, v in (o.split("=", 1) for o in args.opt)]
    server = grpc.server(ThreadPoolExecutor(args.threads), options=opts)
    method = grpc.unary_unary_rpc_method_handler(infer, request_deserializer=None, response_serializer=None)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(PATH_SERVICE, {"ModelInfer": method}),))
    server.add_insecure_port(f"127.0.0.1:{args.port}")
    server.start()
    print("ready", flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    done.wait()
    server.stop(None)


if __name__ == "__main__":
    main()
