"""The training loop: AdamW, mini-batches, early stopping on validation loss, checkpoints, resume."""

from __future__ import annotations

import copy
import logging
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import torch
from torch import nn

from roost.metrics import overall as M
from roost.training.base import TrainerParams, auto_batch_size, default_threads

if TYPE_CHECKING:
    from roost.training.distributed import Context

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
    from scipy.special import expit, softmax  # stable for any logit: a diverging network's must not overflow

    if task == "binary":
        return M.binary_metrics(y, expit(raw[:, 0].astype(np.float64)))
    if task == "multiclass":
        return M.multiclass_metrics(y, softmax(raw.astype(np.float64), axis=1))
    return M.regression_metrics(y, raw[:, 0])


def _save(obj: dict[str, Any], path: Path) -> None:
    """Write a checkpoint atomically."""
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path | str) -> dict[str, Any]:
    """Read a checkpoint written by `fit_network`."""
    ck: dict[str, Any] = torch.load(str(path), map_location="cpu", weights_only=False)
    return ck


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


@dataclass
class _Data:
    """Training (and, on the evaluating rank, validation) tensors on the loop's device."""

    cols: list[torch.Tensor]
    y: torch.Tensor
    vcols: list[torch.Tensor] | None
    y_val: torch.Tensor | None
    y_val_raw: np.ndarray | None  # unscaled validation targets, for the metrics
    has_val: bool  # every rank knows whether there is a validation set (only rank 0 holds it)


def _tensors(
    task: str,
    train: tuple[Sequence[np.ndarray], np.ndarray],
    val: tuple[Sequence[np.ndarray], np.ndarray] | None,
    y_scale: tuple[float, float],
    dev: torch.device,
    leader: bool,
) -> _Data:
    """Move the columns and (standardised, for regression) targets to the device."""
    y_mean, y_std = y_scale

    def target(y: np.ndarray) -> torch.Tensor:
        return _target(task, y if task != "regression" else (y - y_mean) / y_std).to(dev)

    def columns(cs: Sequence[np.ndarray]) -> list[torch.Tensor]:
        return [torch.from_numpy(np.ascontiguousarray(c)).to(dev) for c in cs]

    has_val = val is not None and len(val[1]) > 0
    if val is not None and has_val and leader:
        return _Data(columns(train[0]), target(train[1]), columns(val[0]), target(val[1]), val[1], has_val)
    return _Data(columns(train[0]), target(train[1]), None, None, None, has_val)


def _start_state(
    net: nn.Module, opt: torch.optim.Optimizer, params: TrainerParams, n: int, bs: int, resume: dict[str, Any] | None
) -> tuple[LoopState, dict[str, Any]]:
    """(loop state, best weights so far): fresh, or restored from a `last.pt` checkpoint."""
    state = LoopState(epochs=params.epochs, steps_per_epoch=math.ceil(n / bs))
    if resume is None:
        return state, copy.deepcopy(net.state_dict())
    net.load_state_dict(resume["model"])
    opt.load_state_dict(resume["optimizer"])
    restored = LoopState(**{**resume["state"], "epochs": params.epochs, "steps_per_epoch": state.steps_per_epoch})
    return restored, resume["best_state"]


def _train_epoch(
    step_net: nn.Module,
    net: nn.Module,
    opt: torch.optim.Optimizer,
    task: str,
    data: _Data,
    params: TrainerParams,
    bs: int,
    state: LoopState,
    callbacks: Sequence[Any],
    ctx: Context,
) -> tuple[float, int]:
    """One pass over the shuffled training rows; (summed loss, rows seen) on this rank."""
    lf, lf_sum = loss_fn(task), loss_fn(task, "sum")
    n = len(data.y)
    g = torch.Generator().manual_seed(params.seed * 100_003 + state.epoch)
    torch.manual_seed(params.seed * 100_003 + state.epoch)
    perm = torch.randperm(n, generator=g)
    net.train()
    run_loss, seen = 0.0, 0
    for s in range(0, n, bs):
        idx = perm[s : s + bs].to(data.y.device)
        if ctx.active:  # this rank's share; summed loss × world / batch: the averaged gradient is the batch's
            mine = idx[ctx.rank :: ctx.world]
            z = step_net([c[mine] for c in data.cols])
            total = lf_sum(_z(task, z), data.y[mine])
            loss = total * (ctx.world / len(idx))
            run_loss += float(total.detach())
            lv = float(total.detach()) / max(len(mine), 1)
            seen += len(mine)
        else:
            z = step_net([c[idx] for c in data.cols])
            loss = lf(_z(task, z), data.y[idx])
            lv = float(loss.detach())
            run_loss += lv * len(idx)
            seen += len(idx)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        state.step += 1
        for cb in callbacks:
            _call(cb, "on_step", state, lv)
    return run_loss, seen


def _validate(net: nn.Module, task: str, data: _Data, y_scale: tuple[float, float], logs: dict[str, float]) -> float:
    """Validation loss (NaN on ranks without the validation set); adds val_loss and val_* metrics to `logs`."""
    if data.vcols is None or data.y_val is None or data.y_val_raw is None:
        return math.nan
    vloss, raw = evaluate(net, task, data.vcols, data.y_val)
    logs["val_loss"] = vloss
    if task == "regression":
        raw = raw * y_scale[1] + y_scale[0]
    logs.update({f"val_{k}": v for k, v in val_metrics(task, data.y_val_raw, raw).items() if np.isfinite(v)})
    return vloss


def _checkpoint(
    directory: Path,
    net: nn.Module,
    opt: torch.optim.Optimizer,
    best_state: dict[str, Any],
    state: LoopState,
    params: TrainerParams,
    extra: dict[str, Any] | None,
) -> None:
    """Write last.pt (everything needed to resume) and, when this epoch is the best, best.pt."""
    ck = {
        "model": net.state_dict(),
        "optimizer": opt.state_dict(),
        "best_state": best_state,
        "state": {k: v for k, v in asdict(state).items() if k not in ("epochs", "steps_per_epoch")},
        "params": asdict(params),
        **(extra or {}),
    }
    _save(ck, Path(directory) / LAST)
    if state.best_epoch == state.epoch:
        _save({"model": best_state, "epoch": state.epoch, **(extra or {})}, Path(directory) / BEST)


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
    from roost.training import distributed as D
    from roost.training.budget import past_deadline

    ctx = D.context()
    dev = torch.device(ctx.device)
    torch.manual_seed(params.seed)
    net.to(dev)
    data = _tensors(task, train, val, y_scale, dev, ctx.leader)
    opt = torch.optim.AdamW(net.parameters(), lr=params.lr, weight_decay=params.weight_decay)
    n = len(data.y)
    bs = auto_batch_size(n) if params.batch_size == "auto" else int(params.batch_size)
    bs = max(1, min(bs, n))
    state, best_state = _start_state(net, opt, params, n, bs, resume)
    for cb in callbacks:
        _call(cb, "on_train_begin", state)
    if checkpoint_dir is not None:
        Path(checkpoint_dir).mkdir(parents=True, exist_ok=True)
    step_net = D.wrap(net, ctx)
    while state.epoch < params.epochs and not state.stopped_early:
        run_loss, seen = _train_epoch(step_net, net, opt, task, data, params, bs, state, callbacks, ctx)
        state.epoch += 1
        total, rows = D.all_sum(ctx, run_loss, seen)
        logs = {"train_loss": total / max(rows, 1.0)}
        if data.has_val:  # rank 0 evaluates; the others follow its early-stopping decision
            vloss = D.broadcast_float(ctx, _validate(net, task, data, y_scale, logs))
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
            _checkpoint(checkpoint_dir, net, opt, best_state, state, params, extra)
        for cb in callbacks:
            _call(cb, "on_epoch_end", state, logs)
        if past_deadline():  # a time budget's deadline (train.budget.deadline): stop, keeping the best epoch
            state.stopped_early = True
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
