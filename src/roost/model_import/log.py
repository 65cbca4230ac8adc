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
    source: str | None = None,
) -> dict[str, Any]:
    """Convert `model` into a package in `out_dir`; returns its roost-model.yaml contents.

    `source` (a file name) starts the message of any error about the model."""
    try:
        return _build_package(model, out_dir, sample_input, task, allow_mismatch, name)
    except RoostError as exc:
        if source is None or exc.message.startswith(source):
            raise
        raise RoostError(f"{source}: {exc.message}", hint=exc.hint) from exc


def _build_package(
    model: Any, out_dir: Path, sample_input: Any, task: str | None, allow_mismatch: bool, name: str | None
) -> dict[str, Any]:
    from roost.model_import.convert import convert
    from roost.model_import.graph import io_signature
    from roost.model_import.inputs import sample_frame
    from roost.modelpkg import write_package
    from roost.modelpkg.predictor import Predictor

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
        pred = Predictor(out_dir, threads=1)  # one check of a few rows: no thread pool to start
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
    meta["parity_rows"] = None if parity is None else int(len(df))
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
    source: str | None = None,
) -> ModelVersionInfo:
    """Convert a scikit-learn/LightGBM/XGBoost/PyTorch/ONNX model to a roost package and register it.

    When registering fails (e.g. an invalid name) the run this call started is deleted with its artifacts:
    nothing is left half-written. `source` (a file name) starts the message of errors about the model."""
    from roost.registry import api

    with tempfile.TemporaryDirectory(prefix="roost-logmodel-") as tmp:
        pkg = Path(tmp) / "model"
        meta = build_package(model, pkg, sample_input, task, allow_mismatch, name, source)
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
                _discard_run(own)
            raise
        if own is not None:
            own.end("FINISHED")
    return version


def _discard_run(run: Any) -> None:
    """Delete a run this module started, and its artifacts (best effort: the original error matters more)."""
    import logging

    from roost import artifacts
    from roost.registry import api
    from roost.registry.store import default_store

    try:
        uri = api.get_run(run.id)["artifact_uri"]
        fs, root = artifacts.filesystem(uri)
        if fs.exists(root):
            fs.rm(root, recursive=True)
        default_store().delete_run(run.id)  # purged at once (as gc would): a run this call started and failed
    except Exception as exc:  # noqa: BLE001 - the run stays FAILED; the caller sees the first error
        logging.getLogger(__name__).warning("could not delete failed run %s: %s", run.id, exc)


def _read_onnx(p: Path) -> bytes:
    """The bytes of an ONNX file, with weights kept in external data files (next to it) read in."""
    import onnx
    from onnx.external_data_helper import uses_external_data

    data = p.read_bytes()
    try:
        proto = onnx.load_from_string(data)
    except Exception:  # noqa: BLE001 - not ONNX at all: the converter says so, naming the file
        return data
    if not any(uses_external_data(t) for t in proto.graph.initializer):
        return data
    try:
        whole: bytes = onnx.load(str(p)).SerializeToString()
    except Exception as exc:
        raise RoostError(
            f"{p.name} keeps its weights in external data files that cannot be read: "
            f"{(str(exc).splitlines() or [type(exc).__name__])[0][:200]}",
            hint="put the data file(s) it names next to it (as saved), or save the model without external data",
        ) from exc
    return whole


def _check_lightgbm_text(p: Path) -> None:
    """Refuse a LightGBM text file that is not whole: LightGBM reads past the end of a truncated one (and may abort
    the process), or loads the trees before the cut without a word."""
    data = p.read_bytes()
    if not data.startswith(b"tree"):
        raise RoostError(
            f"{p.name} is not a LightGBM model file (it does not start with 'tree')",
            hint="save the model with booster.save_model(path)",
        )
    if b"\nend of trees" not in data:
        raise RoostError(
            f"{p.name} is a truncated LightGBM model file: it has no 'end of trees' line",
            hint="copy the whole file again, or save it again with booster.save_model(path)",
        )


def load_model_file(path: str | Path, trust_pickle: bool = False) -> Any:
    """Load a model file: .onnx, pickle/joblib (needs trust_pickle), LightGBM text, XGBoost json/ubj, torch."""
    p = Path(path)
    if p.is_dir():
        raise RoostError(f"model file {p} is a folder", hint="pass the model file itself (e.g. model.onnx)")
    if not p.is_file():
        raise RoostError(f"model file {p} not found", hint="check the path")
    suffix = p.suffix.lower()
    head = p.read_bytes()[:64]
    if suffix == ".onnx":
        return _read_onnx(p)
    if suffix in (".pkl", ".pickle", ".joblib"):
        if not trust_pickle:
            raise RoostError(
                f"{p.name} is a pickle, and loading a pickle runs code from the file",
                hint="only if you trust its origin, pass --trust-pickle",
            )
        import joblib

        try:
            obj = joblib.load(p)
        except Exception as exc:
            raise RoostError(
                f"cannot unpickle {p.name}: {str(exc)[:200]}",
                hint="the file is corrupted or needs a library that is not installed",
            ) from exc
        from roost.model_import.convert import detect

        try:
            detect(obj)
        except RoostError as exc:
            raise RoostError(
                f"{p.name} holds a {type(obj).__module__}.{type(obj).__name__}, not a model", hint=exc.hint
            ) from None
        return obj
    if suffix in (".txt", ".lgb", ".lgbm") or head.startswith(b"tree\n"):
        import lightgbm

        _check_lightgbm_text(p)

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
