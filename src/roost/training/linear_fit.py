"""The linear candidate's convex solve: its L2 strength chosen by the data, as LogisticRegressionCV / RidgeCV do.

The design matrix is roost's own preprocessing (the network's `Preprocess` layer: imputed, normalised numeric
columns, then one one-hot block per categorical or hashed column, index 0 = unknown), so the package sees exactly
the inputs the weights were fitted on. Binary and multiclass: L2 logistic regression (multinomial), C chosen from
`CS` by stratified K-fold log loss over the training rows, then refitted on all of them; regression: ridge on the
standardised target, alpha chosen from `ALPHAS` by efficient leave-one-out. The weights are loaded into roost's
`Linear` module, which the export turns into the same ONNX graph as a network trained by the loop.

Issue 36: with its weight decay fixed, roost's linear candidate lost to LogisticRegressionCV on small tables (infert
ROC-AUC .745 vs .780, womenlf .719 vs .737) and the multiclass one to multinomial logistic regression (digits log
loss 0.171 vs 0.104).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

CS = np.logspace(-4, 4, 17)  # inverse L2 strengths tried (half-decade steps; LogisticRegressionCV's default range)
ALPHAS = np.logspace(-3, 5, 17)  # ridge strengths tried on the standardised target
FOLDS = 5
# The convex solve runs when rows × design columns is at most this (and the loop otherwise): above it one
# LogisticRegressionCV fit took longer than the loop's early-stopped epochs (20,000 × 30: 11 s vs 5 s on 2 loaded
# cores), and on that many rows the penalty matters little.
MAX_CELLS = 400_000
DENSE_MAX_WIDTH = 2_000  # wider design matrices (many categories or hash buckets) stay sparse


def design_width(net: Any) -> int:
    """Columns of the design matrix of a `Network(spec, Linear)`: numeric columns plus every one-hot block."""
    lin = net.body
    return int(lin.num.in_features) + sum(int(t.num_embeddings) for t in lin.tables)


def use_convex(solver: str, n_rows: int, width: int) -> bool:
    """Whether the linear candidate is fitted by the convex solve: `solver` "convex", or "auto" on a table of at
    most MAX_CELLS rows × design columns."""
    return solver == "convex" or (solver == "auto" and n_rows * max(width, 1) <= MAX_CELLS)


def design(net: Any, cols: Sequence[np.ndarray]) -> Any:
    """The design matrix of raw columns `cols` (spec.encode order) through the network's own preprocessing layer:
    float64, dense up to DENSE_MAX_WIDTH columns, else CSR."""
    import scipy.sparse as sp
    import torch

    with torch.no_grad():
        x, idx = net.pre([torch.from_numpy(np.ascontiguousarray(c)) for c in cols])
    num = x.numpy().astype(np.float64)
    n = num.shape[0]
    blocks = []
    for i, t in zip(idx, net.body.tables):
        card = int(t.num_embeddings)
        rows = np.arange(n)
        blocks.append(sp.csr_matrix((np.ones(n), (rows, i.numpy())), shape=(n, card)))
    if not blocks:
        return num
    X = sp.hstack([sp.csr_matrix(num), *blocks], format="csr")
    return X.toarray() if X.shape[1] <= DENSE_MAX_WIDTH else X


def solve(net: Any, task: str, cols: Sequence[np.ndarray], y: np.ndarray, n_out: int, seed: int) -> dict[str, float]:
    """Fit the `Network(spec, Linear)` `net`'s weights by the convex solve on encoded columns `cols` and encoded
    targets `y` (standardised for regression); returns {"C": …} or {"alpha": …}, the strength chosen. Raises
    ValueError where the solve cannot run (a single class, a class with fewer than 2 rows)."""
    from threadpoolctl import threadpool_limits

    X = design(net, cols)
    # one BLAS thread: these matrices are small, and two threads on busy cores made each solve 5x slower
    with warnings.catch_warnings(), threadpool_limits(1):
        warnings.simplefilter("ignore")  # convergence notes at the grid's weakest penalties (separable rows)
        if task == "regression":
            coef, bias, chosen = _ridge(X, y)
        else:
            coef, bias, chosen = _logistic(X, y, n_out, seed)
    _load(net, coef, bias)
    return chosen


def _ridge(X: Any, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    """RidgeCV (efficient leave-one-out over ALPHAS): (coef [1, d], intercept [1], chosen)."""
    from sklearn.linear_model import RidgeCV

    m = RidgeCV(alphas=ALPHAS, fit_intercept=True).fit(X, np.asarray(y, dtype=np.float64))
    return np.atleast_2d(m.coef_), np.atleast_1d(m.intercept_), {"alpha": float(m.alpha_)}


def _logistic(X: Any, y: np.ndarray, n_out: int, seed: int) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    """LogisticRegressionCV (stratified folds, log loss, CS): (coef [n_out, d], intercept [n_out], chosen). A class
    absent from these rows (a fold model's) gets a large negative bias: probability ~0, as it has no rows."""
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.model_selection import StratifiedKFold

    y = np.asarray(y).astype(np.int64)
    present, counts = np.unique(y, return_counts=True)
    if len(present) < 2 or counts.min() < 2:
        raise ValueError(f"{len(present)} classes, the smallest with {counts.min()} rows")
    k = int(min(FOLDS, counts.min()))
    cv = StratifiedKFold(k, shuffle=True, random_state=seed)
    m = LogisticRegressionCV(Cs=CS, cv=cv, scoring="neg_log_loss", max_iter=1000)
    m.fit(X, y)
    chosen = {"C": float(np.ravel(m.C_)[0])}
    if n_out == 1:  # binary: one logit
        return m.coef_, m.intercept_, chosen
    coef = np.zeros((n_out, m.coef_.shape[1]))
    bias = np.full(n_out, -30.0)
    if len(present) == 2:  # a multiclass fold with two classes: sklearn's one logit is z(c1) - z(c0)
        coef[present[1]], bias[present[1]] = m.coef_[0], m.intercept_[0]
        bias[present[0]] = 0.0
    else:
        coef[present], bias[present] = m.coef_, m.intercept_
    return coef, bias, chosen


def _load(net: Any, coef: np.ndarray, bias: np.ndarray) -> None:
    """Copy (coef [K, d], intercept [K]) into the Linear body: numeric weights, bias, one table per one-hot block."""
    import torch

    lin = net.body
    f = int(lin.num.in_features)
    with torch.no_grad():
        lin.num.weight.copy_(torch.as_tensor(coef[:, :f], dtype=torch.float32))
        lin.num.bias.copy_(torch.as_tensor(bias, dtype=torch.float32))
        at = f
        for t in lin.tables:
            card = int(t.num_embeddings)
            t.weight.copy_(torch.as_tensor(coef[:, at : at + card].T, dtype=torch.float32))
            at += card


def report(
    net: Any,
    task: str,
    train: tuple[Sequence[np.ndarray], np.ndarray],
    val: tuple[Sequence[np.ndarray], np.ndarray] | None,
    y_scale: tuple[float, float],
    callbacks: Sequence[Any] = (),
) -> Any:
    """The solved network's one "epoch" as the training loop reports it: train_loss, val_loss and val_* metrics
    through the callbacks (run logger, progress); returns the LoopState (one epoch, the best)."""
    import torch

    from roost.training.trainer import LoopState, evaluate, val_metrics

    net.eval()
    state = LoopState(epochs=1, steps_per_epoch=1)

    def tensors(cols: Sequence[np.ndarray]) -> list[Any]:
        return [torch.from_numpy(np.ascontiguousarray(c)) for c in cols]

    def target(y: np.ndarray) -> Any:  # the loss's targets: class indices, or the standardised value
        if task == "multiclass":
            return torch.from_numpy(np.asarray(y, dtype=np.int64))
        return torch.from_numpy(np.asarray(y, dtype=np.float32))

    for cb in callbacks:
        _call(cb, "on_train_begin", state)
    logs = {"train_loss": evaluate(net, task, tensors(train[0]), target(train[1]))[0]}
    if val is not None and len(val[1]) > 0:
        yv = (val[1] - y_scale[0]) / y_scale[1] if task == "regression" else val[1]
        vloss, raw = evaluate(net, task, tensors(val[0]), target(yv))
        logs["val_loss"] = vloss
        if task == "regression":
            raw = raw * y_scale[1] + y_scale[0]
        logs.update({f"val_{k}": v for k, v in val_metrics(task, val[1], raw).items() if np.isfinite(v)})
        state.best_loss = vloss
    state.epoch = state.best_epoch = state.step = 1
    state.history.append({"epoch": 1, **logs})
    for hook, args in (("on_step", (logs["train_loss"],)), ("on_epoch_end", (logs,)), ("on_train_end", ())):
        for cb in callbacks:
            _call(cb, hook, state, *args)
    return state


def _call(cb: Any, hook: str, *args: Any) -> None:
    """Call a fit callback's hook if it defines it."""
    fn = getattr(cb, hook, None)
    if fn is not None:
        fn(*args)
