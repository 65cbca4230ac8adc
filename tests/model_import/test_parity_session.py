"""The package's parity check builds one ONNX Runtime session, on one intra-op thread: a check of a few rows does not
start (and spin) a thread pool per core."""

from __future__ import annotations

from typing import Any

import numpy as np


def test_build_package_checks_parity_on_one_session_with_one_thread(tmp_path, monkeypatch):
    import lightgbm as lgb
    import onnxruntime as ort

    from roost.model_import.log import build_package

    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 4))
    model = lgb.LGBMClassifier(n_estimators=5, verbose=-1).fit(X, (X[:, 0] > 0).astype(int))
    built: list[int] = []
    real = ort.InferenceSession

    def counting(path: Any, sess_options: Any = None, **kw: Any) -> Any:
        built.append(sess_options.intra_op_num_threads if sess_options is not None else 0)
        return real(path, sess_options=sess_options, **kw)

    monkeypatch.setattr(ort, "InferenceSession", counting)
    meta = build_package(model, tmp_path / "m", sample_input=X[:20])
    assert meta["parity_rows"] == 20 and meta["parity_max_abs_diff"] <= 1e-5
    assert built == [1]


def test_predictor_threads_default_is_onnx_runtimes(tmp_path):
    import lightgbm as lgb

    from roost.model_import.log import build_package
    from roost.modelpkg import load
    from roost.modelpkg.predictor import Predictor

    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 3))
    build_package(lgb.LGBMRegressor(n_estimators=3, verbose=-1).fit(X, X[:, 0]), tmp_path / "m", sample_input=X[:5])
    assert load(tmp_path / "m").session.get_session_options().intra_op_num_threads == 0
    one = Predictor(tmp_path / "m", threads=1)
    assert one.session.get_session_options().intra_op_num_threads == 1
    rows = {c: X[:7, j] for j, c in enumerate(one.inputs)}
    assert np.array_equal(one.run(rows)["prediction"], load(tmp_path / "m").run(rows)["prediction"])
