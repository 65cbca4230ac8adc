"""roost.log_model and model-file import: convert, check parity on a sample, package, register."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from roost.errors import RoostError

if TYPE_CHECKING:
    from roost.registry.modelreg import ModelVersionInfo

PARITY_TOLERANCE = 1e-4
PRIMARY = {"binary": "probability", "multiclass": "probabilities", "regression": "prediction"}


def build_package(
    model: Any,
    out_dir: Path,
    sample_input: Any = None,
    task: str | None = None,
    allow_mismatch: bool = False,
    name: str | None = None,
) -> dict[str, Any]:
    """Convert `model` into a package in `out_dir`; returns its roost-model.yaml contents."""
    from roost.byom.convert import convert, sample_frame
    from roost.byom.graph import io_signature
    from roost.modelpkg import load, write_package

    conv = convert(model, sample_input, task)
    inputs, outputs = io_signature(conv.onnx_bytes)
    by_name = {i["name"]: i for i in inputs}
    ordered = [by_name[c] for c in conv.columns if c in by_name] + [i for i in inputs if i["name"] not in conv.columns]
    sig = {"task": conv.task, "inputs": ordered, "outputs": outputs, "classes": conv.classes}
    meta: dict[str, Any] = {
        "framework": conv.framework,
        "model_type": conv.model_type,
        "task": conv.task,
        "classes": conv.classes,
        "features": [i["name"] for i in ordered],
        "name": name,
    }
    write_package(out_dir, sig, meta, conv.onnx_bytes)
    parity = None
    if conv.native is not None and sample_input is not None:
        df = sample_frame(sample_input, conv.columns if not hasattr(sample_input, "columns") else None)
        if len(df) == 0:
            raise RoostError("the sample has no rows", hint="pass a few rows of real input data")
        pred = load(out_dir)
        got = pred.run({c: df[c] for c in pred.inputs}, [PRIMARY[conv.task]])[PRIMARY[conv.task]]
        want = np.asarray(conv.native(df), dtype=np.float64)
        if got.shape != want.shape:
            raise RoostError(
                f"ONNX output shape {list(got.shape)} differs from the native model's {list(want.shape)}",
                hint="the converted graph does not compute what the model does; report this model",
            )
        parity = float(np.max(np.abs(got.astype(np.float64) - want))) if got.size else 0.0
        if not np.isfinite(parity) or (parity > PARITY_TOLERANCE and not allow_mismatch):
            raise RoostError(
                f"ONNX Runtime differs from the native model by {parity:.3g} on the sample "
                f"(tolerance {PARITY_TOLERANCE:g})",
                hint="check the conversion; pass allow_mismatch=True (--allow-mismatch) to keep it "
                "anyway, and the figure stays recorded",
            )
    meta["parity_max_abs_diff"] = parity
    meta["parity_rows"] = None if parity is None else int(len(sample_frame(sample_input, conv.columns)))
    write_package(out_dir, sig, meta)
    return meta


def log_model(
    model: Any,
    name: str,
    sample_input: Any = None,
    run: Any = None,
    task: str | None = None,
    allow_mismatch: bool = False,
    experiment: str = "models",
) -> ModelVersionInfo:
    """Convert a scikit-learn/LightGBM/XGBoost/PyTorch/ONNX model to a roost package and register it."""
    from roost.registry import api

    with tempfile.TemporaryDirectory(prefix="roost-logmodel-") as tmp:
        pkg = Path(tmp) / "model"
        meta = build_package(model, pkg, sample_input, task, allow_mismatch, name)
        own = None
        target = run or api.active_run()
        if target is None:
            own = target = api.start_run(
                experiment=experiment, name=f"log_model:{name}", tags={"roost.framework": meta["framework"]}
            )
        try:
            target.log_artifacts(pkg, "model")
            version = api.register_model(target.id, name, "model")
        except BaseException:
            if own is not None:
                own.end("FAILED")
            raise
        if own is not None:
            own.end("FINISHED")
    return version


def load_model_file(path: str | Path, trust_pickle: bool = False) -> Any:
    """Load a model file: .onnx, pickle/joblib (needs trust_pickle), LightGBM text, XGBoost json/ubj, torch."""
    p = Path(path)
    if not p.is_file():
        raise RoostError(f"model file {p} not found", hint="check the path")
    suffix = p.suffix.lower()
    head = p.read_bytes()[:64]
    if suffix == ".onnx":
        return p.read_bytes()
    if suffix in (".pkl", ".pickle", ".joblib"):
        if not trust_pickle:
            raise RoostError(
                f"{p.name} is a pickle, and loading a pickle runs code from the file",
                hint="only if you trust its origin, pass --trust-pickle",
            )
        import joblib

        try:
            return joblib.load(p)
        except Exception as exc:
            raise RoostError(
                f"cannot unpickle {p.name}: {str(exc)[:200]}",
                hint="the file is corrupted or needs a library that is not installed",
            ) from exc
    if suffix in (".txt", ".lgb", ".lgbm") or head.startswith(b"tree\n"):
        import lightgbm

        try:
            return lightgbm.Booster(model_file=str(p))
        except Exception as exc:
            raise RoostError(f"{p.name} is not a LightGBM model file: {str(exc)[:200]}") from exc
    if suffix in (".json", ".ubj", ".xgb"):
        import xgboost

        b = xgboost.Booster()
        try:
            b.load_model(str(p))
        except Exception as exc:
            raise RoostError(f"{p.name} is not an XGBoost model file: {str(exc).splitlines()[0][:200]}") from exc
        return b
    if suffix in (".pt", ".pt2", ".pth"):
        import torch

        try:
            if suffix == ".pt2":
                return torch.export.load(str(p))
            load_script: Callable[[str], Any] = torch.jit.load  # unannotated in torch
            return load_script(str(p))
        except Exception as exc:
            raise RoostError(
                f"{p.name} is not a TorchScript/ExportedProgram file: {str(exc).splitlines()[0][:200]}",
                hint="save with torch.jit.save(torch.jit.script(m)) or torch.export.save(ep)",
            ) from exc
    raise RoostError(
        f"unknown model file type {suffix!r}",
        hint="supported: .onnx, .pkl/.joblib (with --trust-pickle), LightGBM .txt, XGBoost .json/.ubj, "
        "TorchScript .pt, ExportedProgram .pt2",
    )
