"""Model specs (path, name@alias, name/3, NAME=SPEC) → resolved packages → warmed-up ONNX Runtime sessions."""

from __future__ import annotations

import importlib
import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from roost.errors import RoostError
from roost.serve.batcher import Batcher
from roost.serve.matrixgraph import ColumnFeed
from roost.serve.signature import Package, read_package

log = logging.getLogger(__name__)

_NAME = re.compile(r"^[A-Za-z0-9][\w.\-]*$")
_VERSIONED = re.compile(r"^[A-Za-z0-9][\w.\-]*/\d+$")
# a request that finds its model's batcher idle runs on the event loop's thread (no queue, no thread hand-off)
# when the model's runs average at most this long; slower models always go through the batcher, so a long run
# never holds the event loop and concurrent requests still merge into batches. 0 turns inline runs off.
INLINE_MAX_S = float(os.environ.get("ROOST_SERVE_INLINE_MAX_MS", "1.0")) / 1000.0
# a model whose runs average at most this long runs inline even when other requests could be merged with it: the
# batcher's hand-off (a future, a queue put, a thread wake-up and a loop wake-up, ~10-20 µs) costs more than the
# run it would share (the benchmark's 30-input logreg: ~5 µs a 1-row run). 0 keeps the batcher for them.
INLINE_ALWAYS_S = float(os.environ.get("ROOST_SERVE_INLINE_ALWAYS_MS", "0.05")) / 1000.0
# serve a column model's [N, k] matrix serving graph (roost.serve.matrixgraph); 0 keeps the package's graph
MATRIX_GRAPH = os.environ.get("ROOST_SERVE_MATRIX_GRAPH", "1") != "0"
CHECK_ROWS = (1, 3, 64)  # random batches both graphs must answer with the same bits before the new one serves
TIME_FIRST, TIME_EVERY = 16, 8  # run() times its first runs, then one in TIME_EVERY (LoadedModel.run_s)


@dataclass(frozen=True)
class ModelSpec:
    """What the user asked to serve: the served name and where its package comes from."""

    name: str
    source: str
    kind: str  # "path" | "alias" | "version" | "latest"

    @property
    def watches_alias(self) -> bool:
        """Whether the served version follows a registry alias (polled)."""
        return self.kind == "alias"


def parse_spec(spec: str) -> ModelSpec:
    """Parse a MODEL argument: `name@alias`, `name/3`, a package path, or `NAME=any of those`."""
    served: str | None = None
    if "=" in spec and _NAME.match(spec.split("=", 1)[0]):
        served, spec = spec.split("=", 1)
    if "@" in spec and not Path(spec).exists():
        name = spec.split("@", 1)[0]
        kind = "alias"
    elif _VERSIONED.match(spec) and not Path(spec).exists():
        name = spec.rsplit("/", 1)[0]
        kind = "version"
    elif Path(spec).expanduser().exists() or "/" in spec or spec.startswith("."):
        p = Path(spec).expanduser().resolve()
        name = p.name if p.name != "model" else (p.parent.name or "model")
        kind = "path"
    else:
        name, kind = spec, "latest"
    name = served or name
    if not _NAME.match(name):
        raise RoostError(f"cannot serve a model named {name!r}", hint="rename it with NAME=SPEC, e.g. churn=./model")
    return ModelSpec(name=name, source=spec, kind=kind)


@dataclass
class Resolved:
    """A spec resolved to one concrete package on disk."""

    spec: ModelSpec
    version: str
    package: Package


def resolve(spec: ModelSpec, previous: Resolved | None = None) -> Resolved:
    """Find the package a spec points at now (registry lookup for names); reads signature and metadata."""
    if spec.kind == "path":
        pkg = read_package(spec.source)
        version = "1"
        if previous is not None:
            old = int(previous.version) if previous.version.isdigit() else 1
            version = previous.version if previous.package.fingerprint == pkg.fingerprint else str(old + 1)
        return Resolved(spec, version, pkg)
    try:
        from roost.registry.api import resolve_model
    except ModuleNotFoundError as exc:  # pragma: no cover - registry always ships with roost
        raise RoostError(f"cannot resolve {spec.source!r}: the model registry is unavailable ({exc})") from None
    mv = resolve_model(spec.source)
    if mv.local_path is None:
        raise RoostError(f"{spec.source!r} resolved to version {mv.version} but it has no local package")
    return Resolved(spec, str(mv.version), read_package(mv.local_path))


def current_version(spec: ModelSpec) -> str | None:
    """The registry version an alias points at now (None for non-registry specs)."""
    if spec.kind not in ("alias", "latest"):
        return None
    from roost.registry.api import resolve_model

    return str(resolve_model(spec.source).version)


def _dummy(pkg: Package, rows: int) -> dict[str, np.ndarray]:
    """Warm-up inputs: zeros / empty strings of the signature shapes."""
    out: dict[str, np.ndarray] = {}
    for s in pkg.inputs:
        shape = (rows, *[d if d > 0 else 1 for d in s.shape[1:]])
        if s.dtype == "string":
            arr = np.empty(shape, dtype=object)
            arr.fill("")
            out[s.name] = arr
        else:
            out[s.name] = np.zeros(shape, dtype=s.np_dtype)
    return out


class LoadedModel:
    """One model version in memory: an ONNX Runtime session behind its own batcher thread."""

    def __init__(
        self,
        resolved: Resolved,
        threads: int = 1,
        max_batch: int = 64,
        on_batch: Callable[[str, int, int], None] | None = None,
    ) -> None:
        import onnxruntime as ort

        self.name = resolved.spec.name
        self.version = resolved.version
        self.resolved = resolved
        self.package = resolved.package
        so = ort.SessionOptions()
        so.intra_op_num_threads = self._threads = max(1, threads)
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.log_severity_level = 3
        # onnxruntime logs every failed run to stderr itself (one ERROR line per run, more when a merged batch is
        # retried request by request); the error reaches the caller as an exception (a 400, a shadow's counted
        # failure), so runs log nothing. terminate=True on these options cancels a run between two nodes (cancel())
        self._run_options = ort.RunOptions()
        self._run_options.log_severity_level = 4
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(str(self.package.onnx_path), so, providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
            raise RoostError(f"onnxruntime cannot load {self.package.onnx_path}: {exc}") from None
        self._check_graph()
        self.output_names = [o.name for o in self.package.outputs if o.name not in self.package.derived]
        self.run_s = 0.0  # moving average of run() seconds; decides whether lone requests run inline
        self._runs = 0
        self._recent: list[float] = []  # the last three timed runs (seconds): their median feeds run_s
        self._classes = np.asarray(
            self.package.classes if self.package.classes else [],
            dtype=object if any(isinstance(c, str) for c in self.package.classes or []) else None,
        )
        # the matrix serving graph's input, its columns in order, and their positions in the signature (None: same)
        self._feed: str | None = None
        self._order: list[str] = []
        self._perm: np.ndarray | None = None
        if MATRIX_GRAPH and self.package.float_columns is not None:
            self._use_matrix_graph(so)
        cb = (lambda rows, reqs: on_batch(self.name, rows, reqs)) if on_batch else None
        self.batcher = Batcher(self.run, max_rows=max_batch, name=self.name, on_batch=cb)

    def _check_graph(self) -> None:
        """Refuse a package whose signature.json disagrees with the ONNX graph's inputs/outputs."""
        graph_in = {i.name for i in self.session.get_inputs()}
        graph_out = {o.name for o in self.session.get_outputs()}
        sig_in = {s.name for s in self.package.inputs}
        missing = sorted(graph_in - sig_in) + sorted(
            s.name for s in self.package.outputs if s.name not in graph_out and s.name not in self.package.derived
        )
        extra = sorted(sig_in - graph_in)
        if missing or extra:
            raise RoostError(
                f"{self.package.path}: signature.json and model.onnx disagree "
                f"(not in signature: {missing}, not in graph: {extra})",
                hint="re-export the package so both come from the same model",
            )

    def _use_matrix_graph(self, so: Any) -> None:
        """Serve the package's graph with one [N, k] input instead of k columns when matrixgraph can rewrite it and
        the rewritten graph answers random batches with exactly the same bits; else keep the package's graph."""
        import onnxruntime as ort

        from roost.serve.matrixgraph import matrix_graph, may_match

        cols = self.package.float_columns
        assert cols is not None
        if not may_match(self.session, cols, self.package.onnx_path):  # (no onnx import for a graph that cannot)
            return
        try:
            import onnx
        except ImportError:  # (a serving image without the onnx package: the package's graph serves)
            log.info("model %s: the onnx package is not installed; serving the package's graph as it is", self.name)
            return
        try:
            built = matrix_graph(onnx.load(str(self.package.onnx_path)), list(cols))
            if built is None:
                return
            graph, feed, order = built
            session = ort.InferenceSession(graph.SerializeToString(), so, providers=["CPUExecutionProvider"])
            rng = np.random.default_rng(0)
            for n in CHECK_ROWS:
                X = (rng.standard_normal((n, len(order))) * rng.choice([1e-3, 1.0, 1e3], len(order))).astype(np.float32)
                want = self.session.run(
                    self.output_names, {c: np.ascontiguousarray(X[:, j]) for j, c in enumerate(order)}
                )
                got = session.run(self.output_names, {feed: X})
                if not all(_same(a, b) for a, b in zip(want, got)):
                    log.warning(
                        "model %s: the matrix serving graph answers differently; serving the package's", self.name
                    )
                    return
        except Exception as exc:  # noqa: BLE001 - an optimisation only: the package's own graph still serves
            log.warning("model %s: no matrix serving graph (%s); serving the package's graph", self.name, exc)
            return
        self.session, self._feed, self._order = session, feed, order
        perm = [cols[c] for c in order]
        self._perm = None if perm == list(range(len(perm))) else np.asarray(perm)
        log.debug("model %s: serving a one-matrix graph (input %s)", self.name, feed)

    def feeds_matrix(self, order: object) -> bool:
        """Whether run() feeds a ColumnFeed decoded in `order` (Package.float_columns) to the matrix serving graph
        as it is, reading its matrix and nothing else (so ColumnFeed.bare will do)."""
        return self._feed is not None and order is self.package.float_columns

    def _matrix(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        """The [N, k] float32 feed of the matrix serving graph: the V2 decoder's matrix (ColumnFeed), or the
        columns stacked (merged batches, the general decoder, gRPC)."""
        if type(inputs) is ColumnFeed:
            cols = self.package.float_columns
            if inputs.order is cols or (cols is not None and list(inputs.order) == list(cols)):
                m = inputs.matrix if self._perm is None else inputs.matrix[self._perm]
                return np.ascontiguousarray(m.T)
        return np.stack([inputs[c] for c in self._order], axis=1)

    @property
    def inline_ok(self) -> bool:
        """Whether a lone request may run on the event loop's thread: the model's runs are short (INLINE_MAX_S)."""
        return self.run_s < INLINE_MAX_S

    @property
    def cheap(self) -> bool:
        """Whether any request runs on the event loop's thread, alone or not: the model's runs cost less than the
        batcher's hand-off (INLINE_ALWAYS_S)."""
        return self.run_s < INLINE_ALWAYS_S

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the graph on full input arrays (from the batcher thread, or inline for a lone request)."""
        # CPU time: a run preempted on a busy machine does not count as a slow model. Reading it costs ~1 µs a call
        # (a system call): every run is timed at first, then one in TIME_EVERY
        self._runs = runs = self._runs + 1
        t0 = time.thread_time() if runs <= TIME_FIRST or runs % TIME_EVERY == 0 else -1.0
        sess = self.session
        # InferenceSession.run re-checks the feed's names against the graph (a quadratic scan: bench/RESULTS.md)
        # before it calls the compiled session; serving checked them already (codec.check_inputs)
        native = getattr(sess, "_sess", None)
        opts = self._run_options
        if self._feed is not None:
            inputs = {self._feed: self._matrix(inputs)}
        raw = (
            native.run(self.output_names, inputs, opts)
            if native is not None
            else sess.run(self.output_names, inputs)  # (a test double of the session)
        )
        outs = dict(zip(self.output_names, raw))
        if t0 >= 0.0:
            # the moving average takes the median of the last three timed runs: one run stretched by something else
            # (a GC pass, interrupt work charged to this thread on a loaded machine) does not make a ~5 µs model look
            # dear (then every request pays the batcher's hand-off), two in a row do
            recent = self._recent
            recent.append((time.thread_time() - t0) * self._threads)
            if len(recent) > 3:
                del recent[0]
            self.run_s += (sorted(recent)[len(recent) // 2] - self.run_s) * 0.1
        if self.package.derived:
            outs["label"] = self._labels(outs)
        return outs

    def _labels(self, outs: dict[str, np.ndarray]) -> np.ndarray:
        """Class labels from the probabilities: P(positive) ≥ 0.5 for binary, argmax for multiclass."""
        if "probability" in outs:
            idx = (np.asarray(outs["probability"]).reshape(-1) >= 0.5).astype(np.int64)
        else:
            idx = np.asarray(outs["probabilities"]).argmax(axis=1)
        return self._classes[idx]

    def warm_up(self, max_batch: int = 64) -> None:
        """Run dummy batches so the first real request does not pay for lazy initialisation."""
        for rows in sorted({1, max(1, min(max_batch, 64))}):
            self.run(_dummy(self.package, rows))
        # those first runs paid for lazy initialisation: the estimate starts from three warmed 1-row runs, fed as
        # the V2 decoder feeds them (its one matrix, where the matrix graph serves: ~5 µs vs ~25 from 30 columns)
        cols = self.package.float_columns
        one: dict[str, np.ndarray] = _dummy(self.package, 1)
        if self._feed is not None and cols is not None:
            one = ColumnFeed(cols, np.zeros((len(cols), 1), dtype=np.float32))
        for _ in range(3):
            self.run(one)
        self.run_s = sorted(self._recent)[len(self._recent) // 2]

    def describe(self) -> dict[str, Any]:
        """Name, version, source (a package folder by its name only) and fingerprint of this loaded model."""
        spec = self.resolved.spec
        return {
            "name": self.name,
            "version": self.version,
            "source": Path(spec.source).name if spec.kind == "path" else spec.source,
            "fingerprint": self.package.fingerprint,
        }

    def close(self) -> None:
        """Stop the batcher after its queued requests ran."""
        self.batcher.close()

    def cancel(self) -> None:
        """Stop the batcher and make the run in progress, and any later one, fail at its next node (shutdown)."""
        self._run_options.terminate = True
        self.batcher.close()


def preload() -> None:
    """Import what loading a model imports once (the onnx package, for matrix serving graphs; numpy.random for their
    check; yaml, for the package's signature), so that a caller measuring a load's memory (roost.serve.lazy) does not
    charge the first model with it (~11 MB; numpy.random and yaml alone ~4.5 MB, over a small --max-memory: the
    first model a worker loaded was evicted at once)."""
    importlib.import_module("numpy.random")
    importlib.import_module("yaml")
    if MATRIX_GRAPH:
        try:
            importlib.import_module("onnx")
        except ImportError:
            pass


def _same(a: Any, b: Any) -> bool:
    """Whether two output arrays hold the same values bit for bit (NaN where NaN)."""
    x, y = np.asarray(a), np.asarray(b)
    if x.dtype != y.dtype or x.shape != y.shape:
        return False
    if x.dtype.kind in "fc":
        return x.tobytes() == y.tobytes()
    return bool(np.array_equal(x, y))


def load(
    resolved: Resolved, threads: int = 1, max_batch: int = 64, on_batch: Callable[[str, int, int], None] | None = None
) -> LoadedModel:
    """Create the session, check it against the signature and warm it up."""
    model = LoadedModel(resolved, threads=threads, max_batch=max_batch, on_batch=on_batch)
    try:
        model.warm_up(max_batch)
    except Exception as exc:  # noqa: BLE001 - a model may reject all-zero rows and still serve real ones
        log.warning("model %s version %s fails on a zero warm-up batch: %s", model.name, model.version, exc)
    return model
