"""Tuning: search spaces, Optuna samplers behind roost's `auto` choice, a persisted ask/tell engine, its HTTP
service and client, and `tune()`, which runs trials as child runs of a tuning run (`run_tuning` is the same with
its options in one TuneSettings).

Without a search block, `tune` searches the model's prescribed space (roost.tune.prescribed); `Client.ask(n=...)` and
`tell_many` batch the round trips; roost.tune.task is the pipeline's `tune` task.

Importing this package is cheap: Optuna, Starlette and httpx load on first use.
"""

from __future__ import annotations

from roost._lazy import lazy_api

_API = {
    "Client": "roost.tune.client:Client",
    "Engine": "roost.tune.engine:Engine",
    "Space": "roost.tune.search_space:Space",
    "SpaceError": "roost.tune.search_space:SpaceError",
    "tune": "roost.tune.runner:tune",
    "tune_config": "roost.tune.config:tune_config",
    "Pruned": "roost.tune.runner:Pruned",
    "TrialContext": "roost.tune.runner:TrialContext",
    "TuneResult": "roost.tune.runner:TuneResult",
    "TuneSettings": "roost.tune.runner:TuneSettings",
    "run_tuning": "roost.tune.runner:run_tuning",
    "create_app": "roost.tune.service:create_app",
    "load_config": "roost.tune.config:load",
    "prescribed_space": "roost.tune.prescribed:prescribed",
    "auto_space": "roost.tune.prescribed:auto_space",
    "tune_task": "roost.tune.task:tune_task",
}


__all__ = sorted(_API)
__getattr__, __dir__ = lazy_api(__name__, _API)
