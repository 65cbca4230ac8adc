"""roost.monitor.analysis_frame: the Python equivalent of what `roost monitor analyze` analyses."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from mon_helpers import LABEL

from roost.errors import RoostError


def test_model_and_data_equal_the_cli(cli, tmp_path, eng: pd.DataFrame, lgbm_pkg) -> None:
    import roost.monitor
    from roost.modelpkg import load_model

    late = eng.iloc[-400:].reset_index(drop=True)
    late.to_parquet(tmp_path / "late.parquet")
    frame, source, label = roost.monitor.analysis_frame(model=str(lgbm_pkg), data=str(tmp_path / "late.parquet"))
    want = load_model(str(lgbm_pkg)).predict(late)  # scored by the model package itself
    assert label == LABEL and source == str(tmp_path / "late.parquet") and len(frame) == len(late)
    np.testing.assert_allclose(frame["pred_probability"].to_numpy(), np.asarray(want), rtol=0, atol=0)
    an = roost.monitor.analyze(frame, label, features=["gender"], source=source)
    code, out, err = cli(
        "monitor", "analyze", str(lgbm_pkg), "--data", str(tmp_path / "late.parquet"), "--slice", "gender", "--json"
    )
    assert code == 0, err
    assert json.loads(out) == json.loads(json.dumps(an.to_dict()))


def test_logs_joined_to_delayed_labels() -> None:
    from roost.monitor import analysis_frame

    logs = pd.DataFrame({"_request_id": [3, 1, 2], "_row": 0, "pred_probability": [0.9, 0.2, 0.6], "x": [1, 2, 3]})
    labels = pd.DataFrame({"_request_id": [1, 2, 3], "_row": 0, "y": [0, 1, 1]})
    frame, source, label = analysis_frame(data=logs, labels=labels, label="y")
    got = frame.sort_values("_request_id")[["_request_id", "pred_probability", "y"]].to_numpy().tolist()
    assert got == [[1, 0.2, 0], [2, 0.6, 1], [3, 0.9, 1]] and label == "y" and source == "data frame"


def test_nothing_or_no_label_is_a_clear_error() -> None:
    from roost.monitor import analysis_frame

    with pytest.raises(RoostError, match="nothing to analyse"):
        analysis_frame()
    with pytest.raises(RoostError, match="which column is the label"):
        analysis_frame(data=pd.DataFrame({"pred_probability": [0.5]}))
