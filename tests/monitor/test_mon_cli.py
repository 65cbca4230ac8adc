"""The CLI: roost monitor profile/drift/check/analyze, roost fairness, roost explain, roost card."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from mon_helpers import FEATURES, LABEL


@pytest.fixture
def files(tmp_path, eng: pd.DataFrame, lgbm_pkg):
    """Early and late slices as Parquet files, and labelled late rows."""
    t0 = eng.event_time.min()
    early, late = eng[eng.event_time < t0 + pd.Timedelta(days=4)], eng[eng.event_time >= t0 + pd.Timedelta(days=10)]
    early.to_parquet(tmp_path / "early.parquet")
    late.to_parquet(tmp_path / "late.parquet")
    return tmp_path


def test_profile_and_drift_and_check(cli, ws, files) -> None:
    code, out, _ = cli("monitor", "profile", str(files / "early.parquet"), "--out", str(files / "p.json"), "--json")
    assert code == 0 and json.loads(out)["rows"] > 0 and (files / "p.json").is_file()
    args = ["-r", str(files / "early.parquet"), "-c", str(files / "late.parquet"), "--features", ",".join(FEATURES)]
    code, out, _ = cli(
        "monitor",
        "drift",
        *args,
        "--html",
        str(files / "d.html"),
        "--prom",
        str(files / "d.prom"),
        "--json",
        "--log",
        "--model",
        "eng",
    )
    rep = json.loads(out)
    assert code == 0 and rep["kind"] == "drift" and {f["feature"] for f in rep["features"]} == set(FEATURES)
    assert "clicks_7d" in {f["feature"] for f in rep["features"] if f["drifted"]}
    assert (files / "d.html").read_text().count("<svg") >= len(FEATURES)
    assert "roost_drift_feature_drifted" in (files / "d.prom").read_text()
    import roost

    logged = roost.search_runs(experiment="monitor/eng")  # one experiment of monitor runs per model
    assert len(logged) == 1 and logged[0]["tags"]["roost.monitor.model"] == "eng"
    code, out, _ = cli("monitor", "check", *args, "--drift-share", "0.05")
    assert code == 1 and out.startswith("DRIFT")
    code, out, _ = cli("monitor", "check", "-r", str(files / "early.parquet"), "-c", str(files / "early.parquet"))
    assert code == 0 and out.startswith("no dataset drift")
    code, out, _ = cli("monitor", "check", "-r", str(files / "p.json"), "-c", str(files / "late.parquet"), "--json")
    assert code in (0, 1) and "verdict" in json.loads(out)
    code, _, err = cli("monitor", "drift", "-r", str(files / "nope.parquet"), "-c", str(files / "late.parquet"))
    assert code == 2 and "not found" in err


def test_fairness_explain_analyze(cli, files, lgbm_pkg) -> None:
    late = str(files / "late.parquet")
    code, out, _ = cli(
        "fairness",
        str(lgbm_pkg),
        "--data",
        late,
        "--sensitive",
        "gender,age_group",
        "--json",
        "--html",
        str(files / "f.html"),
    )
    rep = json.loads(out)
    assert code == 0 and [t["columns"] for t in rep["tables"]] == [["gender"], ["age_group"], ["gender", "age_group"]]
    assert "(missing)" in {g["group"][0] for g in rep["tables"][0]["groups"]}
    assert "demographic_parity_difference" in rep["tables"][0]["disparities"] and (files / "f.html").is_file()
    code, _, err = cli("fairness", str(lgbm_pkg), "--data", late, "--sensitive", "sex")
    assert code == 2 and "not in the data" in err
    code, out, _ = cli("explain", str(lgbm_pkg), "--data", late, "--rows", "20", "--json")
    exp = json.loads(out)
    assert code == 0 and exp["method"].startswith("TreeSHAP") and len(exp["importance"]) == len(FEATURES)
    code, out, _ = cli("explain", str(lgbm_pkg), "--data", late, "--rows", "5", "--row", "2")
    assert code == 0 and "row 2" in out
    code, out, _ = cli(
        "monitor",
        "analyze",
        str(lgbm_pkg),
        "--data",
        late,
        "--slice",
        "gender",
        "--json",
        "--html",
        str(files / "a.html"),
    )
    an = json.loads(out)
    assert code == 0 and an["label"] == LABEL and "gender" in an["slices"] and an["calibration"]
    code, _, err = cli("monitor", "analyze")
    assert code == 2 and "nothing to analyse" in err


def test_card_command(cli, ws, files, lgbm_pkg) -> None:
    import roost

    with roost.start_run() as run:
        run.log_artifacts(lgbm_pkg, "model")
    roost.register_model(run.id, "eng", "model")
    code, out, _ = cli(
        "card", "eng", "--out", str(files / "card.md"), "--data", str(files / "late.parquet"), "--sensitive", "gender"
    )
    text = (files / "card.md").read_text()
    assert code == 0 and "model card written" in out and "## Fairness" in text and "not recorded" in out
