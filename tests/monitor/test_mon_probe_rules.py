"""Silent-wrong-answer probes of profiles, analysis, drift rules and reports, each against a reference computed here
(numpy, pandas, scikit-learn or brute force), not against roost's own output."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from roost.errors import RoostError
from roost.monitor.api import drift

# -- drift rules --------------------------------------------------------------------------------------------------


def _shifted() -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(1)
    return pd.DataFrame({"a": rng.normal(size=400)}), pd.DataFrame({"a": rng.normal(3, size=400)})


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"thresholds": {"ks": float("nan")}}, "ks"),
        ({"thresholds": {"kss": 0.05}}, "kss"),
        ({"thresholds": {"ks": 1.5}}, "ks"),
        ({"thresholds": {"psi": -1.0}}, "psi"),
        ({"thresholds": {"js": 0.9}}, "js"),
        ({"drift_share": float("nan")}, "drift_share"),
        ({"drift_share": 1.5}, "drift_share"),
    ],
)
def test_bad_drift_rules_are_refused_not_silently_never_firing(kw: dict[str, Any], match: str) -> None:
    ref, cur = _shifted()
    assert drift(ref, cur).dataset_drift  # a 3-sigma shift drifts under the default rules
    with pytest.raises(RoostError, match=match):
        drift(ref, cur, **kw)


def test_drift_rule_direction() -> None:
    ref, cur = _shifted()
    assert drift(ref, cur, thresholds={"ks": 0.05}).features[0].drifted  # p-value below: drift
    same = drift(ref, ref.sample(frac=1, random_state=0), thresholds={"ks": 0.05})
    assert not same.features[0].drifted
    assert drift(ref, cur, method="wasserstein", thresholds={"wasserstein": 0.1}).features[0].drifted  # above
    assert not drift(ref, cur, method="wasserstein", thresholds={"wasserstein": 100.0}).features[0].drifted


def test_prom_file_on_a_folder_is_a_clear_error_and_leaves_nothing(tmp_path) -> None:
    from roost.monitor.alerts import write_prom

    ref, cur = _shifted()
    rep = drift(ref, cur)
    (tmp_path / "textfile").mkdir()
    with pytest.raises(RoostError, match="folder"):
        write_prom(rep, tmp_path / "textfile")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["textfile"] and not any((tmp_path / "textfile").iterdir())
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(RoostError, match="cannot write"):
        write_prom(rep, blocker / "sub" / "drift.prom")  # parent is a file
    out = write_prom(rep, tmp_path / "textfile" / "drift.prom").read_text()
    assert "roost_drift_dataset_drift 1.0" in out and sorted(p.name for p in (tmp_path / "textfile").iterdir()) == [
        "drift.prom"
    ]


def test_js_threshold_bound_is_scipys_largest_distance() -> None:
    from scipy.spatial.distance import jensenshannon

    from roost.monitor.api import JS_MAX

    assert JS_MAX == pytest.approx(jensenshannon([1, 0], [0, 1]))  # disjoint supports: the largest distance
    ref, cur = _shifted()
    drift(ref, cur, thresholds={"js": float(jensenshannon([1, 0], [0, 1]))})  # at the bound: allowed
