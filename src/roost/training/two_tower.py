"""Two-tower model: user and item towers, dot-product score; exports user_tower.onnx / item_tower.onnx too."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from roost.errors import ConfigError
from roost.training.base import check_range
from roost.training.preprocess import FeatureSpec
from roost.training.torch_model import TorchModel


class TwoTowerModel(TorchModel):
    """User tower(user columns) · item tower(item columns) + bias → logit (binary) or value (regression)."""

    model_type = "two_tower"
    NET = {
        "user_features": None,
        "item_features": None,
        "user_prefix": "user",
        "item_prefix": "item",
        "hidden": [128],
        "dim": 32,
        "dropout": 0.0,
        "emb_cap": 32,
    }

    def split(self, spec: FeatureSpec) -> tuple[list[str], list[str]]:
        """User and item column names (from the config lists, else by name prefix)."""
        p = self.params
        names = spec.names
        users = list(p["user_features"] or [n for n in names if n.startswith(p["user_prefix"])])
        items = list(p["item_features"] or [n for n in names if n.startswith(p["item_prefix"])])
        missing = [n for n in users + items if n not in names]
        if missing:
            raise ConfigError(f"model.params: tower column(s) {missing} are not features", hint=f"features: {names}")
        if not users or not items:
            which = "user" if not users else "item"
            raise ConfigError(
                f"model.params.{which}_features: no {which} columns found",
                hint=f"name them in {which}_features or prefix them with {p[which + '_prefix']!r}",
            )
        return users, items

    def select(self, spec: FeatureSpec) -> FeatureSpec:
        """Users first, then items; other columns are dropped."""
        users, items = self.split(spec)
        by = {c.name: c for c in spec.columns}
        return FeatureSpec([by[n] for n in users + items])

    def build(self, spec: FeatureSpec, n_out: int) -> Any:
        """Two towers on raw columns."""
        from roost.training.nn import Network, TwoTower

        if self.task_ == "multiclass":
            raise ConfigError(
                "model.type: two_tower supports binary and regression tasks, not multiclass",
                hint="use mlp, dcn or lightgbm for multiclass labels",
            )
        p = self.params
        check_range("dim", p["dim"], 1, 4096, integer=True)
        users, items = self.split(spec)
        self.user_columns_, self.item_columns_ = users, items
        return Network(
            spec,
            TwoTower(spec.subset(users), spec.subset(items), p["hidden"], p["dim"], p["dropout"], p["emb_cap"]),
            raw_body=True,
        )

    def tower(self, which: str) -> Any:
        """The user or item tower as a module taking one 1-D tensor per column → embedding [N, D]."""
        import torch

        tower = getattr(self.net_.body, which)

        class _Star(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.t = tower

            def forward(self, *cols: torch.Tensor) -> torch.Tensor:
                out: torch.Tensor = self.t(list(cols))
                return out

        return _Star().eval()

    def embed(self, X: pd.DataFrame, which: str = "item") -> Any:
        """Tower embeddings [N, D] for the rows of X (PyTorch)."""
        from roost.training.export import torch_outputs

        assert self.spec_ is not None
        spec = self.spec_.subset(self.user_columns_ if which == "user" else self.item_columns_)
        return torch_outputs(self.tower(which), spec.encode(X))[0]

    def export_onnx(self, directory: Path, sample: pd.DataFrame) -> float:
        """model.onnx plus user_tower.onnx / item_tower.onnx (output `embedding`); returns the worst parity."""
        from roost.training.export import export_module, parity

        diff = super().export_onnx(directory, sample)
        assert self.spec_ is not None
        for which, cols in (("user", self.user_columns_), ("item", self.item_columns_)):
            spec = self.spec_.subset(cols)
            path = Path(directory) / f"{which}_tower.onnx"
            export_module(self.tower(which), spec, spec.encode(sample), ["embedding"], path)
            ref = {"embedding": self.embed(sample, which)}
            diff = max(diff, parity(path, spec.raw_inputs(sample), ref))
        return diff

    def signature(self, label: str | None = None) -> dict[str, Any]:
        """signature.json content, with the tower graphs and their inputs listed."""
        sig = super().signature(label)
        sig["towers"] = {
            w: {
                "file": f"{w}_tower.onnx",
                "inputs": cols,
                "outputs": [{"name": "embedding", "dtype": "float32", "shape": [-1, self.params["dim"]]}],
            }
            for w, cols in (("user", self.user_columns_), ("item", self.item_columns_))
        }
        return sig
