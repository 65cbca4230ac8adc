"""The base of roost's PyTorch estimators: a network on raw columns, trained by `roost.training.trainer.fit_network`.

The estimators themselves live in `roost.training.models` (logreg, mlp, wide_deep, dcn) and `roost.training.two_tower`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from roost.errors import ConfigError
from roost.training.base import Estimator, TrainerParams, check_range
from roost.training.preprocess import FeatureSpec, encode_labels, infer_spec, infer_task

__all__ = ["TorchModel"]


def _trainer_defaults() -> dict[str, Any]:
    """TrainerParams defaults as a dict."""
    return asdict(TrainerParams())


def log_labels(task: str, y: np.ndarray) -> np.ndarray:
    """log(y) of regression labels for `model.params.target: log`; ConfigError for another task or a label ≤ 0."""
    if task != "regression":
        raise ConfigError(
            f"model.params.target: log is for regression labels, this is a {task} task", hint="use target: raw"
        )
    y = np.asarray(y, dtype=np.float64)
    bad = y[~(y > 0)]
    if bad.size:
        raise ConfigError(
            f"model.params.target: log needs a label above 0 on every row; {bad.size} of {y.size} are not "
            f"(e.g. {float(bad[0])!r})",
            hint="use target: raw, or shift the label so that every value is positive",
        )
    return np.asarray(np.log(y), dtype=np.float64)


class TorchModel(Estimator):
    """A PyTorch network on raw columns, trained by `roost.training.trainer.fit_network`."""

    framework: ClassVar[str] = "torch"
    log_target_: tuple[float, float, float] | None = None  # set by fit() under `target: log`
    NET: ClassVar[dict[str, Any]] = {}
    TRAINER: ClassVar[dict[str, Any]] = {}

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        cls.DEFAULTS = {**_trainer_defaults(), **cls.TRAINER, **cls.NET}

    def _validate(self) -> None:
        """Check parameter ranges (raises ConfigError naming the parameter)."""
        p = self.params
        if p["batch_size"] != "auto":
            check_range("batch_size", p["batch_size"], 1, 1 << 20, integer=True)
        check_range("lr", p["lr"], 1e-7, 10.0)
        check_range("weight_decay", p["weight_decay"], 0.0, 10.0)
        check_range("epochs", p["epochs"], 1, 100_000, integer=True)
        check_range("patience", p["patience"], 1, 100_000, integer=True)
        if "dropout" in p:
            check_range("dropout", p["dropout"], 0.0, 0.95)
        if "hidden" in p and not (
            isinstance(p["hidden"], (list, tuple)) and all(isinstance(h, int) and h > 0 for h in p["hidden"])
        ):
            raise ConfigError(
                f"model.params.hidden: {p['hidden']!r} is not a list of positive integers",
                hint="e.g. hidden: [256, 128]",
            )

    def build(self, spec: FeatureSpec, n_out: int) -> Any:
        """The torch `Network` for `spec` with `n_out` raw outputs."""
        raise NotImplementedError

    def solve(
        self,
        spec: FeatureSpec,
        X: pd.DataFrame,
        y: np.ndarray,
        val: tuple[list[np.ndarray], np.ndarray] | None,
        callbacks: Any,
    ) -> Any:
        """Fit `net_` without the training loop and return its LoopState, or None for the loop (the default)."""
        return None

    def stops_early(self, n_rows: int, spec: FeatureSpec) -> bool:
        """Whether a fit of `n_rows` rows of `spec` early-stops on its validation rows (the loop: yes)."""
        return True

    def select(self, spec: FeatureSpec) -> FeatureSpec:
        """The columns this model uses (all by default)."""
        return spec

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
    ) -> TorchModel:
        """Fit on (X, y) with early stopping on (X_val, y_val); `resume` is a checkpoint dict."""
        import torch

        from roost.training.trainer import fit_network

        self._validate()
        if resume is not None:
            spec = FeatureSpec.from_dict(resume["spec"])
            self.task_, self.classes_ = resume["task"], resume["classes"]
            y_mean, y_std = resume["y_scale"]
        else:
            self.task_ = self.task or infer_task(y)
            spec = self.select(spec or infer_spec(X))
        yt, self.classes_ = encode_labels(y, self.task_, self.classes_ or None)
        yv = encode_labels(y_val, self.task_, self.classes_)[0] if y_val is not None else None
        log_target = self.params.get("target", "raw") == "log"
        if log_target:  # the network learns log(label); head() turns its output back (nn.Head)
            yt, yv = log_labels(self.task_, yt), (None if yv is None else log_labels(self.task_, yv))
        if resume is None:
            y_mean, y_std = (float(yt.mean()), float(yt.std() or 1.0)) if self.task_ == "regression" else (0.0, 1.0)
        self.spec_ = spec
        n_out = len(self.classes_) if self.task_ == "multiclass" else 1
        tp = TrainerParams(**{f.name: self.params[f.name] for f in fields(TrainerParams)})
        torch.manual_seed(tp.seed)
        self.net_ = self.build(spec, n_out)
        self.y_scale_ = (y_mean, y_std)
        val = (spec.encode(X_val), yv) if X_val is not None and yv is not None else None
        extra = {
            "spec": spec.to_dict(),
            "task": self.task_,
            "classes": self.classes_,
            "y_scale": [y_mean, y_std],
            "model_type": self.model_type,
            "params": self.get_params(),
        }
        state = None if resume is not None else self.solve(spec, X, yt, val, callbacks)
        if state is None:  # the training loop (a resumed fit always: its checkpoint is the loop's)
            state = fit_network(
                self.net_,
                self.task_,
                (spec.encode(X), yt),
                val,
                tp,
                callbacks=callbacks,
                checkpoint_dir=checkpoint_dir,
                resume=resume,
                y_scale=(y_mean, y_std),
                extra=extra,
            )
        self.history_ = state.history
        self.state_ = state
        self.log_target_ = self._log_target(spec.encode(X), yt) if log_target else None
        return self

    def _log_target(self, cols: list[np.ndarray], log_y: np.ndarray) -> tuple[float, float, float]:
        """(smear, lo, hi) of a network fitted on log labels `log_y`: Duan's smearing factor, the mean of
        exp(log label − log prediction) over the training rows, and the log range predictions are clipped to (the
        training labels' range, one unit wider on each side: a factor e)."""
        from roost.training.export import torch_outputs
        from roost.training.nn import Head

        pred = np.asarray(torch_outputs(Head(self.net_, "regression", *self.y_scale_), cols)[0], dtype=np.float64)
        smear = float(np.mean(np.exp(np.clip(log_y - pred, -50.0, 50.0))))
        return smear, float(log_y.min()) - 1.0, float(log_y.max()) + 1.0

    def head(self) -> Any:
        """The fitted network wrapped to produce package outputs from raw columns."""
        from roost.training.nn import Head

        self._check_fitted()
        return Head(self.net_, self.task_ or "binary", *self.y_scale_, log_target=self.log_target_)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Binary P(positive) [N], class probabilities [N, C], or regression values [N] (PyTorch)."""
        from roost.training.export import torch_outputs

        self._check_fitted()
        assert self.spec_ is not None
        return torch_outputs(self.head(), self.spec_.encode(X))[0]

    def export_onnx(self, directory: Path, sample: pd.DataFrame) -> float:
        """Export model.onnx with raw-column inputs; returns the max |PyTorch − ONNX Runtime| on `sample`."""
        from roost.training.export import OUTPUTS, export_module, parity, torch_outputs

        assert self.spec_ is not None and self.task_ is not None
        cols = self.spec_.encode(sample)
        names = OUTPUTS[self.task_]
        head = self.head()
        export_module(head, self.spec_, cols, names, Path(directory) / "model.onnx")
        ref = {names[0]: torch_outputs(head, cols)[0]}  # the primary output (logit is a by-product)
        return parity(Path(directory) / "model.onnx", self.spec_.raw_inputs(sample), ref)

    def save_native(self, directory: Path) -> None:
        """native/model.pt (state_dict) and native/spec.json."""
        import torch

        directory.mkdir(parents=True, exist_ok=True)
        torch.save(self.net_.state_dict(), directory / "model.pt")
        (directory / "spec.json").write_text(
            json.dumps(
                {
                    "spec": self.spec_.to_dict() if self.spec_ else None,
                    "task": self.task_,
                    "classes": self.classes_,
                    "y_scale": list(self.y_scale_),
                    "log_target": list(self.log_target_) if self.log_target_ else None,
                    "model_type": self.model_type,
                    "params": self.get_params(),
                },
                indent=1,
                default=str,
            )
        )
