"""Tree ensembles → one ONNX TreeEnsemble node built with numpy from the model's own trees (scikit-learn's `tree_`
arrays, LightGBM's model text, XGBoost's JSON model): the graph skl2onnx/onnxmltools write for these models (same
trees, thresholds, missing-value directions, leaf weights, post transform) without their per-node Python: for the
bench's models 7-12x less CPU.

Only what is covered here is built; anything else (pipelines and other estimators, categorical splits unless asked
for, LightGBM's zero-as-missing, linear trees, random forest mode, objectives with other output transforms, XGBoost's
multi-target or non-NaN `missing`) gives None and the caller converts with skl2onnx/onnxmltools. The package's parity
check against the native model runs either way.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

# LightGBM objectives whose prediction is the raw score (onnxmltools: post_transform NONE)
_LGB_IDENTITY = {"regression", "regression_l1", "huber", "fair", "quantile", "mape"}
# XGBoost objectives by output: classifier with a sigmoid, classifier with softmax, regression on the raw score
_XGB_BINARY = {"binary:logistic"}
_XGB_MULTI = {"multi:softprob"}
_XGB_REGRESSION = {"reg:squarederror", "reg:absoluteerror", "reg:pseudohubererror"}


@dataclass
class _Nodes:
    """Every node of an ensemble (tree by tree) and the leaves' weights, in the TreeEnsemble operators' layout."""

    tree: np.ndarray
    node: np.ndarray
    feature: np.ndarray
    leaf: np.ndarray  # bool: a leaf (mode LEAF), else a split with `mode` (BRANCH_EQ where `equal`)
    threshold: np.ndarray
    true_id: np.ndarray
    false_id: np.ndarray
    missing_true: np.ndarray
    weight_tree: np.ndarray  # one entry per (leaf, class or target) with a weight
    weight_node: np.ndarray
    weight_target: np.ndarray
    weight: np.ndarray
    equal: np.ndarray | None = None  # bool: a BRANCH_EQ split (one category of a LightGBM categorical split)


def lightgbm_graph(
    model: Any, n_features: int, *, categorical_splits: bool = False, input_name: str = "X"
) -> Any | None:
    """The ONNX model (input `input_name` [N, n_features] float) of a LightGBM Booster or LGBMModel, or None when its
    trees or objective are not covered here (then onnxmltools converts it). Outputs: `label` and `probabilities` for
    binary/multiclass, `variable` [N, 1] for regression.

    categorical_splits: build a categorical split as onnxmltools does, one BRANCH_EQ node per category in its set
    (equal to LightGBM for the whole non-negative numbers its categorical columns are given, as roost train's
    category indices; not for NaN or fractions, which LightGBM reads otherwise: off, such models give None)."""
    booster = getattr(model, "booster_", model)
    header, trees = _lgb_parse(booster.model_to_string())  # up to the best iteration, as predict() and onnxmltools
    if not trees or "average_output" in header or int(header.get("max_feature_idx", -1)) + 1 != n_features:
        return None
    objective = header.get("objective", "").split()
    if not objective or any(t.get("is_linear", "0") != "0" for t in trees):
        return None
    if not categorical_splits and any(t.get("num_cat", "0") != "0" for t in trees):
        return None
    kind, n_out = objective[0], int(header.get("num_tree_per_iteration", "1"))
    if kind == "binary" and "sigmoid:1" in objective[1:] and n_out == 1:
        post, n_classes = "LOGISTIC", 2
    elif kind == "multiclass" and n_out > 1:
        post, n_classes = "SOFTMAX", n_out
    elif kind in _LGB_IDENTITY and n_out == 1:
        post, n_classes = "NONE", 0
    else:
        return None
    nodes = _lgb_nodes(trees, n_out)
    if nodes is None:
        return None
    return _ensemble_model(nodes, n_features, "BRANCH_LEQ", post, n_classes, [], input_name)


def _lgb_parse(text: str) -> tuple[dict[str, str], list[dict[str, str]]]:
    """(header key=values, one key=values dict per tree) of LightGBM's model text."""
    header: dict[str, str] = {}
    trees: list[dict[str, str]] = []
    current = header
    for line in text.splitlines():
        if line.startswith("Tree="):
            current = {}
            trees.append(current)
        elif line == "end of trees":
            break
        key, _, value = line.partition("=")
        if key:
            current[key] = value  # a flag line (average_output) has no "="
    return header, trees


def _ints(parts: list[str]) -> np.ndarray:
    return np.array(" ".join(parts).split(), dtype=np.int64)


def _floats(parts: list[str]) -> np.ndarray:
    return np.array(" ".join(parts).split(), dtype=np.float64)


def _lgb_nodes(trees: list[dict[str, str]], n_out: int) -> _Nodes | None:
    """The nodes of LightGBM trees: splits numbered 0..L-2 as in the text, leaves after them (L-1+leaf), the extra
    BRANCH_EQ nodes of categorical splits after the leaves."""
    leaves = np.array([int(t["num_leaves"]) for t in trees], dtype=np.int64)
    splits = leaves - 1
    split_trees = [t for t in trees if int(t["num_leaves"]) > 1]
    feature = _ints([t["split_feature"] for t in split_trees])
    threshold = _floats([t["threshold"] for t in split_trees])
    decision = _ints([t["decision_type"] for t in split_trees])
    left, right = _ints([t["left_child"] for t in split_trees]), _ints([t["right_child"] for t in split_trees])
    value = _floats([t["leaf_value"] for t in trees])
    if not (len(feature) == len(threshold) == len(decision) == len(left) == len(right) == splits.sum()):
        return None
    if len(value) != leaves.sum():
        return None
    missing = (decision >> 2) & 3  # 0 none (NaN is read as 0.0), 1 zero, 2 NaN
    if (missing == 1).any():  # zero-as-missing: onnxmltools' way
        return None
    default_left = (decision >> 1) & 1
    # NaN: to the default side when NaN is the missing type, else as 0.0 is (left when 0 <= threshold)
    missing_true = np.where(missing == 2, default_left, (threshold >= 0).astype(np.int64))
    cat = np.flatnonzero(decision & 1)
    missing_true[cat] = default_left[cat]  # a categorical split: NaN to its default side, as onnxmltools writes it
    tree_ids = np.arange(len(trees), dtype=np.int64)
    split_tree = np.repeat(tree_ids, splits)
    split_local = np.arange(len(split_tree)) - np.repeat(np.cumsum(splits) - splits, splits)
    base = np.repeat(splits, splits)  # a leaf k of the tree is node L-1+k

    def child(c: np.ndarray) -> np.ndarray:
        return np.where(c >= 0, c, base + ~c)

    true_id, false_id = child(left), child(right)
    splits_of = [split_tree, split_local, feature, threshold, true_id, false_id, missing_true]
    equal = np.zeros(len(split_tree), dtype=bool)
    if len(cat):
        from roost.model_import.lgbcats import category_chains

        extra = category_chains(trees, splits_of, cat)
        if extra is None:
            return None
        splits_of = [np.concatenate([a, e]) for a, e in zip(splits_of, extra)]
        equal = np.concatenate([equal, np.ones(len(extra[0]), dtype=bool)])
        equal[cat] = True
    leaf_tree = np.repeat(tree_ids, leaves)
    leaf_local = np.repeat(splits, leaves) + np.arange(len(leaf_tree)) - np.repeat(np.cumsum(leaves) - leaves, leaves)
    s_tree, s_node, s_feature, s_threshold, s_true, s_false, s_missing = splits_of
    return _merge(
        s_tree, s_node, s_feature, s_threshold, s_true, s_false, s_missing,
        leaf_tree, leaf_local, value, leaf_tree % n_out, equal,
    )  # fmt: skip


def _merge(
    split_tree: np.ndarray,
    split_node: np.ndarray,
    feature: np.ndarray,
    threshold: np.ndarray,
    true_id: np.ndarray,
    false_id: np.ndarray,
    missing_true: np.ndarray,
    leaf_tree: np.ndarray,
    leaf_node: np.ndarray,
    weight: np.ndarray,
    target: np.ndarray,
    equal: np.ndarray | None = None,
) -> _Nodes:
    """Splits and leaves in one node list, ordered by tree then node id (the layout onnxmltools writes); the weight
    table may name a leaf more than once (one entry per class)."""
    first = np.ones(len(leaf_tree), dtype=bool)
    first[1:] = (leaf_tree[1:] != leaf_tree[:-1]) | (leaf_node[1:] != leaf_node[:-1])
    u_tree, u_node = leaf_tree[first], leaf_node[first]
    n_split, n_leaf = len(split_tree), len(u_tree)
    tree = np.concatenate([split_tree, u_tree])
    node = np.concatenate([split_node, u_node])
    order = np.lexsort((node, tree))
    zeros_i, zeros_f = np.zeros(n_leaf, dtype=np.int64), np.zeros(n_leaf, dtype=np.float64)
    return _Nodes(
        tree=tree[order],
        node=node[order],
        feature=np.concatenate([feature, zeros_i])[order],
        leaf=np.concatenate([np.zeros(n_split, dtype=bool), np.ones(n_leaf, dtype=bool)])[order],
        threshold=np.concatenate([threshold, zeros_f])[order],
        true_id=np.concatenate([true_id, zeros_i])[order],
        false_id=np.concatenate([false_id, zeros_i])[order],
        missing_true=np.concatenate([missing_true, zeros_i])[order],
        weight_tree=leaf_tree,
        weight_node=leaf_node,
        weight_target=target,
        weight=weight,
        equal=None if equal is None else np.concatenate([equal, np.zeros(n_leaf, dtype=bool)])[order],
    )


def xgboost_graph(model: Any, n_features: int) -> Any | None:
    """The ONNX model (input X [N, n_features] float) of an XGBoost Booster or XGBModel, or None when it is not
    covered here (then onnxmltools converts it). Outputs as lightgbm_graph's."""
    missing = getattr(model, "missing", np.nan)
    if missing is not None and not (isinstance(missing, float) and math.isnan(missing)):
        return None
    wrapper = hasattr(model, "get_booster")
    booster = model.get_booster() if wrapper else model
    if getattr(booster, "booster", "gbtree") not in ("gbtree", None):
        return None
    import orjson

    doc = orjson.loads(booster.save_raw("json"))
    learner = doc["learner"]
    params = learner["learner_model_param"]
    gb = learner["gradient_booster"]
    if gb.get("name") != "gbtree" or int(params.get("num_target", "1")) != 1:
        return None
    if int(params.get("num_feature", "0")) != n_features:
        return None
    objective = learner["objective"]["name"]
    n_classes = int(params.get("num_class", "0"))
    base = [float(v) for v in np.atleast_1d(json.loads(params["base_score"]))]
    trees_json, tree_info = gb["model"]["trees"], gb["model"]["tree_info"]
    indptr = gb["model"].get("iteration_indptr")
    best = booster.attr("best_iteration")
    if best is not None:
        if not wrapper or not indptr:  # a bare Booster's predict() reads all trees: onnxmltools' way
            return None
        keep = int(indptr[int(best) + 1])  # what the wrapper's predict() reads: up to the best iteration
        trees_json, tree_info = trees_json[:keep], tree_info[:keep]
    if not trees_json:
        return None
    if objective in _XGB_BINARY and n_classes == 0 and len(base) == 1:
        post, labels = "LOGISTIC", 2
        p = float(np.float32(base[0]))
        base_values = [] if p == 0.5 else [float(-np.log(1 / np.float32(p) - 1.0))]
    elif objective in _XGB_MULTI and n_classes > 1 and len(base) in (1, n_classes):
        post, labels = "SOFTMAX", n_classes
        base_values = base * n_classes if len(base) == 1 else base
    elif objective in _XGB_REGRESSION and n_classes == 0 and len(base) == 1:
        post, labels, base_values = "NONE", 0, base
    else:
        return None
    nodes = _xgb_nodes(trees_json, tree_info)
    if nodes is None:
        return None
    return _ensemble_model(nodes, n_features, "BRANCH_LT", post, labels, base_values)


def _xgb_nodes(trees: list[dict[str, Any]], tree_info: list[int]) -> _Nodes | None:
    """The nodes of XGBoost's JSON trees (node ids as in the arrays; a leaf's value is its split_conditions entry)."""
    sizes = np.array([len(t["left_children"]) for t in trees], dtype=np.int64)
    left = np.concatenate([np.asarray(t["left_children"], dtype=np.int64) for t in trees])
    right = np.concatenate([np.asarray(t["right_children"], dtype=np.int64) for t in trees])
    feature = np.concatenate([np.asarray(t["split_indices"], dtype=np.int64) for t in trees])
    cond = np.concatenate([np.asarray(t["split_conditions"], dtype=np.float64) for t in trees])
    default_left = np.concatenate([np.asarray(t["default_left"], dtype=np.int64) for t in trees])
    kinds = np.concatenate([np.asarray(t.get("split_type") or [0] * len(t["left_children"])) for t in trees])
    if (kinds != 0).any() or len(tree_info) != len(trees):  # categorical splits: onnxmltools' way
        return None
    tree = np.repeat(np.arange(len(trees), dtype=np.int64), sizes)
    node = np.arange(len(tree)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    is_leaf = left < 0
    s, lf = ~is_leaf, is_leaf
    target = np.asarray(tree_info, dtype=np.int64)[tree]
    return _merge(
        tree[s], node[s], feature[s], cond[s], left[s], right[s], default_left[s],
        tree[lf], node[lf], cond[lf], target[lf],
    )  # fmt: skip


def _ensemble_model(
    nodes: _Nodes, n_features: int, mode: str, post: str, n_classes: int, base_values: list[float], x_name: str = "X"
) -> Any:
    """One TreeEnsembleClassifier (n_classes > 0: outputs label, probabilities) or TreeEnsembleRegressor (outputs
    variable [N, 1]) on input X. The attributes are filled in the model's own node (protobuf copies a message it is
    given: building them apart and adding them copied every array three times)."""
    from onnx import AttributeProto, TensorProto, helper

    x = helper.make_tensor_value_info(x_name, TensorProto.FLOAT, [None, n_features])
    if n_classes:
        op, out_names = "TreeEnsembleClassifier", ["label", "probabilities"]
        outputs = [
            helper.make_tensor_value_info("label", TensorProto.INT64, [None]),
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, n_classes]),
        ]
    else:
        op, out_names = "TreeEnsembleRegressor", ["variable"]
        outputs = [helper.make_tensor_value_info("variable", TensorProto.FLOAT, [None, 1])]
    shell = helper.make_node(op, [x_name], out_names, domain="ai.onnx.ml", post_transform=post)
    g = helper.make_graph([shell], "roost_trees", [x], outputs)
    opsets = [helper.make_opsetid("", 15), helper.make_opsetid("ai.onnx.ml", 1)]
    model = helper.make_model(g, opset_imports=opsets, producer_name="roost")
    node = model.graph.node[0]

    def ints(name: str, values: Any) -> None:
        a = node.attribute.add(name=name, type=AttributeProto.INTS)
        a.ints.extend(np.asarray(values).tolist())

    def floats(name: str, values: Any) -> None:
        a = node.attribute.add(name=name, type=AttributeProto.FLOATS)
        a.floats.extend(np.asarray(values, dtype=np.float64).tolist())  # stored as float32, rounded to nearest

    prefix = "class" if n_classes else "target"
    ints("nodes_treeids", nodes.tree)
    ints("nodes_nodeids", nodes.node)
    ints("nodes_featureids", nodes.feature)
    modes = node.attribute.add(name="nodes_modes", type=AttributeProto.STRINGS)
    kinds = nodes.leaf.astype(np.int8) if nodes.equal is None else nodes.leaf + 2 * nodes.equal.astype(np.int8)
    names = [mode.encode(), b"LEAF", b"BRANCH_EQ"]  # by kind: 0 a split, 1 a leaf, 2 a split on one category
    modes.strings.extend([names[k] for k in kinds.tolist()])
    floats("nodes_values", nodes.threshold)
    ints("nodes_truenodeids", nodes.true_id)
    ints("nodes_falsenodeids", nodes.false_id)
    ints("nodes_missing_value_tracks_true", nodes.missing_true)
    ints(f"{prefix}_treeids", nodes.weight_tree)
    ints(f"{prefix}_nodeids", nodes.weight_node)
    ints(f"{prefix}_ids", nodes.weight_target)
    floats(f"{prefix}_weights", nodes.weight)
    if base_values:
        floats("base_values", base_values)
    if n_classes:
        ints("classlabels_int64s", np.arange(n_classes))
    else:
        node.attribute.add(name="n_targets", type=AttributeProto.INT, i=1)
    return model


def forest_graph(model: Any, n_features: int) -> Any | None:
    """The ONNX model (input X [N, n_features] float) of a scikit-learn random forest or extra-trees classifier or
    regressor with one output, as skl2onnx writes it (thresholds moved to the float32 that splits float32 inputs as
    scikit-learn's float64 threshold does; leaf class fractions / trees), NaN going where scikit-learn sends it; None
    for any other estimator (skl2onnx converts it)."""
    from sklearn.ensemble import (
        ExtraTreesClassifier,
        ExtraTreesRegressor,
        RandomForestClassifier,
        RandomForestRegressor,
    )

    if type(model) not in (RandomForestClassifier, RandomForestRegressor, ExtraTreesClassifier, ExtraTreesRegressor):
        return None
    estimators = list(getattr(model, "estimators_", []))
    if not estimators or int(model.n_outputs_) != 1 or int(model.n_features_in_) != n_features:
        return None
    clf = isinstance(model, RandomForestClassifier | ExtraTreesClassifier)
    n_classes = len(model.classes_) if clf else 0
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("left", "right", "feature", "threshold", "missing", "value")}
    sizes = []
    for est in estimators:
        t = est.tree_
        sizes.append(t.node_count)
        parts["left"].append(t.children_left)
        parts["right"].append(t.children_right)
        parts["feature"].append(t.feature)
        parts["threshold"].append(t.threshold)
        missing = getattr(t, "missing_go_to_left", None)
        parts["missing"].append(np.zeros(t.node_count, dtype=np.int64) if missing is None else missing)
        parts["value"].append(t.value[:, 0, :])
    left, right, feature, thr, missing, value = (np.concatenate(parts[k]) for k in parts)
    size = np.array(sizes, dtype=np.int64)
    tree = np.repeat(np.arange(len(sizes), dtype=np.int64), size)
    node = np.arange(len(tree)) - np.repeat(np.cumsum(size) - size, size)
    split = left >= 0
    f32 = thr.astype(np.float32)  # the float32 w with (float)x <= w exactly when (float)x <= thr
    f32 = np.where(f32.astype(np.float64) > thr, np.nextafter(f32, np.float32(-np.inf)), f32).astype(np.float64)
    weight_each = 1.0 / len(estimators)
    if clf:
        totals = value.sum(axis=1)
        fractions = value * (weight_each / np.where(totals != 0.0, totals, 1.0))[:, None]
        columns = [1] if n_classes == 2 else list(range(n_classes))  # binary: P(class 1), the runtime adds 1 - p
    else:
        fractions, columns = value * weight_each, [0]
    leaf = ~split
    k = len(columns)
    leaf_tree, leaf_node = np.repeat(tree[leaf], k), np.repeat(node[leaf], k)
    weights = fractions[leaf][:, columns].reshape(-1)
    targets = np.tile(np.arange(k, dtype=np.int64), int(leaf.sum()))
    nodes = _merge(
        tree[split], node[split], feature[split].astype(np.int64), f32[split], left[split], right[split],
        missing[split].astype(np.int64), leaf_tree, leaf_node, weights, targets,
    )  # fmt: skip
    return _ensemble_model(nodes, n_features, "BRANCH_LEQ", "NONE", n_classes, [])


def fast_trees(model: Any, framework: str, n_features: int) -> Any | None:
    """forest_graph, lightgbm_graph or xgboost_graph by `framework`; None when not covered (or the dump is not as
    expected)."""
    build = {"sklearn": forest_graph, "lightgbm": lightgbm_graph}.get(framework, xgboost_graph)
    try:
        return build(model, n_features)
    except (KeyError, ValueError, TypeError, IndexError, AttributeError):  # a dump of another shape: onnxmltools
        return None
