"""What the run page shows for a `model: auto` parent run: its candidates, their validation scores, the blend.

roost.training.auto records it all on the parent: the candidate list (param `model.params.candidates`), the blend
weights (tag `roost.auto.weights`, JSON), the selection criterion, and each candidate's metrics as
`<candidate>.<metric>`; each candidate also trained as a child run tagged with its `roost.model_type`.
"""

from __future__ import annotations

import json
import math
from typing import Any

__all__ = ["auto_candidates"]


def _weights(raw: Any) -> dict[str, float]:
    """The recorded weights {candidate: weight} ({} when absent or unreadable)."""
    try:
        got = json.loads(raw) if raw else {}
    except (TypeError, ValueError):
        return {}
    return {str(k): float(v) for k, v in got.items() if isinstance(v, (int, float))} if isinstance(got, dict) else {}


def _finite(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and math.isfinite(v) else None


def auto_candidates(run: dict[str, Any], children: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The candidates of an auto run: [{name, run_id, status, score, weight, selected}], the metric they were
    scored on, the criterion and the blend's own score; None for any other run."""
    from roost.metrics.overall import PRIMARY

    tags = run.get("tags") or {}
    if tags.get("roost.model_type") != "auto":
        return None
    task = str(tags.get("roost.task") or "")
    metric, better = PRIMARY.get(task, ("loss", "min"))
    weights = _weights(tags.get("roost.auto.weights"))
    listed = [c for c in str((run.get("params") or {}).get("model.params.candidates") or "").split(",") if c]
    names = list(dict.fromkeys(listed + list(weights)))
    kids = {str((c.get("tags") or {}).get("roost.model_type")): c for c in reversed(children)}  # the first wins
    names += [n for n in kids if n not in names and n != "None"]
    metrics = run.get("metrics") or {}
    rows = []
    for name in names:
        child = kids.get(name)
        score = _finite((child or {}).get("metrics", {}).get(f"val_{metric}"))
        if score is None:
            score = _finite(metrics.get(f"{name}.val_{metric}"))
        weight = weights.get(name)
        rows.append(
            {
                "name": name,
                "run_id": child["run_id"] if child else None,
                "status": child["status"] if child else None,
                "score": score,
                "weight": weight,
                "selected": bool(weight and weight > 0),
            }
        )
    return {
        "metric": f"val_{metric}",
        "better": "higher" if better == "max" else "lower",
        "criterion": tags.get("roost.auto.criterion") or "",
        "selected": tags.get("roost.auto.selected") or "",
        "blend_score": _finite(metrics.get(f"val_{metric}")),
        "recorded": bool(weights),
        "candidates": rows,
    }
