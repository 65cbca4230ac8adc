"""`model: auto`'s ensemble: cross-validated member predictions, greedy blend weights, one merged ONNX graph."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar, cast

import numpy as np
import pandas as pd

from roost.training.base import Estimator
from roost.training.preprocess import FeatureSpec, encode_labels

log = logging.getLogger(__name__)

PRIMARY_OUTPUT = {"binary": "probability", "multiclass": "probabilities", "regression": "prediction"}


def score(task: str, y: np.ndarray, out: np.ndarray) -> float:
    """The task's primary metric (binary ROC-AUC, multiclass log loss, regression RMSE) of `out` against `y`.

    Binary computes ROC-AUC alone: greedy blending scores thousands of candidate blends, and the full metric set
    (PR-AUC, calibration, log loss, ...) cost 2-3x more per call (2,000 rows) for numbers it then dropped."""
    from roost.metrics.overall import PRIMARY, compute, roc_auc

    if task == "binary":
        return roc_auc(y, out)
    return float(compute(task, y, out)[PRIMARY[task][0]])


def _better(task: str, a: float, b: float | None) -> bool:
    """True when score `a` beats `b` (None: nothing yet) on the task's primary metric."""
    from roost.metrics.overall import PRIMARY

    if b is None or b != b:
        return a == a
    return a > b if PRIMARY[task][1] == "max" else a < b


def greedy_weights(task: str, y: np.ndarray, preds: Sequence[np.ndarray], rounds: int = 20) -> list[float]:
    """Blend weights by greedy forward selection with replacement (Caruana et al., 2004) on held-out predictions.

    Each round adds the member whose inclusion scores best (ties: the member used most); a member's weight is its
    share of the rounds. Starts from the best single member; a round that would lower the score still adds one,
    as in the paper, so the blend can end a little below its best round on these predictions.
    """
    counts = [0] * len(preds)
    total: np.ndarray | None = None
    for r in range(rounds):
        best_j, best_s = 0, None
        for j, p in enumerate(preds):
            cand = p if total is None else (total + p) / (r + 1)
            s = score(task, y, cand)
            tie = s == best_s and counts[j] > counts[best_j]  # on a tie, the member used most: a sparser blend
            if _better(task, s, best_s) or tie:
                best_j, best_s = j, s
        counts[best_j] += 1
        # the running blend is kept as a sum: its average after round r is total / (r + 1)
        total = preds[best_j].astype(np.float64) if total is None else total + preds[best_j]
    return [c / rounds for c in counts]


def bagged_weights(
    task: str, y: np.ndarray, preds: Sequence[np.ndarray], bags: int = 20, seed: int = 0, rounds: int = 20
) -> list[float]:
    """Greedy blend weights averaged over `bags` bootstrap resamples of the held-out rows, kept only when that
    blend beats the best single member on all the rows; else the best single member alone (weight 1).

    One greedy pass fits its weights to the particular held-out rows; averaging passes over resamples (stratified
    by class for classification, so a rare class keeps its count) shrinks weights that only a few rows support,
    and the final check keeps the best single model unless blending it measurably helps (Caruana et al., 2006,
    bag ensemble selection to curb its overfitting of the selection set).
    """
    y = np.asarray(y)
    n, m = len(y), len(preds)
    singles = [score(task, y, p) for p in preds]
    best = 0
    for j, s in enumerate(singles):
        if _better(task, s, singles[best]):
            best = j
    alone = [float(j == best) for j in range(m)]
    if m == 1 or bags < 1:
        return alone
    rng = np.random.default_rng(seed)
    groups = [np.arange(n)] if task == "regression" else [np.flatnonzero(y == k) for k in np.unique(y)]
    total = np.zeros(m)
    for _ in range(bags):
        rows = np.concatenate([rng.choice(g, len(g)) for g in groups])
        total += greedy_weights(task, y[rows], [p[rows] for p in preds], rounds)
    weights = [float(w) for w in total / total.sum()]
    blend = sum(w * p.astype(np.float64) for w, p in zip(weights, preds))
    return weights if _better(task, score(task, y, np.asarray(blend)), singles[best]) else alone


def folds(task: str, y: np.ndarray, k: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(fit rows, held-out rows) index pairs: stratified for classification (at most as many folds as the rarest
    class has rows; none when it has one), shuffled for regression."""
    from sklearn.model_selection import KFold, StratifiedKFold

    if task == "regression":
        return list(KFold(k, shuffle=True, random_state=seed).split(np.zeros(len(y))))
    k = min(k, int(np.bincount(y.astype(np.int64)).min()))
    if k < 2:
        return []
    return list(StratifiedKFold(k, shuffle=True, random_state=seed).split(np.zeros(len(y)), y))


def repeated_folds(task: str, y: np.ndarray, k: int, seed: int, repeats: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """`repeats` rounds of folds() (each reshuffled: seed, seed + 1, ...); the first round is folds(task, y, k, seed)
    itself, so every row is held out once per round."""
    out: list[tuple[np.ndarray, np.ndarray]] = []
    for r in range(max(1, repeats)):
        out += folds(task, y, k, seed + r)
    return out


def early_stops(model: Estimator, n_rows: int | None = None, spec: FeatureSpec | None = None) -> bool:
    """True when the model stops on validation rows (LightGBM unless early_stopping_rounds is 0; the networks
    unless a fit of `n_rows` rows of `spec` is a convex solve, which only scores them: the linear candidate's)."""
    from roost.training.torch_model import TorchModel

    if model.framework == "lightgbm":
        return bool(model.params.get("early_stopping_rounds"))
    if isinstance(model, TorchModel) and n_rows is not None and spec is not None:
        return model.stops_early(n_rows, spec)
    return model.framework == "torch"


def inner_split(rows: np.ndarray, labels: np.ndarray | None, share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(fit rows, early-stopping rows) of a fold's training rows: `share` of them held out for early stopping,
    stratified by `labels` (indexed like `rows`; None: not stratified) where every class has two rows."""
    from sklearn.model_selection import train_test_split

    n_stop = max(1, int(round(share * len(rows))))
    strat = None
    if labels is not None:
        counts = np.unique(labels, return_counts=True)[1]
        if counts.min() >= 2 and n_stop >= len(counts) and len(rows) - n_stop >= len(counts):
            strat = labels
    fit, stop = train_test_split(rows, test_size=n_stop, random_state=seed, stratify=strat)
    return np.sort(fit), np.sort(stop)


class HeldOutCurve:
    """A training-loop callback: a network's predictions on its held-out rows after every epoch (what
    others_rounds_oof reads the prediction at a chosen epoch from)."""

    def __init__(self, model: Estimator, X: pd.DataFrame) -> None:
        self.model, self.X, self.preds = model, X, cast(list[np.ndarray], [])

    def on_epoch_end(self, state: Any, logs: Any = None) -> None:
        """Record the predictions of the weights as they are after this epoch."""
        self.preds.append(np.asarray(self.model.predict(self.X), dtype=np.float64))


def stopping_rounds(model: Estimator, curve: HeldOutCurve | None) -> tuple[int, int] | None:
    """(best round, rounds trained) of a fold model that early-stopped on its held-out rows (LightGBM boosting
    rounds, network epochs); None for one that did not stop there (no early stopping, a convex solve)."""
    from roost.training.lgbm import LightGBMModel
    from roost.training.torch_model import TorchModel

    if isinstance(model, LightGBMModel):
        if not model.params.get("early_stopping_rounds"):
            return None
        trained = int(model.model_.booster_.current_iteration())
        return min(int(model.best_iteration_), trained), trained
    if isinstance(model, TorchModel) and curve is not None and len(curve.preds) > 1:
        return int(model.state_.best_epoch), len(curve.preds)
    return None


def others_rounds(best: Sequence[int]) -> list[int]:
    """Per fold model, the rounds it is scored at when no fold may choose its own: the mean of the *other* fold
    models' best rounds, rounded (at least 1)."""
    total, n = float(sum(best)), len(best)
    return [max(1, int(round((total - b) / max(n - 1, 1)))) for b in best]


def cross_fit(
    make: Callable[[], Estimator],
    X: pd.DataFrame,
    y: pd.Series,
    spec: FeatureSpec,
    splits: list[tuple[np.ndarray, np.ndarray]],
    on_fold: Callable[[int, np.ndarray, np.ndarray], None] | None = None,
    inner: tuple[float, np.ndarray | None, int] | None = None,
    rounds: str = "own",
) -> tuple[np.ndarray, list[Estimator]]:
    """Out-of-fold predictions and the fold models. Each fold model early-stops on its own held-out fold, or with
    `inner` = (share, labels or None, seed) on an inner split of its training rows (inner_split), never on the
    rows that score it. Splits that hold a row out more than once (repeated_folds): its prediction is the mean.

    `rounds` (without `inner`): "own" scores each fold model at the round its own fold chose (optimistic: the
    scored rows picked the round); "others" scores it at the mean of the other fold models' best rounds
    (others_rounds, capped at the rounds it trained), so no held-out row chose the round it is scored at — honest
    as a convex fit's out-of-fold predictions are; the fold models themselves (what a blend ships) are the same.
    `on_fold(k, rows done so far, out-of-fold predictions)` runs after fold k (a tuner reports it to its pruner).
    """
    if rounds not in ("own", "others"):
        raise ValueError(f"rounds: {rounds!r} is not 'own' or 'others'")
    oof = OutOfFold(len(X))
    models: list[Estimator] = []
    curves: list[HeldOutCurve | None] = []
    for i, split in enumerate(splits):
        m, curve = fit_fold(make, X, y, spec, split, inner, i, rounds)
        held = split[1]
        oof.add(held, m.predict(X.iloc[held]))
        models.append(m)
        curves.append(curve)
        if on_fold is not None:
            done = np.unique(np.concatenate([h for _, h in splits[: len(models)]]))
            on_fold(len(models), done, oof.mean())
    if rounds == "others" and inner is None:
        return others_rounds_oof(models, curves, X, splits), models
    return oof.mean(), models


def fit_fold(
    make: Callable[[], Estimator],
    X: pd.DataFrame,
    y: pd.Series,
    spec: FeatureSpec,
    split: tuple[np.ndarray, np.ndarray],
    inner: tuple[float, np.ndarray | None, int] | None,
    i: int,
    rounds: str = "own",
) -> tuple[Estimator, HeldOutCurve | None]:
    """Fold `i`'s model, fitted as cross_fit fits it, and (rounds="others", a network stopping on its fold) the
    curve of its held-out predictions per epoch that others_rounds_oof reads."""
    fit_rows, held = split
    m = make()
    curve = None
    if inner is None:
        curve = HeldOutCurve(m, X.iloc[held]) if rounds == "others" and m.framework == "torch" else None
        kw: dict[str, Any] = {"callbacks": [curve]} if curve is not None else {}
        m.fit(X.iloc[fit_rows], y.iloc[fit_rows], X.iloc[held], y.iloc[held], spec=spec, **kw)
    elif early_stops(m, len(fit_rows), spec):
        share, labels, seed = inner
        fit, stop = inner_split(fit_rows, None if labels is None else labels[fit_rows], share, seed + i)
        m.fit(X.iloc[fit], y.iloc[fit], X.iloc[stop], y.iloc[stop], spec=spec)
    else:  # nothing to stop on: every training row fits
        m.fit(X.iloc[fit_rows], y.iloc[fit_rows], spec=spec)
    return m, curve


def others_rounds_oof(
    models: Sequence[Estimator],
    curves: Sequence[HeldOutCurve | None],
    X: pd.DataFrame,
    splits: list[tuple[np.ndarray, np.ndarray]],
) -> np.ndarray:
    """Out-of-fold predictions with each early-stopped fold model scored at others_rounds of the fold models'
    best rounds (capped at its own trained rounds); fold models that did not stop on their fold: as predicted."""
    from roost.training.lgbm import LightGBMModel

    found = [stopping_rounds(m, c) for m, c in zip(models, curves)]
    stops = [s for s in found if s is not None]
    if len(stops) < len(models):  # some fold model did not stop on its fold (none, in practice): as predicted
        stops = []
    at = others_rounds([best for best, _ in stops])
    oof = OutOfFold(len(X))
    for i, ((_, held), m, c) in enumerate(zip(splits, models, curves)):
        if not stops:
            oof.add(held, m.predict(X.iloc[held]))
        elif c is not None:  # a network: its recorded predictions after that epoch
            oof.add(held, c.preds[min(at[i], stops[i][1]) - 1])
        else:
            assert isinstance(m, LightGBMModel)
            oof.add(held, m.predict_at(X.iloc[held], min(at[i], stops[i][1])))
    return oof.mean()


def _mean(total: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Per-row mean of summed predictions (rows never held out stay 0)."""
    c = np.maximum(count, 1.0).reshape((-1,) + (1,) * (total.ndim - 1))
    return np.asarray(total / c)


class OutOfFold:
    """Out-of-fold predictions of `n` rows, summed as the fold models' come in; mean() averages a row held out more
    than once (repeated_folds) and leaves a row never held out at 0."""

    def __init__(self, n: int) -> None:
        self.total: np.ndarray | None = None
        self.count = np.zeros(n, dtype=np.float64)

    def add(self, held: np.ndarray, pred: Any) -> None:
        """Add one fold model's predictions for its held-out rows."""
        p = np.asarray(pred, dtype=np.float64)
        if self.total is None:
            self.total = np.zeros((len(self.count), *p.shape[1:]), dtype=np.float64)
        self.total[held] += p
        self.count[held] += 1

    def mean(self) -> np.ndarray:
        """The per-row mean so far."""
        assert self.total is not None, "no fold added"
        return _mean(self.total, self.count)


class Blend(Estimator):
    """A weighted average of fitted members' outputs (probabilities or values); exported as one ONNX graph."""

    model_type = "auto"
    framework: ClassVar[str] = "ensemble"
    DEFAULTS: ClassVar[dict[str, Any]] = {}

    def __init__(self, members: Sequence[tuple[str, Estimator]], weights: Sequence[float]) -> None:
        super().__init__()
        kept = [(n, m, float(w)) for (n, m), w in zip(members, weights) if w > 0]
        if not kept:
            raise ValueError("a blend needs at least one member with a positive weight")
        total = sum(w for _, _, w in kept)
        self.members = [(n, m) for n, m, _ in kept]
        self.weights = [w / total for _, _, w in kept]
        first = self.members[0][1]
        self.spec_, self.task_, self.classes_ = first.spec_, first.task_, list(first.classes_)
        self.task = first.task_

    def get_params(self) -> dict[str, Any]:
        """The members (type and weight) as parameters."""
        return {"members": [f"{n}:{w:.4f}" for (n, _), w in zip(self.members, self.weights)]}

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """The weighted average of the members' outputs."""
        out = sum(w * np.asarray(m.predict(X), dtype=np.float64) for (_, m), w in zip(self.members, self.weights))
        return np.asarray(out, dtype=np.float32)

    def fit(self, X: pd.DataFrame, y: pd.Series, X_val: Any = None, y_val: Any = None, **kw: Any) -> Blend:
        """A blend is built from fitted members; fitting it again is not supported."""
        raise NotImplementedError("build a Blend from fitted members (roost.training.auto)")

    def export_onnx(self, directory: Path, sample: pd.DataFrame) -> float:
        """model.onnx = every member's graph on the shared raw inputs, outputs weighted and summed."""
        import onnx

        from roost.training.export import parity

        assert self.spec_ is not None and self.task_ is not None
        out = PRIMARY_OUTPUT[self.task_]
        graphs, weights = [], []
        with tempfile.TemporaryDirectory(prefix="roost-blend-") as tmp:
            for k, (idx, torch_group) in enumerate(_export_groups(self.members)):
                sub = Path(tmp) / str(k)
                if torch_group:  # the networks of one spec: one export of their weighted sum (an export is slow)
                    _export_networks([self.members[i][1] for i in idx], [self.weights[i] for i in idx], sub, sample)
                    weights.append(1.0)
                else:
                    self.members[idx[0]][1].export_onnx(sub, sample.head(10))
                    weights.append(self.weights[idx[0]])
                graphs.append(onnx.load(str(sub / "model.onnx")))
        model = merge_graphs(graphs, weights, out)
        path = Path(directory) / "model.onnx"
        path.parent.mkdir(parents=True, exist_ok=True)
        onnx.save_model(model, str(path))
        return parity(path, self.spec_.raw_inputs(sample), {out: np.asarray(self.predict(sample))})

    def save_package(
        self,
        directory: Path | str,
        sample: pd.DataFrame,
        label: str | None = None,
        run_id: str | None = None,
        metrics: dict[str, float] | None = None,
        extra_meta: dict[str, Any] | None = None,
    ) -> Path:
        """The model package; its meta names the kept member types joined by '+' as the model type."""
        kind = "+".join(dict.fromkeys(n for n, _ in self.members))
        return super().save_package(
            directory, sample, label, run_id, metrics, {"model_type": kind, **(extra_meta or {})}
        )

    def signature(self, label: str | None = None) -> dict[str, Any]:
        """signature.json content: the primary output only."""
        sig = super().signature(label)
        sig["outputs"] = [o for o in sig["outputs"] if o["name"] == PRIMARY_OUTPUT[self.task_ or "binary"]]
        return sig

    def save_native(self, directory: Path) -> None:
        """native/<k>-<type>/ per member and native/blend.json (types and weights)."""
        import json

        directory.mkdir(parents=True, exist_ok=True)
        for k, (name, m) in enumerate(self.members):
            m.save_native(directory / f"{k}-{name}")
        (directory / "blend.json").write_text(json.dumps(self.get_params(), indent=1))


def _export_groups(members: Sequence[tuple[str, Estimator]]) -> list[tuple[list[int], bool]]:
    """Members in export units: (indices, True) for the torch networks sharing one feature spec and model type
    (e.g. a candidate's fold models), ([i], False) for every other member; in member order of first appearance."""
    import json

    groups: dict[str, list[int]] = {}
    out: list[tuple[list[int], bool]] = []
    for i, (name, m) in enumerate(members):
        if getattr(m, "framework", "") != "torch" or m.spec_ is None:
            out.append(([i], False))
            continue
        key = json.dumps([name, m.spec_.to_dict()], sort_keys=True, default=str)
        if key not in groups:
            groups[key] = []
            out.append((groups[key], True))
        groups[key].append(i)
    return out


def _export_networks(models: Sequence[Any], weights: Sequence[float], directory: Path, sample: pd.DataFrame) -> None:
    """model.onnx = Σ weight_k · network_k's primary output, the networks sharing one spec: one torch export."""
    import torch

    from roost.training.export import export_module

    first = models[0]
    out = PRIMARY_OUTPUT[first.task_]

    class Weighted(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.heads = torch.nn.ModuleList([m.head() for m in models])
            self.w = [float(w) for w in weights]

        def forward(self, *cols: Any) -> Any:
            return sum(w * h(*cols)[0] for h, w in zip(self.heads, self.w))

    cols = first.spec_.encode(sample.head(10))
    export_module(Weighted(), first.spec_, cols, [out], Path(directory) / "model.onnx")


def merge_graphs(models: Sequence[Any], weights: Sequence[float], output: str) -> Any:
    """One ONNX model: each member's nodes under its own name prefix, reading the shared graph inputs, and
    `output` = Σ weight_k · member_k's `output`."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from roost.training.onnx_graph import finalize

    nodes: list[Any] = []
    inits: list[Any] = []
    infos: list[Any] = []
    inputs: dict[str, Any] = {}
    funcs: dict[tuple[str, str], Any] = {}
    opsets: dict[str, int] = {}
    terms: list[str] = []
    out_info = None
    for k, (m, w) in enumerate(zip(models, weights)):
        g, pre = m.graph, f"m{k}/"
        init_names = {t.name for t in g.initializer}
        shared = {i.name for i in g.input} - init_names

        def ren(name: str, pre: str = pre, shared: set[str] = shared) -> str:
            return name if (not name or name in shared) else pre + name

        for i in g.input:
            if i.name in shared:
                inputs.setdefault(i.name, i)
        for n in g.node:
            c = onnx.NodeProto()
            c.CopyFrom(n)
            c.name = pre + (n.name or f"node{len(nodes)}")
            c.input[:] = [ren(x) for x in n.input]
            c.output[:] = [ren(x) for x in n.output]
            nodes.append(c)
        for t in g.initializer:
            c2 = onnx.TensorProto()
            c2.CopyFrom(t)
            c2.name = ren(t.name)
            inits.append(c2)
        for vi in g.value_info:
            c3 = onnx.ValueInfoProto()
            c3.CopyFrom(vi)
            c3.name = ren(vi.name)
            infos.append(c3)
        for f in m.functions:
            funcs.setdefault((f.domain, f.name), f)
        for op in m.opset_import:
            opsets[op.domain] = max(opsets.get(op.domain, 0), op.version)
        outs = {o.name: o for o in g.output}
        if output not in outs:
            raise ValueError(f"member {k} has no output {output!r}")
        out_info = out_info or outs[output]
        wname = f"{pre}weight"
        inits.append(numpy_helper.from_array(np.array(w, dtype=np.float32), wname))
        nodes.append(helper.make_node("Mul", [ren(output), wname], [f"{pre}weighted"], name=f"{pre}weigh"))
        terms.append(f"{pre}weighted")
    nodes.append(helper.make_node("Sum", terms, [output], name="blend"))
    assert out_info is not None
    y = helper.make_tensor_value_info(output, TensorProto.FLOAT, None)
    y.type.CopyFrom(out_info.type)
    graph = helper.make_graph(nodes, "roost_blend", list(inputs.values()), [y], initializer=inits, value_info=infos)
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid(d, v) for d, v in opsets.items()],
        functions=list(funcs.values()),
    )
    model.ir_version = max(int(m.ir_version) for m in models)
    return finalize(model, f"weighted blend of {len(models)} models")


def encoded(y: pd.Series, task: str, classes: list[Any] | None) -> np.ndarray:
    """Labels as the metrics see them (class indices for classification, values for regression)."""
    return np.asarray(encode_labels(y, task, classes or None)[0])
