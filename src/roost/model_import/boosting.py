"""LightGBM and XGBoost models (scikit-learn API or Booster) → ONNX with raw-column inputs: the tree ensemble built
from the library's own dump (roost.model_import.fasttrees) where it covers the model, else through onnxmltools."""

from __future__ import annotations

from typing import Any

import numpy as np

from roost.errors import RoostError
from roost.model_import import graph
from roost.model_import.converted import Converted
from roost.model_import.inputs import (
    Scorer,
    check_columns,
    classifier_task,
    native_scores,
    pick_output,
    plain_value,
    sample_frame,
)


def convert_boosting(model: Any, sample: Any, framework: str) -> Converted:
    """LightGBM or XGBoost (scikit-learn API or Booster) → ONNX: the tree ensemble built from the library's own dump
    (roost.model_import.fasttrees) where it covers the model, else through onnxmltools."""
    from onnxmltools.convert.common.data_types import FloatTensorType

    from roost.model_import.fasttrees import fast_trees

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
    cols = check_columns(df, names if names and not all(n.startswith("Column_") for n in names) else None)
    if framework == "lightgbm":
        _check_lightgbm_categories(model, df, cols)
    types = [("X", FloatTensorType([None, len(cols)]))]
    booster_only = type(model).__name__ == "Booster"
    onx = fast_trees(model, framework, len(cols))  # numpy from the library's dump; None: not covered
    if onx is None:
        try:
            onx = _onnxmltools(model, framework, types)
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
    task = classifier_task(n_cls) if clf else "regression"
    onx = graph.columns_to_matrix(onx, cols)
    onx = graph.spec_outputs(onx, task, "probabilities" if clf else pick_output(onx, "variable"))
    proba = pp

    def on_columns(score: Scorer) -> Scorer:
        return lambda d: score(d[cols])

    native = native_scores(task, on_columns(proba) if proba is not None else None, on_columns(pred))
    classes = [plain_value(c) for c in getattr(model, "classes_", [])] if not booster_only else ([0, 1] if clf else [])
    return Converted(graph.finalize(onx), task, framework, type(model).__name__, cols, native, classes)


def _onnxmltools(model: Any, framework: str, types: list[Any]) -> Any:
    """A LightGBM/XGBoost model → ONNX through onnxmltools (input X)."""
    import copy

    import onnxmltools

    if framework == "lightgbm":
        return onnxmltools.convert_lightgbm(model, initial_types=types, zipmap=False, target_opset=15)
    plain = copy.deepcopy(model)  # onnxmltools reads features by position ('f%d'); drop the names
    (plain.get_booster() if hasattr(plain, "get_booster") else plain).feature_names = None
    return onnxmltools.convert_xgboost(plain, initial_types=types, target_opset=15)


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
