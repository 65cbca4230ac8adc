"""Explanations add up (base + Σ attributions = the model's own output, computed here from its predictions) on
LightGBM, logreg and a blended auto model, with constant and categorical features and rows with missing values;
bad sizes are refused instead of giving NaN attributions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from mon_helpers import FEATURES, LABEL

from roost.errors import RoostError
from roost.modelpkg import load
from roost.responsible.attributions import explain


def _logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(np.asarray(p, dtype=np.float64), 1e-7, 1 - 1e-7)
    return np.log(q / (1 - q))


def _hard_rows(eng: pd.DataFrame) -> pd.DataFrame:
    rows = eng[FEATURES].iloc[-12:].reset_index(drop=True).copy()
    rows.loc[0, "price"] = np.nan
    rows.loc[1, "device"] = None
    rows.loc[2, "device"] = "never-seen-device"
    rows.loc[3, ["price", "quality_score", "clicks_7d"]] = np.nan
    return rows


@pytest.mark.filterwarnings("ignore:LightGBM binary classifier")
@pytest.mark.parametrize("kind", ["lightgbm", "logreg"])
def test_native_attributions_add_up_on_missing_and_unseen_values(packages, eng: pd.DataFrame, kind: str) -> None:
    pred = load(packages[kind])
    rows = _hard_rows(eng)
    e = explain(pred, rows, rows=len(rows), background=30)
    assert e.space == "log-odds" and not e.method.startswith("permutation")
    np.testing.assert_allclose(e.base + e.values.sum(axis=1), _logit(pred.predict(rows)), atol=1e-4)


@pytest.mark.filterwarnings("ignore:LightGBM binary classifier")
def test_blend_with_constant_features_adds_up_and_gives_constants_nothing(eng: pd.DataFrame, tmp_path) -> None:
    from roost.training.ensemble import Blend
    from roost.training.models import make_model

    df = eng.iloc[:1500].assign(const=1.0, const_text="k")
    feats = [*FEATURES, "const", "const_text"]
    X, y = df[feats], df[LABEL]
    members = [
        (t, make_model(t, "binary", **kw).fit(X.iloc[:1200], y.iloc[:1200], X.iloc[1200:], y.iloc[1200:]))
        for t, kw in (("logreg", {"epochs": 1}), ("lightgbm", {"n_estimators": 10}))
    ]
    pred = load(Blend(members, [0.6, 0.4]).save_package(tmp_path / "blend", X.head(100), label=LABEL))
    rows = _hard_rows(df.assign(const=1.0, const_text="k")).assign(const=1.0, const_text="k")
    e = explain(pred, rows, rows=len(rows), background=12)
    np.testing.assert_allclose(e.base + e.values.sum(axis=1), pred.predict(rows), atol=1e-5)
    for f in ("const", "const_text"):
        assert np.all(e.values[:, e.features.index(f)] == 0)


@pytest.mark.parametrize("kw", [{"background": 0}, {"rows": 0}, {"rows": -3}, {"background": -1}, {"steps": 0}])
def test_bad_sizes_are_refused(packages, eng: pd.DataFrame, kw: dict[str, int]) -> None:
    with pytest.raises(RoostError, match=next(iter(kw))):
        explain(packages["logreg"], eng.iloc[:50], **kw)  # background=0 gave NaN attributions, 'additivity nan'


@pytest.mark.filterwarnings("ignore:LightGBM")
def test_multiclass_attributions_are_checked_against_the_package(eng: pd.DataFrame, tmp_path) -> None:
    import shutil

    from roost.training.models import make_model

    feats = [f for f in FEATURES if f != "age_group"]
    X, y = eng[feats].iloc[:1500], eng["age_group"].iloc[:1500]
    for name, n in (("a", 8), ("b", 3)):
        m = make_model("lightgbm", "multiclass", n_estimators=n).fit(X.iloc[:1200], y.iloc[:1200], X[1200:], y[1200:])
        m.save_package(tmp_path / name, X.head(100), label="age_group")
    rows = X.iloc[-8:].reset_index(drop=True)
    pred = load(tmp_path / "a")
    probs = np.asarray(pred.predict(rows), dtype=np.float64)
    margins = np.stack([(lambda e: e.base + e.values.sum(axis=1))(explain(pred, rows, target=k)) for k in range(5)], 1)
    soft = np.exp(margins) / np.exp(margins).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(soft, probs, atol=1e-5)  # reference: softmax of the class margins = the package
    e = explain(pred, rows, target=2)
    assert e.method.startswith("TreeSHAP") and "softmax" in e.notes[-1]
    # a native checkpoint that is not the package's model: caught (was 'additivity … = 0.00e+00', never compared)
    shutil.copy(tmp_path / "b" / "native" / "model.txt", tmp_path / "a" / "native" / "model.txt")
    e = explain(load(tmp_path / "a"), rows, target=2, background=8)
    assert e.method.startswith("permutation") and any("native explanation unavailable" in n for n in e.notes)


def test_explanation_json_with_missing_and_odd_values() -> None:
    import json

    from roost.responsible.attributions import Explanation

    data = pd.DataFrame(
        {
            "n": pd.array([pd.NA, 3], dtype="Int64"),
            "s": pd.array([pd.NA, "x"], dtype="string"),
            "t": [pd.NaT, pd.Timestamp("2024-01-01", tz="UTC")],
            "f": np.array([np.inf, np.float32(0.5)], dtype=np.float32),
            "b": pd.array([None, True], dtype="boolean"),
        }
    )
    vals = np.arange(10, dtype=np.float64).reshape(2, 5)
    e = Explanation("m", list(data.columns), vals, np.zeros(2), "log-odds", data, vals.sum(axis=1))
    d = json.loads(json.dumps(e.to_dict(), allow_nan=False))  # pd.NA raised 'boolean value of NA is ambiguous'
    got = [{a["feature"]: a["value"] for a in r["attributions"]} for r in d["rows"]]
    assert got[0] == {"n": None, "s": None, "t": None, "f": None, "b": None}
    assert got[1] == {"n": 3, "s": "x", "t": "2024-01-01 00:00:00+00:00", "f": 0.5, "b": True}
