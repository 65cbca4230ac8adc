"""Framework detection and conversion of a native model to an ONNX graph with raw-column inputs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from roost.errors import RoostError
from roost.model_import import graph
from roost.model_import.converted import Converted

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


def sample_frame(sample: Any, columns: list[str] | None = None) -> Any:
    """The sample as a pandas DataFrame (arrays get columns f0..fN or the model's feature names)."""
    import pandas as pd

    if sample is None:
        raise RoostError(
            "a sample_input is required to convert and check this model",
            hint="pass a few rows of the training data (a DataFrame)",
        )
    if isinstance(sample, pd.DataFrame):
        return sample
    arr = np.asarray(sample)
    if arr.ndim != 2:
        raise RoostError(f"sample_input must be 2-D (rows × features), got shape {arr.shape}")
    cols = columns or [f"f{i}" for i in range(arr.shape[1])]
    return pd.DataFrame(arr, columns=cols)


def _check_columns(df: Any, expected: list[str] | None) -> list[str]:
    """The model's input columns; error when the sample lacks any."""
    if expected is None:
        return [str(c) for c in df.columns]
    missing = [c for c in expected if c not in df.columns]
    if missing:
        import re

        # LightGBM/XGBoost rewrite names ('mean radius' -> 'mean_radius'): accept the same columns, renamed
        sanitized = [re.sub(r"[^\w]", "_", str(c)) for c in df.columns]
        if sanitized == list(expected):
            return [str(c) for c in df.columns]
        raise RoostError(
            f"the sample's columns don't match the model: missing {_short(missing)}",
            hint=f"the model was fitted on {_short(list(expected))}; the sample has "
            f"{_short([str(c) for c in df.columns])}",
        )
    return list(expected)


def _short(xs: list[str], n: int = 8) -> str:
    return str(xs[:n])[:-1] + (f", … {len(xs) - n} more]" if len(xs) > n else "]")


def _classifier_task(n_classes: int) -> str:
    return "binary" if n_classes == 2 else "multiclass"


def _pick_output(model: Any, prefer: str) -> str:
    names = [o.name for o in model.graph.output]
    return prefer if prefer in names else names[-1]


Scorer = Callable[[Any], Any]  # a native model's predict/predict_proba: frame or array in, array-like out


def _native_scores(task: str, predict_proba: Scorer | None, predict: Scorer) -> Callable[[Any], np.ndarray]:
    def run(df: Any) -> np.ndarray:
        if task in ("binary", "multiclass"):
            if predict_proba is None:
                raise RoostError(f"the {task} model has no predict_proba to check parity against")
            proba = np.asarray(predict_proba(df))
            return proba[:, 1] if task == "binary" else proba
        return np.asarray(predict(df)).reshape(-1)

    return run


def convert_sklearn(model: Any, sample: Any) -> Converted:
    """scikit-learn estimator or Pipeline → ONNX through skl2onnx (per-column inputs for ColumnTransformer)."""
    import pandas as pd
    from skl2onnx import convert_sklearn as skl_convert
    from skl2onnx.common.data_types import FloatTensorType, Int64TensorType, StringTensorType
    from sklearn.base import is_classifier
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    _check_sklearn_predictor(model)
    df = sample_frame(sample, list(getattr(model, "feature_names_in_", [])) or None)
    cols = _check_columns(df, list(getattr(model, "feature_names_in_", [])) or None)
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
    try:
        # converted with skl2onnx's defaults, then the ZipMap taken off: its `options` (zipmap=False) make it list every
        # sub-estimator with dir() first, ~30 % of a forest's conversion; the options only where no ZipMap came out
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
    task = _classifier_task(len(final.classes_)) if clf else "regression"
    onx = graph.columns_2d_to_1d(onx, cols) if per_column else graph.columns_to_matrix(onx, cols)
    onx = graph.spec_outputs(onx, task, _pick_output(onx, "probabilities" if clf else "variable"))
    native = _native_scores(task, getattr(model, "predict_proba", None), model.predict)

    def run_native(d: Any) -> np.ndarray:
        return native(d[cols] if per_column or hasattr(model, "feature_names_in_") else d[cols].to_numpy())

    return Converted(
        graph.finalize(onx),
        task,
        "sklearn",
        type(final).__name__,
        cols,
        run_native,
        [_py(c) for c in getattr(final, "classes_", [])],
    )


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


def _py(v: Any) -> Any:
    return v.item() if hasattr(v, "item") else v


def convert_boosting(model: Any, sample: Any, framework: str) -> Converted:
    """LightGBM or XGBoost (scikit-learn API or Booster) → ONNX through onnxmltools."""
    import onnxmltools
    from onnxmltools.convert.common.data_types import FloatTensorType

    names = None
    if framework == "lightgbm":
        names = (
            list(
                getattr(model, "feature_name_", None)
                or (model.feature_name() if hasattr(model, "feature_name") else [])
                or []
            )
            or None
        )
    else:
        fn = getattr(model, "feature_names_in_", None)
        if fn is None and type(model).__name__ == "Booster":
            fn = model.feature_names
        names = [str(n) for n in fn] if fn is not None else None
    df = sample_frame(sample, names)
    cols = _check_columns(df, names if names and not all(n.startswith("Column_") for n in names) else None)
    if framework == "lightgbm":
        _check_lightgbm_categories(model, df, cols)
    types = [("X", FloatTensorType([None, len(cols)]))]
    booster_only = type(model).__name__ == "Booster"
    try:
        if framework == "lightgbm":
            onx = onnxmltools.convert_lightgbm(model, initial_types=types, zipmap=False, target_opset=15)
        else:
            import copy

            plain = copy.deepcopy(model)  # onnxmltools reads features by position ('f%d'); drop the names
            (plain.get_booster() if hasattr(plain, "get_booster") else plain).feature_names = None
            onx = onnxmltools.convert_xgboost(plain, initial_types=types, target_opset=15)
    except Exception as exc:
        raise RoostError(
            f"{framework} model cannot be converted to ONNX: {str(exc).splitlines()[0]}",
            hint="check the model's objective is supported by onnxmltools",
        ) from exc
    out_names = [o.name for o in onx.graph.output]
    clf = "probabilities" in out_names
    pp: Scorer | None
    pred: Scorer
    if booster_only:
        n_cls = 2 if clf else 0
        pred, pp = _booster_scorers(model, framework, clf)
    else:
        n_cls = len(getattr(model, "classes_", [])) if clf else 0
        pp = getattr(model, "predict_proba", None)
        pred = model.predict
    if clf and n_cls == 0:
        n_cls = 2
    task = _classifier_task(n_cls) if clf else "regression"
    onx = graph.columns_to_matrix(onx, cols)
    onx = graph.spec_outputs(onx, task, "probabilities" if clf else _pick_output(onx, "variable"))
    proba = pp

    def on_columns(score: Scorer) -> Scorer:
        return lambda d: score(d[cols])

    native = _native_scores(task, on_columns(proba) if proba is not None else None, on_columns(pred))
    classes = [_py(c) for c in getattr(model, "classes_", [])] if not booster_only else ([0, 1] if clf else [])
    return Converted(graph.finalize(onx), task, framework, type(model).__name__, cols, native, classes)


def _check_lightgbm_categories(model: Any, df: Any, cols: list[str]) -> None:
    """A LightGBM categorical feature given as text/categories in the sample: say that the package takes its
    category code, and which code each category has (the ONNX graph compares codes, as LightGBM does inside)."""
    import pandas as pd

    text = [c for c in cols if not pd.api.types.is_numeric_dtype(df[c]) or isinstance(df[c].dtype, pd.CategoricalDtype)]
    if not text:
        return
    booster = getattr(model, "booster_", model)
    levels = list(getattr(booster, "pandas_categorical", None) or [])
    try:
        infos = booster.dump_model(num_iteration=1).get("feature_infos", {})
    except Exception:  # noqa: BLE001 - only makes the message more precise
        infos = {}
    categorical = [c for c in cols if (infos.get(c) or {}).get("values")]
    codes = dict(zip(categorical, levels, strict=False)) if len(categorical) == len(levels) else {}
    for c in text:
        if c not in categorical and infos:
            continue  # a numeric feature fed text: the input check names it
        cats = list(codes.get(c, []))
        shown = ", ".join(f"{v!r}→{i}" for i, v in enumerate(cats[:6])) + (", …" if len(cats) > 6 else "")
        raise RoostError(
            f"column {c!r} is a categorical feature of the LightGBM model and the sample holds its categories "
            f"({df[c].iloc[0]!r}, …): the ONNX package takes the category code instead"
            + (f" ({shown})" if shown else ""),
            hint=f"encode it first: pd.Categorical(df[{c!r}], categories={cats[:6]!r}{'…' if len(cats) > 6 else ''})"
            ".codes, in the sample and in requests"
            if cats
            else "encode it as the integer codes it was trained with, in the sample and in requests",
        )


def _booster_scorers(model: Any, framework: str, clf: bool) -> tuple[Scorer, Scorer | None]:
    """(predict, predict_proba) on a frame for a bare LightGBM/XGBoost Booster (no scikit-learn wrapper)."""
    raw_predict: Scorer
    if framework == "xgboost":
        import xgboost

        def raw_predict(a: Any) -> Any:
            return model.predict(xgboost.DMatrix(a, feature_names=model.feature_names))
    else:
        raw_predict = model.predict

    def pred(d: Any) -> Any:
        return raw_predict(d.to_numpy(dtype=np.float64))

    def proba(d: Any) -> np.ndarray:
        p = np.asarray(raw_predict(d.to_numpy(dtype=np.float64)))
        return np.column_stack([1 - p, p]) if p.ndim == 1 else p

    return pred, (proba if clf else None)


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
        return convert_boosting(model, sample, fw)
    if fw == "torch":
        return convert_torch(model, sample, task)
    from roost.model_import.onnxfile import convert_onnx

    return convert_onnx(model, task)
