"""The V2 hot path (#18 item 5): lone requests run inline, all-FP32 column requests decode in one numpy call, and
both answer exactly what the general path (batcher thread, per-column checks) answers."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import onnxruntime as ort
import orjson
import pytest
from servekit import InProcess, v2_body

from roost.serve import loader
from roost.serve.codec import HTTPError
from roost.serve.protocols import v2
from roost.serve.worker import create_app


class _Recorder:
    """Wraps an ONNX session: records the thread of every run (no `_sess`, so the public run() is called)."""

    def __init__(self, real: ort.InferenceSession) -> None:
        self.real = real
        self.threads: list[int] = []

    def run(self, names, feeds):
        self.threads.append(threading.get_ident())
        return self.real.run(names, feeds)


def _reference(pkg, cols: list[str], X: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(str(pkg / "model.onnx"), providers=["CPUExecutionProvider"])
    return sess.run(["probability"], {c: X[:, j].astype(np.float32) for j, c in enumerate(cols)})[0]


def test_lone_requests_run_inline_slow_models_and_busy_batchers_use_the_batcher(pkgs, bc_data):
    X, _, cols = bc_data
    want = _reference(pkgs["bc"], cols, X[:64])
    app = create_app([str(pkgs["bc"])])
    model = app.repo.get("bc")
    rec = model.session = _Recorder(model.session)
    batcher_thread = model.batcher._thread.ident
    ip = InProcess(app)
    try:

        def infer(i: int) -> float:
            status, _, out = ip.request("POST", "/v2/models/bc/infer", orjson.dumps(v2_body(cols, X[i : i + 1])))
            assert status == 200, out
            return float(orjson.loads(out)["outputs"][0]["data"][0])

        got = [infer(i) for i in range(20)]
        np.testing.assert_allclose(got, want[:20], rtol=1e-5, atol=1e-6)
        assert rec.threads == [threading.get_ident()] * 20  # no queue, no hand-off to the batcher thread
        # a model whose runs take long never holds the event loop: it goes through its batcher thread
        model.run_s = 10 * loader.INLINE_MAX_S
        got = [infer(i) for i in range(20, 25)]
        np.testing.assert_allclose(got, want[20:25], rtol=1e-5, atol=1e-6)
        assert rec.threads[20:] == [batcher_thread] * 5
        # other open connections (or gRPC calls) could send a request meanwhile: keep the batcher, so they merge
        # (for a model whose runs cost more than the hand-off: see the cheap-model test below)
        model.run_s = loader.INLINE_MAX_S / 2
        app.open_connections = lambda: 3
        np.testing.assert_allclose([infer(i) for i in range(25, 28)], want[25:28], rtol=1e-5, atol=1e-6)
        assert rec.threads[25:] == [batcher_thread] * 3
        app.open_connections = lambda: 1
        app.grpc_calls = 1
        infer(28)
        assert rec.threads[28:] == [batcher_thread]
        app.grpc_calls = 0
        infer(29)
        assert rec.threads[29:] == [threading.get_ident()]  # one connection, no gRPC call: alone again
        # a busy batcher (a request queued or running) takes the lone request too, so it can merge
        gate = threading.Event()
        real_run = rec.run

        def held(names, feeds):
            gate.wait(60)
            return real_run(names, feeds)

        rec.run = held  # type: ignore[method-assign]

        async def busy() -> list[float]:
            first = model.batcher.submit({c: X[:1, j].copy() for j, c in enumerate(cols)}, 1)
            calls = [
                app.predict(model, {c: X[i : i + 1, j].copy() for j, c in enumerate(cols)}, "v2") for i in range(30, 34)
            ]
            tasks = [asyncio.ensure_future(c) for c in calls]
            await asyncio.sleep(0.05)
            gate.set()
            await first
            return [float(o["probability"][0]) for o in await asyncio.gather(*tasks)]

        got = ip.loop.run_until_complete(busy())
        np.testing.assert_allclose(got, want[30:34], rtol=1e-5, atol=1e-6)
        assert set(rec.threads[30:]) == {batcher_thread}
    finally:
        ip.close()


def _inputs(cols: list[str], X: np.ndarray) -> list[dict]:
    return v2_body(cols, X)["inputs"]


def test_fast_decoder_equals_numpy_and_refuses_what_it_does_not_cover(pkgs, bc_data):
    X, _, cols = bc_data
    app = create_app([str(pkgs["bc"])])
    model = app.repo.get("bc")
    ip = InProcess(app)
    try:
        rng = np.random.default_rng(0)
        for n in (1, 3, 64):
            rows = X[rng.integers(0, len(X), n)]
            inputs = _inputs(cols, rows)
            inputs[2]["data"] = [int(v) for v in inputs[2]["data"]]  # integers in a float column are numbers too
            got = v2.fast_inputs(model, inputs)
            assert got is not None and got[1] == n
            for j, c in enumerate(cols):
                ref = np.asarray(inputs[j]["data"], dtype=np.float64).astype(np.float32)
                assert got[0][c].dtype == np.float32 and got[0][c].shape == (n,)
                np.testing.assert_array_equal(got[0][c], ref)
            body = orjson.dumps({"inputs": inputs})
            req, arrays, checked_rows = v2.decode(model, body, None)
            assert checked_rows == n and list(arrays) == cols

        def variant(change) -> list[dict]:
            inputs = _inputs(cols, X[:2])
            change(inputs)
            return inputs

        refused = {
            "missing input": variant(lambda i: i.pop()),
            "duplicate input": variant(lambda i: i.__setitem__(-1, dict(i[0]))),
            "null value": variant(lambda i: i[0]["data"].__setitem__(0, None)),
            "string value": variant(lambda i: i[0]["data"].__setitem__(0, "1.5")),
            "other row count": variant(lambda i: i[1].update(shape=[1], data=[1.0])),
            "extra key": variant(lambda i: i[0].update(parameters={})),
            "FP64": variant(lambda i: i[0].update(datatype="FP64")),
            "beyond float32": variant(lambda i: i[0]["data"].__setitem__(0, 1e39)),
            "2-D shape": variant(lambda i: i[0].update(shape=[2, 1], data=[[1.0], [2.0]])),
            "booleans": variant(lambda i: i[0].update(data=[True, False])),
        }
        for why, inputs in refused.items():
            assert v2.fast_inputs(model, inputs) is None, why
            try:
                _, arrays, checked_rows = v2.decode(model, orjson.dumps({"inputs": inputs}), None)
            except HTTPError as exc:  # the general decoder explains it, as before
                assert exc.status == 400, why
            else:
                assert checked_rows is None, why  # decoded by the general path: predict() checks the set
    finally:
        ip.close()


@pytest.mark.parametrize("rows", [1, 64])
def test_http_answers_equal_onnxruntime_on_both_paths(pkgs, bc_data, rows):
    """The same rows through the fast decoder and (one key more) through the general one give equal answers."""
    X, _, cols = bc_data
    want = _reference(pkgs["bc"], cols, X[:rows])
    ip = InProcess(create_app([str(pkgs["bc"])]))
    try:
        fast = v2_body(cols, X[:rows])
        slow = v2_body(cols, X[:rows])
        slow["inputs"][0]["parameters"] = {}
        for body in (fast, slow):
            status, _, out = ip.request("POST", "/v2/models/bc/infer", orjson.dumps(body))
            assert status == 200, out
            np.testing.assert_allclose(orjson.loads(out)["outputs"][0]["data"], want, rtol=1e-5, atol=1e-6)
    finally:
        ip.close()


def test_grpc_fast_raw_decoder_equals_numpy_and_refuses_what_it_does_not_cover(pkgs, bc_data):
    from roost.serve.grpc import fast, service
    from roost.serve.grpc.proto import message

    X, _, cols = bc_data
    app = create_app([str(pkgs["bc"])])
    model = app.repo.get("bc")
    ip = InProcess(app)

    def request(rows: np.ndarray):
        req = message("ModelInferRequest")(model_name="bc")
        for j, c in enumerate(cols):
            req.inputs.add(name=c, datatype="FP32", shape=[len(rows)])
            req.raw_input_contents.append(np.ascontiguousarray(rows[:, j], "<f4").tobytes())
        return req

    try:
        for n in (1, 64):
            got = fast.fast_raw_inputs(model, request(X[:n]))
            assert got is not None and got[1] == n
            general = service.decode_request(model, request(X[:n]))
            for j, c in enumerate(cols):
                np.testing.assert_array_equal(got[0][c], X[:n, j].astype(np.float32))
                np.testing.assert_array_equal(got[0][c], general[c])

        def variant(change):
            req = request(X[:2])
            change(req)
            return req

        inf = np.array([np.inf, 1.0], "<f4").tobytes()
        refused = {
            "contents too": variant(lambda r: r.inputs[0].contents.fp32_contents.extend([1.0, 2.0])),
            "missing input": variant(lambda r: (r.inputs.pop(), r.raw_input_contents.pop())),
            "FP64": variant(lambda r: setattr(r.inputs[0], "datatype", "FP64")),
            "other row count": variant(lambda r: r.inputs[1].shape.__setitem__(0, 1)),
            "short buffer": variant(lambda r: r.raw_input_contents.__setitem__(0, b"\0" * 4)),
            "infinity": variant(lambda r: r.raw_input_contents.__setitem__(0, inf)),
            "duplicate": variant(lambda r: setattr(r.inputs[1], "name", cols[0])),
        }
        for why, req in refused.items():
            assert fast.fast_raw_inputs(model, req) is None, why
            with pytest.raises(HTTPError) as err:  # the general decoder explains it, as before
                arrays = service.decode_request(model, req)
                from roost.serve.codec import check_inputs

                check_inputs(arrays, model.package)
            assert err.value.status == 400, why
    finally:
        ip.close()


def test_a_request_that_fills_a_batch_runs_inline_even_among_others(pkgs, bc_data):
    """Nothing can merge with a request of max_batch rows: it skips the queue and the thread hand-off, even with
    other connections open; a smaller one still goes through the batcher so concurrent requests merge."""
    X, _, cols = bc_data
    app = create_app([str(pkgs["bc"])])
    model = app.repo.get("bc")
    rec = model.session = _Recorder(model.session)
    batcher_thread = model.batcher._thread.ident
    full = model.batcher.max_rows
    want = _reference(pkgs["bc"], cols, X[:full]).reshape(-1)
    model.run_s = loader.INLINE_MAX_S / 2  # not a cheap model (those run inline anyway: next test)
    ip = InProcess(app)
    app.open_connections = lambda: 5
    try:
        for n, thread in ((full, threading.get_ident()), (full - 1, batcher_thread)):
            status, _, out = ip.request("POST", "/v2/models/bc/infer", orjson.dumps(v2_body(cols, X[:n])))
            assert status == 200, out
            got = np.asarray(orjson.loads(out)["outputs"][0]["data"]).reshape(-1)
            np.testing.assert_allclose(got, want[:n], rtol=1e-5, atol=1e-6)
            assert rec.threads[-1] == thread, n
        model.batcher.close()  # replaced by a hot swap: a full request is refused like any other (503, retry)
        status, _, out = ip.request("POST", "/v2/models/bc/infer", orjson.dumps(v2_body(cols, X[:full])))
        assert status == 503, out
    finally:
        ip.close()


def test_a_model_cheaper_than_the_hand_off_runs_inline_beside_other_connections(pkgs, bc_data):
    """A model whose runs average under INLINE_ALWAYS_S (the benchmark's logreg through its matrix graph: ~5 µs)
    runs every request on the event loop: the batcher's queue and two wake-ups cost more than the run it would
    share. A dearer model still goes through the batcher when other connections are open."""
    X, _, cols = bc_data
    app = create_app([str(pkgs["bc"])])
    model = app.repo.get("bc")
    assert model.cheap  # as measured at load (warm-up and first runs are timed)
    rec = model.session = _Recorder(model.session)
    batcher_thread = model.batcher._thread.ident
    want = _reference(pkgs["bc"], cols, X[:8]).reshape(-1)
    ip = InProcess(app)
    app.open_connections = lambda: 5
    try:
        for i in range(8):
            if i == 4:
                model.run_s = 2 * loader.INLINE_ALWAYS_S
            status, _, out = ip.request("POST", "/v2/models/bc/infer", orjson.dumps(v2_body(cols, X[i : i + 1])))
            assert status == 200, out
            np.testing.assert_allclose(orjson.loads(out)["outputs"][0]["data"], want[i : i + 1], rtol=1e-5, atol=1e-6)
        assert rec.threads == [threading.get_ident()] * 4 + [batcher_thread] * 4
    finally:
        ip.close()


class _Clock:
    """A fake time.thread_time for LoadedModel.run: each timed run lasts the next of `durations` seconds."""

    def __init__(self, durations: list[float]) -> None:
        self.durations, self.now, self.started = list(durations), 0.0, False

    def thread_time(self) -> float:
        if self.started:  # the end of a run
            self.now += self.durations.pop(0)
        self.started = not self.started
        return self.now


def test_one_stretched_run_does_not_send_a_cheap_model_to_the_batcher(pkgs, bc_data, monkeypatch):
    """The inline decision reads the model's run time from timed runs; one run stretched by something else (a GC
    pass, interrupt work charged to the thread on a loaded machine) must not make a ~5 µs model look dear (every
    request at c=16 would then pay the batcher's hand-off: measured 33-46 µs of CPU more per request under load),
    while a model that really became slower is seen within a few runs."""
    X, _, cols = bc_data
    model = create_app([str(pkgs["bc"])]).repo.get("bc")
    assert model.cheap and model.run_s < loader.INLINE_ALWAYS_S / 2  # measured at load on warmed runs
    feed = {c: X[:1, j].copy() for j, c in enumerate(cols)}
    fast, stretched = 5e-6, 2e-3
    clock = _Clock([fast] * 20 + [stretched] + [fast] * 20 + [stretched] * 3)
    monkeypatch.setattr(loader.time, "thread_time", clock.thread_time)
    monkeypatch.setattr(loader, "TIME_FIRST", 10**9)  # every run timed
    model.run_s = fast
    for _ in range(41):
        model.run(feed)
        assert model.cheap, model.run_s  # the stretched run (the 21st) did not count
    for _ in range(3):
        model.run(feed)
    assert not model.cheap  # two stretched runs in a row: the model is slower now
