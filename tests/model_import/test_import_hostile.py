"""Hostile model files for `roost models import` / roost.log_model: clear RoostErrors naming the file or field,
no traceback from the CLI, and nothing half-written in the registry or the artifact store."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import roost
from roost.errors import RoostError

W = np.array([[1.0], [2.0], [-3.0]], dtype=np.float32)


def linear_onnx(path: Path, in_shape, outs=("prediction",), opset: int = 17, in_name: str = "X") -> Path:
    """y = X @ W as an ONNX file, with the given input shape (dims may be names or None) and output names."""
    import onnx
    from onnx import TensorProto, helper

    nodes = [helper.make_node("MatMul", [in_name, "W"], ["y"])]
    nodes += [helper.make_node("Identity", ["y"], [o]) for o in outs]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info(in_name, TensorProto.FLOAT, in_shape)],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, [in_shape[0], 1]) for o in outs],
        [helper.make_tensor("W", TensorProto.FLOAT, [3, 1], W.ravel().tolist())],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]), str(path))
    return path


def nothing_written(ws) -> None:
    """No run, no model, no artifact file."""
    assert roost.search_runs() == [] and roost.list_models() == []
    root = Path(ws.artifacts.removeprefix("file://"))
    assert not root.exists() or not [p for p in root.rglob("*") if p.is_file()]


def test_files_that_are_not_onnx_models_name_the_file(ws, cli, tmp_path):
    good = linear_onnx(tmp_path / "good.onnx", [None, 3]).read_bytes()
    files = {
        "text.onnx": b"hello, not a model\n",
        "empty.onnx": b"",
        "truncated.onnx": good[: len(good) // 2],
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
        rc, out, err = cli("models", "import", str(tmp_path / name), "--name", "m")
        assert rc == 2 and name in err and "not a valid ONNX model" in err, err
        assert "Traceback" not in out + err
    nothing_written(ws)


def test_onnx_with_an_opset_from_the_future_is_refused_before_registering(ws, cli, tmp_path):
    f = linear_onnx(tmp_path / "future.onnx", [None, 3], opset=99)
    rc, out, err = cli("models", "import", str(f), "--name", "future")
    assert rc == 2 and "future.onnx" in err and "ONNX Runtime" in err, err
    with pytest.raises(RoostError, match="ONNX Runtime"):
        roost.log_model(f.read_bytes(), name="future")
    nothing_written(ws)


@pytest.mark.parametrize(
    "shape,outs",
    [(["batch", 3], ("prediction",)), ([None, 3], ("prediction", "other")), ([None, 3], ("variable",))],
    ids=["named-batch-dim", "two-outputs", "no-spec-output"],
)
def test_onnx_with_a_matrix_input_is_split_into_columns_and_predicts_like_numpy(ws, cli, tmp_path, shape, outs):
    f = linear_onnx(tmp_path / "m.onnx", shape, outs)
    rc, out, err = cli("models", "import", str(f), "--name", "lin")
    assert rc == 0, err
    pred = roost.load_model("lin/1")
    assert pred.inputs == ["f0", "f1", "f2"] and pred.task == "regression"
    x = np.random.default_rng(0).normal(size=(7, 3)).astype(np.float32)
    got = pred.run({f"f{k}": x[:, k] for k in range(3)})
    assert set(got) == set(outs) | {"prediction"}
    for o in outs:
        np.testing.assert_allclose(np.asarray(got[o]).reshape(-1), (x @ W).reshape(-1), rtol=1e-5)
    want = (x @ W).reshape(-1)  # predict: one value per row, 1-D
    np.testing.assert_allclose(pred.predict(pd.DataFrame(x, columns=pred.inputs)), want, rtol=1e-5)


def test_onnx_binary_with_two_probability_columns_predicts_the_positive_class(ws, tmp_path):
    from onnx import TensorProto, helper

    # p1 = sigmoid(x @ W); outputs "probabilities" [N, 2] = [1 - p1, p1], as classifiers export them
    g = helper.make_graph(
        [
            helper.make_node("MatMul", ["X", "W"], ["z"]),
            helper.make_node("Sigmoid", ["z"], ["p1"]),
            helper.make_node("Sub", ["one", "p1"], ["p0"]),
            helper.make_node("Concat", ["p0", "p1"], ["probabilities"], axis=1),
        ],
        "g",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 3])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, 2])],
        [
            helper.make_tensor("W", TensorProto.FLOAT, [3, 1], W.ravel().tolist()),
            helper.make_tensor("one", TensorProto.FLOAT, [], [1.0]),
        ],
    )
    roost.log_model(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), name="clf", task="binary")
    pred = roost.load_model("clf/1")
    x = np.random.default_rng(1).normal(size=(9, 3)).astype(np.float32)
    want = 1 / (1 + np.exp(-(x @ W).reshape(-1)))
    np.testing.assert_allclose(pred.predict(pd.DataFrame(x, columns=pred.inputs)), want, rtol=1e-5)


def test_onnx_whose_feature_count_is_unknown_is_refused_naming_the_input(ws, cli, tmp_path):
    f = linear_onnx(tmp_path / "dyn.onnx", [None, "features"])
    rc, out, err = cli("models", "import", str(f), "--name", "dyn")
    assert rc == 2 and "dyn.onnx" in err and "'X'" in err and "[?, ?]" in err, err
    nothing_written(ws)


def test_onnx_with_an_odd_input_name_keeps_it(ws, tmp_path):
    from onnx import TensorProto, helper

    name = "we ird/na:me é"
    g = helper.make_graph(
        [helper.make_node("Mul", [name, "two"], ["prediction"])],
        "g",
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, [None])],
        [helper.make_tensor_value_info("prediction", TensorProto.FLOAT, [None])],
        [helper.make_tensor("two", TensorProto.FLOAT, [], [2.0])],
    )
    roost.log_model(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), name="odd")
    pred = roost.load_model("odd/1")
    assert pred.inputs == [name]
    np.testing.assert_allclose(pred.predict(pd.DataFrame({name: [1.0, -2.5]})), [2.0, -5.0])


@pytest.mark.parametrize("name", ["a/b", "../x", "名前", "x y", ""])
def test_an_invalid_model_name_leaves_no_run_and_no_artifacts(ws, tmp_path, name):
    f = linear_onnx(tmp_path / "m.onnx", [None, 3])
    with pytest.raises(RoostError, match="model name"):
        roost.log_model(f.read_bytes(), name=name)
    nothing_written(ws)


def test_a_pickle_that_is_not_a_model_names_the_file(ws, cli, tmp_path):
    (tmp_path / "dict.pkl").write_bytes(pickle.dumps({"not": "a model"}))
    pd.DataFrame({"a": [1.0, 2.0]}).to_csv(tmp_path / "s.csv", index=False)
    rc, out, err = cli(
        "models",
        "import",
        str(tmp_path / "dict.pkl"),
        "--name",
        "p",
        "--trust-pickle",
        "--sample",
        str(tmp_path / "s.csv"),
    )
    assert rc == 2 and "dict.pkl" in err and "dict" in err and "Traceback" not in out + err
    nothing_written(ws)


@pytest.fixture
def lgb_text(tmp_path) -> tuple[Path, pd.DataFrame]:
    import lightgbm as lgb

    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(300, 3)), columns=["a", "b", "c"])
    m = lgb.LGBMRegressor(n_estimators=12, verbose=-1).fit(X, X["a"] * 2 + X["b"])
    path = tmp_path / "lgb.txt"
    m.booster_.save_model(str(path))
    return path, X


def test_truncated_lightgbm_text_is_refused_without_crashing_the_process(ws, tmp_path, lgb_text):
    path, _ = lgb_text
    text = path.read_text()
    mid_tree = tmp_path / "mid.txt"
    mid_tree.write_text(text[:500])  # LightGBM itself reads past the end of this and aborts the process
    code = (
        "import sys\nfrom roost.model_import.log import load_model_file\nfrom roost.errors import RoostError\n"
        "try:\n    load_model_file(sys.argv[1])\nexcept RoostError as e:\n    print(e.message)\n    sys.exit(2)\n"
    )
    res = subprocess.run([sys.executable, "-c", code, str(mid_tree)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "mid.txt" in res.stdout and "truncated" in res.stdout, (res.returncode, res.stdout)
    between = tmp_path / "between.txt"  # cut after a whole tree: LightGBM would load fewer trees, silently
    between.write_text(text[: text.index("Tree=5")])
    from roost.model_import.log import load_model_file

    with pytest.raises(RoostError, match="between.txt.*truncated"):
        load_model_file(between)
    assert load_model_file(path).num_trees() == 12


def test_sklearn_pickles_that_are_not_fitted_predictors_are_refused_naming_the_file(ws, cli, tmp_path):
    from sklearn.cluster import KMeans
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    X = pd.DataFrame(np.random.default_rng(0).normal(size=(60, 3)), columns=["a", "b", "c"])
    X.to_csv(tmp_path / "s.csv", index=False)
    objs = {
        "unfitted.pkl": (LogisticRegression(), "not fitted"),
        "scaler.pkl": (StandardScaler().fit(X), "not a classifier or regressor"),
        "kmeans.pkl": (KMeans(2, n_init=1, random_state=0).fit(X), "clusterer"),
    }
    for fname, (obj, phrase) in objs.items():
        (tmp_path / fname).write_bytes(pickle.dumps(obj))
        args = ["--name", "p", "--trust-pickle", "--sample", str(tmp_path / "s.csv")]
        rc, out, err = cli("models", "import", str(tmp_path / fname), *args)
        assert rc == 2 and fname in err and phrase in err and "Traceback" not in out + err, (fname, err)
    nothing_written(ws)


def test_lightgbm_categorical_feature_names_the_column_and_its_codes(ws, cli, tmp_path):
    import lightgbm as lgb

    rng = np.random.default_rng(3)
    X = pd.DataFrame(rng.normal(size=(400, 2)), columns=["a", "b"])
    X["cat"] = pd.Categorical(rng.choice(["u", "v", "w"], 400), categories=["u", "v", "w"])
    y = (X["a"] + (X["cat"] == "u") * 1.5 - (X["cat"] == "w")) > 0.3
    m = lgb.LGBMClassifier(n_estimators=15, min_child_samples=5, verbose=-1).fit(X, y)
    m.booster_.save_model(str(tmp_path / "cat.txt"))
    text = X.assign(cat=X["cat"].astype(str))
    text.head(100).to_csv(tmp_path / "text.csv", index=False)
    rc, out, err = cli(
        "models", "import", str(tmp_path / "cat.txt"), "--name", "c", "--sample", str(tmp_path / "text.csv")
    )
    assert rc == 2 and "cat.txt" in err and "'cat'" in err and "'u'→0" in err and "'w'→2" in err, err
    nothing_written(ws)
    codes = X.assign(cat=X["cat"].cat.codes.astype(float))
    codes.head(100).to_parquet(tmp_path / "codes.parquet")
    rc, out, err = cli(
        "models", "import", str(tmp_path / "cat.txt"), "--name", "c", "--sample", str(tmp_path / "codes.parquet")
    )
    assert rc == 0, err
    got = roost.load_model("c/1").predict(codes.iloc[100:])
    np.testing.assert_allclose(got, m.predict_proba(X.iloc[100:])[:, 1], atol=1e-5)  # LightGBM on the categories


def test_import_options_that_point_at_nothing_are_refused(ws, cli, tmp_path, lgb_text):
    path, X = lgb_text
    X.assign(y=1.0).head(50).to_csv(tmp_path / "s.csv", index=False)
    rc, out, err = cli(
        "models", "import", str(path), "--name", "m", "--sample", str(tmp_path / "s.csv"), "--label", "nope"
    )
    assert rc == 2 and "--label 'nope'" in err, err
    rc, out, err = cli(
        "models", "import", str(path), "--name", "m", "--sample", str(tmp_path / "s.csv"), "--rows", "-5"
    )
    assert rc == 2 and "--rows" in out + err
    (tmp_path / "folder.onnx").mkdir()
    rc, out, err = cli("models", "import", str(tmp_path / "folder.onnx"), "--name", "m")
    assert rc == 2 and "folder.onnx is a folder" in err, err
    nothing_written(ws)


def test_onnx_with_external_data_is_read_with_its_weights(ws, cli, tmp_path):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    g = helper.make_graph(
        [helper.make_node("MatMul", ["X", "W"], ["prediction"])],
        "g",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 3])],
        [helper.make_tensor_value_info("prediction", TensorProto.FLOAT, [None, 1])],
        [numpy_helper.from_array(W, "W")],
    )
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    f = tmp_path / "ext.onnx"
    onnx.save(model, str(f), save_as_external_data=True, location="ext.data", size_threshold=0)
    (tmp_path / "ext.data").rename(tmp_path / "away.data")
    rc, out, err = cli("models", "import", str(f), "--name", "ext")
    assert rc == 2 and "ext.onnx" in err and "external data" in err, err
    nothing_written(ws)
    (tmp_path / "away.data").rename(tmp_path / "ext.data")
    rc, out, err = cli("models", "import", str(f), "--name", "ext")
    assert rc == 0, err
    x = np.random.default_rng(2).normal(size=(5, 3)).astype(np.float32)
    pred = roost.load_model("ext/1")
    np.testing.assert_allclose(pred.predict(pd.DataFrame(x, columns=pred.inputs)), (x @ W).reshape(-1), rtol=1e-5)
