"""Predictor: runs a model package with ONNX Runtime (no torch), validating inputs against signature.json."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from roost.errors import RoostError
from roost.modelpkg.convert import NUMPY_DTYPES, to_input
from roost.modelpkg.package import MODEL, SIGNATURE, package_root, read_meta, read_signature

PRIMARY = {"binary": "probability", "multiclass": "probabilities", "regression": "prediction"}


def _ort_errors() -> tuple[type[Exception], ...]:
    """The exceptions ONNX Runtime raises for a file it cannot load (plain Exception subclasses)."""
    from onnxruntime.capi import onnxruntime_pybind11_state as state

    names = ("Fail", "InvalidArgument", "InvalidProtobuf", "InvalidGraph", "NoSuchFile", "NotImplemented")
    return tuple(getattr(state, n) for n in names if hasattr(state, n))


class Predictor:
    """A loaded model package: `run(dict of arrays)` and `predict(DataFrame)`."""

    def __init__(
        self, path: str | Path, model_file: str = MODEL, signature: dict[str, Any] | None = None, threads: int = 0
    ) -> None:
        """Load the package at `path`; `threads` > 0 caps ONNX Runtime's intra-op threads (0: its default, one per
        core; a one-off check of a few rows is cheaper on one: no pool to start and spin)."""
        import onnxruntime as ort

        self.path = package_root(path)
        self.signature = signature or read_signature(self.path)
        self.meta = read_meta(self.path)
        f = self.path / model_file
        if not f.is_file():
            raise RoostError(f"{f} not found", hint="the package folder must contain model.onnx")
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        if threads > 0:
            opts.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(str(f), sess_options=opts, providers=["CPUExecutionProvider"])
        except _ort_errors() as exc:
            raise RoostError(
                f"{f} is not a model ONNX Runtime can load: {str(exc).splitlines()[0][:300]}",
                hint="the file is damaged or not ONNX: export or download the package again",
            ) from exc
        self.inputs = [i["name"] for i in self.signature["inputs"]]
        self.dtypes = {i["name"]: i["dtype"] for i in self.signature["inputs"]}
        self.outputs = [o["name"] for o in self.signature["outputs"]]
        self._check_graph(f)

    def _check_graph(self, f: Path) -> None:
        """Fail at load, naming both, when the signature's inputs are not the graph's (every run would fail)."""
        graph = [i.name for i in self.session.get_inputs()]
        unknown = [n for n in self.inputs if n not in graph]
        unfed = [n for n in graph if n not in self.inputs]
        if unknown or unfed:
            what = "; ".join(
                s
                for s in (
                    f"{SIGNATURE} names input(s) {unknown} that {f.name} lacks" if unknown else "",
                    f"{f.name} needs input(s) {unfed} that {SIGNATURE} does not list" if unfed else "",
                )
                if s
            )
            raise RoostError(f"{self.path}: {what}", hint=f"{f.name} takes {graph}: fix {SIGNATURE} or re-export")

    @property
    def task(self) -> str:
        """binary, multiclass or regression."""
        return str(self.signature["task"])

    @property
    def classes(self) -> list[Any]:
        """Class labels in output order (classifiers)."""
        return list(self.signature.get("classes", []))

    def cast(self, name: str, value: Any) -> np.ndarray:
        """Cast one input column to its signature dtype, 1-D (an [N, 1] column is accepted as [N])."""
        dtype = self.dtypes[name]
        index = value.index if hasattr(value, "iloc") else None  # a pandas column: its labels name a bad row
        arr = np.asarray(value, dtype=object if dtype == "string" else None)
        if arr.ndim == 0:
            arr = arr.reshape(1)
        if arr.ndim == 2 and arr.shape[1] == 1:
            arr = arr[:, 0]
        if arr.ndim != 1:
            raise RoostError(f"input {name!r} must be 1-D, got shape {list(arr.shape)}", hint="send one value per row")
        if dtype == "string":
            return to_input(arr, "string")
        if arr.dtype == NUMPY_DTYPES[dtype]:
            return arr
        try:
            return to_input(arr, dtype, name=name, index=index)
        except (TypeError, ValueError) as exc:
            raise RoostError(
                f"input {name!r} cannot be read as {dtype}: {exc}", hint="check the column's values"
            ) from exc

    def run(self, inputs: Mapping[str, Any], outputs: list[str] | None = None) -> dict[str, np.ndarray]:
        """Validate and cast `inputs` (one array per signature input), run the graph, return named outputs."""
        missing = [n for n in self.inputs if n not in inputs]
        if missing:
            raise RoostError(f"missing input(s) {missing}", hint=f"the model expects {self.inputs}")
        feed = {n: self.cast(n, inputs[n]) for n in self.inputs}
        sizes = {len(v) for v in feed.values()}
        if len(sizes) > 1:
            raise RoostError(f"inputs have different lengths {sorted(sizes)}", hint="send the same number of rows")
        names = outputs or self.outputs
        return dict(zip(names, self.session.run(names, feed)))

    def predict(self, df: Any) -> np.ndarray:
        """1-D scores (binary probability, regression value) or 2-D class probabilities (multiclass)."""
        if not isinstance(df, Mapping) and not hasattr(df, "columns"):
            raise RoostError(
                f"predict takes a pandas DataFrame or a dict of columns, not {type(df).__name__}",
                hint=f"e.g. pd.DataFrame(rows, columns={self.inputs})",
            )
        if isinstance(df, pd.DataFrame) and not df.columns.is_unique:
            counts = df.columns.value_counts()
            twice = [n for n in self.inputs if counts.get(n, 0) > 1]
            if twice:
                n = twice[0]
                raise RoostError(
                    f"column {n!r} appears {counts[n]} times in the frame", hint="drop or rename the copies"
                )
        cols = {n: df[n] for n in self.inputs if n in df}
        if len(cols) < len(self.inputs):
            missing = [n for n in self.inputs if n not in df]
            raise RoostError(f"missing input column(s) {missing}", hint=f"the model expects {self.inputs}")
        return self.run(cols, [PRIMARY[self.task]])[PRIMARY[self.task]]

    def tower(self, which: str) -> Predictor:
        """The user or item tower of a two-tower package as a Predictor (output `embedding`)."""
        towers = self.signature.get("towers") or {}
        if which not in towers:
            raise RoostError(f"this model has no {which!r} tower", hint=f"towers: {sorted(towers) or 'none'}")
        t = towers[which]
        sig = {
            "task": self.task,
            "outputs": t["outputs"],
            "inputs": [i for i in self.signature["inputs"] if i["name"] in set(t["inputs"])],
        }
        return Predictor(self.path, model_file=t["file"], signature=sig)

    def embed(self, df: Any, which: str = "item") -> np.ndarray:
        """Tower embeddings [N, D] for the rows of `df` (two-tower packages)."""
        t = self.tower(which)
        return t.run({n: df[n] for n in t.inputs}, ["embedding"])["embedding"]

    def __repr__(self) -> str:
        return f"Predictor({str(self.path)!r}, task={self.task!r}, inputs={len(self.inputs)})"
