"""PyTorch modules: the preprocessing layer (one 1-D tensor per raw column) and the model bodies."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from roost.training.preprocess import FeatureSpec


def emb_dim(cardinality: int, cap: int = 16) -> int:
    """Embedding width for a vocabulary: 1.6·n^0.56 (fast.ai's rule), between 2 and `cap`."""
    return int(max(2, min(cap, round(1.6 * cardinality**0.56))))


class Preprocess(nn.Module):
    """Raw columns → (normalised numeric matrix [N, F], list of int64 indices [N]).

    Numeric: NaN → training mean, clipped to the training range (a time split must not extrapolate; `clip` false:
    not clipped, the bounds ±inf, for a linear model whose fitted trend is meant to extend), then (x − mean) / std.
    Categorical indices pass through (0 = unknown); hashed ids → id mod buckets.
    """

    mean: Tensor  # buffers (registered in __init__)
    std: Tensor
    lo: Tensor
    hi: Tensor

    def __init__(self, spec: FeatureSpec, clip: bool = True) -> None:
        super().__init__()
        self.kinds = [c.kind for c in spec.columns]
        num = spec.numeric
        inf = float("inf")
        self.register_buffer("mean", torch.tensor([c.mean for c in num], dtype=torch.float32))
        self.register_buffer("std", torch.tensor([c.std for c in num], dtype=torch.float32))
        self.register_buffer("lo", torch.tensor([c.lo if clip else -inf for c in num], dtype=torch.float32))
        self.register_buffer("hi", torch.tensor([c.hi if clip else inf for c in num], dtype=torch.float32))
        self.cards = [c.cardinality for c in spec.sparse]
        self.hash_buckets = [c.buckets if c.kind == "hash" else 0 for c in spec.sparse]

    def forward(self, cols: Sequence[Tensor]) -> tuple[Tensor, list[Tensor]]:
        """Impute, normalise and hash."""
        nums = [x for x, k in zip(cols, self.kinds) if k == "numeric"]
        sparse = [x for x, k in zip(cols, self.kinds) if k != "numeric"]
        if nums:
            x = torch.stack(nums, dim=1)
            x = torch.where(torch.isnan(x), self.mean, x)
            x = torch.minimum(torch.maximum(x, self.lo), self.hi)
            x = (x - self.mean) / self.std
        else:
            x = cols[0].new_zeros((cols[0].shape[0], 0), dtype=torch.float32)
        idx = []
        for v, nb, card in zip(sparse, self.hash_buckets, self.cards):
            idx.append(torch.remainder(v, nb) if nb else torch.clamp(v, 0, card - 1))
        return x, idx


class Embeddings(nn.Module):
    """One embedding table per sparse column (up to `max_card` values), concatenated with the numeric matrix."""

    def __init__(self, spec: FeatureSpec, cap: int = 16, max_card: int | None = None) -> None:
        super().__init__()
        self.keep = [k for k, c in enumerate(spec.sparse) if max_card is None or c.cardinality <= max_card]
        cards = [spec.sparse[k].cardinality for k in self.keep]
        tables = [nn.Embedding(n, emb_dim(n, cap)) for n in cards]
        for t in tables:
            nn.init.normal_(t.weight, std=0.05)
        self.tables = nn.ModuleList(tables)
        self.out_dim = len(spec.numeric) + sum(t.embedding_dim for t in tables)

    def forward(self, x: Tensor, idx: list[Tensor]) -> Tensor:
        """Concatenate numeric features and embeddings → [N, out_dim]."""
        return torch.cat([x, *[t(idx[k]) for t, k in zip(self.tables, self.keep)]], dim=1)


def mlp(d_in: int, hidden: Sequence[int], dropout: float) -> tuple[nn.Sequential, int]:
    """Linear → ReLU → Dropout blocks; returns the stack and its output width."""
    layers: list[nn.Module] = []
    for h in hidden:
        layers += [nn.Linear(d_in, h), nn.ReLU()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        d_in = h
    return nn.Sequential(*layers), d_in


class Linear(nn.Module):
    """Logistic/linear/softmax regression: numeric weights plus a one-hot weight per category (width-K embeddings)."""

    def __init__(self, spec: FeatureSpec, n_out: int) -> None:
        super().__init__()
        self.num = nn.Linear(len(spec.numeric), n_out)
        tables = [nn.Embedding(c.cardinality, n_out) for c in spec.sparse]
        for t in tables:
            nn.init.zeros_(t.weight)
        self.tables = nn.ModuleList(tables)

    def forward(self, x: Tensor, idx: list[Tensor]) -> Tensor:
        """Logits [N, K]."""
        out: Tensor = self.num(x)
        for t, i in zip(self.tables, idx):
            out = out + t(i)
        return out


class MLP(nn.Module):
    """Embeddings + numeric features → fully connected layers."""

    def __init__(
        self,
        spec: FeatureSpec,
        n_out: int,
        hidden: Sequence[int] = (256, 128),
        dropout: float = 0.1,
        emb_cap: int = 16,
        max_card: int | None = None,
    ) -> None:
        super().__init__()
        self.emb = Embeddings(spec, emb_cap, max_card)
        self.body, d = mlp(self.emb.out_dim, hidden, dropout)
        self.head = nn.Linear(d, n_out)

    def forward(self, x: Tensor, idx: list[Tensor]) -> Tensor:
        """Logits [N, K]."""
        out: Tensor = self.head(self.body(self.emb(x, idx)))
        return out


class WideDeep(nn.Module):
    """Wide (linear over one-hot/numeric: memorises ids) + deep (MLP over embeddings of columns with at most
    `deep_max_card` values: generalises), logits summed."""

    def __init__(
        self,
        spec: FeatureSpec,
        n_out: int,
        hidden: Sequence[int] = (256, 128),
        dropout: float = 0.1,
        emb_cap: int = 16,
        deep_max_card: int | None = 1000,
    ) -> None:
        super().__init__()
        self.wide = Linear(spec, n_out)
        self.deep = MLP(spec, n_out, hidden, dropout, emb_cap, deep_max_card)

    def forward(self, x: Tensor, idx: list[Tensor]) -> Tensor:
        """Logits [N, K]."""
        out: Tensor = self.wide(x, idx) + self.deep(x, idx)
        return out


class CrossLayerV2(nn.Module):
    """DCN-v2 cross layer: x_{l+1} = x0 ⊙ (W x_l + b) + x_l."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.lin = nn.Linear(d, d)
        nn.init.zeros_(self.lin.bias)
        nn.init.normal_(self.lin.weight, std=1.0 / math.sqrt(d) / 4)

    def forward(self, x0: Tensor, x: Tensor) -> Tensor:
        """One cross interaction."""
        out: Tensor = x0 * self.lin(x) + x
        return out


class DCN(nn.Module):
    """Deep & Cross Network v2 (stacked): cross layers, then an MLP, then the head."""

    def __init__(
        self,
        spec: FeatureSpec,
        n_out: int,
        cross_layers: int = 3,
        hidden: Sequence[int] = (256, 128),
        dropout: float = 0.1,
        emb_cap: int = 16,
        max_card: int | None = None,
    ) -> None:
        super().__init__()
        self.emb = Embeddings(spec, emb_cap, max_card)
        d = self.emb.out_dim
        self.cross = nn.ModuleList(CrossLayerV2(d) for _ in range(cross_layers))
        self.body, d_out = mlp(d, hidden, dropout)
        self.head = nn.Linear(d_out, n_out)

    def forward(self, x: Tensor, idx: list[Tensor]) -> Tensor:
        """Logits [N, K]."""
        x0 = self.emb(x, idx)
        h = x0
        for layer in self.cross:
            h = layer(x0, h)
        out: Tensor = self.head(self.body(h))
        return out


class Tower(nn.Module):
    """One tower of a two-tower model: its columns → embedding [N, D]."""

    def __init__(self, spec: FeatureSpec, hidden: Sequence[int], dim: int, dropout: float, emb_cap: int) -> None:
        super().__init__()
        self.pre = Preprocess(spec)
        self.emb = Embeddings(spec, emb_cap)
        self.body, d = mlp(self.emb.out_dim, hidden, dropout)
        self.out = nn.Linear(d, dim)

    def forward(self, cols: Sequence[Tensor]) -> Tensor:
        """Embedding [N, D]."""
        x, idx = self.pre(cols)
        out: Tensor = self.out(self.body(self.emb(x, idx)))
        return out


class TwoTower(nn.Module):
    """User and item towers; score = <u, i> + bias. Takes raw columns (users first, then items)."""

    def __init__(
        self,
        user: FeatureSpec,
        item: FeatureSpec,
        hidden: Sequence[int] = (128,),
        dim: int = 32,
        dropout: float = 0.0,
        emb_cap: int = 32,
    ) -> None:
        super().__init__()
        self.n_user = len(user.columns)
        self.user = Tower(user, hidden, dim, dropout, emb_cap)
        self.item = Tower(item, hidden, dim, dropout, emb_cap)
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, cols: Sequence[Tensor]) -> Tensor:
        """Score [N, 1]."""
        u = self.user(cols[: self.n_user])
        i = self.item(cols[self.n_user :])
        out: Tensor = (u * i).sum(dim=1, keepdim=True) + self.bias
        return out


class Network(nn.Module):
    """Full model on raw columns: preprocessing (`clip`: Preprocess's) + body → raw outputs [N, K] (logits or
    standardised values)."""

    def __init__(self, spec: FeatureSpec, body: nn.Module, raw_body: bool = False, clip: bool = True) -> None:
        super().__init__()
        self.pre = None if raw_body else Preprocess(spec, clip)
        self.body = body

    def forward(self, cols: Sequence[Tensor]) -> Tensor:
        """Raw outputs [N, K]."""
        if self.pre is None:
            raw: Tensor = self.body(cols)
            return raw
        x, idx = self.pre(cols)
        out: Tensor = self.body(x, idx)
        return out


class Head(nn.Module):
    """Turns raw outputs into the package outputs: probability+logit, probabilities, or prediction.

    A regression network fitted on the log of its label (`log_target` = (smear, lo, hi)) predicts
    exp(clip(log prediction, lo, hi)) × smear: Duan's smearing factor (the mean of exp(residual) over the training
    rows) makes it estimate the mean rather than the median, and the clip (the training labels' log range, widened)
    keeps an extrapolated row from overflowing."""

    def __init__(
        self,
        net: nn.Module,
        task: str,
        y_mean: float = 0.0,
        y_std: float = 1.0,
        log_target: tuple[float, float, float] | None = None,
    ) -> None:
        super().__init__()
        self.net = net
        self.task = task
        self.y_mean = float(y_mean)
        self.y_std = float(y_std)
        self.log_target = None if log_target is None else tuple(float(v) for v in log_target)

    def forward(self, *cols: Tensor) -> tuple[Tensor, ...]:
        """Package outputs for one 1-D tensor per raw column."""
        z = self.net(list(cols))
        if self.task == "binary":
            logit = z[:, 0]
            return torch.sigmoid(logit), logit
        if self.task == "multiclass":
            return (torch.softmax(z, dim=1),)
        value = z[:, 0] * self.y_std + self.y_mean
        if self.log_target is not None:
            smear, lo, hi = self.log_target
            value = torch.exp(torch.clamp(value, lo, hi)) * smear
        return (value,)
