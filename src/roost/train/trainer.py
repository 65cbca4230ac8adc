"""The training loop: AdamW, mini-batches, early stopping on validation loss, checkpoints, resume."""

from __future__ import annotations

import copy
import logging
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from roost.train import metrics as M
from roost.train.base import TrainerParams, auto_batch_size, default_threads

log = logging.getLogger(__name__)

LAST = "last.pt"
BEST = "best.pt"


class Callback(Protocol):
    """Hooks called by the loop (all optional)."""

    def on_train_begin(self, state: LoopState) -> None: ...
    def on_step(self, state: LoopState, loss: float) -> None: ...
    def on_epoch_end(self, state: LoopState, logs: dict[str, float]) -> None: ...
    def on_train_end(self, state: LoopState) -> None: ...


@dataclass
class LoopState:
    """Where the loop is: epoch, step, history and early-stopping bookkeeping."""

    epoch: int = 0  # epochs completed
    step: int = 0
    epochs: int = 0
    steps_per_epoch: int = 0
    best_loss: float = math.inf
    best_epoch: int = 0
    bad_epochs: int = 0
    stopped_early: bool = False
    history: list[dict[str, float]] = field(default_factory=list)


def loss_fn(task: str, reduction: str = "mean") -> nn.Module:
    """BCE-with-logits, cross-entropy or MSE (on the standardised target)."""
    return {
        "binary": nn.BCEWithLogitsLoss(reduction=reduction),
        "multiclass": nn.CrossEntropyLoss(reduction=reduction),
        "regression": nn.MSELoss(reduction=reduction),
    }[task]


def _target(task: str, y: np.ndarray) -> torch.Tensor:
    """Targets as tensors of the loss's dtype."""
    return torch.from_numpy(np.asarray(y, dtype=np.int64 if task == "multiclass" else np.float32))


def _z(task: str, out: torch.Tensor) -> torch.Tensor:
    """Raw [N, K] outputs in the loss's shape."""
    return out if task == "multiclass" else out[:, 0]


def evaluate(
    net: nn.Module, task: str, cols: Sequence[torch.Tensor], y: torch.Tensor, batch: int = 8192
) -> tuple[float, np.ndarray]:
    """Mean loss and raw outputs [N, K] on a dataset, in eval mode."""
    lf = loss_fn(task)
    net.eval()
    outs, total = [], 0.0
    with torch.no_grad():
        for s in range(0, len(y), batch):
            z = net([c[s : s + batch] for c in cols])
            total += float(lf(_z(task, z), y[s : s + batch])) * len(z)
            outs.append(z)
    return total / max(len(y), 1), torch.cat(outs).cpu().numpy()


def val_metrics(task: str, y: np.ndarray, raw: np.ndarray) -> dict[str, float]:
    """Task metrics from raw outputs (logits or standardised values already unscaled by the caller)."""
    if task == "binary":
        return M.binary_metrics(y, 1 / (1 + np.exp(-raw[:, 0].astype(np.float64))))
    if task == "multiclass":
        z = raw - raw.max(axis=1, keepdims=True)
        return M.multiclass_metrics(y, np.exp(z) / np.exp(z).sum(axis=1, keepdims=True))
    return M.regression_metrics(y, raw[:, 0])


def _save(obj: dict[str, Any], path: Path) -> None:
    """Write a checkpoint atomically."""
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path | str) -> dict[str, Any]:
    """Read a checkpoint written by `fit_network`."""
    return torch.load(str(path), map_location="cpu", weights_only=False)


def fit_network(
    net: nn.Module,
    task: str,
    train: tuple[Sequence[np.ndarray], np.ndarray],
    val: tuple[Sequence[np.ndarray], np.ndarray] | None,
    params: TrainerParams,
    callbacks: Sequence[Any] = (),
    checkpoint_dir: Path | None = None,
    resume: dict[str, Any] | None = None,
    y_scale: tuple[float, float] = (0.0, 1.0),
    extra: dict[str, Any] | None = None,
) -> LoopState:
    """Train `net` (raw columns → [N, K]); restores the best-validation weights; returns the loop state."""
    threads = torch.get_num_threads()
    torch.set_num_threads(default_threads())
    try:
        return _fit(net, task, train, val, params, callbacks, checkpoint_dir, resume, y_scale, extra)
    finally:
        torch.set_num_threads(threads)


def _fit(
    net: nn.Module,
    task: str,
    train: tuple[Sequence[np.ndarray], np.ndarray],
    val: tuple[Sequence[np.ndarray], np.ndarray] | None,
    params: TrainerParams,
    callbacks: Sequence[Any],
    checkpoint_dir: Path | None,
    resume: dict[str, Any] | None,
    y_scale: tuple[float, float],
    extra: dict[str, Any] | None,
) -> LoopState:
    """The loop itself (see fit_network). In a process group each rank steps on its share of every batch."""
    from roost.train import distributed as D

    ctx = D.context()
    dev = torch.device(ctx.device)
    torch.manual_seed(params.seed)
    net.to(dev)
    cols = [torch.from_numpy(np.ascontiguousarray(c)).to(dev) for c in train[0]]
    y_mean, y_std = y_scale
    y_tr = _target(task, train[1] if task != "regression" else (train[1] - y_mean) / y_std).to(dev)
    if val is not None and len(val[1]) and ctx.leader:
        vcols = [torch.from_numpy(np.ascontiguousarray(c)).to(dev) for c in val[0]]
        y_va = _target(task, val[1] if task != "regression" else (val[1] - y_mean) / y_std).to(dev)
    else:
        vcols, y_va = None, None
    has_val = val is not None and len(val[1]) > 0
    opt = torch.optim.AdamW(net.parameters(), lr=params.lr, weight_decay=params.weight_decay)
    lf = loss_fn(task)
    lf_sum = loss_fn(task, "sum")
    n = len(y_tr)
    bs = auto_batch_size(n) if params.batch_size == "auto" else int(params.batch_size)
    bs = max(1, min(bs, n))
    state = LoopState(epochs=params.epochs, steps_per_epoch=math.ceil(n / bs))
    best_state = copy.deepcopy(net.state_dict())
    if resume is not None:
        net.load_state_dict(resume["model"])
        opt.load_state_dict(resume["optimizer"])
        best_state = resume["best_state"]
        state = LoopState(**{**resume["state"], "epochs": params.epochs, "steps_per_epoch": state.steps_per_epoch})
    for cb in callbacks:
        _call(cb, "on_train_begin", state)
    if checkpoint_dir is not None:
        Path(checkpoint_dir).mkdir(parents=True, exist_ok=True)
    step_net = D.wrap(net, ctx)
    while state.epoch < params.epochs and not state.stopped_early:
        g = torch.Generator().manual_seed(params.seed * 100_003 + state.epoch)
        torch.manual_seed(params.seed * 100_003 + state.epoch)
        perm = torch.randperm(n, generator=g)
        net.train()
        run_loss, seen = 0.0, 0
        for s in range(0, n, bs):
            idx = perm[s : s + bs].to(dev)
            if ctx.active:  # this rank's share; summed loss × world / batch: the averaged gradient is the batch's
                mine = idx[ctx.rank :: ctx.world]
                z = step_net([c[mine] for c in cols])
                total = lf_sum(_z(task, z), y_tr[mine])
                loss = total * (ctx.world / len(idx))
                run_loss += float(total.detach())
                lv = float(total.detach()) / max(len(mine), 1)
                seen += len(mine)
            else:
                z = step_net([c[idx] for c in cols])
                loss = lf(_z(task, z), y_tr[idx])
                lv = float(loss.detach())
                run_loss += lv * len(idx)
                seen += len(idx)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            state.step += 1
            for cb in callbacks:
                _call(cb, "on_step", state, lv)
        state.epoch += 1
        run_loss, seen = D.all_sum(ctx, run_loss, seen)
        logs = {"train_loss": run_loss / max(seen, 1)}
        if has_val:
            vloss = math.nan
            if vcols is not None:  # rank 0 evaluates; the others follow its early-stopping decision
                vloss, raw = evaluate(net, task, vcols, y_va)
                logs["val_loss"] = vloss
                if task == "regression":
                    raw = raw * y_std + y_mean
                yv = val[1]
                logs.update({f"val_{k}": v for k, v in val_metrics(task, yv, raw).items() if np.isfinite(v)})
            vloss = D.broadcast_float(ctx, vloss)
            if vloss < state.best_loss - params.min_delta:
                state.best_loss, state.best_epoch, state.bad_epochs = vloss, state.epoch, 0
                best_state = copy.deepcopy(net.state_dict())
            else:
                state.bad_epochs += 1
                state.stopped_early = state.bad_epochs >= params.patience
        else:
            state.best_epoch = state.epoch
            best_state = copy.deepcopy(net.state_dict())
        state.history.append({"epoch": state.epoch, **logs})
        if checkpoint_dir is not None:
            ck = {
                "model": net.state_dict(),
                "optimizer": opt.state_dict(),
                "best_state": best_state,
                "state": {k: v for k, v in asdict(state).items() if k not in ("epochs", "steps_per_epoch")},
                "params": asdict(params),
                **(extra or {}),
            }
            _save(ck, Path(checkpoint_dir) / LAST)
            if state.best_epoch == state.epoch:
                _save({"model": best_state, "epoch": state.epoch, **(extra or {})}, Path(checkpoint_dir) / BEST)
        for cb in callbacks:
            _call(cb, "on_epoch_end", state, logs)
    net.load_state_dict(best_state)
    net.to("cpu")
    net.eval()
    for cb in callbacks:
        _call(cb, "on_train_end", state)
    return state


def _call(cb: Any, hook: str, *args: Any) -> None:
    """Call a hook if the callback defines it."""
    fn = getattr(cb, hook, None)
    if fn is not None:
        fn(*args)
