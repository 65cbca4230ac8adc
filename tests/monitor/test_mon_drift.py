"""Drift verdicts, bad input explained (not raised), profile references, HTML and Prometheus output."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from roost.errors import RoostError
from roost.monitor import alerts
from roost.monitor.api import drift
from roost.monitor.drift_compute import choose_method, compare
from roost.monitor.html_report import drift_html
from roost.monitor.profile import profile_frame


def _frames(n_ref: int = 4000, n_cur: int = 3000, shift: float = 0.0, seed: int = 0) -> tuple[pd.DataFrame, ...]:
    rng = np.random.default_rng(seed)

    def one(n: int, s: float) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "x": rng.normal(s, 1, n),
                "y": rng.exponential(1 + s, n),
                "c": pd.Series(rng.choice(list("abc"), n, p=[0.5 - s / 4, 0.3, 0.2 + s / 4]), dtype="str"),
                "k": rng.integers(0, 4, n),
            }
        )

    return one(n_ref, 0.0), one(n_cur, shift)


def test_no_drift_on_same_distribution_and_drift_on_shift() -> None:
    ref, cur = _frames()
    rep = compare(ref, cur)
    assert not rep.dataset_drift and rep.n_drifted == 0 and rep.verdict.startswith("no dataset drift")
    ref, cur = _frames(shift=0.8)
    rep = compare(ref, cur)
    assert rep.dataset_drift and {f.feature for f in rep.features if f.drifted} >= {"x", "y", "c"}
    assert rep.verdict.startswith("DRIFT") and alerts.exit_code(rep) == alerts.EXIT_DRIFT


def test_method_choice_follows_evidently() -> None:
    assert choose_method("numeric", 1000, 50) == "ks" and choose_method("numeric", 1001, 50) == "wasserstein"
    assert choose_method("numeric", 5000, 4) == "js" and choose_method("categorical", 500, 3) == "chi2"
    assert choose_method("categorical", 5000, 3) == "js" and choose_method("numeric", 500, 5) == "chi2"
    ref, cur = _frames(800, 700, shift=0.5)
    rep = compare(ref, cur)
    assert rep.feature("x").method == "ks" and rep.feature("c").method == "chi2"
    assert rep.feature("x").score == rep.feature("x").stats["ks_pvalue"]


def test_explicit_method_and_threshold() -> None:
    ref, cur = _frames(shift=0.1)
    rep = compare(ref, cur, method="psi", thresholds={"psi": 0.5})
    assert all(f.method == "psi" and f.threshold == 0.5 for f in rep.features)
    assert not any(f.drifted for f in rep.features)
    rep = compare(ref, cur, method="ks")  # categories fall back to chi²
    assert rep.feature("c").method == "chi2" and rep.feature("x").method == "ks"
    with pytest.raises(RoostError, match="unknown drift method"):
        compare(ref, cur, method="magic")


def test_bad_input_is_explained_not_raised() -> None:
    ref, cur = _frames(shift=0.0)
    ref = ref.assign(gone=1.0, allnull_ref=np.nan, allnull_cur=ref["x"], const=3.0, onecat="z", nulls_rise=ref["x"])
    cur = cur.assign(
        allnull_ref=cur["x"],
        allnull_cur=np.nan,
        const=3.0,
        onecat="z",
        nulls_rise=cur["x"].where(np.arange(len(cur)) % 3 != 0),
        extra="new",
    )
    rep = compare(ref, cur)
    f = {x.feature: x for x in rep.features}
    assert f["gone"].status == "missing" and f["gone"].drifted and "missing in the current" in f["gone"].notes[0]
    assert f["allnull_ref"].status == "empty" and not f["allnull_ref"].drifted
    assert f["allnull_cur"].drifted and "all values are missing in the current" in f["allnull_cur"].notes[0]
    assert f["const"].status == "ok" and not f["const"].drifted and "constant" in f["const"].notes[0]
    assert f["onecat"].status == "ok" and "single category" in f["onecat"].notes[0]
    assert f["nulls_rise"].drifted and any("missing values rose" in n for n in f["nulls_rise"].notes)
    assert any("extra" in n for n in rep.notes)
    html = drift_html(rep)
    for name in ("gone", "allnull_ref", "allnull_cur", "const"):
        assert name in html
    with pytest.raises(RoostError, match="no rows"):
        compare(ref, cur.iloc[:0])


def test_type_change_in_current_is_reported() -> None:
    ref = pd.DataFrame({"x": np.arange(2000.0)})
    cur = pd.DataFrame({"x": pd.Series([f"v{i}" for i in range(2000)], dtype="str")})
    fd = compare(ref, cur).feature("x")
    assert fd.kind == "categorical" and "not numbers" in fd.notes[0]


def test_profile_reference_is_close_to_the_sample_statistics() -> None:
    ref, cur = _frames(20_000, 20_000, shift=0.3, seed=3)
    exact = compare(ref, cur)
    approx = drift(profile_frame(ref), cur)
    assert approx.approximate and any("approximate" in n for n in approx.notes)
    for a, b in zip(exact.features, approx.features):
        assert a.method == b.method and a.drifted == b.drifted, a.feature
        if a.kind == "categorical":
            assert b.stats["chi2"] == pytest.approx(a.stats["chi2"], rel=1e-12)  # category counts are exact
        else:
            assert b.stats["ks"] == pytest.approx(a.stats["ks"], abs=0.01)
            assert b.stats["wasserstein_norm"] == pytest.approx(a.stats["wasserstein_norm"], rel=0.05, abs=0.005)
            assert b.stats["psi"] == pytest.approx(a.stats["psi"], rel=0.25, abs=0.01)
    both = drift(profile_frame(ref), profile_frame(cur))
    assert [f.drifted for f in both.features] == [f.drifted for f in approx.features]


def test_prometheus_text_parses_and_gauges_register() -> None:
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    ref, cur = _frames(shift=0.8)
    rep = compare(ref, cur)
    fams = {f.name: f for f in text_string_to_metric_families(alerts.prometheus_text(rep, model="m"))}
    assert fams["roost_drift_dataset_drift"].samples[0].value == 1.0
    drifted = {s.labels["feature"]: s.value for s in fams["roost_drift_feature_drifted"].samples}
    assert drifted == {f.feature: float(f.drifted) for f in rep.features}
    reg = CollectorRegistry()
    alerts.drift_gauges(rep, reg, model="m")
    assert reg.get_sample_value("roost_drift_share", {"model": "m"}) == rep.share
    assert reg.get_sample_value("roost_drift_feature_drifted", {"model": "m", "feature": "x"}) == 1.0
    labels = {"model": "m", "feature": "x", "method": "wasserstein"}
    assert reg.get_sample_value("roost_drift_feature_score", labels) == rep.feature("x").score
    assert b"roost_drift_feature_score{" in generate_latest(reg)


def test_write_prom_is_atomic_and_html_has_no_script(tmp_path) -> None:
    ref, cur = _frames(shift=0.5)
    rep = compare(ref, cur)
    p = alerts.write_prom(rep, tmp_path / "drift.prom")
    assert p.read_text().startswith("# HELP") and not list(tmp_path.glob(".*tmp"))
    html = drift_html(rep)
    assert (
        "<svg" in html
        and "<script" not in html
        and "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    )
