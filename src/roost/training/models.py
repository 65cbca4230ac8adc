"""The model types by name, and the small PyTorch estimators: logreg, mlp, wide_deep, dcn (their base TorchModel in
torch_model.py, two_tower in two_tower.py, lightgbm in lgbm.py)."""

from __future__ import annotations

import logging
from typing import Any

from roost.errors import ConfigError, RoostError, closest
from roost.training.base import Estimator, check_range
from roost.training.preprocess import FeatureSpec
from roost.training.torch_model import TorchModel

log = logging.getLogger(__name__)

MODEL_TYPES = ("auto", "logreg", "mlp", "wide_deep", "dcn", "two_tower", "lightgbm")
DEFAULT_MODEL = "auto"  # logreg and wide_deep, the better on validation is kept (bench/quality.py, docs/training.md)
AUTO_CANDIDATES = ("logreg", "wide_deep")


class LogReg(TorchModel):
    """Logistic (binary), softmax (multiclass) or linear (regression) regression: a one-layer net.

    `solver`: "auto" (default) fits the weights by a convex solve whose L2 strength is chosen by cross-validation
    over the training rows (training/linear_fit.py) on tables up to linear_fit.MAX_CELLS rows × design columns, and
    by the training loop (AdamW, `weight_decay`, early stopping on the validation rows) above; "convex" or "sgd"
    force one. The network, its preprocessing and its package are the same either way.

    `target`: "raw" (default), or "log" for a regression label above 0 on every row: the model is linear in
    log(label) — multiplicative effects, as prices and counts often have — and predicts exp(·) × Duan's smearing
    factor (nn.Head). `model: auto` trains it beside the others on such labels (`logreg_log`)."""

    model_type = "logreg"
    TRAINER = {"lr": 1e-2, "epochs": 50, "patience": 5}
    NET = {"solver": "auto", "target": "raw"}
    SOLVERS = ("auto", "convex", "sgd")
    TARGETS = ("raw", "log")

    def _validate(self) -> None:
        """TorchModel's checks, the solver's and the target's names."""
        super()._validate()
        if self.params["solver"] not in self.SOLVERS:
            raise ConfigError(
                f"model.params.solver: {self.params['solver']!r} is not one of {', '.join(self.SOLVERS)}",
                hint="solver: auto (a convex solve with its penalty chosen by cross-validation on small tables)",
            )
        if self.params["target"] not in self.TARGETS:
            raise ConfigError(
                f"model.params.target: {self.params['target']!r} is not one of {', '.join(self.TARGETS)}",
                hint="target: log fits a regression label's logarithm (every label above 0); raw fits it as it is",
            )

    def solve(self, spec: FeatureSpec, X: Any, y: Any, val: Any, callbacks: Any) -> Any:
        """The convex solve where `solver` calls for it (linear_fit.use_convex): the weights with the L2 strength
        chosen by cross-validation over the training rows (the validation rows are only scored); None for the
        loop, also where the solve cannot run (a class with fewer than 2 rows)."""
        import time

        from roost.training import linear_fit as L

        n_out = len(self.classes_) if self.task_ == "multiclass" else 1
        if not L.use_convex(self.params["solver"], len(y), L.design_width(self.net_)):
            return None
        t0 = time.perf_counter()
        target = (y - self.y_scale_[0]) / self.y_scale_[1] if self.task_ == "regression" else y
        try:
            self.penalty_ = L.solve(
                self.net_, self.task_ or "binary", spec.encode(X), target, n_out, self.params["seed"]
            )
        except ValueError as exc:
            log.info("logreg: the training loop instead of the convex solve (%s)", exc)
            return None
        log.info(
            "logreg: convex solve, %s chosen by cross-validation (%.2f s)", self.penalty_, time.perf_counter() - t0
        )
        return L.report(self.net_, self.task_ or "binary", (spec.encode(X), target), val, self.y_scale_, callbacks)

    def stops_early(self, n_rows: int, spec: FeatureSpec) -> bool:
        """False where the fit is the convex solve (the validation rows are only scored), as solve() decides."""
        from roost.training import linear_fit as L

        return not L.use_convex(self.params["solver"], n_rows, L.design_width(self.build(self.select(spec), 1)))

    def refit_once(self, n_rows: int, spec: FeatureSpec) -> bool:
        """True where the fit is the convex solve (Estimator.refit_once)."""
        return not self.stops_early(n_rows, spec)

    def build(self, spec: FeatureSpec, n_out: int) -> Any:
        """Preprocess → Linear; numeric inputs are not clipped to the training range, so the fitted trend extends
        beyond it as least squares' does (issue 36: clipping cost 2 % test RMSE on the housing table)."""
        from roost.training.nn import Linear, Network

        return Network(spec, Linear(spec, n_out), clip=False)


class MLPModel(TorchModel):
    """Embeddings + numeric features → fully connected ReLU layers."""

    model_type = "mlp"
    NET = {"hidden": [256, 128], "dropout": 0.1, "emb_cap": 16}

    def build(self, spec: FeatureSpec, n_out: int) -> Any:
        """Preprocess → MLP."""
        from roost.training.nn import MLP, Network

        p = self.params
        return Network(spec, MLP(spec, n_out, p["hidden"], p["dropout"], p["emb_cap"]))


class WideDeepModel(TorchModel):
    """Wide (linear on one-hot + numeric, all columns) plus deep (MLP on embeddings of columns with at most
    `deep_max_card` values; null = all)."""

    model_type = "wide_deep"
    NET = {"hidden": [256, 128], "dropout": 0.1, "emb_cap": 16, "deep_max_card": 1000}

    def build(self, spec: FeatureSpec, n_out: int) -> Any:
        """Preprocess → wide + deep."""
        from roost.training.nn import Network, WideDeep

        p = self.params
        return Network(spec, WideDeep(spec, n_out, p["hidden"], p["dropout"], p["emb_cap"], p["deep_max_card"]))


class DCNModel(TorchModel):
    """Deep & Cross Network v2: cross layers x0 ⊙ (W x + b) + x, then an MLP."""

    model_type = "dcn"
    NET = {"cross_layers": 3, "hidden": [256, 128], "dropout": 0.1, "emb_cap": 16}

    def build(self, spec: FeatureSpec, n_out: int) -> Any:
        """Preprocess → cross layers → MLP."""
        from roost.training.nn import DCN, Network

        p = self.params
        check_range("cross_layers", p["cross_layers"], 0, 16, integer=True)
        return Network(spec, DCN(spec, n_out, p["cross_layers"], p["hidden"], p["dropout"], p["emb_cap"]))


def get_model_class(name: str) -> type[Estimator]:
    """The estimator class for a model type name (ConfigError listing the allowed names)."""
    if name == "lightgbm":
        from roost.training.lgbm import LightGBMModel

        return LightGBMModel
    if name == "two_tower":
        from roost.training.two_tower import TwoTowerModel

        return TwoTowerModel
    classes = {"logreg": LogReg, "mlp": MLPModel, "wide_deep": WideDeepModel, "dcn": DCNModel}
    if name not in classes:
        hint = closest(name, MODEL_TYPES)
        raise ConfigError(
            f"model.type: unknown model type {name!r}",
            hint=(f"did you mean {hint!r}? " if hint else "") + f"allowed: {', '.join(MODEL_TYPES)}",
        )
    return classes[name]


def make_model(name: str, task: str | None = None, **params: Any) -> Estimator:
    """Instantiate a model by type name."""
    return get_model_class(name)(task=task, **params)


def check_task(model: Estimator, task: str) -> None:
    """Raise RoostError if `model` cannot do `task`."""
    if model.model_type == "two_tower" and task == "multiclass":
        raise RoostError(
            "two_tower supports binary and regression tasks, not multiclass",
            hint="use mlp, dcn or lightgbm for multiclass labels",
        )


__all__ = [
    "MODEL_TYPES",
    "DEFAULT_MODEL",
    "TorchModel",
    "LogReg",
    "MLPModel",
    "WideDeepModel",
    "DCNModel",
    "get_model_class",
    "make_model",
    "check_task",
]
