"""The one estimator contract (scikit-learn style): params in __init__, validation and data work in fit."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from roost.errors import ConfigError, closest
from roost.training.preprocess import FeatureSpec

log = logging.getLogger(__name__)


@dataclass
class TrainerParams:
    """Loop settings; the defaults are the prescribed ones measured in bench/quality.py."""

    batch_size: int | str = "auto"  # auto: n/32 rounded down to a power of two, within [32, 1024]
    lr: float = 2e-3
    weight_decay: float = 1e-4
    epochs: int = 20
    patience: int = 3
    min_delta: float = 1e-4
    seed: int = 0
    log_every: int = 50


def default_threads() -> int:
    """Compute threads for training (torch intra-op, LightGBM): ROOST_TRAIN_THREADS, else half the cores, 1..8.

    On a busy 2-core machine two OpenMP threads made each torch step far slower than one (bench/RESULTS.md).
    """
    import os

    env = os.environ.get("ROOST_TRAIN_THREADS") or os.environ.get("ROOST_TORCH_THREADS")
    if env and env.isdigit() and int(env) > 0:
        return int(env)
    return max(1, min(8, (os.cpu_count() or 2) // 2))


def auto_batch_size(n_rows: int) -> int:
    """The prescribed batch size for `n_rows` training rows: ~32 steps per epoch at least, 32..1024 rows."""
    import math

    return int(min(1024, max(32, 2 ** int(math.floor(math.log2(max(n_rows, 1) / 32))) if n_rows >= 64 else 32)))


@dataclass
class LoopInfo:
    """Progress seen by callbacks: epochs (or boosting rounds) done, steps, best epoch."""

    epoch: int = 0
    step: int = 0
    epochs: int = 0
    steps_per_epoch: int = 0
    best_epoch: int = 0
    stopped_early: bool = False
    unit: str = "epoch"  # what `epochs` counts, as progress shows it: "epoch", or "round" for boosting


class Estimator:
    """Base of every roost model: `fit(X, y, X_val, y_val)`, `predict(X)`, `save_package(dir, sample)`."""

    model_type: ClassVar[str] = ""
    framework: ClassVar[str] = ""
    step_kind: ClassVar[str] = "epoch"  # what the steps of its per-epoch curves count (run tag roost.step_kind)
    DEFAULTS: ClassVar[dict[str, Any]] = {}

    def __init__(self, task: str | None = None, **params: Any) -> None:
        unknown = [k for k in params if k not in self.DEFAULTS]
        if unknown:
            hint = closest(unknown[0], list(self.DEFAULTS))
            raise ConfigError(
                f"model.params.{unknown[0]}: unknown parameter for {self.model_type}",
                hint=(f"did you mean {hint!r}? " if hint else "") + f"allowed: {', '.join(sorted(self.DEFAULTS))}",
            )
        self.task = task
        self.params: dict[str, Any] = {**self.DEFAULTS, **params}
        self.spec_: FeatureSpec | None = None
        self.task_: str | None = None
        self.classes_: list[Any] = []
        self.history_: list[dict[str, float]] = []

    def get_params(self) -> dict[str, Any]:
        """All parameters, defaults included."""
        return {"task": self.task, **self.params}

    def __repr__(self) -> str:
        changed = {k: v for k, v in self.params.items() if self.DEFAULTS.get(k) != v}
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in changed.items())})"

    def refit_once(self, n_rows: int, spec: FeatureSpec) -> bool:
        """Whether auto's refit on all rows fits this model once on every row instead of as a bag of fold models:
        True for a convex solve (one optimum; a bag of (k-1)/k-row fits only leaves rows out), False (the default)
        for models that stop on validation rows (their rounds come from their folds) or that a bag steadies
        (LightGBM at fixed rounds: its single fit lost 0.012 ROC-AUC / 2 % RMSE to its fold bag,
        bench/linear_refit.py)."""
        return False

    def _check_fitted(self) -> None:
        """Raise if fit has not run."""
        if self.spec_ is None:
            raise RuntimeError(f"{type(self).__name__} is not fitted; call fit first")

    # subclasses implement these -------------------------------------------------------------------
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
    ) -> Estimator:
        """Fit on (X, y); X_val/y_val drive early stopping; `resume` is a checkpoint (torch models)."""
        raise NotImplementedError

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Binary P(positive) [N], class probabilities [N, C], or regression values [N]."""
        raise NotImplementedError

    def export_onnx(self, directory: Path, sample: pd.DataFrame) -> float:
        """Write model.onnx (+ extra graphs) into `directory`; returns max |native − ONNX Runtime| on `sample`."""
        raise NotImplementedError

    def save_native(self, directory: Path) -> None:
        """Write the native checkpoint into `directory`."""

    # shared ---------------------------------------------------------------------------------------
    def signature(self, label: str | None = None) -> dict[str, Any]:
        """signature.json content for this fitted model."""
        from roost.training.export import OUTPUTS

        self._check_fitted()
        assert self.spec_ is not None and self.task_ is not None
        outs = OUTPUTS[self.task_]
        n_cls = len(self.classes_)
        shapes = {"probability": [-1], "logit": [-1], "probabilities": [-1, n_cls], "prediction": [-1]}
        sig: dict[str, Any] = {
            "task": self.task_,
            "inputs": [{"name": c.name, "dtype": c.input_dtype, "shape": [-1]} for c in self.spec_.columns],
            "outputs": [{"name": o, "dtype": "float32", "shape": shapes[o]} for o in outs],
        }
        if self.task_ != "regression":
            sig["classes"] = list(self.classes_)
        if label is not None:
            sig["label"] = label
        return sig

    def save_package(
        self,
        directory: Path | str,
        sample: pd.DataFrame,
        label: str | None = None,
        run_id: str | None = None,
        metrics: dict[str, float] | None = None,
        extra_meta: dict[str, Any] | None = None,
    ) -> Path:
        """Write the model package (model.onnx, signature.json, roost-model.yaml, native/) to `directory`."""
        from roost.modelpkg import write_package

        self._check_fitted()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        diff = self.export_onnx(directory, sample)
        self.save_native(directory / "native")
        meta = {
            "framework": self.framework,
            "model_type": self.model_type,
            "task": self.task_,
            "classes": list(self.classes_),
            "label": label,
            "features": self.spec_.names if self.spec_ else [],
            "run_id": run_id,
            "metrics": dict(metrics or {}),
            "parity_max_abs_diff": diff,
            "params": self.get_params(),
            **(extra_meta or {}),
        }
        write_package(directory, signature=self.signature(label), meta=meta)
        return directory


def check_range(name: str, value: Any, lo: float, hi: float, integer: bool = False) -> None:
    """Raise ConfigError unless lo <= value <= hi (and an int when `integer`)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and lo <= value <= hi
    if integer:
        ok = ok and float(value).is_integer()
    if not ok:
        kind = "an integer" if integer else "a number"
        raise ConfigError(
            f"model.params.{name}: {value!r} is not {kind} in [{lo}, {hi}]",
            hint=f"set {name} to {kind} between {lo} and {hi}",
        )
