"""Framework detection and conversion of a native model to an ONNX graph with raw-column inputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from roost.errors import RoostError
from roost.model_import import graph
from roost.model_import.converted import Converted
from roost.model_import.inputs import (
    check_columns,
    classifier_task,
    native_scores,
    pick_output,
    plain_value,
    sample_frame,
)

OPSET = {"": 17, "ai.onnx.ml": 3}


def detect(model: Any) -> str:
    """The framework of a model object: sklearn, lightgbm, xgboost, torch or onnx."""
    if isinstance(model, (bytes, bytearray)):
        return "onnx"
    roots = {c.__module__.split(".")[0] for c in type(model).__mro__}  # subclasses count too
    for fw in ("onnx", "lightgbm", "xgboost", "torch"):
        if fw in roots:
            return fw
    try:
        from sklearn.base import BaseEstimator

        if isinstance(model, BaseEstimator):
            return "sklearn"
    except ImportError:  # pragma: no cover
        pass
    raise RoostError(
        f"cannot log a {type(model).__module__}.{type(model).__name__}",
        hint="supported: scikit-learn estimators/Pipelines, LightGBM, XGBoost, torch.nn.Module, .onnx",
    )


def convert_sklearn(model: Any, sample: Any) -> Converted:
    """scikit-learn estimator or Pipeline → ONNX through skl2onnx (per-column inputs for ColumnTransformer); a random
    forest or extra-trees model on a matrix is built with numpy from its trees instead (fasttrees)."""
    import pandas as pd
    from skl2onnx.common.data_types import FloatTensorType, Int64TensorType, StringTensorType
    from sklearn.base import is_classifier
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    from roost.model_import.fasttrees import fast_trees

    _check_sklearn_predictor(model)
    df = sample_frame(sample, list(getattr(model, "feature_names_in_", [])) or None)
    cols = check_columns(df, list(getattr(model, "feature_names_in_", [])) or None)
    final = model.steps[-1][1] if isinstance(model, Pipeline) else model
    first = model.steps[0][1] if isinstance(model, Pipeline) else model
    per_column = isinstance(first, ColumnTransformer) or any(not pd.api.types.is_numeric_dtype(df[c]) for c in cols)
    if per_column:
        types = []
        for c in cols:
            if pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c]):
                types.append((c, FloatTensorType([None, 1])))
            elif pd.api.types.is_integer_dtype(df[c]):
                types.append((c, Int64TensorType([None, 1])))
            else:
                types.append((c, StringTensorType([None, 1])))
    else:
        types = [("X", FloatTensorType([None, len(cols)]))]
    clf = is_classifier(model)
    if clf and not hasattr(model, "predict_proba"):
        raise RoostError(
            f"{type(final).__name__} has no predict_proba: a roost classifier outputs class probabilities",
            hint="wrap it in sklearn.calibration.CalibratedClassifierCV, or use a classifier with predict_proba",
        )
    onx = None if per_column else fast_trees(model, "sklearn", len(cols))  # a forest: numpy, no skl2onnx
    if onx is None:
        onx = _skl2onnx(model, final, types, clf)
    task = classifier_task(len(final.classes_)) if clf else "regression"
    onx = graph.columns_2d_to_1d(onx, cols) if per_column else graph.columns_to_matrix(onx, cols)
    onx = graph.spec_outputs(onx, task, pick_output(onx, "probabilities" if clf else "variable"))
    native = native_scores(task, getattr(model, "predict_proba", None), model.predict)

    def run_native(d: Any) -> np.ndarray:
        return native(d[cols] if per_column or hasattr(model, "feature_names_in_") else d[cols].to_numpy())

    return Converted(
        graph.finalize(onx),
        task,
        "sklearn",
        type(final).__name__,
        cols,
        run_native,
        [plain_value(c) for c in getattr(final, "classes_", [])],
    )


def _skl2onnx(model: Any, final: Any, types: list[Any], clf: bool) -> Any:
    """The model through skl2onnx with its defaults, then the ZipMap taken off: skl2onnx's `options` (zipmap=False)
    make it list every sub-estimator with dir() first, ~30 % of a forest's conversion; the options only where no
    ZipMap came out."""
    from skl2onnx import convert_sklearn as skl_convert

    try:
        onx = skl_convert(model, initial_types=types, target_opset=OPSET)
        if clf and not graph.drop_zipmap(onx):
            options = {id(final): {"zipmap": False}}
            onx = skl_convert(model, initial_types=types, options=options, target_opset=OPSET)
    except Exception as exc:
        raise RoostError(
            f"scikit-learn model cannot be converted to ONNX: {_name_step(model, exc)}",
            hint="register a converter for it with skl2onnx.update_registered_converter, "
            "or replace/wrap that step with a supported one",
        ) from exc
    return onx


def _check_sklearn_predictor(model: Any) -> None:
    """Refuse what is not a fitted classifier or regressor (a transformer, a clusterer, an unfitted estimator)."""
    from sklearn.base import is_classifier, is_regressor
    from sklearn.exceptions import NotFittedError
    from sklearn.pipeline import Pipeline
    from sklearn.utils.validation import check_is_fitted

    final = model.steps[-1][1] if isinstance(model, Pipeline) and model.steps else model
    what = f"{type(final).__module__}.{type(final).__name__}"
    if not hasattr(model, "predict") or not (is_classifier(model) or is_regressor(model)):
        from sklearn.utils import get_tags

        kind = get_tags(final).estimator_type or ("transformer" if hasattr(final, "transform") else "")
        raise RoostError(
            f"{what} is not a classifier or regressor{f' (it is a {kind})' if kind else ''}: a roost model "
            "package scores rows",
            hint="log a fitted classifier/regressor, or a Pipeline that ends in one (preprocessing steps first)",
        )
    try:
        check_is_fitted(model)
    except NotFittedError:
        raise RoostError(
            f"{what} is not fitted", hint="call .fit(X, y) before logging it (or pickle the fitted model)"
        ) from None


def _name_step(model: Any, exc: Exception) -> str:
    """Name the pipeline step (and its class) that skl2onnx could not convert."""
    from sklearn.pipeline import Pipeline

    msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    steps = model.steps if isinstance(model, Pipeline) else [(type(model).__name__, model)]
    for name, step in steps:
        if type(step).__name__ in msg:
            return f"step {name!r} ({type(step).__module__}.{type(step).__name__}) has no converter ({msg})"
    return msg


def convert_torch(model: Any, sample: Any, task: str | None) -> Converted:
    """torch.nn.Module (or ExportedProgram) → ONNX with torch.onnx's dynamo exporter, dynamic batch."""
    import torch

    df = sample_frame(sample.detach().numpy() if isinstance(sample, torch.Tensor) else sample)
    cols = [str(c) for c in df.columns]
    x = torch.tensor(df.to_numpy(dtype=np.float32))
    module = model.module() if isinstance(model, torch.export.ExportedProgram) else model
    if hasattr(module, "eval"):
        module.eval()
    with torch.no_grad():
        out = module(x)
    width = 1 if out.ndim == 1 else out.shape[1]
    task = task or ("regression" if width == 1 else "multiclass")
    if task == "binary" and width not in (1, 2):
        raise RoostError(f"a binary model must output 1 or 2 columns, got {width}")
    try:
        if isinstance(module, torch.jit.ScriptModule):  # TorchScript: only the TorchScript exporter reads it
            import tempfile

            import onnx

            with tempfile.TemporaryDirectory(prefix="roost-torchscript-") as tmp:
                path = Path(tmp) / "model.onnx"
                torch.onnx.export(
                    module,
                    (x,),
                    path,
                    dynamo=False,
                    input_names=["X"],
                    output_names=["out"],
                    dynamic_axes={"X": {0: "batch"}, "out": {0: "batch"}},
                    opset_version=17,
                )
                onx_proto = onnx.load_from_string(path.read_bytes())
        else:
            program = torch.onnx.export(
                module,
                (x,),
                dynamo=True,
                external_data=False,
                verbose=False,
                dynamic_shapes=({0: torch.export.Dim("batch", min=1)},),
            )
            if program is None:  # the dynamo exporter always returns a program; None only when writing to a file
                raise RuntimeError("torch.onnx.export returned no ONNX program")
            onx_proto = program.model_proto
    except Exception as exc:
        raise RoostError(
            f"torch model cannot be exported to ONNX: {str(exc).splitlines()[0][:300]}",
            hint="use ops supported by torch.onnx (dynamo exporter) or wrap the model",
        ) from exc
    onx = onx_proto
    src = onx.graph.output[0].name
    onx = graph.columns_to_matrix(onx, cols)
    if task == "binary" and width == 1:
        onx = graph.spec_outputs(onx, "regression", src)
        onx.graph.output[0].name = "probability"
        onx.graph.node[-1].output[0] = "probability"
    else:
        onx = graph.spec_outputs(onx, task, src)

    def native(d: Any) -> np.ndarray:
        with torch.no_grad():
            y = np.asarray(module(torch.tensor(d[cols].to_numpy(dtype=np.float32))).numpy())
        if task == "binary":
            return y.reshape(-1) if width == 1 else y[:, 1]
        return y.reshape(-1) if task == "regression" else y

    return Converted(
        graph.finalize(onx), task, "torch", type(module).__name__, cols, native, [0, 1] if task == "binary" else []
    )


def convert(model: Any, sample: Any = None, task: str | None = None) -> Converted:
    """Convert any supported model object (or ONNX bytes/ModelProto) to a Converted graph."""
    fw = detect(model)
    if fw == "sklearn":
        return convert_sklearn(model, sample)
    if fw in ("lightgbm", "xgboost"):
        from roost.model_import.boosting import convert_boosting

        return convert_boosting(model, sample, fw)
    if fw == "torch":
        return convert_torch(model, sample, task)
    from roost.model_import.onnxfile import convert_onnx

    return convert_onnx(model, task)
