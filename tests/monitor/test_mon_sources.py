"""References and current data: serving request logs, runs, registered models; model analysis from them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from mon_helpers import FEATURES, LABEL, log_requests

from roost.errors import RoostError
from roost.monitor.api import drift, latest_drift, log_report, write_run_reference
from roost.monitor.sources import read_request_logs


@pytest.fixture
def served(tmp_path, eng: pd.DataFrame, lgbm_pkg):
    """Request logs of the later days of the engagement rows, scored by the package."""
    from roost.modelpkg import load

    late = eng[eng.event_time >= eng.event_time.min() + pd.Timedelta(days=10)].reset_index(drop=True)
    logs = tmp_path / "logs"
    log_requests(logs, late, load(lgbm_pkg).predict(late))
    return logs, late


def test_request_logs_are_read_back(served) -> None:
    logs, late = served
    df = read_request_logs(logs)
    assert len(df) == len(late) and {"_ts", "_request_id", "pred_probability", *FEATURES} <= set(df.columns)
    assert df["gender"].isna().sum() == late["gender"].isna().sum()  # '' from serving reads back as missing
    assert np.allclose(np.sort(df["price"].to_numpy()), np.sort(late["price"].to_numpy(np.float32)))
    same = read_request_logs(logs, model="eng")
    assert len(same) == len(df)
    from roost.monitor.sources import load_source

    by_glob = load_source(str(logs / "eng" / "*" / "*.parquet"))
    assert by_glob.is_logs and len(by_glob.frame) == len(df)
    with pytest.raises(RoostError, match="no rows in the time range"):
        read_request_logs(logs, since=pd.Timestamp.now(tz="UTC") + pd.Timedelta(hours=1))
    # a range past every day folder: still "no rows in the time range" (the folder has logs), not "no log files"
    # (since = now + 1 hour crossed midnight after 23:00 UTC and got the wrong error)
    with pytest.raises(RoostError, match="no rows in the time range"):
        read_request_logs(logs, since=pd.Timestamp.now(tz="UTC") + pd.Timedelta(days=2))
    with pytest.raises(RoostError, match="no request log files"):
        read_request_logs(logs / "nothing-here")


def test_drift_of_logs_against_training_data(served, eng: pd.DataFrame) -> None:
    logs, late = served
    early = eng[eng.event_time < eng.event_time.min() + pd.Timedelta(days=7)]
    rep = drift(early, str(logs))
    tested = {f.feature for f in rep.features}
    assert tested == set(FEATURES)  # only the logged model inputs; label and time columns are skipped
    assert any("serving does not log" in n for n in rep.notes)
    assert rep.feature("clicks_7d").drifted  # 7-day counts are still filling up in the first week


def test_run_and_model_references(ws, served, eng: pd.DataFrame, lgbm_pkg) -> None:
    import roost
    from roost.modelpkg import load

    logs, late = served
    pred = load(lgbm_pkg)
    train = eng[eng.event_time < eng.event_time.min() + pd.Timedelta(days=7)]
    test = eng[eng.event_time >= eng.event_time.min() + pd.Timedelta(days=7)]
    with roost.start_run(experiment="eng") as run:
        files = write_run_reference(run.artifact_dir, train, test, label=LABEL, predict=pred.predict)
        run.log_artifacts(lgbm_pkg, "model")
    assert [f.name for f in files] == ["profile.json", "reference.parquet", "evaluation.parquet"]
    ref = pd.read_parquet(files[1])
    assert len(ref) == len(train) and "pred_probability" in ref.columns
    by_run = drift(run.id, str(logs))
    assert by_run.reference.startswith(f"run {run.id[:8]}") and not by_run.approximate
    assert {f.feature for f in by_run.features} == set(FEATURES) | {"pred_probability"}
    roost.register_model(run.id, "eng", "model")
    by_model = drift("eng/1", str(logs))
    assert [f.score for f in by_model.features] == [f.score for f in by_run.features]
    (run.artifact_dir / "reference.parquet").unlink()  # only the profile left: approximate drift
    approx = drift(run.id[:10], str(logs))
    assert approx.approximate and {f.feature for f in approx.features} >= set(FEATURES)
    logged = log_report(by_model, model="eng", html="<html></html>")
    found = latest_drift("eng")
    assert found is not None and found["run_id"] == logged and found["verdict"] in ("ok", "drift")
    run_dict = roost.get_run(logged)
    assert run_dict["tags"]["roost.kind"] == "monitor" and "drift_share" in run_dict["metrics"]


def test_run_without_reference_is_explained(ws) -> None:
    import roost

    with roost.start_run() as run:
        pass
    with pytest.raises(RoostError, match="stored no reference.parquet or profile.json"):
        drift(run.id, pd.DataFrame({"x": [1.0]}))
