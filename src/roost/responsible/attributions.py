"""Feature attributions for any roost model package: global importance and per-prediction explanations.

`method="auto"` is the most exact method the package allows (roost.responsible.native): TreeSHAP for LightGBM
packages with `native/model.txt`, linear SHAP for logreg and Integrated Gradients for other torch nets with
`native/model.pt`; every other package (imported ONNX, no native checkpoint) gets shap's PermutationExplainer on
`predictor.predict` (model-agnostic, probability space). Exact methods are checked against the ONNX model: if the
attributions do not add up to what the package predicts, roost says so and falls back to the agnostic method.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from roost.errors import RoostError

log = logging.getLogger(__name__)
METHODS = ("auto", "tree", "linear", "ig", "permutation")
ADDITIVITY_TOL = 1e-3


@dataclass
class Explanation:
    """Attributions `values` [rows, features] with `base` so that base + Σ values = the model output in `space`."""

    method: str
    features: list[str]
    values: np.ndarray
    base: np.ndarray
    space: str
    data: Any
    output: np.ndarray
    notes: list[str] = field(default_factory=list)

    def importance(self) -> list[tuple[str, float]]:
        """Features by mean |attribution| (global importance), largest first."""
        imp = np.abs(self.values).mean(axis=0) if len(self.values) else np.zeros(len(self.features))
        return sorted(zip(self.features, imp.tolist()), key=lambda kv: -kv[1])

    def row(self, i: int, top: int | None = None) -> list[tuple[str, Any, float]]:
        """(feature, value, attribution) for one explained row, by |attribution|."""
        vals = self.data.iloc[i]
        out = sorted(
            ((f, vals[f], float(self.values[i, j])) for j, f in enumerate(self.features)), key=lambda t: -abs(t[2])
        )
        return out[:top] if top else out

    def to_dict(self, rows: int = 20) -> dict[str, Any]:
        """JSON-able form: importance and the first `rows` explained rows."""

        def plain(v: Any) -> Any:  # JSON: missing (None, NaN, NaT, pd.NA) and ±inf as null, other objects as text
            import pandas as pd

            if v is None or (pd.api.types.is_scalar(v) and pd.isna(v)):
                return None
            v = v.item() if hasattr(v, "item") and not isinstance(v, pd.Timestamp) else v
            if isinstance(v, float) and not np.isfinite(v):
                return None
            return v if isinstance(v, (str, int, float, bool)) else str(v)

        return {
            "kind": "explanation",
            "method": self.method,
            "space": self.space,
            "notes": self.notes,
            "importance": [{"feature": f, "mean_abs": v} for f, v in self.importance()],
            "rows": [
                {
                    "base": float(self.base[i]),
                    "output": float(self.output[i]),
                    "attributions": [{"feature": f, "value": plain(v), "attribution": a} for f, v, a in self.row(i)],
                }
                for i in range(min(rows, len(self.values)))
            ],
        }


def _encode(df: Any, features: list[str]) -> tuple[np.ndarray, list[np.ndarray | None]]:
    """A float matrix for shap's masker (categories as codes) and the per-column code books."""
    import pandas as pd

    cols: list[np.ndarray] = []
    books: list[np.ndarray | None] = []
    for f in features:
        s = df[f]
        if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
            cols.append(s.to_numpy(dtype=np.float64, na_value=np.nan))
            books.append(None)
        else:
            codes, uniq = pd.factorize(s.astype(object), use_na_sentinel=True)
            c = codes.astype(np.float64)
            c[codes < 0] = np.nan
            cols.append(c)
            books.append(np.asarray(uniq, dtype=object))
    return np.stack(cols, axis=1), books


def _decode(X: np.ndarray, features: list[str], books: list[np.ndarray | None]) -> Any:
    """The inverse of `_encode`: a DataFrame the predictor accepts."""
    import pandas as pd

    data = {}
    for j, (f, book) in enumerate(zip(features, books)):
        if book is None:
            data[f] = X[:, j]
        else:
            codes = X[:, j]
            out = np.full(codes.shape, None, dtype=object)
            ok = ~np.isnan(codes)
            out[ok] = book[codes[ok].astype(np.int64)]
            data[f] = out
    return pd.DataFrame(data)


def permutation_shap(
    predictor: Any, df: Any, background: Any, seed: int = 0, permutations: int = 10, target: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """(SHAP values, base values) from shap.PermutationExplainer on the package's predictions."""
    import pandas as pd
    import shap

    feats = list(predictor.inputs)
    both = pd.concat([background[feats], df[feats]], ignore_index=True)
    X, books = _encode(both, feats)
    Xb, Xd = X[: len(background)], X[len(background) :]

    def f(M: np.ndarray) -> np.ndarray:
        out = np.asarray(predictor.predict(_decode(M, feats, books)), dtype=np.float64)
        return out[:, target] if out.ndim == 2 else out

    masker = shap.maskers.Independent(Xb, max_samples=len(Xb))
    explainer = shap.PermutationExplainer(f, masker, seed=seed)
    sv = explainer(Xd, max_evals=max(permutations * 2 * (len(feats) + 1), 2 * len(feats) + 1), silent=True)
    return np.asarray(sv.values, dtype=np.float64), np.asarray(sv.base_values, dtype=np.float64).reshape(-1)


def _native_kind(pkg: Path, meta: dict[str, Any]) -> str | None:
    """tree, linear, ig or None: what the package's native checkpoint allows."""
    nat = pkg / "native"
    if (nat / "model.txt").is_file():
        return "tree"
    if (nat / "model.pt").is_file() and (nat / "spec.json").is_file():
        if meta.get("model_type") == "two_tower":
            return None
        return "linear" if meta.get("model_type") == "logreg" else "ig"
    return None


def _output(predictor: Any, df: Any, space: str, target: int) -> np.ndarray:
    """The package's own output for `df`, in `space` (log-odds from the probability for binary models)."""
    p = np.asarray(predictor.predict(df), dtype=np.float64)
    if p.ndim == 2:
        p = p[:, target]
    if space == "log-odds":
        q = np.clip(p, 1e-7, 1 - 1e-7)
        return np.log(q / (1 - q))
    if space == "log(prediction)":  # a regression model fitted on log(label)
        return np.log(np.maximum(p, np.finfo(np.float64).tiny))
    return p


def _multiclass_error(pred: Any, df: Any, bg: Any, kind: str, target: int, margin: np.ndarray) -> float:
    """Largest gap between the softmax of every class's base + Σφ (TreeSHAP or linear SHAP) and the package's
    predicted probabilities."""
    from roost.responsible import native

    probs = np.asarray(pred.predict(df), dtype=np.float64)
    margins = []
    for k in range(probs.shape[1]):
        if k == target:
            margins.append(margin)
            continue
        v, b, _ = native.tree_shap(pred, df, k) if kind == "tree" else native.linear_shap(pred.path, df, bg, k)
        margins.append(b + v.sum(axis=1))
    m = np.stack(margins, axis=1)
    e = np.exp(m - m.max(axis=1, keepdims=True))
    return float(np.max(np.abs(e / e.sum(axis=1, keepdims=True) - probs), initial=0.0))


def explain(
    model: Any,
    data: Any,
    rows: int = 100,
    background: int = 50,
    method: str = "auto",
    seed: int = 0,
    target: int | None = None,
    steps: int = 64,
) -> Explanation:
    """Explain the first `rows` rows of `data` for a package (path, `name@alias`, `name/3` or Predictor)."""
    from roost.modelpkg import load_model

    if method not in METHODS:
        raise RoostError(f"unknown explanation method {method!r}", hint=f"one of {', '.join(METHODS)}")
    pred = model if hasattr(model, "predict") and hasattr(model, "inputs") else load_model(model)
    missing = [c for c in pred.inputs if c not in data.columns]
    if missing:
        raise RoostError(f"the data lacks the model's input column(s) {missing}", hint="pass the model's input table")
    if len(data) == 0:
        raise RoostError("no rows to explain", hint="pass data with at least one row")
    for what, n in (("rows", rows), ("background", background), ("steps", steps)):
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise RoostError(f"{what} must be a whole number ≥ 1, got {n!r}", hint=f"pass {what}=100 or so")
    if target is None:
        target = 1 if pred.task == "binary" else 0
    rng = np.random.default_rng(seed)
    df = data.iloc[:rows].reset_index(drop=True)
    bg_idx = rng.choice(len(data), size=min(background, len(data)), replace=False)
    bg = data.iloc[np.sort(bg_idx)].reset_index(drop=True)
    kind = _native_kind(pred.path, pred.meta) if method == "auto" else (None if method == "permutation" else method)
    notes: list[str] = []
    if kind is not None:
        try:
            from roost.responsible import native

            gap = 0.0
            if kind == "tree":
                vals, base, space = native.tree_shap(pred, df, target)
                name = "TreeSHAP (LightGBM native, tree-path-dependent)"
            elif kind == "linear":
                vals, base, space = native.linear_shap(pred.path, df, bg, 0 if pred.task != "multiclass" else target)
                name = "linear SHAP (interventional, exact for the logit)"
            else:
                vals, base, space, gap = native.integrated_gradients(
                    pred.path, df, bg, steps, 0 if pred.task != "multiclass" else target
                )
                name = f"Integrated Gradients ({steps} steps, background-mean baseline)"
                notes.append(f"completeness gap (Σ attributions vs output change): {gap:.2e}")
            if pred.task != "multiclass":
                out = _output(pred, df, space, target)
                err = float(np.max(np.abs(base + vals.sum(axis=1) - out), initial=0.0))
                check = "max |base + Σφ − output|"
            else:  # a class margin is no output of the package: its softmax over every class is
                out = base + vals.sum(axis=1)
                err = _multiclass_error(pred, df, bg, kind, target, out) if kind != "ig" else float("nan")
                check = "max |softmax of every class's base + Σφ − the package's probabilities|"
            if kind != "ig" and not err <= ADDITIVITY_TOL:  # NaN (a NaN attribution or output) fails too
                raise ValueError(f"attributions differ from the ONNX model's output by {err:.2e}")
            if kind != "ig" or pred.task != "multiclass":
                notes.append(f"additivity vs the ONNX model: {check} = {err:.2e}")
            return Explanation(name, list(pred.inputs), vals, base, space, df, out, notes)
        except (ValueError, KeyError, OSError, RuntimeError, ImportError) as exc:
            if method != "auto":
                raise RoostError(f"{method} explanation failed: {exc}", hint="use --method permutation") from exc
            notes.append(f"native explanation unavailable ({exc}); used the model-agnostic method")
            log.warning("native explanation unavailable: %s", exc)
    vals, base = permutation_shap(pred, df, bg, seed, target=target)
    out = base + vals.sum(axis=1)
    space = "probability" if pred.task != "regression" else "prediction"
    notes.append(f"model-agnostic: shap PermutationExplainer on predictor.predict with {len(bg)} background rows")
    return Explanation("permutation SHAP (model-agnostic)", list(pred.inputs), vals, base, space, df, out, notes)
