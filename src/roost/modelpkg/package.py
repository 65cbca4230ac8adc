"""Read and write the files of a model package: signature.json and roost-model.yaml (spec: docs/model-package.md)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from roost.errors import RoostError

FORMAT_VERSION = 1
SIGNATURE = "signature.json"
META = "roost-model.yaml"
MODEL = "model.onnx"
DEFERRED = "deferred.json"  # a model logged natively, its ONNX package built on first need (roost.model_import)
DTYPES = ("float32", "float64", "int64", "int32", "bool", "string")
TASKS = ("binary", "multiclass", "regression")


def _plain(obj: Any) -> Any:
    """JSON round-trip: tuples → lists, numpy scalars → Python, unknown objects → str."""

    def default(o: Any) -> Any:
        if hasattr(o, "item"):
            return o.item()
        if hasattr(o, "tolist"):
            return o.tolist()
        return str(o)

    return json.loads(json.dumps(obj, default=default))


def validate_signature(sig: dict[str, Any]) -> None:
    """Raise ValueError if a signature does not follow the spec."""
    if sig.get("task") not in TASKS:
        raise ValueError(f"signature.task must be one of {TASKS}, got {sig.get('task')!r}")
    for part in ("inputs", "outputs"):
        items = sig.get(part)
        if not isinstance(items, list) or not items:
            raise ValueError(f"signature.{part} must be a non-empty list")
        for it in items:
            if not isinstance(it, dict) or "name" not in it or it.get("dtype") not in DTYPES:
                raise ValueError(f"signature.{part}: bad entry {it!r} (dtype must be one of {DTYPES})")


def write_package(
    directory: str | Path, signature: dict[str, Any], meta: dict[str, Any], model_bytes: bytes | None = None
) -> Path:
    """Write signature.json and roost-model.yaml (and model.onnx if given) into `directory`."""
    import yaml

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    validate_signature(signature)
    if model_bytes is not None:
        (d / MODEL).write_bytes(model_bytes)
    if not (d / MODEL).is_file():
        raise ValueError(f"{d / MODEL} is missing; export the model first")
    (d / SIGNATURE).write_text(json.dumps(_plain(signature), indent=2) + "\n")
    full = {
        "format_version": FORMAT_VERSION,
        "framework": "onnx",
        "model_type": None,
        "task": signature["task"],
        "classes": signature.get("classes", []),
        "label": signature.get("label"),
        "features": [i["name"] for i in signature["inputs"]],
        "feature_refs": [],
        "entities": [],
        "run_id": None,
        "metrics": {},
        "parity_max_abs_diff": None,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    full.update({k: v for k, v in meta.items() if v is not None or k not in full})
    (d / META).write_text(yaml.safe_dump(_plain(full), sort_keys=False))
    return d


def package_root(path: str | Path) -> Path:
    """The package folder for a folder or a model.onnx path."""
    p = Path(path)
    return p.parent if p.is_file() and p.suffix == ".onnx" else p


def pending(path: str | Path) -> bool:
    """Whether `path` holds a deferred package not built yet: the native model is logged, model.onnx is not."""
    root = package_root(path)
    return (root / DEFERRED).is_file() and not (root / SIGNATURE).is_file()


def check_built(path: str | Path) -> None:
    """A RoostError that says how to build it when `path` holds a deferred package not built yet."""
    if pending(path):
        root = package_root(path)
        raise RoostError(
            f"{root} holds a model logged for packaging on first use: it has no model.onnx yet",
            hint=f"build it with `roost models package {root}` (or load it with roost.load_model, which builds it)",
        )


def read_signature(path: str | Path) -> dict[str, Any]:
    """signature.json of a package, checked against the spec (a RoostError naming the file if it is not)."""
    f = package_root(path) / SIGNATURE
    if not f.is_file():
        raise RoostError(f"{f} not found: not a roost model package", hint="point at the folder holding model.onnx")
    hint = "the package is damaged: export or download it again (spec: docs/model-package.md)"
    try:
        sig = json.loads(f.read_text())
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
        raise RoostError(f"{f} is not valid JSON: {str(exc)[:200]}", hint=hint) from exc
    if not isinstance(sig, dict):
        raise RoostError(f"{f} holds a {type(sig).__name__}, not a JSON object", hint=hint)
    try:
        validate_signature(sig)
    except ValueError as exc:
        raise RoostError(f"{f}: {str(exc)[:300]}", hint=hint) from exc
    return sig


def read_meta(path: str | Path) -> dict[str, Any]:
    """roost-model.yaml of a package ({} when absent; a RoostError naming the file when it is not a mapping)."""
    import yaml

    f = package_root(path) / META
    if not f.is_file():
        return {}
    try:
        meta = yaml.safe_load(f.read_text()) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise RoostError(f"{f} is not valid YAML: {str(exc)[:200]}", hint="fix or remove the file") from exc
    if not isinstance(meta, dict):
        raise RoostError(f"{f} holds a {type(meta).__name__}, not a mapping", hint="fix or remove the file")
    return meta
