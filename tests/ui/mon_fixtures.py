"""Monitoring helpers for the UI tests: a registered model, drift frames, a page's chart payloads.

The planted skew scenario (feature view, request logs) is tests/skew_scenario.py, shared with tests/monitor.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def register_model(tmp_path: Path, name: str = "m") -> None:
    """Register a model called `name` (a bare package folder) so that its page exists."""
    import roost

    pkg = tmp_path / f"pkg-{name}"
    pkg.mkdir(exist_ok=True)
    (pkg / "roost-model.yaml").write_text("framework: onnx\nmetrics:\n  auc: 0.8\n")
    roost.register_model(None, name, str(pkg))


def drift_frames(shift: float, n: int = 400, seed: int = 0) -> tuple[Any, Any]:
    """(reference, current) frames of two numeric and one categorical feature; `current` shifted by `shift`."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    ref = pd.DataFrame({"a": rng.normal(0, 1, n), "b": rng.normal(5, 2, n), "c": rng.choice(["x", "y"], n)})
    cur = pd.DataFrame(
        {"a": rng.normal(shift, 1, n), "b": rng.normal(5, 2, n), "c": rng.choice(["x", "y"], n, p=[0.5, 0.5])}
    )
    return ref, cur


def page_charts(html: str, element_id: str) -> list[dict[str, Any]]:
    """The chart payloads a page put in `<div id=element_id data-charts='...'>`."""
    import html as h
    import re

    m = re.search(rf"id=\"{element_id}\" data-charts='([^']*)'", html)
    assert m, f"no #{element_id} charts in the page"
    return json.loads(h.unescape(m.group(1)))
