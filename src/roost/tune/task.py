"""The pipeline's `tune` task: tune a training config and answer like the `train` task, with the final model's run.

The final model is the tuning run's blend of cross-validated trials on a small table (roost.tune.cv), else the
best trial's model. Its output feeds `evaluate`/`compare`/`promote` as a `train` output does (run_id, metrics,
model, version, package), plus what was searched: the study, the tuning run, the sampler, the best params, the
trial counts and what the final model blends.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from roost.errors import RoostError

log = logging.getLogger(__name__)
__all__ = ["tune_task"]


def tune_task(
    config: str | Path | dict[str, Any],
    trials: int = 20,
    sampler: str | None = None,
    register: str | None = None,
    seed: int | None = 0,
    parallel: int | None = None,
) -> dict[str, Any]:
    """Tune `config` for `trials` trials (its prescribed space without a search: block); JSON-friendly result."""
    from roost.registry.api import get_run
    from roost.tune import config as C

    spec = C.load(config)
    res = C.tune_config(spec, trials, parallel=parallel, sampler=sampler, seed=seed, register=register)
    if res.best_run_id is None:
        reasons = sorted({str(t.get("reason")) for t in res.trials if t["state"] == "FAIL"})
        raise RoostError(
            f"tune: no trial of {len(res.trials)} completed", hint="trial failures: " + "; ".join(reasons)[:500]
        )
    run = get_run(res.model_run_id or res.best_run_id)
    model, version = None, None
    if res.registered:
        model, _, v = res.registered.rpartition("/")
        version = int(v)
    counts: dict[str, int] = {}
    for t in res.trials:
        counts[t["state"]] = counts.get(t["state"], 0) + 1
    log.info("tune: best %s = %s in %d trials (%s)", spec.metric, res.best_value, len(res.trials), spec.source)
    return {
        "run_id": res.model_run_id,
        "metrics": {k: float(v) for k, v in (run.get("metrics") or {}).items()},
        "model": model,
        "version": version,
        "package": (run.get("tags") or {}).get("roost.tune.package"),
        "study_id": res.study_id,
        "tuning_run_id": res.parent_run_id,
        "sampler": res.sampler,
        "space": spec.source,
        "metric": spec.metric,
        "best_value": res.best_value,
        "best_params": res.best_params,
        "trials": counts,
        "blend": _blend(res.final),
    }


def _blend(final: dict[str, Any] | None) -> dict[str, Any] | None:
    """What the final model blends (trial number -> weight) and by which criterion; None: the best trial alone."""
    if not final:
        return None
    return {"weights": {str(k): v for k, v in final["weights"].items()}, "criterion": final["criterion"]}
