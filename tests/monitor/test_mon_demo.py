"""The engagement demo step: the later slice is flagged, and a fairness table for gender is printed."""

from __future__ import annotations

import io

from rich.console import Console

from roost.demo import engagement_demo


def test_engagement_demo_flags_the_later_slice(tmp_path, lgbm_pkg) -> None:
    buf = io.StringIO()
    out = engagement_demo(rows=8000, seed=1, out_dir=tmp_path, console=Console(file=buf, width=140))
    text = buf.getvalue()
    drifted = {f.feature for f in out["drift"].features if f.drifted}
    assert {"clicks_7d", "popularity_7d"} <= drifted and "DRIFT" in text
    fair = out["fairness"].table("gender")
    assert [g[0] for g in fair.groups] == ["female", "male", "nonbinary", "(missing)"]
    assert "fairness by gender" in text and "demographic parity difference" in text
    assert out["drift_html"].is_file() and out["fairness_html"].is_file()
    with_model = engagement_demo(rows=8000, seed=1, model=str(lgbm_pkg), console=Console(file=io.StringIO()))
    assert "pred_probability" in {f.feature for f in with_model["drift"].features}
