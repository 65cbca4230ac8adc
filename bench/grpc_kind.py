"""Server CPU per ModelInfer call of gRPC server kinds on the same handler work (#35 item 2): grpc.aio against a
synchronous grpc.server(ThreadPoolExecutor), and roost's server before/after a change. Loopback only, bounded.

    python bench/grpc_kind.py [--calls 2000] [--rounds 3] [--conc 1 16] [--rows 1 64] [--kinds roost sync aiolean]
                              [--old OLD_SRC --kinds roost-old roost] [--h2load SECONDS] [--threads 16] [--pin 1]

A server child per (kind, round) serves bench/serving.py's 30-input package. `roost`: roost's own gRPC server
(roost.serve.grpc.start_server, metrics on); `roost-old`: the same from the source tree given as --old. `sync`:
the same steps as roost's ModelInfer (model lookup, the layout decoder, the model run inline, the raw response
encoder, the same metrics) as a grpc.server thread-pool handler; `aiolean`: sync's handler as an `async def` on
grpc.aio (the framework's cost apart from roost's handler). `echo`: grpcio's floor — the same server kind answering
a fixed response of roost's size, no parse, no model; `ort`: echo plus the model's ONNX Runtime run on a fixed
feed (what a GIL-releasing model call costs inside a pool thread). `--threads`: pool threads of sync/echo/ort;
`--pin LIST`: the servers run on those CPUs only (the client does not): are the GIL hand-offs dearer across cores?
The client (this process, a sync channel, `c` threads: one connection) sends the same serialized ModelInferRequest;
with `--h2load S`, h2load (c connections, one stream each: bench/serving.py's command) for S seconds instead. The
server's CPU and voluntary context switches come from /proc before and after the timed calls. Kinds alternate so
all see the same load.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
CLK = os.sysconf("SC_CLK_TCK")


def serve(kind: str, pkg: str, port: int, threads: int = 16) -> None:
    """(server child) Serve pkg as `bc` over gRPC of `kind` until killed."""
    import asyncio

    import grpc

    if kind in ("echo", "ort"):
        _serve_floor(kind, pkg, port, threads)
        return

    from roost.serve.config import ServeConfig
    from roost.serve.grpc import service
    from roost.serve.grpc.fast import Layouts, encode_response
    from roost.serve.grpc.proto import PACKAGE, SERVICE
    from roost.serve.metrics import Metrics
    from roost.serve.worker import build_app

    app = build_app(ServeConfig(models=[pkg]), Metrics())
    opts = [("grpc.so_reuseport", 0)]
    if kind.startswith("roost"):  # roost's own gRPC server, of the tree on PYTHONPATH

        async def main() -> None:
            from roost.serve.grpc import start_server

            server = await start_server(app, "127.0.0.1", port, 64 << 20)
            print("ready", flush=True)
            await asyncio.Event().wait()
            await server.stop(None)  # (never reached: killed; the reference keeps the server alive)

        asyncio.run(main())
        return
    layouts = Layouts()
    metrics = app.metrics
    assert metrics is not None

    def infer(req: object, context: grpc.ServicerContext) -> bytes:
        t0 = time.perf_counter()
        metrics.inflight.inc()
        try:
            model = app.lookup(req.model_name, None)  # type: ignore[attr-defined]
            arrays, rows = layouts.decode(model, req)  # type: ignore[misc]
            outputs = model.batcher.run_now(arrays, rows)
            metrics.answered(model.name, model.version)
            rid = "r"
            context.set_trailing_metadata((("x-request-id", rid),))
            return encode_response(model, outputs, [s.name for s in model.package.outputs], rid)
        finally:
            metrics.inflight.dec()
            metrics.observe("bc", "grpc", 200, time.perf_counter() - t0)

    async def ainfer(req: object, context: grpc.aio.ServicerContext) -> bytes:
        return infer(req, context)  # type: ignore[arg-type]

    handler = grpc.method_handlers_generic_handler(
        f"{PACKAGE}.{SERVICE}",
        {
            "ModelInfer": grpc.unary_unary_rpc_method_handler(
                ainfer if kind == "aiolean" else infer,
                request_deserializer=service.request_parser("ModelInferRequest"),
                response_serializer=None,
            )
        },
    )
    if kind == "aiolean":  # the sync kind's handler work, on grpc.aio

        async def lean() -> None:
            server = grpc.aio.server(options=opts)
            server.add_generic_rpc_handlers((handler,))
            server.add_insecure_port(f"127.0.0.1:{port}")
            await server.start()
            print("ready", flush=True)
            await server.wait_for_termination()

        asyncio.run(lean())
        return
    server = grpc.server(ThreadPoolExecutor(threads), options=opts)
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    print("ready", flush=True)
    server.wait_for_termination()


def _serve_floor(kind: str, pkg: str, port: int, threads: int) -> None:
    """(server child) `echo`: a fixed 1-row-sized answer, bytes in and out; `ort`: the same after one ONNX Runtime
    run of the package's model (intra-op threads 1, no spinning, as roost loads small models)."""
    import grpc
    import numpy as np
    import onnxruntime as ort

    from roost.serve.grpc.proto import PACKAGE, SERVICE, message

    resp = message("ModelInferResponse")(model_name="bc", model_version="1", id="0" * 32)
    resp.outputs.add(name="probability", datatype="FP32", shape=[1])
    resp.outputs.add(name="label", datatype="INT64", shape=[1])
    resp.raw_output_contents.extend([bytes(4), bytes(8)])
    reply = resp.SerializeToString()
    trailer = (("x-request-id", "0" * 32),)
    so = ort.SessionOptions()
    so.intra_op_num_threads = so.inter_op_num_threads = 1
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    sess = ort.InferenceSession(str(Path(pkg) / "model.onnx"), so, providers=["CPUExecutionProvider"])
    feed = {i.name: np.zeros(1, np.float32) for i in sess.get_inputs()}

    def infer(req: bytes, context: grpc.ServicerContext) -> bytes:
        context.set_trailing_metadata(trailer)
        if kind == "ort":
            sess.run(None, feed)
        return reply

    method = grpc.unary_unary_rpc_method_handler(infer, request_deserializer=None, response_serializer=None)
    server = grpc.server(ThreadPoolExecutor(threads), options=[("grpc.so_reuseport", 0)])
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(f"{PACKAGE}.{SERVICE}", {"ModelInfer": method}),)
    )
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    print("ready", flush=True)
    server.wait_for_termination()


def _cpu(pid: int) -> float:
    """utime + stime of a process, seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


def _switches(pid: int) -> int:
    """Voluntary context switches of a process's live threads (each a thread that slept to wait: a GIL hand-off,
    a condition, a queue, epoll)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            lines = (task / "status").read_text().splitlines()
        except FileNotFoundError:  # the thread ended
            continue
        total += sum(int(ln.split()[1]) for ln in lines if ln.startswith("voluntary_ctxt_switches"))
    return total


def measure_h2load(port: int, pid: int, body: bytes, conc: int, seconds: int) -> tuple[float, float, float]:
    """(server CPU ms per call, voluntary switches per call, calls/s) under h2load: `conc` connections, one stream
    each, the gRPC-framed body replayed for `seconds` (after a 1 s warm-up)."""
    import re

    with tempfile.NamedTemporaryFile(suffix=".grpc") as f:
        f.write(b"\0" + len(body).to_bytes(4, "big") + body)
        f.flush()

        def run(sec: int) -> tuple[int, float]:
            cmd = [
                "h2load",
                "-t1",
                f"-c{conc}",
                "-m1",
                f"-D{sec}",
                "-d",
                f.name,
                "-H",
                "content-type: application/grpc",
            ]
            cmd += ["-H", "te: trailers", f"http://127.0.0.1:{port}/inference.GRPCInferenceService/ModelInfer"]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=sec + 60).stdout
            done = re.search(r"(\d+) succeeded", out)
            rps = re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out)
            assert done and rps, out
            return int(done.group(1)), float(rps.group(1))

        run(1)
        c0, s0 = _cpu(pid), _switches(pid)
        n, rps = run(seconds)
        c1, s1 = _cpu(pid), _switches(pid)
    return (c1 - c0) / max(n, 1) * 1000, (s1 - s0) / max(n, 1), rps


def _request(cols: list[str], rows: int, typed: bool = False) -> bytes:
    """A serialized ModelInferRequest with rows x 30 FP32 inputs, raw (or in typed contents: the general decoder,
    which roost runs on the event loop)."""
    import numpy as np

    from roost.serve.grpc.proto import message

    req = message("ModelInferRequest")(model_name="bc")
    X = np.random.default_rng(0).normal(size=(rows, len(cols))).astype(np.float32)
    for i, c in enumerate(cols):
        inp = req.inputs.add(name=c, datatype="FP32", shape=[rows])
        if typed:
            inp.contents.fp32_contents.extend(X[:, i].tolist())
        else:
            req.raw_input_contents.append(np.ascontiguousarray(X[:, i]).tobytes())
    return bytes(req.SerializeToString())


def measure(port: int, pid: int, body: bytes, conc: int, calls: int) -> float:
    """Server CPU ms per call of `calls` calls over `conc` client threads."""
    import grpc

    with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        call = ch.unary_unary("/inference.GRPCInferenceService/ModelInfer", lambda b: b, lambda b: b)
        for _ in range(50):
            call(body)
        per = calls // conc
        errors: list[BaseException] = []

        def loop() -> None:
            try:
                for _ in range(per):
                    call(body)
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        c0 = _cpu(pid)
        threads = [threading.Thread(target=loop) for _ in range(conc)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        c1 = _cpu(pid)
        if errors:
            raise errors[0]
        return (c1 - c0) / (per * conc) * 1000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--conc", type=int, nargs="+", default=[1, 16])
    ap.add_argument("--rows", type=int, nargs="+", default=[1, 64])
    ap.add_argument("--kinds", nargs="+", default=["roost", "sync", "aiolean"])
    ap.add_argument("--old", default="", help="a source tree for kind roost-old (roost's server before a change)")
    ap.add_argument("--typed", action="store_true", help="inputs in typed contents, not raw_input_contents")
    ap.add_argument("--threads", type=int, default=16, help="pool threads of the sync, echo and ort kinds")
    ap.add_argument("--h2load", type=int, default=0, help="seconds of h2load per point instead of the Python client")
    ap.add_argument("--pin", default="", help="run the server children on these CPUs only (taskset -c LIST)")
    ap.add_argument("--serve", nargs=4)
    a = ap.parse_args()
    if a.serve:
        serve(a.serve[0], a.serve[1], int(a.serve[2]), int(a.serve[3]))
        return
    import json

    sys.path.insert(0, str(HERE))
    from serving import free_port, train

    work = Path(tempfile.mkdtemp(prefix="roost-grpckind-"))
    train(work, [])
    pkg = work / "roost" / "bc"
    cols = [i["name"] for i in json.loads((pkg / "signature.json").read_text())["inputs"]]
    res: dict[tuple[str, int, int], list[tuple[float, float, float]]] = {}
    for _ in range(a.rounds):
        for kind in a.kinds:
            port = free_port()
            tree = a.old if kind == "roost-old" else str(HERE.parent / "src")
            proc = subprocess.Popen(
                (["taskset", "-c", a.pin] if a.pin else [])
                + [sys.executable, __file__, "--serve", kind, str(pkg), str(port), str(a.threads)],
                env={**os.environ, "PYTHONPATH": str(Path(tree).resolve())},
                stdout=subprocess.PIPE,
                text=True,
                start_new_session=True,
            )
            try:
                assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
                for rows in a.rows:
                    body = _request(cols, rows, a.typed)
                    for conc in a.conc:
                        if a.h2load:
                            got = measure_h2load(port, proc.pid, body, conc, a.h2load)
                        else:
                            got = (measure(port, proc.pid, body, conc, a.calls), float("nan"), float("nan"))
                        res.setdefault((kind, rows, conc), []).append(got)
            finally:
                proc.kill()
                proc.wait()
    load = os.getloadavg()[0]
    for (kind, rows, conc), v in sorted(res.items(), key=lambda kv: (kv[0][1], kv[0][2], kv[0][0])):
        cpu = [x[0] for x in v]
        print(
            f"{kind:4s} rows={rows:2d} c={conc:2d}: server CPU {statistics.median(cpu):.3f} ms/call "
            f"(median of {len(v)}, min {min(cpu):.3f}; load {load:.1f})"
            + (
                f", {statistics.median(x[1] for x in v):.2f} switches/call, {statistics.median(x[2] for x in v):.0f}"
                " calls/s"
                if a.h2load
                else ""
            )
        )


if __name__ == "__main__":
    main()
