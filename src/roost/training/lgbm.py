"""LightGBM through the same contract; ONNX trees built with numpy from the booster (onnxmltools where not covered),
string columns encoded in-graph."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from roost.training.base import Estimator, LoopInfo, check_range, default_threads
from roost.training.preprocess import FeatureSpec, encode_labels, infer_spec, infer_task

log = logging.getLogger(__name__)

OUTPUTS = {"binary": ["probability"], "multiclass": ["probabilities"], "regression": ["prediction"]}


class LightGBMModel(Estimator):
    """Gradient-boosted trees (LightGBM); categorical columns use LightGBM's native categorical splits."""

    model_type = "lightgbm"
    framework: ClassVar[str] = "lightgbm"
    step_kind: ClassVar[str] = "boosting_round"
    DEFAULTS: ClassVar[dict[str, Any]] = {
        "n_estimators": 1000,
        "learning_rate": 0.05,
        "num_leaves": 31,
        "min_child_samples": 20,
        "subsample": 1.0,
        "colsample_bytree": 1.0,
        "reg_lambda": 0.0,
        "early_stopping_rounds": 50,
        "seed": 0,
        "n_jobs": None,
        "log_every": 10,
    }

    def _validate(self) -> None:
        """Check parameter ranges."""
        p = self.params
        check_range("n_estimators", p["n_estimators"], 1, 100_000, integer=True)
        check_range("learning_rate", p["learning_rate"], 1e-6, 1.0)
        check_range("num_leaves", p["num_leaves"], 2, 131_072, integer=True)
        check_range("min_child_samples", p["min_child_samples"], 1, 1e9, integer=True)
        check_range("subsample", p["subsample"], 0.01, 1.0)
        check_range("colsample_bytree", p["colsample_bytree"], 0.01, 1.0)
        check_range("early_stopping_rounds", p["early_stopping_rounds"], 0, 100_000, integer=True)

    def matrix(self, X: pd.DataFrame) -> np.ndarray:
        """The float32 [N, F] matrix LightGBM sees: numeric raw, categorical index, hashed id as a number."""
        assert self.spec_ is not None
        cols = self.spec_.encode(X)
        return np.stack([c.astype(np.float32) for c in cols], axis=1) if cols else np.zeros((len(X), 0), np.float32)

    def fit(
        self,
        X: pd.DataFrame,
        y: pd.Series,
        X_val: pd.DataFrame | None = None,
        y_val: pd.Series | None = None,
        *,
        spec: FeatureSpec | None = None,
        callbacks: Any = (),
        checkpoint_dir: Path | None = None,
        resume: dict[str, Any] | None = None,
    ) -> LightGBMModel:
        """Fit with early stopping on (X_val, y_val) when given."""
        import lightgbm as lgb

        from roost.errors import ConfigError
        from roost.training.budget import current_deadline

        if resume is not None:
            raise ConfigError("resume: only torch models keep resumable checkpoints", hint="re-run the training")
        self._validate()
        self.task_ = self.task or infer_task(y)
        self.spec_ = spec or infer_spec(X)
        yt, self.classes_ = encode_labels(y, self.task_)
        p = self.params
        kw = {
            "n_estimators": p["n_estimators"],
            "learning_rate": p["learning_rate"],
            "num_leaves": p["num_leaves"],
            "min_child_samples": p["min_child_samples"],
            "subsample": p["subsample"],
            "subsample_freq": 1 if p["subsample"] < 1 else 0,
            "colsample_bytree": p["colsample_bytree"],
            "reg_lambda": p["reg_lambda"],
            "random_state": p["seed"],
            "verbose": -1,
        }
        kw["n_jobs"] = p["n_jobs"] if p["n_jobs"] is not None else default_threads()
        cls = lgb.LGBMRegressor if self.task_ == "regression" else lgb.LGBMClassifier
        self.model_ = cls(**kw)
        cat = [i for i, c in enumerate(self.spec_.columns) if c.kind == "categorical"]
        fit_kw: dict[str, Any] = {"categorical_feature": cat or "auto"}
        info = LoopInfo(epochs=p["n_estimators"], steps_per_epoch=1, unit="round")
        for cb in callbacks:
            getattr(cb, "on_train_begin", lambda s: None)(info)
        relay = _Relay(callbacks, info, p["log_every"], p["n_estimators"])
        lgb_cbs: list[Callable[..., Any]] = [relay]
        if X_val is not None and y_val is not None and len(X_val):
            yv = encode_labels(y_val, self.task_, self.classes_ or None)[0]
            fit_kw.update(eval_X=(self.matrix(X_val),), eval_y=(yv,), eval_names=["val"])
            if p["early_stopping_rounds"]:  # 0: every round (the library's default, no early stopping)
                lgb_cbs.append(lgb.early_stopping(p["early_stopping_rounds"], first_metric_only=True, verbose=False))
        if current_deadline() is not None:  # a time budget's deadline: stop at the round that passes it
            lgb_cbs.append(_StopAtDeadline())
        self.model_.fit(self.matrix(X), yt, callbacks=lgb_cbs, **fit_kw)
        self.model_._Booster = float32_thresholds(self.model_.booster_)
        self.best_iteration_ = int(getattr(self.model_, "best_iteration_", 0) or p["n_estimators"])
        self.history_ = relay.history
        info.best_epoch = self.best_iteration_
        for cb in callbacks:
            getattr(cb, "on_train_end", lambda s: None)(info)
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Binary P(positive) [N], class probabilities [N, C] or regression values [N] (LightGBM)."""
        self._check_fitted()
        M = self.matrix(X)
        if self.task_ == "regression":
            return np.asarray(self.model_.predict(M))
        P = np.asarray(self.model_.predict_proba(M))
        return P[:, 1] if self.task_ == "binary" else P

    def predict_at(self, X: pd.DataFrame, rounds: int) -> np.ndarray:
        """predict() with the first `rounds` boosting rounds instead of the best ones (cross_fit's out-of-fold
        predictions at a round the scored rows did not choose)."""
        self._check_fitted()
        M = self.matrix(X)
        if self.task_ == "regression":
            return np.asarray(self.model_.predict(M, num_iteration=rounds))
        P = np.asarray(self.model_.predict_proba(M, num_iteration=rounds))
        return P[:, 1] if self.task_ == "binary" else P

    def export_onnx(self, directory: Path, sample: pd.DataFrame) -> float:
        """model.onnx = raw columns → index/cast → concat → tree ensemble; returns parity on `sample`."""
        import onnx
        from onnx import TensorProto, helper, numpy_helper

        from roost.training.export import parity
        from roost.training.onnx_graph import attach_matrix, finalize

        assert self.spec_ is not None and self.task_ is not None
        model, matrix = booster_graph(self.model_, len(self.spec_.columns))
        g = model.graph
        outs = {o.name: o for o in g.output}
        if self.task_ == "binary":
            g.initializer.append(numpy_helper.from_array(np.array(1, dtype=np.int64), "roost::one"))
            g.node.append(helper.make_node("Gather", ["probabilities", "roost::one"], ["probability"], axis=1))
            new = [helper.make_tensor_value_info("probability", TensorProto.FLOAT, [None])]
        elif self.task_ == "multiclass":
            new = [outs["probabilities"]]
        else:
            g.initializer.append(numpy_helper.from_array(np.array([-1], dtype=np.int64), "roost::flat"))
            g.node.append(helper.make_node("Reshape", ["variable", "roost::flat"], ["prediction"]))
            new = [helper.make_tensor_value_info("prediction", TensorProto.FLOAT, [None])]
        del g.output[:]
        g.output.extend(new)
        model = finalize(attach_matrix(model, self.spec_.columns, matrix))
        path = Path(directory) / "model.onnx"
        path.parent.mkdir(parents=True, exist_ok=True)
        onnx.save_model(model, str(path))
        name = OUTPUTS[self.task_][0]
        return parity(path, self.spec_.raw_inputs(sample), {name: np.asarray(self.predict(sample))})

    def signature(self, label: str | None = None) -> dict[str, Any]:
        """signature.json content (binary packages carry `probability` only)."""
        sig = super().signature(label)
        sig["outputs"] = [o for o in sig["outputs"] if o["name"] in OUTPUTS[self.task_ or "binary"]]
        return sig

    def save_native(self, directory: Path) -> None:
        """native/model.txt (LightGBM text model)."""
        directory.mkdir(parents=True, exist_ok=True)
        self.model_.booster_.save_model(str(directory / "model.txt"))


MATRIX = "roost::matrix"  # the booster graph's float [N, F] input, made by attach_matrix from the raw columns


def booster_graph(model: Any, n_features: int) -> tuple[Any, str]:
    """(ONNX graph of a fitted LGBMModel on a float [N, n_features] input, the input's name): built with numpy from
    the booster's text (model_import.fasttrees; the same graph, 6-9x faster than onnxmltools), through onnxmltools
    where that does not cover the model. Outputs `label` + `probabilities` (classifiers) or `variable` [N, 1].

    Categorical splits are built as onnxmltools builds them (one BRANCH_EQ node per category): exact here, where a
    categorical column reaches the trees as its vocabulary index (a whole number >= 0, never NaN)."""
    from roost.model_import.fasttrees import lightgbm_graph

    try:
        fast = lightgbm_graph(model, n_features, categorical_splits=True, input_name=MATRIX)
    except (KeyError, ValueError, TypeError, IndexError, AttributeError):  # a model text of another shape
        fast = None
    if fast is not None:
        return fast, MATRIX
    import onnxmltools
    from onnxmltools.convert.common.data_types import FloatTensorType

    log.debug("LightGBM model not covered by the numpy tree build: converting with onnxmltools")
    types = [("input", FloatTensorType([None, n_features]))]
    return onnxmltools.convert_lightgbm(model, initial_types=types, zipmap=False), "input"


SMALL_TABLE_ROWS = 10_000
MIN_TREE_COLUMNS = 4  # on narrow tables half the columns is one or two per tree (titanic: 3 columns)
SMALL_TABLE: dict[str, Any] = {
    "num_leaves": 7,
    "min_child_samples": 20,
    "learning_rate": 0.03,
    "colsample_bytree": 0.5,
    "reg_lambda": 1.0,
}


# The rounds cap of auto's small-table LightGBM candidate: with its lower learning rate and fewer leaves the model's
# 1000 rounds cut it before early stopping on tables with much structure (a 6,259-row price table: best round = the
# cap, 165.7 RMSE; with the cap lifted early stopping chose round 3,529, 157.6). Early stopping decides, not the cap.
SMALL_TABLE_ROUNDS = 10_000


def candidate_params(n_rows: int, n_cols: int | None = None) -> dict[str, Any]:
    """auto's LightGBM candidate's parameters: table_defaults, with SMALL_TABLE_ROUNDS as the rounds cap where the
    small-table settings apply (early stopping ends it)."""
    out = table_defaults(n_rows, n_cols)
    return {**out, "n_estimators": SMALL_TABLE_ROUNDS} if out else out


def table_defaults(n_rows: int, n_cols: int | None = None) -> dict[str, Any]:
    """The LightGBM parameters `model: auto` uses for `n_rows` training rows and `n_cols` feature columns: on small
    tables fewer leaves, a lower learning rate, column subsampling and L2 (they overfit less); else the model
    defaults. Column subsampling leaves each tree at least MIN_TREE_COLUMNS columns (all of them when fewer)."""
    if n_rows >= SMALL_TABLE_ROWS:
        return {}
    out = dict(SMALL_TABLE)
    if n_cols:
        out["colsample_bytree"] = min(1.0, max(float(out["colsample_bytree"]), MIN_TREE_COLUMNS / n_cols))
    return out


def float32_thresholds(booster: Any) -> Any:
    """Round numeric split thresholds down to float32 so ONNX (float32) trees split float32 inputs identically.

    For float32 inputs x, `x <= t` equals `x <= t32` when t32 is the largest float32 ≤ t, so LightGBM's own
    predictions do not change; ONNX TreeEnsemble stores thresholds as float32, where rounding *up* would send
    values in (t, t32] the wrong way (seen: 7e-3 probability differences on breast_cancer).
    """
    import lightgbm as lgb

    lines = booster.model_to_string().split("\n")
    kinds: dict[int, list[int]] = {}
    tree = -1
    for ln in lines:
        if ln.startswith("Tree="):
            tree = int(ln.split("=", 1)[1])
        elif ln.startswith("decision_type="):
            kinds[tree] = [int(v) for v in ln.split("=", 1)[1].split()]
    tree = -1
    for k, ln in enumerate(lines):
        if ln.startswith("Tree="):
            tree = int(ln.split("=", 1)[1])
        elif ln.startswith("threshold="):
            vals = ln.split("=", 1)[1].split()
            out = []
            for v, dt in zip(vals, kinds.get(tree, [0] * len(vals))):
                if dt & 1:  # categorical split: the value indexes cat_threshold, keep it
                    out.append(v)
                    continue
                t = float(v)
                t32 = np.float32(t)
                if float(t32) > t:
                    t32 = np.nextafter(t32, np.float32(-np.inf))
                out.append(repr(float(t32)))
            lines[k] = "threshold=" + " ".join(out)
    lines = [ln for ln in lines if not ln.startswith("tree_sizes=")]  # sizes changed; LightGBM re-parses
    return lgb.Booster(model_str="\n".join(lines))


class _Relay:
    """LightGBM callback that forwards eval results to roost callbacks every `every` iterations."""

    order = 30

    def __init__(self, callbacks: Any, info: LoopInfo, every: int, total: int) -> None:
        self.callbacks, self.info, self.every, self.total = list(callbacks), info, max(1, every), total
        self.history: list[dict[str, float]] = []

    def __call__(self, env: Any) -> None:
        it = env.iteration + 1
        logs: dict[str, float] = {}
        for data, metric, value, _ in env.evaluation_result_list:
            prefix = "val" if data == "val" else "train"
            key = "loss" if metric in ("binary_logloss", "multi_logloss", "l2") else metric
            logs.setdefault(f"{prefix}_{key}", float(value))
        self.info.epoch = self.info.step = it
        if it % self.every == 0 or it == self.total:
            self.history.append({"epoch": it, **logs})
            for cb in self.callbacks:
                getattr(cb, "on_epoch_end", lambda s, lg: None)(self.info, logs)


class _StopAtDeadline:
    """LightGBM callback: ends boosting once the time budget's deadline (train.budget.deadline) has passed, keeping
    the best round so far on the first validation metric (the last round without validation rows)."""

    order = 40  # after early stopping's (30): an earlier stop there wins

    def __init__(self) -> None:
        self.best: tuple[int, float, list[Any]] | None = None

    def __call__(self, env: Any) -> None:
        import lightgbm as lgb

        from roost.training.budget import past_deadline

        results = list(env.evaluation_result_list or [])
        if results:
            value, higher = float(results[0][2]), bool(results[0][3])
            if self.best is None or (value > self.best[1] if higher else value < self.best[1]):
                self.best = (env.iteration, value, results)
        if past_deadline():
            best_iter, best_results = (self.best[0], self.best[2]) if self.best else (env.iteration, results)
            raise lgb.callback.EarlyStopException(best_iter, best_results)
