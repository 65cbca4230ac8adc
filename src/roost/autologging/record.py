"""What the flavors record the same way: param values, the data fingerprint, the model package, feature importance."""

from __future__ import annotations

import hashlib
import inspect
import json
import math
import tempfile
import time
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from roost.autologging.core import Settings, during_fit

if TYPE_CHECKING:
    from roost.registry.run import Run

PARAM_TEXT_MAX = 500  # longer param values (a repr of a nested estimator, a grid) are cut to this many characters
SAMPLE_ROWS = 100  # rows of the fit data kept to check the ONNX package against the native model
TOP_IMPORTANCE = 10  # feature importance: the top features by gain also become metrics
SNAPSHOT_MAX_BYTES = 256 * 2**20  # larger fit data is fingerprinted before `fit` returns instead of copied for later
LIVE_EVERY_S = 1.0  # a long fit's eval points reach the run this often (by the background worker)


def param_value(v: Any) -> Any:
    """A value roost stores as a typed param: numbers, bools, None and short text as they are; the rest as text."""
    if type(v).__module__ == "numpy" and getattr(v, "shape", None) == () and hasattr(v, "item"):
        v = v.item()
    if v is None or isinstance(v, bool | int):
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else str(v)
    text = v if isinstance(v, str) else repr(v)
    text = text.replace("\x00", "")
    return text if len(text) <= PARAM_TEXT_MAX else text[: PARAM_TEXT_MAX - 1] + "…"


def params_of(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Params from a mapping, values made storable (`prefix` before each key)."""
    return {f"{prefix}{k}": param_value(v) for k, v in values.items()}


def train_params(call: inspect.BoundArguments, skip: Collection[str]) -> dict[str, Any]:
    """The params of a boosting library's train() call, as MLflow's autolog logs them: its `params` dict, then its
    other arguments of plain value (None, bool, number, text), given or by default, except `skip` (data, callbacks,
    functions): num_boost_round, early_stopping_rounds…"""
    params = params_of(dict(call.arguments.get("params") or {}))
    for name, p in call.signature.parameters.items():
        if name == "params" or name in skip or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        value = call.arguments.get(name, p.default)
        if value is None or isinstance(value, bool | int | float | str):
            params.setdefault(name, param_value(value))
    return params


def booster_params_later(run: Run, logged: Mapping[str, Any], notes: Mapping[str, Any] | None) -> list[tuple[str, Any]]:
    """The booster params a LightGBM/XGBoost scikit-learn fit trained with (left in its `notes` by the train()
    wrapper: num_boost_round, the resolved objective…), as MLflow logs them, beside the estimator's own params
    (`logged`, which keep their values where both have a name) — a background step, or none."""
    inner = (notes or {}).get("train params") or {}
    added = {k: v for k, v in inner.items() if k not in logged}
    return [("the booster params", lambda: run.log_params(added))] if added else []


def metrics_of(values: Mapping[str, Any]) -> dict[str, float]:
    """The finite-or-infinite numbers of a mapping as floats (NaN and non-numbers left out)."""
    out: dict[str, float] = {}
    for k, v in values.items():
        try:
            f = float(v)
        except (TypeError, ValueError):
            continue
        if not math.isnan(f):
            out[k] = f
    return out


def fingerprint(X: Any, y: Any = None) -> dict[str, Any]:
    """Lineage params of the fit data: data.fingerprint (roost.datasets.fingerprint of X, with y as a column
    `__target__`) and data.rows; sparse matrices hash their CSR arrays."""
    import numpy as np
    import pandas as pd
    import scipy.sparse

    from roost.datasets import fingerprint as frame_fingerprint

    if scipy.sparse.issparse(X):
        m = scipy.sparse.csr_matrix(X)
        h = hashlib.sha256(f"sparse;{m.shape};{m.dtype}".encode())
        for a in (m.data, m.indices, m.indptr):
            h.update(np.ascontiguousarray(a).tobytes())
        if y is not None:
            h.update(np.ascontiguousarray(np.asarray(y)).tobytes())
        return {"data.fingerprint": h.hexdigest(), "data.rows": int(m.shape[0])}
    if isinstance(X, np.ndarray):
        fast = _array_fingerprint(X, y)
        if fast is not None:
            return {"data.fingerprint": fast, "data.rows": int(X.shape[0])}
    df = X.copy(deep=False) if isinstance(X, pd.DataFrame) else pd.DataFrame(np.asarray(X))
    df.columns = [str(c) for c in df.columns]
    if y is not None:
        target = np.asarray(y)
        if target.ndim == 1 and len(target) == len(df):
            df["__target__"] = target
    return {"data.fingerprint": frame_fingerprint(df), "data.rows": len(df)}


_PLAIN_DTYPES = ("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float32", "float64")


def _array_fingerprint(X: Any, y: Any) -> str | None:
    """roost.datasets.fingerprint(pd.DataFrame(X) with y as column `__target__`), the same digest, computed on a 2-D
    numeric array at once: pandas' per-column value hash (hash_array: the values' bits, NaN and -0.0 made canonical,
    then mixed) and combined across columns as hash_pandas_object does, without building the frame and its Series.
    None for anything else (the frame path then)."""
    import numpy as np

    if X.ndim != 2 or X.shape[1] == 0 or str(X.dtype) not in _PLAIN_DTYPES:
        return None
    columns: list[tuple[str, Any]] = [(str(i), X.dtype) for i in range(X.shape[1])]
    target = None
    if y is not None:
        target = np.asarray(y)
        if target.ndim == 1 and len(target) == len(X):
            if str(target.dtype) not in _PLAIN_DTYPES:
                return None
            columns.append(("__target__", target.dtype))
        else:
            target = None
    h = hashlib.sha256(f"rows={len(X)};".encode())
    for name, dtype in columns:
        h.update(f"{name}\x1f{dtype}\x1e".encode())
    values = [*np.ascontiguousarray(X.T), *([] if target is None else [target])]  # each column contiguous
    n_cols = len(columns)
    mult = np.uint64(1000003)
    out = np.zeros(len(X), dtype=np.uint64) + np.uint64(0x345678)
    for i, column in enumerate(values):  # column by column: temporaries of one column (no page faults of big ones)
        out = (out ^ _hash_values(column)) * mult
        mult += np.uint64(82520 + 2 * (n_cols - i))
    out += np.uint64(97531)
    h.update(out.tobytes())
    return h.hexdigest()


def _hash_values(a: Any) -> Any:
    """pandas' hash_array of each value of a numeric array, elementwise (a uint64 array of its shape)."""
    import numpy as np

    if a.dtype == bool:
        vals = a.astype("u8")
    else:
        uint = f"u{a.dtype.itemsize}"
        vals = a.view(uint).astype("u8")
        if a.dtype.kind == "f":
            nan = np.isnan(a)
            if nan.any():
                vals[nan] = np.array(np.nan, dtype=a.dtype).view(uint)
            negative_zero = vals == np.array(-0.0, dtype=a.dtype).view(uint)
            if negative_zero.any():
                vals[negative_zero] = 0
    # pandas' mixing, out of place (numpy's in-place `^=` of a shifted copy is ~10x slower here)
    vals = vals ^ (vals >> np.uint64(30))
    vals = vals * np.uint64(0xBF58476D1CE4E5B9)
    vals = vals ^ (vals >> np.uint64(27))
    vals = vals * np.uint64(0x94D049BB133111EB)
    return vals ^ (vals >> np.uint64(31))


def log_later(run: Run, params: dict[str, Any], tags: dict[str, Any] | None = None) -> list[tuple[str, Any]]:
    """Writing the params (and tags) as a background step: the caller's fit does not wait for the store."""

    def write() -> None:
        run.log_params(params)
        if tags:
            run.set_tags(tags)

    return during_fit([("params", write)])  # the values are made now: written while the fit runs


def log_fingerprint_later(
    run: Run, conf: Settings, X: Any, y: Any, snapshots: Callable[[], tuple[Any, Any]] | None = None
) -> list[tuple[str, Any]]:
    """The data fingerprint as a background step, or none when log_datasets is off: over `snapshots()` (X and y as
    the flavor keeps them anyway), else over a snapshot of its own — or, for data over SNAPSHOT_MAX_BYTES, computed
    now (hashing is no slower than the copy, and the data is not held twice while the step waits)."""
    if not conf.log_datasets or X is None or isinstance(X, str):
        return []
    if snapshots is None and copy_bytes(X) > SNAPSHOT_MAX_BYTES:
        try:
            params = fingerprint(X, y)
        except Exception as exc:  # noqa: BLE001 - raised again by the step: warned about and tagged like the others
            failure = exc

            def fail() -> None:
                raise failure

            return [("the data fingerprint", fail)]
        return during_fit([("the data fingerprint", lambda: run.log_params(params))])
    Xs, ys = snapshots() if snapshots is not None else (snapshot(X), snapshot(y))
    # over copies the fit cannot change (or pandas' copy-on-write views): hashed while the fit runs
    return during_fit([("the data fingerprint", lambda: run.log_params(fingerprint(Xs, ys)))])


def copy_bytes(data: Any) -> int:
    """What snapshot(data) would copy, in bytes (0 for pandas objects on pandas 3+, shared copy-on-write)."""
    import numpy as np
    import pandas as pd
    import scipy.sparse

    if isinstance(data, pd.DataFrame | pd.Series):
        return 0 if int(pd.__version__.split(".")[0]) >= 3 else int(data.memory_usage(deep=False).sum())
    if isinstance(data, np.ndarray):
        return int(data.nbytes)
    if scipy.sparse.issparse(data):
        return sum(int(getattr(data, a).nbytes) for a in ("data", "indices", "indptr", "row", "col") if
                   hasattr(data, a))  # fmt: skip
    return 0


def sample_rows(X: Any) -> Any:
    """The first SAMPLE_ROWS rows of fit data as a DataFrame/array copy (kept to check the converted model)."""
    import numpy as np
    import pandas as pd
    import scipy.sparse

    if isinstance(X, pd.DataFrame):
        return X.iloc[:SAMPLE_ROWS].copy()
    if scipy.sparse.issparse(X):
        return np.asarray(scipy.sparse.csr_matrix(X)[:SAMPLE_ROWS].toarray())
    return np.array(np.asarray(X)[:SAMPLE_ROWS])


def snapshot(data: Any) -> Any:
    """Fit data as it is now, for logging that runs after `fit` returned (the caller may change it in place then):
    arrays, sparse matrices and lists copied, pandas objects copied shallowly where pandas copies on write (3+)."""
    import numpy as np
    import pandas as pd
    import scipy.sparse

    if isinstance(data, pd.DataFrame | pd.Series):
        return data.copy(deep=int(pd.__version__.split(".")[0]) < 3)
    if isinstance(data, np.ndarray) or scipy.sparse.issparse(data):
        return data.copy()
    if isinstance(data, list | tuple):
        return np.array(data)
    return data


def log_model(run: Run, conf: Settings, model: Any, sample: Any) -> None:
    """Log `model` as the run's `model` artifact: with package="deferred" (the default) the native model and
    `sample` (the ONNX package is built from them on first need: roost.model_import.deferred); with package="now",
    or when the run's artifacts are remote or a registered_model_name is set, the ONNX package itself (converted
    and checked against the native model on `sample`) — registered when a registered_model_name is set."""
    if not conf.log_models:
        return
    from roost.registry import api

    if conf.package == "deferred" and not run.remote and not conf.registered_model_name:
        from roost.model_import.deferred import SHA_TAG, files_digest, save_native

        # straight into the run's local artifact folder: no temporary copy to write, copy and delete
        folder = local_artifact_folder(run, "model/native").parent  # refused if a symlink leads outside the run
        manifest = save_native(model, folder, sample, run.id)
        run.set_tags({SHA_TAG: files_digest(manifest)})
        return
    with tempfile.TemporaryDirectory(prefix="roost-autolog-") as tmp:
        pkg = Path(tmp) / "model"
        from roost.model_import.log import build_package

        build_package(model, pkg, sample_input=sample)
        run.log_artifacts(pkg, "model")
    if conf.registered_model_name:
        api.register_model(run.id, conf.registered_model_name, "model")


def local_artifact_folder(run: Run, path: str) -> Path:
    """The folder of artifact `path` of a run with a local artifact root, created; refused (RoostError) when a
    symlink in the run's artifacts would take it outside the root, as log_artifact refuses it."""
    from roost import artifacts

    root = artifacts.local_path(run.artifact_uri)
    folder = artifacts.local_path(artifacts.safe_join(run.artifact_uri, path))
    artifacts.check_inside(root, folder)  # resolves every symlink on the way, before anything is created
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def read_now(what: str, read: Callable[[], Any], write: Callable[[Any], None]) -> list[tuple[str, Any]]:
    """A background step that writes what `read()` gives now (on the caller's thread): a read that raises becomes a
    step that raises it again, warned about and tagged like the others (the fit's other steps go on)."""
    try:
        value = read()
    except Exception as exc:  # noqa: BLE001 - raised again by the step
        failure = exc

        def fail() -> None:
            raise failure

        return [(what, fail)]
    return [(what, lambda: write(value))]


def log_importance(run: Run, kinds: Mapping[str, Mapping[str, float]]) -> None:
    """Feature importance per kind ('gain', 'split'…): one JSON artifact each (feature_importance_KIND.json), and the
    TOP_IMPORTANCE features by the first kind as metrics feature_importance.KIND.NAME."""
    if not kinds:
        return
    texts = {
        f"feature_importance_{kind}.json": json.dumps({str(k): float(v) for k, v in values.items()}, indent=1)
        for kind, values in kinds.items()
    }
    if run.remote:
        with tempfile.TemporaryDirectory(prefix="roost-autolog-") as tmp:
            for name, text in texts.items():
                (Path(tmp) / name).write_text(text)
                run.log_artifact(Path(tmp) / name)
    else:  # straight into the run's local artifact folder
        from roost import artifacts

        folder = local_artifact_folder(run, "")
        for name, text in texts.items():
            artifacts.check_inside(folder, folder / name)
            (folder / name).write_text(text)
    kind, values = next(iter(kinds.items()))
    top = sorted(values.items(), key=lambda kv: -float(kv[1]))[:TOP_IMPORTANCE]
    run.log_metrics(metrics_of({f"feature_importance.{kind}.{k}": v for k, v in top}))


def log_evals(run: Run, evals: Mapping[str, Mapping[str, Any]], start: int = 0, best: int | None = None) -> None:
    """A boosting library's eval history {data: {metric: [v per iteration]}} as steps `data-metric`, one buffered
    batch per iteration. `best` (the index of the best iteration, after early stopping): its results once more as
    the step after the last (see EvalPoints.best_again)."""
    series = {f"{d}-{m}": list(vs) for d, by in evals.items() for m, vs in by.items()}
    n = max((len(v) for v in series.values()), default=0)
    rows = list(range(n)) + ([best] if best is not None and 0 <= best < n else [])
    for step, i in enumerate(rows, start):
        point = metrics_of({k: v[i] for k, v in series.items() if i < len(v)})
        if point:
            run.log_metrics(point, step=step)


class EvalPoints:
    """A boosting fit's per-iteration eval results, kept as the library hands them (one list append per iteration on
    the training thread) and logged as steps by the background worker: every LIVE_EVERY_S while the fit runs (so a
    long fit's curves stay live), the rest once it returns or raises (`later()`)."""

    def __init__(self, run: Run, conf: Settings, to_point: Callable[[Any], Mapping[str, Any]]) -> None:
        self.run, self.conf, self.to_point = run, conf, to_point
        self.kept: list[tuple[int, Any]] = []  # (step, results) of every iteration, in order
        self.sent = 0  # how many of them were handed to the worker
        self.failed = False
        self.due = time.monotonic() + LIVE_EVERY_S

    def add(self, step: int, raw: Any) -> None:
        """Keep one iteration's results (`raw` must not change afterwards: the library's fresh list or a copy)."""
        self.kept.append((step, raw))
        if time.monotonic() >= self.due:
            from roost.registry import deferred

            self.due = time.monotonic() + LIVE_EVERY_S
            deferred.submit(self.run, self._take_and_log(), "autolog eval metrics")

    def last_step(self) -> int | None:
        """The step of the last iteration kept (None before the first)."""
        return self.kept[-1][0] if self.kept else None

    def best_again(self, step: int) -> None:
        """After early stopping, the results of the best iteration (`step`) once more, as the step after the last:
        MLflow's convention, so that each metric's latest value is the one of the model the fit keeps (called on the
        training thread once the fit returned, before `later()`'s step runs)."""
        last = self.last_step()
        best = next((raw for s, raw in reversed(self.kept) if s == step), None)
        if last is not None and best is not None:
            self.kept.append((last + 1, best))

    def later(self) -> list[tuple[str, Any]]:
        """The step that logs what is still kept (after the fit, in the background)."""
        return [("eval metrics", lambda: self._take_and_log()())]

    def _take_and_log(self) -> Callable[[], None]:
        points, self.sent = self.kept[self.sent :], len(self.kept)

        def log() -> None:
            if self.failed:
                return
            try:
                for step, raw in points:
                    point = metrics_of(self.to_point(raw))
                    if point:
                        self.run.log_metrics(point, step=step)
            except Exception:
                self.failed = True  # said once (the step's warning); later points are not logged
                raise

        return log
