"""Silent-wrong-answer probes of profiles, analysis, drift rules and reports, each against a reference computed here
(numpy, pandas, scikit-learn or brute force), not against roost's own output."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from roost.monitor.analysis import analyze
from roost.monitor.html_report import analysis_html, table

# -- HTML ---------------------------------------------------------------------------------------------------------

EVIL = "<img src=x onerror=alert(1)>"


def test_table_cells_that_start_with_a_bracket_are_escaped() -> None:
    html = table(["a"], [[EVIL], ["< 3.5"]])
    assert "<img" not in html and "&lt;img" in html and "&lt; 3.5" in html


def test_analysis_html_escapes_slice_values() -> None:
    rng = np.random.default_rng(0)
    df = pd.DataFrame(
        {"y": rng.integers(0, 2, 300), "pred_probability": rng.random(300), "cat": [EVIL, "b", "c"] * 100}
    )
    html = analysis_html(analyze(df, "y", features=["cat"]))
    assert not re.search(r"<img", html)
