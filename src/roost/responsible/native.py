"""Exact explanations from a package's native checkpoint: TreeSHAP (LightGBM), linear SHAP and Integrated Gradients.

- LightGBM (`native/model.txt`): LightGBM's own TreeSHAP (`pred_contrib`, the algorithm of shap's TreeExplainer
  with tree-path-dependent expectations), on the same float32 matrix the ONNX graph builds: vocabularies are read
  from the graph's LabelEncoder nodes. Output: log-odds (binary), raw value (regression), class margin.
- logreg (`native/model.pt` + `spec.json`): interventional linear SHAP on the logit, φ_j = w_j·(z_j − E_B z_j) for a
  normalised number and E[c] − E_B E[c] for a category's weight.
- other torch nets: Integrated Gradients on the normalised numbers and on every embedding output, from the
  background mean, trapezoid rule over `steps` points (completeness gap reported).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from roost.errors import RoostError


def onnx_vocabularies(model_file: Path) -> dict[str, list[str]]:
    """{column: vocabulary} from the `vocab_<column>` LabelEncoder nodes of a roost ONNX graph."""
    import onnx

    m = onnx.load(str(model_file), load_external_data=False)
    out: dict[str, list[str]] = {}
    for node in m.graph.node:
        if node.op_type == "LabelEncoder" and node.name.startswith("vocab_"):
            attrs = {a.name: a for a in node.attribute}
            keys = [k.decode() for k in attrs["keys_strings"].strings]
            vals = list(attrs["values_int64s"].ints)
            vocab = [k for _, k in sorted(zip(vals, keys))]
            out[node.input[0]] = [] if vocab == ["\x00<empty vocabulary>"] else vocab
    return out


def lightgbm_matrix(predictor: Any, df: Any) -> np.ndarray:
    """The float32 [N, F] matrix the package's LightGBM trees see (columns in signature order)."""
    import pandas as pd

    vocab = onnx_vocabularies(predictor.path / "model.onnx")
    cols = []
    for name in predictor.inputs:
        raw = predictor.cast(name, df[name].to_numpy() if hasattr(df[name], "to_numpy") else df[name])
        if predictor.dtypes[name] == "string":
            raw = (pd.Index(vocab.get(name, []), dtype=object).get_indexer(raw) + 1).astype(np.float32)
        cols.append(np.asarray(raw).astype(np.float32))
    return np.stack(cols, axis=1) if cols else np.zeros((len(df), 0), np.float32)


def tree_shap(predictor: Any, df: Any, target: int = 1) -> tuple[np.ndarray, np.ndarray, str]:
    """(SHAP values [N, F], base values [N], output space) from LightGBM's TreeSHAP."""
    import lightgbm as lgb

    booster = lgb.Booster(model_file=str(predictor.path / "native" / "model.txt"))
    contrib = np.asarray(booster.predict(lightgbm_matrix(predictor, df), pred_contrib=True))
    f = len(predictor.inputs)
    if predictor.task == "multiclass":
        contrib = contrib.reshape(len(df), -1, f + 1)[:, target, :]
    space = {"binary": "log-odds", "regression": "prediction", "multiclass": f"class {target} margin"}
    return contrib[:, :f], contrib[:, f], space[predictor.task]


def _torch_parts(pkg: Path) -> tuple[Any, dict[str, Any]]:
    """(network with loaded weights, native spec.json) of a torch package."""
    import torch

    from roost.training.models import TorchModel, make_model
    from roost.training.preprocess import FeatureSpec

    info = json.loads((pkg / "native" / "spec.json").read_text())
    spec = FeatureSpec.from_dict(info["spec"])
    params = {k: v for k, v in (info.get("params") or {}).items() if k != "task"}
    model = make_model(info["model_type"], info["task"], **params)
    if not isinstance(model, TorchModel):
        raise RoostError(f"model type {info['model_type']!r} is not a torch model", hint="package it with roost train")
    n_out = len(info["classes"]) if info["task"] == "multiclass" else 1
    net = model.build(spec, n_out)
    net.load_state_dict(torch.load(pkg / "native" / "model.pt", map_location="cpu", weights_only=True))
    net.eval()
    info["spec_obj"] = spec
    return net, info


def linear_shap(pkg: Path, df: Any, background: Any, target: int = 0) -> tuple[np.ndarray, np.ndarray, str]:
    """(SHAP values, base values, 'log-odds'|…) of a roost logreg package, exact for its linear logit."""
    import torch

    net, info = _torch_parts(pkg)
    spec = info["spec_obj"]
    with torch.no_grad():

        def parts(frame: Any) -> tuple[np.ndarray, list[np.ndarray]]:
            cols = [torch.from_numpy(np.ascontiguousarray(c)) for c in spec.encode(frame)]
            x, idx = net.pre(cols)
            return x.numpy().astype(np.float64), [i.numpy() for i in idx]

        x, idx = parts(df)
        xb, idxb = parts(background)
        lin = net.body
        w = lin.num.weight.detach().numpy().astype(np.float64)[target]
        tables = [t.weight.detach().numpy().astype(np.float64)[:, target] for t in lin.tables]
    num_phi = (x - xb.mean(axis=0)) * w
    sparse_phi = [tab[i] - tab[ib].mean() for tab, i, ib in zip(tables, idx, idxb)]
    phi = np.zeros((len(df), len(spec.columns)))
    num_names = [c.name for c in spec.numeric]
    sparse_names = [c.name for c in spec.sparse]
    order = [c.name for c in spec.columns]
    for j, n in enumerate(num_names):
        phi[:, order.index(n)] = num_phi[:, j]
    for k, n in enumerate(sparse_names):
        phi[:, order.index(n)] = sparse_phi[k]
    bias = float(lin.num.bias.detach().numpy()[target])
    base = bias + float(xb.mean(axis=0) @ w) + sum(float(t[ib].mean()) for t, ib in zip(tables, idxb))
    return _scaled(info, phi, np.full(len(df), base))


def integrated_gradients(
    pkg: Path, df: Any, background: Any, steps: int = 64, target: int = 0
) -> tuple[np.ndarray, np.ndarray, str, float]:
    """(attributions [N, F], baseline outputs [N], output space, worst completeness gap) for a torch package."""
    import torch

    net, info = _torch_parts(pkg)
    spec = info["spec_obj"]
    if net.pre is None:
        raise ValueError("two-tower networks are not supported by Integrated Gradients here")
    n, f = len(df), len(spec.columns)
    cols = [torch.from_numpy(np.ascontiguousarray(c)) for c in spec.encode(df)]
    bcols = [torch.from_numpy(np.ascontiguousarray(c)) for c in spec.encode(background)]
    tables = [m for name, m in net.named_modules() if isinstance(m, torch.nn.Embedding)]
    owner = {
        id(m): int(name.rsplit(".", 1)[-1]) for name, m in net.named_modules() if isinstance(m, torch.nn.Embedding)
    }
    with torch.no_grad():
        bx, bidx = net.pre(bcols)
        base_x = bx.mean(dim=0)
        base_emb = {id(t): t(bidx[owner[id(t)]]).mean(dim=0) for t in tables}
    alphas = torch.linspace(0.0, 1.0, steps + 1)
    weights = torch.full((steps + 1,), 1.0 / steps)
    weights[0] = weights[-1] = 0.5 / steps
    a = alphas.repeat(n)[:, None]  # row-major: row i's steps are contiguous
    saved: dict[str, Any] = {}

    def pre_hook(_m: Any, _inp: Any, out: Any) -> Any:
        x, idx = out
        x = x.detach().repeat_interleave(steps + 1, dim=0)
        xi = (base_x + a * (x - base_x)).requires_grad_(True)  # baseline: the background mean
        saved["x"] = (xi, x - base_x)
        return xi, [i.repeat_interleave(steps + 1, dim=0) for i in idx]

    def emb_hook(m: Any, _inp: Any, out: Any) -> Any:
        b = base_emb[id(m)]
        e = out.detach()
        ei = (b + a * (e - b)).requires_grad_(True)
        saved[f"e{id(m)}"] = (ei, e - b, owner[id(m)])
        return ei

    handles = [net.pre.register_forward_hook(pre_hook)] + [t.register_forward_hook(emb_hook) for t in tables]
    try:
        out = net(cols)[:, target]
        out.sum().backward()
    finally:
        for h in handles:
            h.remove()
    w_rows = weights.repeat(n)[:, None]
    phi = np.zeros((n, f))
    order = [c.name for c in spec.columns]
    xi, x = saved.pop("x")
    gx = (xi.grad * w_rows).reshape(n, steps + 1, -1).sum(dim=1)
    xd = x.reshape(n, steps + 1, -1)[:, 0, :]
    for j, c in enumerate(spec.numeric):
        phi[:, order.index(c.name)] = (gx[:, j] * xd[:, j]).numpy()
    for ei, diff, k in saved.values():
        g = (ei.grad * w_rows).reshape(n, steps + 1, -1).sum(dim=1)
        d = diff.reshape(n, steps + 1, -1)[:, 0, :]
        phi[:, order.index(spec.sparse[k].name)] += (g * d).sum(dim=1).numpy()
    ys = out.detach().reshape(n, steps + 1).numpy().astype(np.float64)
    start, end = ys[:, 0], ys[:, -1]
    gap = float(np.max(np.abs(phi.sum(axis=1) - (end - start)), initial=0.0))
    phi, start, space = _scaled(info, phi, start)
    return phi, start, space, gap


def _scaled(info: dict[str, Any], phi: np.ndarray, base: np.ndarray) -> tuple[np.ndarray, np.ndarray, str]:
    """Attributions in the package's output units: regression outputs are de-standardised (a model fitted on
    log(label), `target: log`, attributes the log of its prediction, log smear included: additive there, not after
    the exp)."""
    if info["task"] == "regression":
        mean, std = info.get("y_scale") or (0.0, 1.0)
        if info.get("log_target"):
            return phi * std, base * std + mean + float(np.log(info["log_target"][0])), "log(prediction)"
        return phi * std, base * std + mean, "prediction"
    return phi, base, "log-odds" if info["task"] == "binary" else "class logit"
