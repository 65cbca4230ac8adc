"""`roost monitor analyze MODEL --data D` warns when D overlaps the model's training data (#37 item 2)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from mon_helpers import engagement


@pytest.fixture
def trained(ws):
    """A LightGBM model trained by `roost train` on data/train.parquet (time split), registered as clicks/1."""
    import roost

    (ws.root / "data").mkdir()
    df = engagement(3000, seed=1)
    df.to_parquet(ws.root / "data" / "train.parquet", index=False)
    (ws.root / "train.yaml").write_text(
        "data: data/train.parquet\nlabel: clicked\nsplit: {method: time, column: event_time}\nregister: clicks\n"
        "model: {type: lightgbm, params: {n_estimators: 20}}\n"
    )
    res = roost.train("train.yaml")
    return ws, df, res


def _training_split(df: pd.DataFrame, res) -> pd.DataFrame:
    """The rows the run trained on, rebuilt independently: the earliest data.train_rows rows by event time."""
    import roost

    n = int(roost.get_run(res.run_id)["params"]["data.train_rows"])
    return df.sort_values("event_time", kind="stable").head(n)


def test_same_file_and_subsets_are_flagged(trained, cli):
    from roost.monitor import training_overlap

    ws, df, res = trained
    train_rows = _training_split(df, res)
    same = training_overlap("clicks/1", pd.read_parquet(ws.root / "data" / "train.parquet"))
    assert same is not None and same.same_fingerprint and same.overlaps
    assert same.fraction == pytest.approx(len(train_rows) / len(df))  # every training row is in the file
    # half training rows, half rows never seen (another seed): the fraction is the share of training rows
    fresh = engagement(400, seed=7)
    mixed = pd.concat([train_rows.sample(400, random_state=0), fresh]).sample(frac=1, random_state=1)
    got = training_overlap("clicks/1", mixed.reset_index(drop=True))
    assert got is not None and not got.same_fingerprint and got.overlaps
    assert got.fraction == pytest.approx(0.5, abs=0.01) and got.training_rows_found == 400
    clean = training_overlap("clicks/1", fresh)
    assert clean is not None and not clean.overlaps and clean.fraction == 0.0
    held_out = df.sort_values("event_time", kind="stable").iloc[len(train_rows) :]
    assert not training_overlap("clicks/1", held_out.reset_index(drop=True)).overlaps


def test_cli_warns_on_stderr_and_in_json(trained, cli, tmp_path):
    ws, df, res = trained
    code, out, err = cli("monitor", "analyze", "clicks/1", "--data", "data/train.parquet")
    assert code == 0
    assert "overlaps the model's training data" in err and "%" in err, err
    code, out, err = cli("monitor", "analyze", "clicks/1", "--data", "data/train.parquet", "--json")
    got = json.loads(out)["training_overlap"]
    assert got["overlaps"] is True and got["same_fingerprint"] is True and got["message"]
    assert "overlaps the model's training data" in err
    engagement(300, seed=9).to_parquet(tmp_path / "new.parquet", index=False)
    code, out, err = cli("monitor", "analyze", "clicks/1", "--data", str(tmp_path / "new.parquet"), "--json")
    assert code == 0 and json.loads(out)["training_overlap"]["overlaps"] is False and "overlaps" not in err


def test_row_hashes_ignore_dtype_width_and_order():
    from roost.monitor.overlap import row_hashes

    a = pd.DataFrame({"x": [1, 2, 3], "s": ["a", "b", "c"]})
    b = pd.DataFrame({"s": ["c", "a", "b"], "x": np.array([3.0, 1.0, 2.0])})
    assert sorted(row_hashes(a, ["x", "s"])) == sorted(row_hashes(b, ["x", "s"]))
    assert row_hashes(a, ["x", "s"])[0] != row_hashes(a, ["x", "s"])[1]
