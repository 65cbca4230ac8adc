"""`roost.responsible.group_fairness`: group fairness of a model (or of stored scores) on a table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from roost.errors import RoostError


def _frame(data: Any) -> tuple[Any, str]:
    """(DataFrame, name) from a frame or a source spec (file, glob, data set, request-log folder)."""
    if data is None:
        return None, ""
    if hasattr(data, "columns"):
        return data, "data frame"
    from roost.monitor.sources import load_source

    src = load_source(str(data))
    if src.frame is None:
        raise RoostError(f"{data} is a profile, not rows", hint="fairness needs the rows: pass a data file")
    return src.frame, src.name


def fairness(
    data: Any = None,
    sensitive: str | Sequence[str] = (),
    label: str | None = None,
    model: Any = None,
    run: str | None = None,
    score: str | None = None,
    threshold: float = 0.5,
    pos_label: Any = None,
    min_group: int = 30,
) -> Any:
    """A FairnessReport for `model` (or run R's model, or a `score` column) on `data` with `sensitive` column(s)."""
    from roost.modelpkg import load_model
    from roost.responsible.group_fairness import group_metrics

    cols = [sensitive] if isinstance(sensitive, str) else list(sensitive)
    frame, name = _frame(data)
    pred = None
    if run is not None:
        from roost.monitor.sources import PACKAGE, from_run, run_dir
        from roost.registry.api import get_run

        r = get_run(run)
        pkg = run_dir(r) / PACKAGE
        pred = load_model(pkg) if (pkg / "model.onnx").is_file() else None
        if frame is None:
            src = from_run(r["run_id"], want="evaluation")
            frame, name = src.frame, src.name
        label = label or (pred.signature.get("label") if pred else None)
    elif model is not None:
        pred = model if hasattr(model, "predict") else load_model(model)
        label = label or pred.signature.get("label")
    if frame is None:
        raise RoostError("no data to evaluate", hint="pass --data FILE (with the label and sensitive columns)")
    absent = [c for c in cols if c not in frame.columns]
    if absent:
        raise RoostError(
            f"sensitive column(s) {absent} not in the data", hint=f"columns: {', '.join(map(str, frame.columns[:20]))}"
        )
    if label is not None and label not in frame.columns:
        raise RoostError(
            f"label column {label!r} not in the data",
            hint="pass --label COLUMN, or leave it out to get selection rates only",
        )
    if score is None and pred is None:
        score = next((c for c in ("pred_probability",) if c in frame.columns), None)
    if score is not None:
        if score not in frame.columns:
            raise RoostError(f"score column {score!r} not in the data", hint="pass an existing column or a model")
        try:
            y_score = frame[score].to_numpy(dtype=np.float64)
        except (TypeError, ValueError):
            raise RoostError(
                f"score column {score!r} does not hold numbers (dtype {frame[score].dtype})",
                hint="pass the column of predicted probabilities or scores",
            ) from None
    elif pred is not None:
        if pred.task != "binary":
            raise RoostError(
                f"fairness metrics need a binary classifier; this model is {pred.task}",
                hint="slice a regression model with `roost monitor analyze` instead",
            )
        y_score = np.asarray(pred.predict(frame), dtype=np.float64)
    else:
        raise RoostError("nothing to score the data with", hint="pass --model, --run or --score COLUMN")
    rep = group_metrics(
        frame[cols],
        y_true=frame[label] if label else None,
        y_score=y_score,
        threshold=threshold,
        min_group=min_group,
        pos_label=pos_label,
    )
    rep.source = name
    return rep
