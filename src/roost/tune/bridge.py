"""The bridge to Optuna: rebuild an in-memory study from persisted trial records, then sample or prune with it.

roost's store is the source of truth; Optuna only ever sees a throw-away `InMemoryStorage` rebuilt from it (cheap:
bench/RESULTS.md), so any process, before or after a restart, makes the same decision from the same history.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

from roost.tune.search_space import Space

_STATES = {"RUNNING": "RUNNING", "WAITING": "RUNNING", "COMPLETE": "COMPLETE", "PRUNED": "PRUNED", "FAIL": "FAIL"}


def _quiet() -> None:
    """Silence Optuna's per-trial INFO logs and experimental warnings."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


def _last(intermediate: dict[str, float]) -> float | None:
    """The intermediate value at the greatest step, or None."""
    steps = [k for k, v in intermediate.items() if v is not None]
    return intermediate[max(steps, key=int)] if steps else None


def build(
    study: dict[str, Any], space: Space, trials: list[dict[str, Any]], sampler: Any = None, pruner: Any = None
) -> Any:
    """An Optuna study in memory holding `trials` (waiting ones shown as running) with the given sampler/pruner."""
    import optuna
    from optuna.trial import TrialState, create_trial

    _quiet()
    st = optuna.create_study(
        storage=optuna.storages.InMemoryStorage(),
        study_name=study["id"],
        direction=study["direction"],
        sampler=sampler or optuna.samplers.RandomSampler(0),
        pruner=pruner or optuna.pruners.NopPruner(),
    )
    frozen = []
    for i, t in enumerate(trials):
        if t["number"] != i:
            raise RuntimeError(f"study {study['id']}: trial numbers are not contiguous at {i}")
        state = TrialState[_STATES[t["state"]]]
        inter = {int(k): v for k, v in (t.get("intermediate") or {}).items() if v is not None}
        value = None
        if state == TrialState.COMPLETE:
            value = t["value"]
        elif state == TrialState.PRUNED:
            last = _last(t.get("intermediate") or {})
            value = last if last is not None and math.isfinite(last) else None
        frozen.append(
            create_trial(
                state=state,
                value=value,
                params=space.encode(t["params"]),
                distributions=space.distributions(t["params"]),
                intermediate_values=inter,
                system_attrs=t.get("system_attrs") or {},
            )
        )
    st.add_trials(frozen)
    return st


def sample(
    study: dict[str, Any], space: Space, trials: list[dict[str, Any]], sampler: Any, pruner: Any = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Ask the sampler for the next point given the history: (params, system attrs to persist)."""
    st = build(study, space, trials, sampler, pruner)
    trial = st.ask()
    params = space.suggest(trial)
    frozen = st._storage.get_trial(trial._trial_id)
    return params, _portable(frozen.system_attrs)


def sample_many(
    study: dict[str, Any], space: Space, trials: list[dict[str, Any]], sampler: Any, n: int, pruner: Any = None
) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """`n` points from one rebuilt study, each asked while the earlier ones are running: [(params, attrs)]."""
    st = build(study, space, trials, sampler, pruner)
    out = []
    for _ in range(n):
        trial = st.ask()
        params = space.suggest(trial)
        out.append((params, _portable(st._storage.get_trial(trial._trial_id).system_attrs)))
    return out


def should_prune(
    study: dict[str, Any], space: Space, trials: list[dict[str, Any]], number: int, pruner: Any
) -> tuple[bool, dict[str, Any]]:
    """The pruner's decision for trial `number` (its latest report already in `trials`), and its system attrs."""
    st = build(study, space, trials, None, pruner)
    frozen = st.get_trials(deepcopy=False)[number]
    decision = bool(pruner.prune(st, frozen))
    after = st._storage.get_trial(frozen._trial_id)
    return decision, _portable(after.system_attrs)


def _portable(attrs: dict[str, Any]) -> dict[str, Any]:
    """System attrs worth persisting (JSON-able; drops GP's relative-params broadcast)."""
    import json

    out = {}
    for k, v in attrs.items():
        if k.startswith("gp:") or "relative_params" in k:
            continue
        try:
            json.dumps(v)
        except (TypeError, ValueError):
            continue
        out[k] = v
    return out
