"""The serving view of a model package: signature.json and roost-model.yaml, read and checked (no onnxruntime)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from roost.errors import RoostError
from roost.modelpkg.package import check_built

# signature dtype -> (numpy dtype, KServe V2 datatype)
DTYPES: dict[str, tuple[Any, str]] = {
    "float32": (np.dtype("float32"), "FP32"),
    "float64": (np.dtype("float64"), "FP64"),
    "int64": (np.dtype("int64"), "INT64"),
    "int32": (np.dtype("int32"), "INT32"),
    "bool": (np.dtype("bool"), "BOOL"),
    "string": (np.dtype(object), "BYTES"),
}
V2_TO_DTYPE = {v2: name for name, (_, v2) in DTYPES.items()}
# numpy kind/size -> V2 datatype for outputs whose dtype is only known at run time
NUMPY_TO_V2 = {
    "float32": "FP32",
    "float64": "FP64",
    "int64": "INT64",
    "int32": "INT32",
    "bool": "BOOL",
    "object": "BYTES",
    "float16": "FP16",
    "int8": "INT8",
    "int16": "INT16",
    "uint8": "UINT8",
}
# the same keyed by numpy dtype (a dict lookup; dtype.name is computed in Python on every access)
DTYPE_TO_V2 = {np.dtype(k): v for k, v in NUMPY_TO_V2.items()}
# what a JSON null stands for, per dtype (the training-side convention for missing values)
MISSING: dict[str, float | int | str] = {
    "float32": float("nan"),
    "float64": float("nan"),
    "int64": -1,
    "int32": -1,
    "string": "",
}


@dataclass(frozen=True)
class TensorSpec:
    """One named input or output tensor of a model."""

    name: str
    dtype: str
    shape: tuple[int, ...]

    np_dtype: np.dtype = field(init=False, repr=False, compare=False)
    v2_datatype: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        """Cache the numpy dtype and the KServe V2 datatype name (FP32, BYTES, ...)."""
        object.__setattr__(self, "np_dtype", DTYPES[self.dtype][0])
        object.__setattr__(self, "v2_datatype", DTYPES[self.dtype][1])

    def to_v2(self) -> dict[str, Any]:
        """The V2 metadata entry {name, datatype, shape}."""
        return {"name": self.name, "datatype": self.v2_datatype, "shape": list(self.shape)}


@dataclass
class Package:
    """A model package on disk: its paths, signature and metadata."""

    path: Path
    task: str
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    classes: list[Any] | None
    meta: dict[str, Any] = field(default_factory=dict)
    fingerprint: str = ""
    derived: tuple[str, ...] = ()  # outputs computed by the server, not the graph (e.g. class `label`)

    @property
    def onnx_path(self) -> Path:
        """The model.onnx file."""
        return self.path / "model.onnx"

    @property
    def feature_refs(self) -> list[str]:
        """Feature-store refs ("view:field") the model was trained from; empty when none."""
        return list(self.meta.get("feature_refs") or [])

    @property
    def entities(self) -> list[str]:
        """Join keys that identify a row in the online store (with feature_refs)."""
        return list(self.meta.get("entities") or [])

    @property
    def request_fields(self) -> dict[str, str]:
        """Request fields (name -> feature dtype) that request-time features among feature_refs are computed from."""
        fields = self.meta.get("request_fields") or {}
        return {str(k): str(v) for k, v in fields.items()} if isinstance(fields, dict) else {}

    @property
    def input_map(self) -> dict[str, TensorSpec]:
        """Input specs by name."""
        by_name = self.__dict__.get("_by_name")
        if by_name is None:
            by_name = self.__dict__["_by_name"] = {s.name: s for s in self.inputs}
        return by_name

    def input(self, name: str) -> TensorSpec | None:
        """The input spec called `name`, or None."""
        return self.input_map.get(name)

    @property
    def float_columns(self) -> dict[str, int] | None:
        """Input positions by name when every input is a float32 column of any length (shape [-1]), else None:
        such a model's requests can be decoded into one (inputs x rows) matrix (protocols.v2.fast_inputs)."""
        if "_float_columns" not in self.__dict__:
            ok = bool(self.inputs) and all(s.dtype == "float32" and tuple(s.shape) == (-1,) for s in self.inputs)
            self.__dict__["_float_columns"] = {s.name: i for i, s in enumerate(self.inputs)} if ok else None
        cols: dict[str, int] | None = self.__dict__["_float_columns"]
        return cols


def _tensor(entry: Any, where: str) -> TensorSpec:
    """Parse one {name, dtype, shape} entry of signature.json."""
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
        raise RoostError(f"{where}: each entry needs a string 'name'", hint="see docs/model-package.md")
    dtype = entry.get("dtype", "float32")
    if dtype not in DTYPES:
        raise RoostError(
            f"{where}: tensor {entry['name']!r} has unknown dtype {dtype!r}", hint=f"use one of {', '.join(DTYPES)}"
        )
    shape = entry.get("shape", [-1])
    if not isinstance(shape, list) or not all(isinstance(d, int) for d in shape) or not shape:
        raise RoostError(f"{where}: tensor {entry['name']!r} has shape {shape!r}; expected a list of ints like [-1]")
    return TensorSpec(entry["name"], dtype, tuple(shape))


def fingerprint(path: Path) -> str:
    """A content hash of the package files serving reads (detects a changed package at the same path)."""
    h = hashlib.sha256()
    for name in ("model.onnx", "signature.json", "roost-model.yaml"):
        p = path / name
        if p.is_file():
            h.update(name.encode())
            h.update(p.read_bytes())
    return h.hexdigest()[:16]


def read_package(path: str | Path) -> Package:
    """Read and check a model package folder; raises RoostError naming the missing or broken file."""
    import yaml

    root = Path(path).expanduser().resolve()
    if not root.is_dir():
        raise RoostError(
            f"model package {root} does not exist or is not a folder",
            hint="pass a folder with model.onnx + signature.json, or a registry name like churn@prod",
        )
    check_built(root)  # a deferred package (native model only) says how to build it
    for name in ("model.onnx", "signature.json"):
        if not (root / name).is_file():
            raise RoostError(f"model package {root} has no {name}", hint="see docs/model-package.md")
    try:
        sig = json.loads((root / "signature.json").read_text())
    except (OSError, ValueError) as exc:
        raise RoostError(f"{root / 'signature.json'} is not valid JSON: {exc}") from None
    if not isinstance(sig, dict) or not isinstance(sig.get("inputs"), list) or not isinstance(sig.get("outputs"), list):
        raise RoostError(
            f"{root / 'signature.json'} needs 'inputs' and 'outputs' lists", hint="see docs/model-package.md"
        )
    meta: dict[str, Any] = {}
    meta_path = root / "roost-model.yaml"
    if meta_path.is_file():
        try:
            meta = yaml.safe_load(meta_path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise RoostError(f"{meta_path} is not valid YAML: {exc}") from None
        if not isinstance(meta, dict):
            raise RoostError(f"{meta_path} must be a mapping")
    where = str(root / "signature.json")
    inputs = [_tensor(e, where) for e in sig["inputs"]]
    outputs = [_tensor(e, where) for e in sig["outputs"]]
    if not inputs or not outputs:
        raise RoostError(f"{where} declares no inputs or no outputs")
    task = str(sig.get("task") or meta.get("task") or "unknown")
    classes = sig.get("classes", meta.get("classes"))
    derived: tuple[str, ...] = ()
    names = {o.name for o in outputs}
    if (
        classes
        and ((task == "binary" and "probability" in names) or (task == "multiclass" and "probabilities" in names))
        and "label" not in names
    ):
        ints = all(isinstance(c, int) and not isinstance(c, bool) for c in classes)
        outputs.append(TensorSpec("label", "int64" if ints else "string", (-1,)))
        derived = ("label",)
    return Package(
        path=root,
        task=task,
        inputs=inputs,
        outputs=outputs,
        classes=classes,
        meta=meta,
        fingerprint=fingerprint(root),
        derived=derived,
    )
